// ue.capture: a femtocell holds more, or other, subscribers than its mode
// and CSG allow - the rogue box that attracts nearby phones. Kinds:
//   closed_nonmembers - a closed femtocell serves (ue.attach or sms.deliver)
//          >= `closed_min_nonmembers` (2) distinct subscribers outside its
//          CSG within `window_s` (1 h); the first attach suffices when the
//          femtocell is already blocked or under a high/critical alert;
//   rogue - an identity that is not registered, or is suspended or
//          decommissioned, serves >= `rogue_min_subscribers` (2) distinct
//          subscribers within `window_s`;
//   over_capacity - a `ue.attach` that takes a femtocell above its
//          registered `max_ues`, or else above `open_max_ues` (32) for open
//          and hybrid femtocells / `closed_max_ues` (0 = no limit) for
//          closed ones.
//
// Does NOT fire for an open or hybrid femtocell (a cafe) with many visitors
// below its limit, nor for CSG members of a closed one, nor for a single
// stray non-member. Subjects: the subscribers concerned.

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class UeCapture final : public Detector {
 public:
  explicit UeCapture(const RuleParams& p)
      : window_ms_(ParamSecondsAsMs(p, "window_s", 3600)),
        closed_min_(static_cast<size_t>(std::max<int64_t>(1, p.GetInt("closed_min_nonmembers", 2)))),
        rogue_min_(static_cast<size_t>(std::max<int64_t>(1, p.GetInt("rogue_min_subscribers", 2)))),
        open_max_(static_cast<size_t>(std::max<int64_t>(0, p.GetInt("open_max_ues", 32)))),
        closed_max_(static_cast<size_t>(std::max<int64_t>(0, p.GetInt("closed_max_ues", 0)))),
        sweep_(600 * kMillisPerSecond) {}

  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kUeAttach && e.type != EventType::kSmsDeliver) return;
    if (e.device.empty() || e.imsi.empty()) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);

    bool rogue = d == kNoDevice || !w.device(d).registered ||
                 w.device(d).status == DeviceStatus::kSuspended ||
                 w.device(d).status == DeviceStatus::kDecommissioned;
    if (rogue) {
      Visit(e, ctx, d, "rogue", rogue_min_);
      return;
    }
    const DeviceState& s = w.device(d);
    if (s.mode == AccessMode::kClosed && !s.IsCsgMember(e.imsi)) {
      // First sufficient evidence: a closed femtocell already blocked, or
      // under a high/critical alert, that a non-member attaches to has
      // captured that subscriber now; waiting for a second one would only
      // leave the first exposed. An attach only: an SMS through it is what
      // sms.intercept judges (and may be what made the femtocell suspect).
      const std::string_view risk =
          e.type == EventType::kUeAttach ? FemtoRisk(w, d, e.ts_ms) : std::string_view();
      Visit(e, ctx, d, "closed_nonmembers", risk == "blocked" || risk == "suspect" ? 1 : closed_min_);
    }
    if (e.type == EventType::kUeAttach) CheckCapacity(e, ctx, s);
  }

  void Expire(UnixMillis now_ms) override {
    if (!sweep_.Due(now_ms)) return;
    for (auto it = visitors_.begin(); it != visitors_.end();) {
      if (it->second.newest_ms + window_ms_ < now_ms) {
        it = visitors_.erase(it);
      } else {
        ++it;
      }
    }
  }

  size_t MemoryBytes() const override {
    size_t n = visitors_.bucket_count() * 8;
    for (const auto& [k, v] : visitors_) n += 48 + v.seen.capacity() * sizeof(Seen);
    return n;
  }

 private:
  static constexpr size_t kMaxTracked = 32;
  struct Seen {
    SubjectId subject;
    UnixMillis ts_ms;
  };
  struct Visitors {
    std::vector<Seen> seen;  // distinct subjects, last seen time
    UnixMillis newest_ms = 0;
  };

  void Visit(const Event& e, Context& ctx, DeviceIdx d, std::string_view kind, size_t min) {
    Visitors& v = visitors_[HashText(e.device)];
    v.newest_ms = std::max(v.newest_ms, e.ts_ms);
    UnixMillis horizon = e.ts_ms - window_ms_;
    std::erase_if(v.seen, [&](const Seen& s) { return s.ts_ms < horizon; });
    auto it = std::find_if(v.seen.begin(), v.seen.end(), [&](const Seen& s) { return s.subject == e.imsi; });
    if (it != v.seen.end()) {
      it->ts_ms = e.ts_ms;
    } else {
      if (v.seen.size() >= kMaxTracked) v.seen.erase(v.seen.begin());  // oldest first
      v.seen.push_back({e.imsi, e.ts_ms});
    }
    if (v.seen.size() < min) return;

    Evidence ev = MakeEvidence("ue.capture", kind, e.device, e.ts_ms);
    for (const Seen& s : v.seen) ev.subjects.push_back(s.subject);
    std::string_view status = "unregistered";
    if (d != kNoDevice && ctx.world().device(d).registered)
      status = DeviceStatusName(ctx.world().device(d).status);
    ev.details_json = nlohmann::json{{"subscribers", v.seen.size()},
                                     {"window_s", window_ms_ / kMillisPerSecond},
                                     {"device_status", status},
                                     {"event", EventTypeName(e.type)}}
                          .dump();
    ctx.Emit(std::move(ev));
  }

  void CheckCapacity(const Event& e, Context& ctx, const DeviceState& s) {
    size_t limit = s.max_ues > 0 ? static_cast<size_t>(s.max_ues)
                                 : (s.mode == AccessMode::kClosed ? closed_max_ : open_max_);
    if (limit == 0) return;
    size_t now_attached = s.attached.size();
    if (std::find(s.attached.begin(), s.attached.end(), e.imsi) == s.attached.end()) ++now_attached;
    if (now_attached <= limit) return;
    Evidence ev = MakeEvidence("ue.capture", "over_capacity", e.device, e.ts_ms);
    ev.subjects.push_back(e.imsi);
    ev.details_json = nlohmann::json{{"attached", now_attached},
                                     {"limit", limit},
                                     {"limit_from", s.max_ues > 0 ? "registry max_ues" : "rules param"},
                                     {"mode", AccessModeName(s.mode)}}
                          .dump();
    ctx.Emit(std::move(ev));
  }

  UnixMillis window_ms_;
  size_t closed_min_;
  size_t rogue_min_;
  size_t open_max_;
  size_t closed_max_;
  SweepGate sweep_;
  std::unordered_map<uint64_t, Visitors> visitors_;  // device id hash -> recent non-member / rogue-served subjects
};

}  // namespace

std::unique_ptr<Detector> MakeUeCaptureDetector(const RuleParams& p) {
  return std::make_unique<UeCapture>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"window_s", ValueType::kInt, "3600", 1, 2592000, "subscribers counted together"},
    {"closed_min_nonmembers", ValueType::kInt, "2", 1, 1000000, "distinct non-CSG subscribers served by a closed femtocell"},
    {"rogue_min_subscribers", ValueType::kInt, "2", 1, 1000000, "distinct subscribers served by an unknown or inactive identity"},
    {"open_max_ues", ValueType::kInt, "32", 0, 1000000, "concurrent limit for open/hybrid femtocells without registry max_ues"},
    {"closed_max_ues", ValueType::kInt, "0", 0, 1000000, "same for closed ones (0 = no limit)"},
};
constexpr ReasonSpec kKinds[] = {
    {"closed_nonmembers", "a closed femtocell served subscribers outside its CSG",
     "update the CSG if they are members; otherwise approve the block"},
    {"rogue", "an unknown or inactive identity served subscribers",
     "a rogue femtocell: keep it blocked; payments of its subscribers stay held until reviewed"},
    {"over_capacity", "an attach took a femtocell above its max_ues",
     "raise max_ues in the registry if the site needs it"},
};
}  // namespace
extern const RuleSpec kUeCaptureSpec{"ue.capture",
    "a femtocell holds more, or other, subscribers than its mode and CSG allow",
    "check the femtocell's mode, CSG and max_ues in the registry; held payments are released with `femtoguard payments release` once cleared",
    kParams, kKinds};
}  // namespace fg::detect::detectors
