// The built-in admission checks. One line per check: its policy name and
// the factory and declaration (CheckSpec: its admission.yaml keys and its
// reason codes) defined in checks/<name>_check.cc. The default order lives in
// policy.h (AdmissionPolicy::chain); BuiltinCheckNames() must list the same.

#include <memory>

#include "admission/check.h"

#define FG_ADMISSION_CHECKS(X) \
  X("blocked", NewBlockedCheck, kBlockedCheckSpec) \
  X("rate", NewRateCheck, kRateCheckSpec)       \
  X("certificate", NewCertCheck, kCertCheckSpec) \
  X("device", NewDeviceCheck, kDeviceCheckSpec)   \
  X("endpoint", NewEndpointCheck, kEndpointCheckSpec) \
  X("clone", NewCloneCheck, kCloneCheckSpec)     \
  X("line", NewLineCheck, kLineCheckSpec)       \
  X("gnss", NewGnssCheck, kGnssCheckSpec)       \
  X("rem", NewRemCheck, kRemCheckSpec)

namespace fg::admission {

#define FG_DECLARE_CHECK(name, factory, spec) \
  std::unique_ptr<Check> factory(const AdmissionPolicy& policy); \
  extern const CheckSpec spec;
FG_ADMISSION_CHECKS(FG_DECLARE_CHECK)
#undef FG_DECLARE_CHECK

const std::vector<CheckRegistration>& BuiltinChecks() {
#define FG_REGISTER_CHECK(name, factory, spec) CheckRegistration{name, factory, &spec},
  static const std::vector<CheckRegistration> kChecks = {FG_ADMISSION_CHECKS(FG_REGISTER_CHECK)};
#undef FG_REGISTER_CHECK
  return kChecks;
}

}  // namespace fg::admission
