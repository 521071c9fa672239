#include "common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LogTest, ALogLineCannotBeForgedThroughAnArgument) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("escape-test", sink);
  EscapeLogMessages(logger);
  logger.info("EST: wrong bootstrap token secret for '{}' from {}",
              "tok-1\n[2026-01-01] [info] FORGED\x1b[2J", "127.0.0.1");
  logger.info("plain line");
  std::string text = out.str();
  // Two messages, two lines; the argument's newline and escape are visible, inert.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_THAT(text, HasSubstr("tok-1\\n[2026-01-01] [info] FORGED\\x1b[2J"));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  EXPECT_THAT(text, HasSubstr("plain line"));
}

}  // namespace
}  // namespace fg
