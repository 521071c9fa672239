// device: the identity must be registered and active.
//   unknown id                                   -> deny "device.unknown"
//   provisioned (never activated), suspended,
//   decommissioned                               -> deny "device.inactive"
//   active but not seen for policy.dormancy_days -> deny "device.inactive" (dormant)
// A device never seen counts from its registration (as pki/dormancy.cc).

#include "admission/check.h"

namespace fg::admission {
namespace {

class DeviceCheck final : public Check {
 public:
  std::string_view name() const override { return "device"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (!ctx.device) return CheckAnswer::Deny("device.unknown", {{"device.id", ctx.request.device}});
    const DeviceView& d = *ctx.device;
    if (d.status != DeviceStatus::kActive) {
      return CheckAnswer::Deny("device.inactive", {{"device.status", std::string(DeviceStatusName(d.status))}});
    }
    if (ctx.policy.dormancy_days > 0) {
      UnixMillis seen = d.seen_ms.load(std::memory_order_relaxed);
      UnixMillis idle = ctx.now_ms - seen;
      if (idle > static_cast<UnixMillis>(ctx.policy.dormancy_days) * kMillisPerDay) {
        return CheckAnswer::Deny("device.inactive",
                                 {{"device.status", "dormant"},
                                  {"device.idle_days", std::to_string(idle / kMillisPerDay)},
                                  {"device.dormancy_days", std::to_string(ctx.policy.dormancy_days)}});
      }
    }
    return CheckAnswer::Allow();
  }
};

}  // namespace

std::unique_ptr<Check> NewDeviceCheck(const AdmissionPolicy&) { return std::make_unique<DeviceCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr ReasonSpec kReasons[] = {
    {"device.unknown", "the device identity is not in the registry",
     "import or add the device if it is genuine; otherwise it is a counterfeit"},
    {"device.inactive", "the device is suspended, decommissioned, or dormant past devices.dormancy_days",
     "re-activate it with `femtoguard device set-status` if it is genuine"},
};
}  // namespace
extern const CheckSpec kDeviceCheckSpec{"device", "the device is registered, active and not dormant", {}, kReasons};
}  // namespace fg::admission
