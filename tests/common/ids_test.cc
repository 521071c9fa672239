#include "common/ids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/device.h"
#include "common/metrics.h"

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What an attacker puts into an identifier to forge a line, steer a
// terminal, truncate a C string or break a UTF-8 reader.
const std::vector<std::string>& Injections() {
  static const std::vector<std::string> v = {
      std::string("FG-1\nFG-2 forged"),
      std::string("FG-1\rforged"),
      std::string("FG-1\x1b[2J\x1b[31mred"),
      std::string("FG-1\0hidden", 11),
      std::string("FG-\xff\xfe"),
      std::string("FG-\xc0\xaf"),  // overlong '/'
      std::string("FG-\xe2\x80\xae"
                  "1"),  // U+202E right-to-left override
      std::string("FG-\xc2\x9b"
                  "2J"),  // U+009B, the C1 CSI
      std::string(5000, 'A'),
  };
  return v;
}

TEST(IdentifierTest, TheFormatsInUseStayValid) {
  // DESIGN.md §3.2 / §3.4 examples and the simulator's ids.
  for (const char* id : {"FG-0000001", "FG-EST-T1", "fg_lab.2", "FG-CMP-V1"}) {
    EXPECT_TRUE(IsValidIdentifier(IdKind::kDeviceId, id)) << id;
  }
  for (const char* t :
       {"spi-0123456789abcdef", "ike-1", "segw-01", "segw-a/17", "tok-0123456789abcdef",
        "sha256:9f86d0...", "5F1C0A", "tk_0123456789ab", "KRW", "211.36.128.0/20",
        "fgt_0123456789ab_"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_TRUE(IsValidIdentifier(IdKind::kToken, t)) << t;
  }
  for (const char* e : {"segw1.example:500", "203.0.113.10:4500", "[2001:db8::1]:500",
                        "segw-a.example", "https://segw.example:4500/ep"}) {
    EXPECT_TRUE(IsValidIdentifier(IdKind::kEndpoint, e)) << e;
  }
  for (const char* a : {"211.36.130.4", "2001:db8::7", "::ffff:198.51.100.7"}) {
    EXPECT_TRUE(IsValidIdentifier(IdKind::kAddress, a)) << a;
  }
  for (const char* t : {"acct-81723", "dormant 90 days", "installed at customer site",
                        "Café Wien — 2F", "C:\\path", "카카오페이"}) {
    EXPECT_TRUE(IsValidIdentifier(IdKind::kText, t)) << t;
  }
}

TEST(IdentifierTest, InjectionStringsAreRefusedByEveryKind) {
  for (IdKind kind :
       {IdKind::kDeviceId, IdKind::kToken, IdKind::kEndpoint, IdKind::kAddress, IdKind::kText}) {
    for (const std::string& bad : Injections()) {
      EXPECT_FALSE(IsValidIdentifier(kind, bad)) << IdKindName(kind) << ": " << Printable(bad);
    }
    EXPECT_FALSE(IsValidIdentifier(kind, "")) << IdKindName(kind);
  }
  EXPECT_FALSE(IsValidIdentifier(IdKind::kDeviceId, "-FG"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kDeviceId, ".FG"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kDeviceId, "FG 1"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kDeviceId, std::string(65, 'F')));
  EXPECT_TRUE(IsValidIdentifier(IdKind::kDeviceId, std::string(64, 'F')));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kToken, "a b"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kToken, "a\"b"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kText, "tab\there"));
  EXPECT_FALSE(IsValidIdentifier(IdKind::kText, std::string(257, 'x')));
  EXPECT_TRUE(IsValidIdentifier(IdKind::kText, std::string(512, 'x'), 512));
  // Same verdict as the registry's own rule for device ids.
  for (const char* id : {"FG-1", "-FG", "FG 1", "FG/1", "a.b_c-d"}) {
    EXPECT_EQ(IsValidIdentifier(IdKind::kDeviceId, id), ValidateDeviceId(id).ok()) << id;
  }
}

TEST(IdentifierTest, ErrorsNameTheFieldAndTheRuleButNeverTheValue) {
  Status s = CheckIdentifier(IdKind::kDeviceId, "device", "FG-1\nforged-line");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("field 'device'"));
  EXPECT_THAT(s.message(), HasSubstr("A-Z a-z 0-9"));
  EXPECT_THAT(s.message(), Not(HasSubstr("forged")));
  EXPECT_THAT(CheckIdentifier(IdKind::kToken, "session", std::string(200, 's')).message(),
              HasSubstr("longer than 128 bytes"));
  EXPECT_TRUE(CheckOptionalIdentifier(IdKind::kToken, "session", "").ok());
  EXPECT_FALSE(CheckIdentifier(IdKind::kToken, "session", "").ok());
}

TEST(IdentifierTest, RefusalsAreCountedByDoorAndField) {
  const uint64_t before =
      Metrics::Global().Value("femtoguard_bad_identifier_total", R"(door="test",field="device")");
  CountBadIdentifier("test", "device");
  EXPECT_EQ(
      Metrics::Global().Value("femtoguard_bad_identifier_total", R"(door="test",field="device")"),
      before + 1);
}

TEST(PrintableTest, ControlCharactersCannotForgeALineOrSteerATerminal) {
  for (const std::string& bad : Injections()) {
    std::string shown = Printable(bad);
    for (char c : shown) {
      const auto u = static_cast<unsigned char>(c);
      EXPECT_FALSE(u < 0x20 || u == 0x7f) << shown;
    }
    EXPECT_THAT(shown, Not(HasSubstr("\xe2\x80\xae")));
    EXPECT_THAT(shown, Not(HasSubstr("\xc2\x9b")));
    // Escaping is not idempotent on purpose (a backslash is doubled), so the
    // check is on what a terminal sees: no control character left.
  }
  EXPECT_EQ(Printable("FG-1\nFG-2 forged"), "FG-1\\nFG-2 forged");
  EXPECT_EQ(Printable("a\rb\tc"), "a\\rb\\tc");
  EXPECT_EQ(Printable("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(Printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(Printable("x\xff"), "x\\xff");
  EXPECT_EQ(Printable("\xe2\x80\xae"), "\\u202e");
  EXPECT_EQ(Printable("\xc2\x9b"), "\\u009b");
  // Unambiguous: a literal backslash-n is not a newline.
  EXPECT_EQ(Printable("a\\nb"), "a\\\\nb");
}

TEST(PrintableTest, OrdinaryTextPassesUnchangedAndLongTextIsCut) {
  for (const char* t :
       {"FG-0000001", "dormant 90 days", "Café Wien — 2F", "카카오페이", "{\"count\":3}"}) {
    EXPECT_EQ(Printable(t), t);
    EXPECT_TRUE(IsPrintable(t));
  }
  std::string cut = Printable(std::string(5000, 'A'), 100);
  EXPECT_EQ(cut, std::string(100, 'A') + "...");
  // Never in the middle of a UTF-8 character.
  std::string korean = Printable("카카오페이", 4);
  EXPECT_EQ(korean, "카카...");
}

}  // namespace
}  // namespace fg
