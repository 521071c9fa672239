#include "common/time.h"

#include <gtest/gtest.h>

namespace fg {
namespace {

constexpr UnixMillis kSep1Noon = 1'756'728'000'000;  // 2025-09-01T12:00:00Z

TEST(Rfc3339Test, ParsesUtc) {
  auto t = ParseRfc3339("2025-09-01T12:00:00Z");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, kSep1Noon);
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  // Lower-case separators are allowed by RFC 3339 §5.6, and so is a space.
  EXPECT_EQ(*ParseRfc3339("2025-09-01t12:00:00z"), kSep1Noon);
  EXPECT_EQ(*ParseRfc3339("2025-09-01 12:00:00Z"), kSep1Noon);
}

TEST(Rfc3339Test, AppliesOffsets) {
  EXPECT_EQ(*ParseRfc3339("2025-09-01T21:00:00+09:00"), kSep1Noon);
  EXPECT_EQ(*ParseRfc3339("2025-09-01T07:30:00-04:30"), kSep1Noon);
  EXPECT_EQ(*ParseRfc3339("2025-09-01T12:00:00+00:00"), kSep1Noon);
  // An offset that crosses midnight and a year boundary.
  EXPECT_EQ(*ParseRfc3339("2026-01-01T08:00:00+09:00"), *ParseRfc3339("2025-12-31T23:00:00Z"));
}

TEST(Rfc3339Test, ReadsFractionsToMilliseconds) {
  EXPECT_EQ(*ParseRfc3339("2025-09-01T12:00:00.123Z"), kSep1Noon + 123);
  EXPECT_EQ(*ParseRfc3339("2025-09-01T12:00:00.5Z"), kSep1Noon + 500);
  EXPECT_EQ(*ParseRfc3339("2025-09-01T12:00:00.05Z"), kSep1Noon + 50);
  // Digits beyond milliseconds are truncated, not rounded.
  EXPECT_EQ(*ParseRfc3339("2025-09-01T12:00:00.123999999Z"), kSep1Noon + 123);
  EXPECT_EQ(*ParseRfc3339("2025-09-01T21:00:00.250+09:00"), kSep1Noon + 250);
}

TEST(Rfc3339Test, FormatsUtcWithMillisecondsOnlyWhenNeeded) {
  EXPECT_EQ(FormatRfc3339(kSep1Noon), "2025-09-01T12:00:00Z");
  EXPECT_EQ(FormatRfc3339(kSep1Noon + 7), "2025-09-01T12:00:00.007Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Rfc3339Test, RoundTrips) {
  for (UnixMillis t : {UnixMillis{0}, kSep1Noon, kSep1Noon + 1, kSep1Noon + 999,
                       UnixMillis{951'782'400'000} /* 2000-02-29 */, UnixMillis{-86'400'001},
                       UnixMillis{4'102'444'799'999} /* 2099-12-31T23:59:59.999 */}) {
    const std::string text = FormatRfc3339(t);
    auto back = ParseRfc3339(text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status().ToString();
    EXPECT_EQ(*back, t) << text;
  }
}

TEST(Rfc3339Test, RejectsInvalidInput) {
  for (const char* bad : {
           "",
           "garbage",
           "2025-09-01",
           "2025-09-01T12:00:00",        // no zone: ambiguous
           "2025-09-01T12:00Z",          // no seconds
           "2025-9-01T12:00:00Z",        // one-digit month
           "2025-13-01T12:00:00Z",       // month 13
           "2025-00-01T12:00:00Z",       // month 0
           "2025-09-00T12:00:00Z",       // day 0
           "2025-09-32T12:00:00Z",       // day 32
           "2025-09-01T24:00:00Z",       // hour 24
           "2025-09-01T12:60:00Z",       // minute 60
           "2025-09-01T12:00:00.Z",      // empty fraction
           "2025-09-01T12:00:00+0900",   // offset without colon
           "2025-09-01T12:00:00+09",     // truncated offset
           "2025-09-01T12:00:00+24:00",  // offset hour out of range
           "2025-09-01T12:00:00Zjunk",   // trailing text
           "2025-09-01X12:00:00Z",       // bad separator
           "20a5-09-01T12:00:00Z",
       }) {
    auto t = ParseRfc3339(bad);
    EXPECT_FALSE(t.ok()) << "accepted '" << bad << "' as " << (t.ok() ? *t : 0);
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(NowMillisTest, IsWallClockMilliseconds) {
  const UnixMillis now = NowMillis();
  EXPECT_GT(now, kSep1Noon);                      // after this code was written
  EXPECT_LT(now, UnixMillis{4'102'444'800'000});  // and before 2100: milliseconds, not micros
}

}  // namespace
}  // namespace fg

namespace fg {
namespace {

TEST(Rfc3339Calendar, ImpossibleDatesAreRejectedNotRolledOver) {
  EXPECT_FALSE(ParseRfc3339("2025-02-30T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2025-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2025-04-31T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("2024-02-29T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("2025-12-31T23:59:59Z").ok());
}

}  // namespace
}  // namespace fg
