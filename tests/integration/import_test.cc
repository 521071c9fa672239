// `femtoguard device import` as an operator relies on it: a line changes
// only what it names (merge), --replace gives the old whole-row behaviour,
// --dry-run writes nothing, and a file with one bad line writes nothing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return fg::testing::Run(args, {}, 60);
}

constexpr const char* kFullLine =
    R"({"device":"FG-0000001","status":"active","owner":"acct-81723","mode":"closed",)"
    R"("site":{"lat":37.4786,"lon":126.8647,"radius_m":150},"prefixes":["211.36.128.0/20"],)"
    R"("csg":["450081234567890"],"cert_fp":"sha256:9f86d0","max_ues":8})";

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    auto init = Fg({"init", "--data", data_});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    ASSERT_EQ(Import(kFullLine).exit_code, 0);
  }
  RunResult Import(const std::string& lines, std::vector<std::string> flags = {}) {
    std::string reg = dir_ / ("registry-" + std::to_string(++files_) + ".jsonl");
    WriteAll(reg, lines + "\n");
    std::vector<std::string> args = {"device", "import", "--data", data_, "--registry", reg};
    args.insert(args.end(), flags.begin(), flags.end());
    return Fg(args);
  }
  nlohmann::json Show(const std::string& id) {
    auto r = Fg({"device", "show", "--data", data_, "--device", id});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return {};
    j.erase("audit");
    j.erase("updated");
    return j;
  }
  std::string Audit() { return Fg({"audit", "list", "--data", data_, "--limit", "0"}).out; }

  TempDir dir_;
  std::string data_;
  int files_ = 0;
};

TEST_F(ImportTest, ALineChangesOnlyTheFieldsItNames) {
  nlohmann::json before = Show("FG-0000001");
  auto r = Import(R"({"device":"FG-0000001","status":"suspended"})");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("0 added, 1 updated, 0 unchanged, 0 rejected"));
  nlohmann::json after = Show("FG-0000001");
  EXPECT_EQ(after["status"], "suspended");
  for (const char* kept : {"owner", "mode", "site", "prefixes", "csg", "cert_fp", "max_ues"}) {
    EXPECT_EQ(after[kept], before[kept]) << kept;
  }
  // A named field replaces; JSON null clears; the rest stays.
  ASSERT_EQ(Import(R"({"device":"FG-0000001","owner":"acct-2","max_ues":null})").exit_code, 0);
  after = Show("FG-0000001");
  EXPECT_EQ(after["owner"], "acct-2");
  EXPECT_FALSE(after.contains("max_ues"));
  EXPECT_EQ(after["site"], before["site"]);
  EXPECT_EQ(after["csg"], before["csg"]);
}

TEST_F(ImportTest, ReplaceClearsWhatTheLineDoesNotName) {
  auto r = Import(R"({"device":"FG-0000001","mode":"open"})", {"--replace"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json after = Show("FG-0000001");
  EXPECT_EQ(after["mode"], "open");
  EXPECT_EQ(after["status"], "active");  // status is lifecycle, kept unless named
  for (const char* cleared : {"owner", "site", "prefixes", "csg", "cert_fp", "max_ues"}) {
    EXPECT_FALSE(after.contains(cleared)) << cleared;
  }
}

TEST_F(ImportTest, DryRunPrintsTheDiffAndWritesNothing) {
  nlohmann::json before = Show("FG-0000001");
  std::string audit_before = Audit();
  auto r = Import(std::string(R"({"device":"FG-0000001","owner":"acct-9","status":"suspended"})") + "\n" +
                      R"({"device":"FG-0000002","status":"provisioned"})",
                  {"--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("~ FG-0000001: owner 'acct-81723' -> 'acct-9', status active -> suspended"));
  EXPECT_THAT(r.out, HasSubstr("+ FG-0000002 (new, provisioned)"));
  EXPECT_THAT(r.out, HasSubstr("would add 1, update 1, leave 0 unchanged; 0 rejected; nothing written"));
  EXPECT_EQ(Show("FG-0000001"), before);
  EXPECT_EQ(Audit(), audit_before);
  EXPECT_THAT(Fg({"device", "list", "--data", data_}).out, Not(HasSubstr("FG-0000002")));

  // A dry run with a bad line says so, with exit 2, and still writes nothing.
  auto bad = Import(R"({"device":"FG-0000003","mode":"sideways"})", {"--dry-run"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr(":1: field 'mode'"));
  EXPECT_EQ(Audit(), audit_before);
}

TEST_F(ImportTest, OneRefusedLineAndNothingIsWritten) {
  std::string audit_before = Audit();
  nlohmann::json before = Show("FG-0000001");
  // Line 1 is fine, line 2 asks for a lifecycle step that is not allowed
  // (active -> provisioned), line 3 is a second line for the same device.
  auto r = Import(std::string(R"({"device":"FG-0000009","status":"provisioned"})") + "\n" +
                  R"({"device":"FG-0000001","status":"provisioned","owner":"acct-x"})" + "\n" +
                  R"({"device":"FG-0000009","owner":"acct-y"})");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr(":2: device FG-0000001: lifecycle does not allow active -> provisioned"));
  EXPECT_THAT(r.out, HasSubstr(":3: device FG-0000009 is already on line 1"));
  EXPECT_THAT(r.out, HasSubstr("nothing imported: 2 line(s) rejected"));
  EXPECT_EQ(Show("FG-0000001"), before);
  EXPECT_THAT(Fg({"device", "list", "--data", data_}).out, Not(HasSubstr("FG-0000009")));
  EXPECT_EQ(Audit(), audit_before);

  // --partial takes the good line and still exits 2.
  auto partial = Import(std::string(R"({"device":"FG-0000009","status":"provisioned"})") + "\n" +
                            R"({"device":"FG-0000001","status":"provisioned"})",
                        {"--partial"});
  EXPECT_EQ(partial.exit_code, 2) << partial.out;
  EXPECT_THAT(partial.out, HasSubstr("1 added, 0 updated, 0 unchanged, 1 rejected"));
  EXPECT_THAT(Fg({"device", "list", "--data", data_}).out, HasSubstr("FG-0000009"));
  EXPECT_EQ(Show("FG-0000001")["status"], "active");
}

TEST_F(ImportTest, AWholeFileIsOneTransactionWithItsAudit) {
  std::string lines;
  for (int i = 10; i < 60; ++i) {
    lines += R"({"device":"FG-00000)" + std::to_string(i) + R"(","status":"active","owner":"acct-)" +
             std::to_string(i) + "\"}\n";
  }
  auto r = Import(lines);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("50 added, 0 updated, 0 unchanged, 0 rejected"));
  auto audit = Fg({"audit", "list", "--data", data_, "--limit", "0"});
  size_t adds = 0;
  for (size_t at = audit.out.find("device.add"); at != std::string::npos; at = audit.out.find("device.add", at + 1)) {
    ++adds;
  }
  EXPECT_EQ(adds, 51u);  // the 50, and FG-0000001 from SetUp
}

}  // namespace
}  // namespace fg::testing

namespace fg::testing {
namespace {

// Usage errors are bad input (exit 2), for every kind CLI11 can raise: a
// missing subcommand or option, an unknown flag, a value of the wrong type,
// an unknown subcommand. Nothing is created on the way.
TEST(UsageErrors, ExitTwoAndWriteNothing) {
  TempDir dir;
  const std::string data = dir / "never";
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"device"},
      {"device", "list", "--data", data, "--limit", "x"},
      {"serve", "--data", data, "--threads", "abc"},
      {"alert", "list", "--data", data, "--bogus"},
      {"no-such-command"},
      {"cert", "issue", "--data", data},
      {"init", "--data", data, "--listen", "nonsense"},
  };
  for (const auto& args : cases) {
    auto r = Fg(args);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_EQ(r.exit_code, 2) << shown << ": " << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(data));
}

}  // namespace
}  // namespace fg::testing
