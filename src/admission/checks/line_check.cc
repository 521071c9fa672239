// line: the source address must lie inside one of the device's registered
// prefixes (registry.jsonl "prefixes") or one of the operator's own access
// networks (policy access_networks). Otherwise deny "location.line": a
// foreign ISP's or an overseas line.
// Abstains for an unknown device (the device check answers that) and when
// neither the device nor the policy names any prefix. A missing or
// unparsable src_ip is denied when prefixes exist (nothing to verify).

#include "admission/check.h"

namespace fg::admission {
namespace {

class LineCheck final : public Check {
 public:
  explicit LineCheck(const AdmissionPolicy& policy) {
    for (const std::string& cidr : policy.access_networks) {
      if (auto p = ParseIpPrefix(cidr)) access_.push_back(*p);
    }
  }

  std::string_view name() const override { return "line"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (!ctx.device) return CheckAnswer::Abstain();
    const DeviceView& d = *ctx.device;
    if (d.prefixes.empty() && access_.empty()) return CheckAnswer::Abstain();
    if (ctx.src) {
      for (const IpPrefix& p : d.prefixes) {
        if (p.Contains(*ctx.src)) return CheckAnswer::Allow();
      }
      for (const IpPrefix& p : access_) {
        if (p.Contains(*ctx.src)) return CheckAnswer::Allow();
      }
    }
    std::string registered;
    for (const std::string& p : d.prefix_text) registered += (registered.empty() ? "" : ",") + p;
    Evidence ev = {{"line.src_ip", ctx.request.src_ip.empty() ? "(none)" : ctx.request.src_ip}};
    if (!ctx.src && !ctx.request.src_ip.empty()) ev.emplace_back("line.error", "src_ip is not an IP address");
    if (!registered.empty()) ev.emplace_back("line.prefixes", registered);
    return CheckAnswer::Deny("location.line", std::move(ev));
  }

 private:
  std::vector<IpPrefix> access_;  // constant after construction
};

}  // namespace

std::unique_ptr<Check> NewLineCheck(const AdmissionPolicy& policy) { return std::make_unique<LineCheck>(policy); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr KeySpec kParams[] = {
    {"access_networks", ValueType::kStringList, "[]", kNoMin, kNoMax, "the operator's own access lines (CIDR); a source inside them passes the line check"},
};
constexpr ReasonSpec kReasons[] = {
    {"location.line", "the source address is outside the registered prefixes and the access networks",
     "update the device's prefixes if the customer changed ISP"},
};
}  // namespace
extern const CheckSpec kLineCheckSpec{"line", "the source address is inside the device's registered prefixes or the operator's access networks", kParams, kReasons};
}  // namespace fg::admission
