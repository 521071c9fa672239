#pragma once

// serve's log lines (spdlog) go to stderr, as text or as JSON Lines, and
// escape control characters whatever a message's arguments hold: a
// Basic-auth reference, a CN or a device id with a newline cannot forge a
// line in the log (docs/identifiers.md, docs/operations.md "Logging").
//
// JSON: one object per line, `{"ts":"<RFC 3339 UTC, ms>","level":"info",
// "event":"log","msg":"..."}` for an ordinary message; a security event
// (common/security_log.h) carries its own `event` name and fields instead of
// `msg`.

#include <spdlog/logger.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fg {

enum class LogFormat { kText, kJson };

// Makes every sink of `logger` print its messages through Printable().
// Keeps the logger's current pattern (the default one).
void EscapeLogMessages(spdlog::logger& logger);

// "text" | "json" and "debug" | "info" | "warn" | "error"; InvalidArgument
// naming the flag for anything else. Applies to the default logger.
Status ConfigureLogging(std::string_view format, std::string_view level);
LogFormat CurrentLogFormat();

// The level names of the JSON lines: debug, info, warn, error (stable).
std::string_view LogLevelName(spdlog::level::level_enum level);

// One structured line: `event` and its fields (in this order), at `level`,
// through the default logger. Text: "event k=v k=v" (values escaped, quoted
// when they hold a space); JSON: the fields are members of the object.
// Values are strings; callers never pass a raw subscriber identity, a token
// or a key.
using LogFields = std::vector<std::pair<std::string_view, std::string>>;
void LogEvent(spdlog::level::level_enum level, std::string_view event, const LogFields& fields);

}  // namespace fg
