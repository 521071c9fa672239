// sms.intercept: an OTP or ARS message (`sms.deliver` class otp / ars)
// delivered through femtocell D to a subscriber who is not a CSG member of
// D, where D is unknown (not registered), inactive (suspended or
// decommissioned), blocked, suspect (an alert of severity >= high named it
// within suspect_ttl_s) or closed. Evidence kind = that reason; one alert
// per subscriber (dedup_extra = the subscriber's pseudonym).
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

    std::string_view reason = FemtoRisk(w, d, e.ts_ms);
    if (reason != "unknown") {
      const DeviceState& s = w.device(d);
      if (s.IsCsgMember(e.imsi)) return;
      if (reason.empty() && s.mode == AccessMode::kClosed) reason = "closed";
    }
    if (reason.empty()) return;

    Evidence ev = MakeEvidence("sms.intercept", reason, e.device, e.ts_ms);
    ev.subjects.push_back(e.imsi);
    ev.dedup_extra = SubjectText(e.imsi);
    nlohmann::json details = {{"class", SmsClassName(e.sms_class)}, {"reason", reason}};
    if (!e.sender.empty()) details["sender"] = e.sender;
    if (reason == "suspect") details["suspect_rule"] = w.device(d).suspect_rule;
    ev.details_json = details.dump();
    ctx.Emit(std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Detector> MakeSmsInterceptDetector(const RuleParams&) {
  return std::make_unique<SmsIntercept>();
}

}  // namespace fg::detect::detectors
