// cert.shared: one certificate fingerprint presented in `session.up` by two
// or more device identities, or a fingerprint registered to one device
// (registry `cert_fp`) presented by another.
//
// Does NOT fire for one device reconnecting many times with its own
// certificate, nor for the fleet's legacy shared credentials (params
// `legacy_credentials: [{fp, cutoff}]` and `exempt_fps: [...]`): those are
// cert.legacy's business, before and after their cutoff.
//
// State: first presenter per fingerprint (~60 B), forgotten after
// `window_s` (default 30 days) without a presentation.

#include <unordered_map>
#include <unordered_set>

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class CertShared final : public Detector {
 public:
  explicit CertShared(const RuleParams& p)
      : window_ms_(ParamSecondsAsMs(p, "window_s", 30 * 86400)), sweep_(3600 * kMillisPerSecond) {
    for (const auto& m : p.GetMaps("legacy_credentials")) {
      auto it = m.find("fp");
      if (it != m.end()) exempt_.insert(HashText(it->second));
    }
    for (const auto& fp : p.GetList("exempt_fps")) exempt_.insert(HashText(fp));
  }

  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp || e.cert_fp.empty() || e.device.empty()) return;
    uint64_t fp = HashText(e.cert_fp);
    if (!exempt_.empty() && exempt_.count(fp)) return;
    const World& w = ctx.world();
    uint64_t dev = HashText(e.device);

    DeviceIdx reg = w.DeviceOfCertFp(e.cert_fp);
    if (reg != kNoDevice) {
      const std::string& owner = w.device(reg).id;
      if (owner != e.device) Fire(e, ctx, owner, "registered", kNoTime);
      return;
    }

    auto [it, inserted] = owners_.try_emplace(fp);
    Owner& o = it->second;
    if (inserted) {
      o.dev = dev;
      o.idx = FindDevice(w, e.device);
      o.first_ms = e.ts_ms;
      if (o.idx == kNoDevice) names_[fp] = e.device;  // rare: identity never seen before
    } else if (o.dev != dev) {
      std::string owner;
      if (o.idx != kNoDevice) {
        owner = w.device(o.idx).id;
      } else if (auto n = names_.find(fp); n != names_.end()) {
        owner = n->second;
      }
      Fire(e, ctx, owner, "observed", o.first_ms);
      return;  // the first presenter stays the reference
    }
    o.last_ms = e.ts_ms;
  }

  void Expire(UnixMillis now_ms) override {
    if (!sweep_.Due(now_ms)) return;
    for (auto it = owners_.begin(); it != owners_.end();) {
      if (it->second.last_ms + window_ms_ < now_ms) {
        names_.erase(it->first);
        it = owners_.erase(it);
      } else {
        ++it;
      }
    }
  }

  bool CrossDevice() const override { return true; }
  size_t MemoryBytes() const override {
    return owners_.size() * (sizeof(Owner) + 24) + owners_.bucket_count() * 8 + names_.size() * 64;
  }

 private:
  static constexpr UnixMillis kNoTime = -1;
  struct Owner {
    uint64_t dev = 0;  // hash of the first presenter's id
    DeviceIdx idx = kNoDevice;
    UnixMillis first_ms = 0;
    UnixMillis last_ms = 0;
  };

  void Fire(const Event& e, Context& ctx, const std::string& owner, std::string_view basis,
            UnixMillis owner_since) {
    Evidence ev = MakeEvidence("cert.shared", "", e.device, e.ts_ms);
    nlohmann::json d = {{"cert_fp", e.cert_fp}, {"basis", basis},  {"other_device", owner},
                        {"session", e.session}, {"src_ip", e.src_ip}, {"endpoint", e.endpoint}};
    if (owner_since != kNoTime) d["other_first_seen"] = Ts(owner_since);
    ev.details_json = d.dump();
    ctx.Emit(std::move(ev));
  }

  UnixMillis window_ms_;
  SweepGate sweep_;
  std::unordered_set<uint64_t> exempt_;
  std::unordered_map<uint64_t, Owner> owners_;        // fingerprint hash -> first presenter
  std::unordered_map<uint64_t, std::string> names_;   // presenters unknown to the World
};

}  // namespace

std::unique_ptr<Detector> MakeCertSharedDetector(const RuleParams& p) {
  return std::make_unique<CertShared>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"window_s", ValueType::kInt, "2592000", 0, 315360000, "forget a fingerprint's first presenter after this many seconds unseen"},
    {"legacy_credentials", ValueType::kMapList, "[]", kNoMin, kNoMax, "legacy shared credentials (cert.legacy covers them)", "fp,cutoff"},
    {"exempt_fps", ValueType::kStringList, "[]", kNoMin, kNoMax, "further fingerprints legitimately shared"},
};
}  // namespace
extern const RuleSpec kCertSharedSpec{"cert.shared",
    "one certificate fingerprint is presented by a second device identity, or a fingerprint registered to one device is presented by another",
    "the certificate's key has been copied: approve the block, revoke the certificate and re-enrol the legitimate device",
    kParams, {}};
}  // namespace fg::detect::detectors
