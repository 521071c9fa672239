// sms.intercept: an OTP or ARS message (`sms.deliver` class otp / ars)
// delivered through femtocell D to a subscriber who is not a CSG member of
// D, where D is unknown (not registered), inactive (suspended or
// decommissioned), closed, blocked or suspect (an alert of severity >= high
// named it within suspect_ttl_s). Evidence kind = the first of those
// reasons in that order; one alert per subscriber (dedup_extra = the
// subscriber's pseudonym).
//
// Does NOT fire for OTP to CSG members of a registered, active femtocell,
// nor for OTP to visitors of an open or hybrid femtocell that is not
// suspect, nor for p2p / bulk messages.

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class SmsIntercept final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSmsDeliver) return;
    if (e.sms_class != SmsClass::kOtp && e.sms_class != SmsClass::kArs) return;
    if (e.device.empty() || e.imsi.empty()) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);

    // The reason is the most stable fact about D, so that one subscriber's
    // messages make one alert: what D is (unknown, inactive, closed) before
    // what alerts made of it (blocked, suspect) - a closed femtocell that
    // sms.intercept itself made suspect stays "closed".
    std::string_view reason = FemtoRisk(w, d, e.ts_ms);
    if (reason != "unknown") {
      const DeviceState& s = w.device(d);
      if (s.IsCsgMember(e.imsi)) return;
      if (reason != "inactive" && s.mode == AccessMode::kClosed) reason = "closed";
    }
    if (reason.empty()) return;

    Evidence ev = MakeEvidence("sms.intercept", reason, e.device, e.ts_ms);
    ev.subjects.push_back(e.imsi);
    ev.dedup_extra = SubjectText(e.imsi);
    nlohmann::json details = {{"class", SmsClassName(e.sms_class)}, {"reason", reason}};
    if (!e.sender.empty()) details["sender"] = e.sender;
    if (d != kNoDevice) {
      const DeviceState& s = w.device(d);
      if (s.blocked) details["blocked"] = true;
      if (s.Suspect(e.ts_ms)) details["suspect_rule"] = s.suspect_rule;
    }
    ev.details_json = details.dump();
    ctx.Emit(std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Detector> MakeSmsInterceptDetector(const RuleParams&) {
  return std::make_unique<SmsIntercept>();
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr ReasonSpec kKinds[] = {
    {"unknown", "the serving femtocell is not registered",
     "see device.unknown"},
    {"inactive", "the serving femtocell is suspended or decommissioned",
     "see device.inactive"},
    {"closed", "a closed femtocell delivered OTP to a non-member",
     "check the CSG"},
    {"blocked", "the serving femtocell is blocked",
     "keep the hold until reviewed"},
    {"suspect", "the serving femtocell was named by a high or critical alert",
     "review that alert first"},
};
}  // namespace
extern const RuleSpec kSmsInterceptSpec{"sms.intercept",
    "an OTP or ARS message is delivered through a femtocell to a subscriber who is not its CSG member, where the femtocell is unknown, inactive, closed, blocked or suspect",
    "the subscriber's carrier-billed payments are held: contact the subscriber, then release with `femtoguard payments release`",
    {}, kKinds};
}  // namespace fg::detect::detectors
