// identity.mismatch: TS 33.320 binds the identity the SeGW authenticated
// (the certificate of the IPsec session) to what the H(e)NB claims over S1
// or NG. An `s1.setup`/`ng.setup` (femtoguard tap, docs/tap.md) names the
// femtocell whose registered radio identity (PLMN, eNB/gNB id, CSG id) it
// claims; it must come from the transport address of that same femtocell's
// live session. Fires, on the setup itself (it is enough evidence alone):
//   - kind `other`: the address holds another femtocell's live session
//     (a unit with a stolen or its own certificate registering as another
//     femtocell, or claiming an identity no registry entry has); the alert
//     names the session's device, which the rule's actions block;
//   - kind `no_session`: no admitted session has that address (the alert
//     names no device; the claimed one is in the evidence).
// Does NOT fire for a setup from its own session's address, for a
// femtocell whose CSG was changed in the registry before it reconnected
// (the tap names it by the new identity), nor after the session went down
// and the same address was given to the rightful femtocell's new session.

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class IdentityMismatch final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    switch (e.type) {
      case EventType::kSessionUp:
        if (!e.src_ip.empty()) {
          by_ip_[e.src_ip] = Holder{e.device, e.session};
          auto& ips = ips_of_[e.device];
          if (std::find(ips.begin(), ips.end(), e.src_ip) == ips.end()) ips.push_back(e.src_ip);
        }
        return;
      case EventType::kSessionDown: {
        // session.down names the device and (usually) the session: only
        // the addresses that device held are looked at.
        auto dev = ips_of_.find(e.device);
        if (dev == ips_of_.end()) return;
        auto& ips = dev->second;
        for (auto ip = ips.begin(); ip != ips.end();) {
          auto it = by_ip_.find(*ip);
          if (it == by_ip_.end() || it->second.device != e.device) {
            ip = ips.erase(ip);  // the address went to another device since
            continue;
          }
          if (e.session.empty() || it->second.session == e.session) {
            by_ip_.erase(it);
            ip = ips.erase(ip);
          } else {
            ++ip;
          }
        }
        if (ips.empty()) ips_of_.erase(dev);
        return;
      }
      case EventType::kS1Setup:
      case EventType::kNgSetup:
        break;
      default:
        return;
    }
    auto it = by_ip_.find(e.src_ip);
    if (it != by_ip_.end() && it->second.device == e.device) return;  // bound: the claim is its own
    const bool no_session = it == by_ip_.end();
    // no_session names no device: the claimed one may well be the victim
    // (its identity replayed from elsewhere), and blocking it would let any
    // box that reaches the HeNB-GW switch off a femtocell.
    Evidence ev = MakeEvidence("identity.mismatch", no_session ? "no_session" : "other",
                               no_session ? std::string_view() : std::string_view(it->second.device), e.ts_ms);
    nlohmann::json details = {{"event", EventTypeName(e.type)}, {"src_ip", e.src_ip}, {"claimed", e.device}};
    if (!no_session) details["session"] = it->second.session;
    ev.dedup_extra = e.device;
    ev.details_json = details.dump();
    ctx.Emit(std::move(ev));
  }

  bool CrossDevice() const override { return true; }
  size_t MemoryBytes() const override { return by_ip_.size() * 128 + ips_of_.size() * 96; }

 private:
  struct Holder {
    std::string device;
    std::string session;
  };
  std::unordered_map<std::string, Holder> by_ip_;  // live sessions by transport address
  std::unordered_map<std::string, std::vector<std::string>> ips_of_;  // device -> addresses it may hold
};

}  // namespace

std::unique_ptr<Detector> MakeIdentityMismatchDetector(const RuleParams&) {
  return std::make_unique<IdentityMismatch>();
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr ReasonSpec kKinds[] = {
    {"other", "the setup came from another femtocell's live session (named in the alert) and claims the identity in `claimed`",
     "block and revoke the session's device; check `claimed` was not changed in the registry without the tap's registry"},
    {"no_session", "the setup came from an address with no admitted IPsec session",
     "find what reaches the HeNB-GW/MME outside the SeGW (src_ip); the claimed femtocell is not blocked"},
};
}  // namespace
extern const RuleSpec kIdentityMismatchSpec{"identity.mismatch",
    "an S1/NG setup claims a femtocell's radio identity (eNB/gNB id, CSG id) from the address of another femtocell's live IPsec session, or from an address with no admitted session",
    "the session's device is registering as another femtocell: keep it blocked, revoke its certificate and find the box (src_ip in the evidence); for kind no_session, find what reaches the HeNB-GW outside the SeGW",
    {}, kKinds};
}  // namespace fg::detect::detectors
