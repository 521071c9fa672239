// rules.yaml (detect/rules.h): yaml-cpp, then RuleSet's checks of rule ids,
// severities, actions, kinds and parameters.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "detect/detector.h"
#include "detect/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;
  static const std::vector<std::string> known = fg::detect::AllRuleIds();
  auto rules = fg::detect::RuleSet::Parse(std::string_view(reinterpret_cast<const char*>(data), size), known);
  (void)rules;
  return 0;
}
