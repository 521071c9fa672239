// device.inactive: a `session.up` from a registered device whose status is
// suspended or decommissioned (from the registry or a later `device.status`
// event). Evidence kind = the status.
//
// Does NOT fire for a replacement unit: the new device is provisioned or
// active, and the decommissioned old one stays silent. Nor for a device the
// engine blocked itself (a `block` action): its reconnection is the
// admission gate's business, not a new finding.

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class DeviceInactive final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    if (d == kNoDevice) return;
    const DeviceState& s = w.device(d);
    if (s.status != DeviceStatus::kSuspended && s.status != DeviceStatus::kDecommissioned) return;

    std::string_view status = DeviceStatusName(s.status);
    Evidence ev = MakeEvidence("device.inactive", status, e.device, e.ts_ms);
    ev.details_json = nlohmann::json{{"status", status},
                                     {"session", e.session},
                                     {"cert_fp", e.cert_fp},
                                     {"src_ip", e.src_ip},
                                     {"endpoint", e.endpoint}}
                          .dump();
    ctx.Emit(std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Detector> MakeDeviceInactiveDetector(const RuleParams&) {
  return std::make_unique<DeviceInactive>();
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr ReasonSpec kKinds[] = {
    {"suspended", "the device is suspended (by an operator, dormancy or an alert)",
     "re-activate it if the suspension is over; otherwise keep it blocked"},
    {"decommissioned", "the device was decommissioned",
     "its credentials are in use by a box that should not exist: revoke its certificates and keep it blocked"},
};
}  // namespace
extern const RuleSpec kDeviceInactiveSpec{"device.inactive",
    "a device whose status is suspended or decommissioned brings a session up",
    "a decommissioned unit must stay silent: find the box (src_ip in the evidence); a suspended device that should work again is re-activated with `femtoguard device set-status`",
    {}, kKinds};
}  // namespace fg::detect::detectors
