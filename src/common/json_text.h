#pragma once

// Writing JSON text by hand on hot paths (alerts, the decision log, the
// simulator's output) where building a nlohmann::json per line costs more
// than the work itself.

#include <string>
#include <string_view>

namespace fg {

// Appends `s` as a JSON string literal, quotes included. Control characters
// and DEL are escaped; other bytes (UTF-8) pass through unchanged.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace fg
