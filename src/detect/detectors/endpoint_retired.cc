// endpoint.retired: a `session.up` to an authentication endpoint whose
// status is `retired` (an `endpoint.status` event, or the store's endpoints
// when replay has a data dir). After a rotation only a box built from an
// old configuration still knows the old address. Endpoints match by the
// rule of common/endpoint.h, the same as admission's endpoint check: an
// endpoint named without a port stands for every port of its host.
//
// Does NOT fire for an endpoint that is `draining` (devices are moving off
// it and may still use it) or `active`, nor for an endpoint it knows
// nothing about.

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class EndpointRetired final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp || e.endpoint.empty()) return;
    std::optional<std::string> status = ctx.world().EndpointStatus(e.endpoint);
    if (!status || *status != "retired") return;
    Evidence ev = MakeEvidence("endpoint.retired", "", e.device, e.ts_ms);
    ev.details_json = nlohmann::json{{"endpoint", e.endpoint},
                                     {"endpoint_status", *status},
                                     {"session", e.session},
                                     {"src_ip", e.src_ip},
                                     {"cert_fp", e.cert_fp}}
                          .dump();
    ctx.Emit(std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Detector> MakeEndpointRetiredDetector(const RuleParams&) {
  return std::make_unique<EndpointRetired>();
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
}  // namespace
extern const RuleSpec kEndpointRetiredSpec{"endpoint.retired",
    "session.up names an authentication endpoint whose status is retired (same matching rule as admission: an endpoint without a port stands for every port of its host)",
    "only a box built from an old configuration knows a retired address: approve the block unless the device is known to run an old configuration (then push its new configuration)",
    {}, {}};
}  // namespace fg::detect::detectors
