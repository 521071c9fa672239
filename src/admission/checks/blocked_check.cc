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
