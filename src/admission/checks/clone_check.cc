// clone: one identity, two places at once. When the device already has a
// live session (admitted, not yet down) from another source address or to
// another endpoint, the newcomer is denied "cert.clone" and the evidence names
// the existing session, so that the pair can be flagged.
// Does not fire for:
//   - a reconnect (reboot, rekey): same src_ip and same endpoint; the engine
//     replaces the old live session when the newcomer is admitted;
//   - the same SeGW asking again about the same session id;
//   - with clone.same_prefix_is_reconnect, a new address inside the same
//     registered prefix as the live session's (a renumbered home line).

#include "admission/check.h"

namespace fg::admission {
namespace {

class CloneCheck final : public Check {
 public:
  std::string_view name() const override { return "clone"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    const AdmissionRequest& r = ctx.request;
    for (const LiveSession& s : ctx.live) {
      if (IsSameOrReconnect(s, r, ctx.endpoint, ctx.src, ctx.device, ctx.policy)) continue;
      return CheckAnswer::Deny("cert.clone", {{"clone.session", s.session},
                                              {"clone.src_ip", s.src_ip},
                                              {"clone.endpoint", s.endpoint},
                                              {"clone.segw", s.segw},
                                              {"clone.since", FormatRfc3339(s.since_ms)}});
    }
    return CheckAnswer::Allow();
  }

};

}  // namespace

std::unique_ptr<Check> NewCloneCheck(const AdmissionPolicy&) { return std::make_unique<CloneCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr KeySpec kParams[] = {
    {"clone.same_prefix_is_reconnect", ValueType::kBool, "false", kNoMin, kNoMax, "a second session from another address inside one registered prefix is a reconnect, not a clone"},
};
constexpr ReasonSpec kReasons[] = {
    {"cert.clone", "the identity already has a live session from another line or endpoint",
     "two boxes hold one set of credentials: see the cert.clone alert, revoke and re-enrol"},
};
}  // namespace
extern const CheckSpec kCloneCheckSpec{"clone", "the identity has no live session from another line or endpoint", kParams, kReasons};
}  // namespace fg::admission
