// endpoint: the SeGW address the device connected to (the regulator's
// rotation order: old authentication server addresses are retired).
//   retired                         -> deny "endpoint.retired"
//   active or draining              -> allow (draining noted in evidence)
//   not in the store / not given    -> abstain "endpoint.unknown" (policy
//                                      verdicts can make it deny)
// Matching (common/endpoint.h, the same rule as detection's endpoint.retired):
// same host, and same port when both sides name one - an endpoint without a
// port stands for every port of its host. Of several matching store entries
// an active one decides, then a draining one, then a retired one.

#include "admission/check.h"

namespace fg::admission {
namespace {

class EndpointCheck final : public Check {
 public:
  std::string_view name() const override { return "endpoint"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (ctx.snapshot.endpoints_stale()) return Status::Unavailable("endpoints could not be re-read from the store");
    if (ctx.endpoint.host.empty()) return CheckAnswer::Abstain("endpoint.unknown");
    // The matching rule and the precedence live in common/endpoint.h, shared
    // with detection's endpoint.retired.
    auto& eps = ctx.snapshot.endpoints();
    auto key = [](const EndpointView& e) -> const EndpointKey& { return e.key; };
    auto use = [](const EndpointView& e) {
      switch (e.status) {
        case EndpointStatus::kActive: return EndpointUse::kActive;
        case EndpointStatus::kDraining: return EndpointUse::kDraining;
        case EndpointStatus::kRetired: return EndpointUse::kRetired;
      }
      return EndpointUse::kOther;
    };
    auto it = DecidingEndpoint(eps.begin(), eps.end(), ctx.endpoint, key, use);
    if (it != eps.end()) {
      if (it->status == EndpointStatus::kRetired) {
        return CheckAnswer::Deny("endpoint.retired", {{"endpoint.address", it->address}});
      }
      if (it->status == EndpointStatus::kDraining) {
        return CheckAnswer::Allow({{"endpoint.status", "draining"}, {"endpoint.address", it->address}});
      }
      return CheckAnswer::Allow();
    }
    return CheckAnswer::Abstain("endpoint.unknown");
  }
};

}  // namespace

std::unique_ptr<Check> NewEndpointCheck(const AdmissionPolicy&) { return std::make_unique<EndpointCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr ReasonSpec kReasons[] = {
    {"endpoint.retired", "the device used a retired endpoint (an endpoint without a port stands for every port of its host)",
     "the box runs an old configuration or is a counterfeit: push the new configuration, or block it"},
    {"endpoint.unknown", "the endpoint is not in the store, or none was given (abstain; deny only if verdicts says so)",
     "register the endpoint (`femtoguard endpoint add`) or make the SeGW report it"},
};
}  // namespace
extern const CheckSpec kEndpointCheckSpec{"endpoint", "the authentication endpoint the device used is not retired (common/endpoint.h matching rule)", {}, kReasons};
}  // namespace fg::admission
