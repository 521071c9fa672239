#pragma once

// The shipped rules file (rules/default.yaml), embedded at build time so
// that `femtoguard replay` without --rules uses exactly what the source tree
// ships. Until that file exists the build embeds an empty rule set.

#include <string_view>

namespace fg::detect {

std::string_view DefaultRulesYaml();

}  // namespace fg::detect
