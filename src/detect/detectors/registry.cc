// Every detector of the build: one line per detector (detector.h).
// Adding a detector = one new file in this folder + one line here.

#include "detect/detector.h"

// X(rule id, factory and declaration (RuleSpec) defined in the detector's file).
#define FG_DETECTORS(X)                                   \
  X("device.unknown", MakeDeviceUnknownDetector, kDeviceUnknownSpec)          \
  X("device.inactive", MakeDeviceInactiveDetector, kDeviceInactiveSpec)        \
  X("cert.shared", MakeCertSharedDetector, kCertSharedSpec)                \
  X("cert.clone", MakeCertCloneDetector, kCertCloneSpec)                  \
  X("cert.legacy", MakeCertLegacyDetector, kCertLegacySpec)                \
  X("endpoint.retired", MakeEndpointRetiredDetector, kEndpointRetiredSpec)      \
  X("location.mismatch", MakeLocationMismatchDetector, kLocationMismatchSpec)    \
  X("location.moving", MakeLocationMovingDetector, kLocationMovingSpec)        \
  X("ue.capture", MakeUeCaptureDetector, kUeCaptureSpec)                  \
  X("sms.intercept", MakeSmsInterceptDetector, kSmsInterceptSpec)            \
  X("payment.risk", MakePaymentRiskDetector, kPaymentRiskSpec)              \
  X("cell.unregistered", MakeCellUnregisteredDetector, kCellUnregisteredSpec) \
  X("identity.mismatch", MakeIdentityMismatchDetector, kIdentityMismatchSpec)

namespace fg::detect {

namespace detectors {
#define FG_DECLARE(rule, make, spec) \
  std::unique_ptr<Detector> make(const RuleParams& params); \
  extern const RuleSpec spec;
FG_DETECTORS(FG_DECLARE)
#undef FG_DECLARE
}  // namespace detectors

const std::vector<DetectorInfo>& AllDetectors() {
#define FG_ENTRY(rule, make, spec) DetectorInfo{rule, &detectors::make, &detectors::spec},
  static const std::vector<DetectorInfo> kAll = {FG_DETECTORS(FG_ENTRY)};
#undef FG_ENTRY
  return kAll;
}

const RuleSpec* FindRuleSpec(std::string_view rule) {
  for (const DetectorInfo& d : AllDetectors()) {
    if (d.rule == rule) return d.spec;
  }
  return nullptr;
}

std::vector<std::string> AllRuleIds() {
  std::vector<std::string> ids;
  for (const DetectorInfo& d : AllDetectors()) ids.emplace_back(d.rule);
  return ids;
}

}  // namespace fg::detect
