// The built-in admission checks. One line per check: its policy name and
// the factory defined in checks/<name>_check.cc. The default order lives in
// policy.h (AdmissionPolicy::chain); BuiltinCheckNames() must list the same.

#include <memory>

#include "admission/check.h"

#define FG_ADMISSION_CHECKS(X) \
  X("blocked", NewBlockedCheck) \
  X("rate", NewRateCheck)       \
  X("certificate", NewCertCheck) \
  X("device", NewDeviceCheck)   \
  X("endpoint", NewEndpointCheck) \
  X("clone", NewCloneCheck)     \
  X("line", NewLineCheck)       \
  X("gnss", NewGnssCheck)       \
  X("rem", NewRemCheck)

namespace fg::admission {

#define FG_DECLARE_CHECK(name, factory) std::unique_ptr<Check> factory(const AdmissionPolicy& policy);
FG_ADMISSION_CHECKS(FG_DECLARE_CHECK)
#undef FG_DECLARE_CHECK

const std::vector<CheckRegistration>& BuiltinChecks() {
#define FG_REGISTER_CHECK(name, factory) CheckRegistration{name, factory},
  static const std::vector<CheckRegistration> kChecks = {FG_ADMISSION_CHECKS(FG_REGISTER_CHECK)};
#undef FG_REGISTER_CHECK
  return kChecks;
}

}  // namespace fg::admission
