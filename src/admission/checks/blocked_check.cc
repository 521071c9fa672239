// blocked: a device or a line (IP or CIDR) blocked by the response engine or
// an operator (Store::ListBlocks) is denied, reason "blocked".
// Does not fire for blocks of other kinds (e.g. "payments").

#include "admission/check.h"

namespace fg::admission {
namespace {

class BlockedCheck final : public Check {
 public:
  std::string_view name() const override { return "blocked"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (ctx.snapshot.blocks_stale()) return Status::Unavailable("blocks could not be re-read from the store");
    const BlockView* b = ctx.snapshot.DeviceBlock(ctx.request.device);
    if (!b && ctx.src) b = ctx.snapshot.LineBlock(*ctx.src);
    if (!b) return CheckAnswer::Allow();
    Evidence ev = {{"block.kind", b->kind}, {"block.value", b->value}};
    if (!b->alert_id.empty()) ev.emplace_back("block.alert", b->alert_id);
    return CheckAnswer::Deny("blocked", std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Check> NewBlockedCheck(const AdmissionPolicy&) { return std::make_unique<BlockedCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr ReasonSpec kReasons[] = {
    {"blocked", "the device, its certificate, its line or identity is on the block list (evidence: the block's kind, value and alert)",
     "if the block came from a false positive, dismiss the alert (`femtoguard alert dismiss ID --false-positive`) or remove the block (`femtoguard block remove`)"},
};
}  // namespace
extern const CheckSpec kBlockedCheckSpec{"blocked", "denies a device, certificate, line or identity an operator or an alert blocked", {}, kReasons};
}  // namespace fg::admission
