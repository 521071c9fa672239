// gnss: a GNSS fix reported with the request must lie within the registered
// site: distance <= radius_m + acc_m + policy gnss.margin_m, where acc_m
// counts at most gnss.max_acc_m (a fix cannot excuse itself by claiming to
// be vague). Farther -> quarantine "location.gnss" (the van of the seed).
// A fix that is not a position (NaN, out of range) -> quarantine too.
// Abstains without a fix, for an unknown device, or a device without a site.

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "admission/check.h"

namespace fg::admission {
namespace {

std::string Metres(double m) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", m);
  return buf;
}

class GnssCheck final : public Check {
 public:
  std::string_view name() const override { return "gnss"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    const auto& fix = ctx.request.gnss;
    if (!fix || !ctx.device || !ctx.device->site) return CheckAnswer::Abstain();
    const Site& site = *ctx.device->site;
    if (!std::isfinite(fix->lat) || !std::isfinite(fix->lon) || std::abs(fix->lat) > 90 ||
        std::abs(fix->lon) > 180 || !(fix->acc_m >= 0)) {
      return CheckAnswer::Quarantine("location.gnss", {{"gnss.error", "not a valid position"}});
    }
    double distance = DistanceMeters(site.lat, site.lon, fix->lat, fix->lon);
    double allowed = site.radius_m + std::min(fix->acc_m, ctx.policy.gnss_max_acc_m) + ctx.policy.gnss_margin_m;
    if (distance <= allowed) return CheckAnswer::Allow();
    return CheckAnswer::Quarantine("location.gnss",
                                   {{"gnss.distance_m", Metres(distance)}, {"gnss.allowed_m", Metres(allowed)}});
  }
};

}  // namespace

std::unique_ptr<Check> NewGnssCheck(const AdmissionPolicy&) { return std::make_unique<GnssCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr KeySpec kParams[] = {
    {"gnss.margin_m", ValueType::kNumber, "200", 0, 1000000, "allowed distance = site radius + fix accuracy + this margin (metres)"},
    {"gnss.max_acc_m", ValueType::kNumber, "1000", 0, 1000000, "a fix's claimed accuracy counts at most this much (metres)"},
};
constexpr ReasonSpec kReasons[] = {
    {"location.gnss", "the GNSS fix lies outside the registered site, or is not a valid position",
     "ask the customer whether they moved; update the site or keep the quarantine"},
};
}  // namespace
extern const CheckSpec kGnssCheckSpec{"gnss", "the GNSS fix in the request is within the registered site", kParams, kReasons};
}  // namespace fg::admission
