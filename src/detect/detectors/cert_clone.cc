// cert.clone: one identity with a live session while a second `session.up`
// arrives from a different `src_ip` or `endpoint`, and the first session is
// still up `grace_s` (default 60) later: two boxes hold the same
// credentials. Checked by a timer at the end of the grace period.
//
// Does NOT fire for a reboot or reconnect from the same line (same src_ip
// and endpoint), nor for ISP re-addressing (new IP, the old session goes
// down within `grace_s`). A live session that a later session from its own
// line has superseded (a reboot whose `session.down` never came) does not
// count as the first session.

#include <unordered_map>

#include "common/reconnect.h"
#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class CertClone final : public Detector {
 public:
  explicit CertClone(const RuleParams& p)
      : grace_ms_(ParamSecondsAsMs(p, "grace_s", 60)),
        same_prefix_is_reconnect_([&] {
          std::string v = p.GetString("same_prefix_is_reconnect", "false");
          return v == "true" || v == "yes" || v == "on";
        }()) {}

  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    if (d == kNoDevice) return;
    const std::vector<LiveSession>& live = w.device(d).sessions;
    if (live.empty() || (live.size() == 1 && live[0].session == e.session)) return;
    // Reconnect or second box: the rule of common/reconnect.h, the same as
    // admission's clone check (and its same_prefix_is_reconnect).
    std::vector<IpPrefix> prefixes;
    if (same_prefix_is_reconnect_) {
      for (const std::string& text : w.device(d).prefixes) {
        if (auto p = ParseIpPrefix(text)) prefixes.push_back(*p);
      }
    }
    const SessionLine incoming{ParseEndpointKey(e.endpoint), e.src_ip, nullptr};
    for (size_t i = 0; i < live.size(); ++i) {
      const LiveSession& old = live[i];
      if (old.session == e.session) continue;
      if (IsReconnect(SessionLine{ParseEndpointKey(old.endpoint), old.src_ip, nullptr}, incoming, prefixes,
                      same_prefix_is_reconnect_)) {
        continue;  // same line
      }
      if (Superseded(live, i)) continue;
      uint64_t key = next_key_++;
      pending_.emplace(key, Pending{d, old, e.session, e.src_ip, e.endpoint, e.ts_ms});
      ctx.ScheduleAt(e.ts_ms + grace_ms_, key);
    }
  }

  void OnTimer(uint64_t key, UnixMillis now_ms, Context& ctx) override {
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);

    const World& w = ctx.world();
    const DeviceState& s = w.device(p.device);
    const std::vector<LiveSession>& live = s.sessions;
    bool first_still_up = false;
    for (size_t i = 0; i < live.size(); ++i) {
      if (live[i].session == p.first.session && live[i].src_ip == p.first.src_ip &&
          !Superseded(live, i)) {
        first_still_up = true;
        break;
      }
    }
    if (!first_still_up) return;

    bool second_still_up = false;
    for (const LiveSession& l : live)
      if (l.session == p.session) second_still_up = true;

    // Fired at the end of the grace period (not at the flush time that may
    // have run the timer), so that replays agree on the alert's time.
    UnixMillis at = p.up_ms + grace_ms_;
    Evidence ev = MakeEvidence("cert.clone", "", s.id, at);
    nlohmann::json differs = nlohmann::json::array();
    if (p.first.src_ip != p.src_ip) differs.push_back("src_ip");
    if (p.first.endpoint != p.endpoint) differs.push_back("endpoint");
    ev.details_json =
        nlohmann::json{
            {"first",
             {{"session", p.first.session},
              {"src_ip", p.first.src_ip},
              {"endpoint", p.first.endpoint},
              {"since", Ts(p.first.since_ms)}}},
            {"second",
             {{"session", p.session},
              {"src_ip", p.src_ip},
              {"endpoint", p.endpoint},
              {"ts", Ts(p.up_ms)},
              {"still_up", second_still_up}}},
            {"differs", differs},
            {"grace_s", grace_ms_ / kMillisPerSecond}}
            .dump();
    ctx.Emit(std::move(ev));
  }

  size_t MemoryBytes() const override { return pending_.size() * (sizeof(Pending) + 64); }

 private:
  struct Pending {
    DeviceIdx device;
    LiveSession first;
    std::string session;  // the second session
    std::string src_ip;
    std::string endpoint;
    UnixMillis up_ms;
  };

  // A later live session from the same line means this one is a leftover of
  // a reboot (its session.down never came), not a second box.
  static bool Superseded(const std::vector<LiveSession>& live, size_t i) {
    const LiveSession& s = live[i];
    for (size_t j = 0; j < live.size(); ++j) {
      if (j == i) continue;
      const LiveSession& o = live[j];
      if (o.src_ip == s.src_ip && o.endpoint == s.endpoint && o.since_ms > s.since_ms) return true;
    }
    return false;
  }

  UnixMillis grace_ms_;
  bool same_prefix_is_reconnect_;
  uint64_t next_key_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;  // one per overlapping pair, until its timer
};

}  // namespace

std::unique_ptr<Detector> MakeCertCloneDetector(const RuleParams& p) {
  return std::make_unique<CertClone>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"grace_s", ValueType::kInt, "60", 0, 86400, "seconds the first session may stay up after the second (ISP re-addressing)"},
    {"same_prefix_is_reconnect", ValueType::kBool, "false", kNoMin, kNoMax, "a second session from another address inside one registered prefix is a reconnect (as admission.yaml clone.same_prefix_is_reconnect)"},
};
}  // namespace
extern const RuleSpec kCertCloneSpec{"cert.clone",
    "an identity with a live session brings a second session up from another line or endpoint, and the first is still up grace_s later: two boxes hold one set of credentials",
    "approve the revoke; the genuine device re-enrols; investigate the second line (src_ip in the evidence)",
    kParams, {}};
}  // namespace fg::detect::detectors
