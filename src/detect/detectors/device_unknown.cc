// device.unknown: a femtocell identity that is not in the registry shows up
// in the network's events (a session, a GNSS fix, a radio scan, a UE attach,
// an SMS delivered through it).
//
// Does NOT fire for a device that a `device.status` event added before it
// connected (the operator provisioned it after the registry was exported).

#include <unordered_set>

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class DeviceUnknown final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.device.empty()) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    bool registered = d != kNoDevice && w.device(d).registered;
    if (e.type == EventType::kDeviceStatus) {
      // A provisioning step: the identity is known from now on, whatever
      // the engine does with unregistered records.
      if (!registered) added_.insert(HashText(e.device));
      return;
    }
    if (e.type == EventType::kEndpointStatus || registered) return;
    if (!added_.empty() && added_.count(HashText(e.device))) return;

    Evidence ev = MakeEvidence("device.unknown", "", e.device, e.ts_ms);
    nlohmann::json details = {{"event", EventTypeName(e.type)}};
    switch (e.type) {
      case EventType::kSessionUp:
        details["session"] = e.session;
        details["cert_fp"] = e.cert_fp;
        details["src_ip"] = e.src_ip;
        details["endpoint"] = e.endpoint;
        break;
      case EventType::kUeAttach:
      case EventType::kUeDetach:
      case EventType::kSmsDeliver:
        if (!e.imsi.empty()) ev.subjects.push_back(e.imsi);
        break;
      case EventType::kLocationReport:
        details["lat"] = e.lat;
        details["lon"] = e.lon;
        break;
      default:
        break;
    }
    ev.details_json = details.dump();
    ctx.Emit(std::move(ev));
  }

  size_t MemoryBytes() const override { return added_.size() * 32; }

 private:
  std::unordered_set<uint64_t> added_;  // devices provisioned by device.status events
};

}  // namespace

std::unique_ptr<Detector> MakeDeviceUnknownDetector(const RuleParams&) {
  return std::make_unique<DeviceUnknown>();
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
}  // namespace
extern const RuleSpec kDeviceUnknownSpec{"device.unknown",
    "a femtocell identity that is not in the registry appears in a device event (session, location report, REM scan, UE attach or detach, SMS)",
    "check whether the device was provisioned after the last registry import (import it, or add it with `femtoguard device add`); otherwise treat it as a counterfeit box: keep it blocked and find where it connected from (src_ip, endpoint in the evidence)",
    {}, {}};
}  // namespace fg::detect::detectors
