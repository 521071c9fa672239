#pragma once

// Time in femtoguard is Unix milliseconds (UTC) in an int64. Events carry
// RFC 3339 timestamps; detection is driven by event time, never wall time.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fg {

using UnixMillis = int64_t;

constexpr UnixMillis kMillisPerSecond = 1000;
constexpr UnixMillis kMillisPerDay = 86400 * kMillisPerSecond;

UnixMillis NowMillis();

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's
// algorithm); m 1-12, d 1-31, not validated.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

// "2025-09-01T12:00:00Z" or with fraction "...:00.123Z" or offset "+09:00".
Result<UnixMillis> ParseRfc3339(std::string_view text);
// Always UTC with a "Z"; milliseconds only when non-zero.
std::string FormatRfc3339(UnixMillis t);

}  // namespace fg
