// Every detector of the build: one line per detector (detector.h).
// Adding a detector = one new file in this folder + one line here.

#include "detect/detector.h"

// X(rule id, factory defined in the detector's file).
#define FG_DETECTORS(X)                                   \
  X("device.unknown", MakeDeviceUnknownDetector)          \
  X("device.inactive", MakeDeviceInactiveDetector)        \
  X("cert.shared", MakeCertSharedDetector)                \
  X("cert.clone", MakeCertCloneDetector)                  \
  X("cert.legacy", MakeCertLegacyDetector)                \
  X("endpoint.retired", MakeEndpointRetiredDetector)      \
  X("location.mismatch", MakeLocationMismatchDetector)    \
  X("location.moving", MakeLocationMovingDetector)        \
  X("ue.capture", MakeUeCaptureDetector)                  \
  X("sms.intercept", MakeSmsInterceptDetector)            \
  X("payment.risk", MakePaymentRiskDetector)              \
  X("cell.unregistered", MakeCellUnregisteredDetector)

namespace fg::detect {

namespace detectors {
#define FG_DECLARE(rule, make) std::unique_ptr<Detector> make(const RuleParams& params);
FG_DETECTORS(FG_DECLARE)
#undef FG_DECLARE
}  // namespace detectors

const std::vector<DetectorInfo>& AllDetectors() {
#define FG_ENTRY(rule, make) DetectorInfo{rule, &detectors::make},
  static const std::vector<DetectorInfo> kAll = {FG_DETECTORS(FG_ENTRY)};
#undef FG_ENTRY
  return kAll;
}

std::vector<std::string> AllRuleIds() {
  std::vector<std::string> ids;
  for (const DetectorInfo& d : AllDetectors()) ids.emplace_back(d.rule);
  return ids;
}

}  // namespace fg::detect
