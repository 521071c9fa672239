// payment.risk: a carrier-billed payment authorisation (`payment.auth`) for
// a subscriber who, within `exposure_s` (default 1800 s), was served (UE
// attach or SMS) by a femtocell that is unknown, inactive, blocked or
// suspect - or whose payments are held. The evidence carries the payment
// check's decision (CheckPayment below, shared with POST
// /v1/payment/check) and the payment itself. Kinds: `exposed` (a risky
// femtocell served the subscriber; the alert names it) and `held` (only the
// hold; the alert names no device, so a benign femtocell that happened to
// serve a held subscriber is never made suspect). One alert per payment.
//
// Does NOT fire for payments of subscribers served only by benign
// femtocells or macro cells, nor once the exposure is older than
// exposure_s.

#include "detect/detectors/common.h"
#include "detect/engine.h"

namespace fg::detect {

PaymentDecision CheckPayment(const World& world, const RuleParams& params, const SubjectId& subscriber,
                             PayChannel channel, double amount, UnixMillis now_ms) {
  PaymentDecision out;
  const SubscriberState* s = world.subscriber(subscriber);
  if (s == nullptr) return out;
  const UnixMillis exposure_ms = detectors::ParamSecondsAsMs(params, "exposure_s", 1800);

  bool held = s->payments_held;
  if (held) out.reasons.push_back("payments_held");
  bool exposed = false;
  if (s->last_femto != kNoDevice && now_ms - s->last_femto_ms <= exposure_ms) {
    std::string_view risk = detectors::FemtoRisk(world, s->last_femto, now_ms);
    if (!risk.empty()) {
      exposed = true;
      out.reasons.push_back("femto_" + std::string(risk));
      out.femto = world.device(s->last_femto).id;
    }
  }
  if (held) {
    out.verdict = PaymentVerdict::kDeny;  // refused until an operator releases the hold
  } else if (exposed) {
    // A captured subscriber's OTP / ARS call may be read by the femtocell:
    // those channels prove nothing. Others get a second factor.
    out.verdict = (channel == PayChannel::kSmsOtp || channel == PayChannel::kArs) ? PaymentVerdict::kDeny
                                                                                : PaymentVerdict::kStepUp;
  }
  return out;
}

namespace detectors {
namespace {

class PaymentRisk final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kPaymentAuth || e.imsi.empty()) return;
    const World& w = ctx.world();
    PaymentDecision dec = CheckPayment(w, ctx.params(), e.imsi, e.channel, e.amount, e.ts_ms);
    if (dec.verdict == PaymentVerdict::kAllow) return;

    bool exposed = !dec.femto.empty();
    Evidence ev = MakeEvidence("payment.risk", exposed ? "exposed" : "held", dec.femto, e.ts_ms);
    ev.subjects.push_back(e.imsi);
    // The femtocell is why the subscriber is at risk, not newly accused by
    // a payment: its suspicion is its own alerts' (and the subscriber
    // stage of cluster mode could not feed it back in event time).
    ev.accuses_device = false;
    std::string ts = Ts(e.ts_ms);
    ev.dedup_extra = SubjectText(e.imsi) + "|" + ts + "|" + e.merchant;
    nlohmann::json d = {{"decision", PaymentVerdictName(dec.verdict)},
                        {"reasons", dec.reasons},
                        {"payment",
                         {{"ts", ts},
                          {"merchant", e.merchant},
                          {"amount", e.amount},
                          {"currency", e.currency},
                          {"channel", PayChannelName(e.channel)}}}};
    if (const SubscriberState* s = w.subscriber(e.imsi); s && s->last_femto != kNoDevice) {
      d["last_femto"] = w.device(s->last_femto).id;
      d["last_served"] = Ts(s->last_femto_ms);
    }
    if (const SubscriberState* s = w.subscriber(e.imsi); exposed && s && s->last_femto != kNoDevice) {
      const DeviceState& f = w.device(s->last_femto);
      if (f.Suspect(e.ts_ms)) d["suspect_rule"] = f.suspect_rule;
    }
    ev.details_json = d.dump();
    ctx.Emit(std::move(ev));
  }
};

}  // namespace

std::unique_ptr<Detector> MakePaymentRiskDetector(const RuleParams&) {
  return std::make_unique<PaymentRisk>();
}

}  // namespace detectors
}  // namespace fg::detect

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"exposure_s", ValueType::kInt, "1800", 0, 2592000, "how long being served by a risky femtocell exposes a subscriber"},
};
constexpr ReasonSpec kKinds[] = {
    {"exposed", "the subscriber was served by a risky femtocell (named in the alert)",
     "review the femtocell's alerts"},
    {"held", "the subscriber's payments are held",
     "release the hold once the subscriber is cleared"},
};
}  // namespace
extern const RuleSpec kPaymentRiskSpec{"payment.risk",
    "a payment authorisation for a subscriber whose payments are held, or who was served within exposure_s by an unknown, inactive, blocked or suspect femtocell",
    "the payment was denied or stepped up (evidence); contact the subscriber; release the hold with `femtoguard payments release` once cleared",
    kParams, kKinds};
}  // namespace fg::detect::detectors
