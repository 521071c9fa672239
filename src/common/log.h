#pragma once

// serve's log lines (spdlog) escape control characters, whatever a message's
// arguments hold: a Basic-auth reference, a CN or a device id with a newline
// cannot forge a line in the log (docs/identifiers.md).

#include <spdlog/logger.h>

namespace fg {

// Makes every sink of `logger` print its messages through Printable().
// Keeps the logger's current pattern (the default one).
void EscapeLogMessages(spdlog::logger& logger);

}  // namespace fg
