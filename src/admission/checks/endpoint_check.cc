// endpoint: the SeGW address the device connected to (the regulator's
// rotation order: old authentication server addresses are retired).
//   retired                         -> deny "endpoint.retired"
//   active or draining              -> allow (draining noted in evidence)
//   not in the store / not given    -> abstain "endpoint.unknown" (policy
//                                      verdicts can make it deny)
// Store addresses are "host:port" or URLs; they match on host, and on port
// when both sides name one. When several store entries match (same host,
// request without a port), one that is not retired wins.

#include "admission/check.h"

namespace fg::admission {
namespace {

class EndpointCheck final : public Check {
 public:
  std::string_view name() const override { return "endpoint"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (ctx.snapshot.endpoints_stale()) return Status::Unavailable("endpoints could not be re-read from the store");
    if (ctx.endpoint.host.empty()) return CheckAnswer::Abstain("endpoint.unknown");
    const EndpointView* retired = nullptr;
    const EndpointView* usable = nullptr;
    for (const EndpointView& e : ctx.snapshot.endpoints()) {
      if (!SameEndpoint(e.key, ctx.endpoint)) continue;
      if (e.status == EndpointStatus::kRetired) {
        if (!retired) retired = &e;
      } else if (!usable || e.status == EndpointStatus::kActive) {
        usable = &e;
      }
    }
    if (usable) {
      if (usable->status == EndpointStatus::kDraining) {
        return CheckAnswer::Allow({{"endpoint.status", "draining"}, {"endpoint.address", usable->address}});
      }
      return CheckAnswer::Allow();
    }
    if (retired) return CheckAnswer::Deny("endpoint.retired", {{"endpoint.address", retired->address}});
    return CheckAnswer::Abstain("endpoint.unknown");
  }
};

}  // namespace

std::unique_ptr<Check> NewEndpointCheck(const AdmissionPolicy&) { return std::make_unique<EndpointCheck>(); }

}  // namespace fg::admission
