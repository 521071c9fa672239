#pragma once

// The shipped rules file (rules/default.yaml), embedded at build time so
// that `femtoguard replay` without --rules uses exactly what the source tree
// ships. Until that file exists the build embeds an empty rule set.

#include <string>
#include <string_view>

#include "common/status.h"
#include "detect/rules.h"

namespace fg::detect {

std::string_view DefaultRulesYaml();

// The rules file at `path`, or the embedded default when `path` is empty,
// validated against the rule ids of this build's detectors (AllRuleIds()).
Result<RuleSet> LoadRulesOrDefault(const std::string& path);

}  // namespace fg::detect
