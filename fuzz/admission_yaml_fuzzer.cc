// admission.yaml (admission/policy.h): yaml-cpp, then the policy's
// validation of check names and values.

#include <cstddef>
#include <cstdint>
#include <string>

#include "admission/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;
  auto policy = fg::admission::AdmissionPolicy::FromYaml(std::string(reinterpret_cast<const char*>(data), size));
  if (policy.ok() && !policy->Validate().ok()) __builtin_trap();  // FromYaml returns only valid policies
  return 0;
}
