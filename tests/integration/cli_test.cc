// The femtoguard CLI as an operator uses it: data dir creation, registry
// import with bad lines, privacy of CSG IMSIs, lifecycle, refusals.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// RFC 3339 for `days` from now.
std::string FormatLater(int days) {
  std::time_t t = std::time(nullptr) + static_cast<std::time_t>(days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

RunResult Fg(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), Femtoguard());
  return fg::testing::Run(args, {}, 60, env);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    auto init = Fg({"init", "--data", data_});
    ASSERT_EQ(init.exit_code, 0) << init.out;
  }
  std::string Csr(const std::string& name) {
    std::string key = dir_ / (name + ".key"), csr = dir_ / (name + ".csr");
    auto r = fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return csr;
  }
  TempDir dir_;
  std::string data_;
};

TEST_F(CliTest, InitRefusesToOverwriteAnExistingDataDir) {
  std::string before = ReadAll(data_ + "/ca/issuing.crt");
  auto again = Fg({"init", "--data", data_});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.out, HasSubstr("refusing to overwrite"));
  EXPECT_EQ(ReadAll(data_ + "/ca/issuing.crt"), before);
}

TEST_F(CliTest, InitWithOperatorPassphraseWritesNoPassphraseFileAndNeedsIt) {
  std::string d2 = dir_ / "data2";
  auto init = Fg({"init", "--data", d2}, {"FEMTOGUARD_CA_PASSPHRASE=correct horse"});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  EXPECT_FALSE(std::filesystem::exists(d2 + "/secrets/ca.passphrase"));
  ASSERT_EQ(Fg({"device", "add", "--data", d2, "--device", "FG-P", "--status", "active"}).exit_code, 0);
  std::string csr = Csr("FG-P");
  auto wrong = Fg({"cert", "issue", "--data", d2, "--device", "FG-P", "--csr", csr},
                  {"FEMTOGUARD_CA_PASSPHRASE=wrong"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.out, HasSubstr("passphrase"));
  auto right = Fg({"cert", "issue", "--data", d2, "--device", "FG-P", "--csr", csr},
                  {"FEMTOGUARD_CA_PASSPHRASE=correct horse"});
  EXPECT_EQ(right.exit_code, 0) << right.out;
}

TEST_F(CliTest, DataDirFromEnvironment) {
  auto add = Fg({"device", "add", "--device", "FG-ENV"}, {"FEMTOGUARD_DATA=" + data_});
  EXPECT_EQ(add.exit_code, 0) << add.out;
  EXPECT_THAT(Fg({"device", "list", "--data", data_}).out, HasSubstr("FG-ENV"));
}

TEST_F(CliTest, ImportReportsBadLinesByNumberAndWritesNothingOfThem) {
  std::string reg = dir_ / "registry.jsonl";
  WriteAll(reg,
           "{\"device\":\"FG-0000001\",\"status\":\"active\",\"owner\":\"acct-81723\",\"mode\":\"closed\","
           "\"site\":{\"lat\":37.4786,\"lon\":126.8647,\"radius_m\":150},\"prefixes\":[\"211.36.128.0/20\"],"
           "\"csg\":[\"450081234567890\"],\"cert_fp\":\"sha256:9f86d0\",\"max_ues\":8}\n"
           "{\"device\":\"FG-0000002\",\"status\":\"sleeping\"}\n"
           "not json at all\n"
           "{\"device\":\"FG-0000003\",\"prefixes\":[\"10.0.0.0/33\"]}\n"
           "{\"device\":\"FG-0000004\",\"csg\":[\"45008123456789X\"]}\n"
           "\n"
           "{\"device\":\"FG-0000005\",\"status\":\"provisioned\",\"mode\":\"open\"}\n");
  // All or nothing by default: the bad lines are reported and nothing is written.
  auto whole = Fg({"device", "import", "--data", data_, "--registry", reg});
  EXPECT_EQ(whole.exit_code, 2) << whole.out;
  EXPECT_THAT(whole.out, HasSubstr(reg + ":3: not valid JSON"));
  EXPECT_THAT(whole.out, HasSubstr("nothing imported: 4 line(s) rejected"));
  EXPECT_THAT(Fg({"device", "list", "--data", data_}).out, Not(HasSubstr("FG-0000001")));

  auto r = Fg({"device", "import", "--data", data_, "--registry", reg, "--partial"});
  EXPECT_EQ(r.exit_code, 2);  // some lines were rejected
  EXPECT_THAT(r.out, HasSubstr(reg + ":2: field 'status'"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":3: not valid JSON"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":4: field 'prefixes'"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":5: field 'csg'"));
  EXPECT_THAT(r.out, HasSubstr("2 added, 0 updated, 0 unchanged, 4 rejected"));
  // A raw IMSI is never echoed, even in an error.
  EXPECT_THAT(r.out, Not(HasSubstr("45008123456789")));
  auto list = Fg({"device", "list", "--data", data_}).out;
  EXPECT_THAT(list, HasSubstr("FG-0000001"));
  EXPECT_THAT(list, HasSubstr("FG-0000005"));
  for (const char* absent : {"FG-0000002", "FG-0000003", "FG-0000004"}) EXPECT_THAT(list, Not(HasSubstr(absent)));

  // Re-import is idempotent: nothing changes, nothing is audited again.
  auto audit_before = Fg({"audit", "list", "--data", data_, "--limit", "0"}).out;
  auto again = Fg({"device", "import", "--data", data_, "--registry", reg, "--partial"});
  EXPECT_THAT(again.out, HasSubstr("0 added, 0 updated, 2 unchanged, 4 rejected"));
  EXPECT_EQ(Fg({"audit", "list", "--data", data_, "--limit", "0"}).out, audit_before);
}

TEST_F(CliTest, RawCsgImsiIsNeverStored) {
  std::string reg = dir_ / "registry.jsonl";
  WriteAll(reg, "{\"device\":\"FG-PRIV\",\"status\":\"active\",\"csg\":[\"450081234567890\",\"450089999900001\"]}\n");
  ASSERT_EQ(Fg({"device", "import", "--data", data_, "--registry", reg}).exit_code, 0);
  auto show = Fg({"device", "show", "--data", data_, "--device", "FG-PRIV"});
  EXPECT_THAT(show.out, HasSubstr("\"imsi:"));
  EXPECT_THAT(show.out, Not(HasSubstr("450081234567890")));
  // Every file of the data dir, including the SQLite WAL, byte for byte.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_)) {
    if (!entry.is_regular_file()) continue;
    std::string bytes = ReadAll(entry.path().string());
    EXPECT_EQ(bytes.find("450081234567890"), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("450089999900001"), std::string::npos) << entry.path();
  }
}

TEST_F(CliTest, LifecycleIsEnforcedAndAudited) {
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-L"}).exit_code, 0);
  // provisioned -> suspended is not a lifecycle step.
  auto bad = Fg({"device", "set-status", "--data", data_, "--device", "FG-L", "--status", "suspended"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.out, HasSubstr("provisioned"));
  ASSERT_EQ(Fg({"device", "set-status", "--data", data_, "--device", "FG-L", "--status", "active", "--reason",
                "installed at customer site"})
                .exit_code,
            0);
  ASSERT_EQ(Fg({"device", "set-status", "--data", data_, "--device", "FG-L", "--status", "decommissioned",
                "--reason", "returned"})
                .exit_code,
            0);
  auto back = Fg({"device", "set-status", "--data", data_, "--device", "FG-L", "--status", "active"});
  EXPECT_NE(back.exit_code, 0);
  auto audit = Fg({"audit", "list", "--data", data_, "--subject", "FG-L"}).out;
  EXPECT_THAT(audit, HasSubstr("installed at customer site"));
  EXPECT_THAT(audit, HasSubstr("returned"));
  EXPECT_THAT(audit, HasSubstr("cli:"));
  // The certificate for a decommissioned device is refused.
  auto issue = Fg({"cert", "issue", "--data", data_, "--device", "FG-L", "--csr", Csr("FG-L")});
  EXPECT_NE(issue.exit_code, 0);
  EXPECT_THAT(issue.out, HasSubstr("decommissioned"));
  EXPECT_THAT(issue.out, Not(HasSubstr("BEGIN CERTIFICATE")));
}

TEST_F(CliTest, NothingPrintsAPrivateKey) {
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-K", "--status", "active"}).exit_code, 0);
  std::string all;
  all += Fg({"ca", "cert", "--data", data_, "--chain"}).out;
  all += Fg({"ca", "cert", "--data", data_, "--root"}).out;
  all += Fg({"cert", "issue", "--data", data_, "--device", "FG-K", "--csr", Csr("FG-K")}).out;
  all += Fg({"cert", "list", "--data", data_}).out;
  all += Fg({"device", "show", "--data", data_, "--device", "FG-K"}).out;
  all += Fg({"audit", "list", "--data", data_}).out;
  EXPECT_THAT(all, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(all, Not(HasSubstr("PRIVATE KEY")));
  std::string pass = ReadAll(data_ + "/secrets/ca.passphrase");
  ASSERT_FALSE(pass.empty());
  EXPECT_THAT(all, Not(HasSubstr(pass)));
}

TEST_F(CliTest, RevokeBadInputIsRefusedClearly) {
  auto bad_serial = Fg({"cert", "revoke", "--data", data_, "--serial", "XYZ", "--reason", "keyCompromise"});
  EXPECT_EQ(bad_serial.exit_code, 2);
  EXPECT_THAT(bad_serial.out, HasSubstr("hex"));
  auto unknown = Fg({"cert", "revoke", "--data", data_, "--serial", "ABCDEF", "--reason", "keyCompromise"});
  EXPECT_EQ(unknown.exit_code, 3);
  auto bad_reason = Fg({"cert", "revoke", "--data", data_, "--serial", "ABCDEF", "--reason", "because"});
  EXPECT_EQ(bad_reason.exit_code, 2);
}

TEST_F(CliTest, EndpointRotationIsAuditedAndRetiredIsTerminal) {
  ASSERT_EQ(Fg({"endpoint", "add", "--data", data_, "--address", "segw-a.example:500"}).exit_code, 0);
  auto rotate = Fg({"endpoint", "rotate", "--data", data_, "--from", "segw-a.example:500", "--to",
                    "segw-b.example:500"});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.out;
  auto list = Fg({"endpoint", "list", "--data", data_}).out;
  EXPECT_THAT(list, ::testing::ContainsRegex("segw-a.example:500 +draining"));
  EXPECT_THAT(list, ::testing::ContainsRegex("segw-b.example:500 +active"));
  ASSERT_EQ(Fg({"endpoint", "retire", "--data", data_, "--address", "segw-a.example:500"}).exit_code, 0);
  EXPECT_THAT(Fg({"endpoint", "list", "--data", data_}).out, ::testing::ContainsRegex("segw-a.example:500 +retired"));
  auto again = Fg({"endpoint", "rotate", "--data", data_, "--from", "segw-a.example:500", "--to", "x:1"});
  EXPECT_NE(again.exit_code, 0);
  auto audit = Fg({"audit", "list", "--data", data_, "--subject", "segw-a.example:500"}).out;
  EXPECT_THAT(audit, HasSubstr("endpoint.status"));
  EXPECT_THAT(audit, HasSubstr("retired"));
}

TEST_F(CliTest, DormantDevicesAreSuspendedAndRecentOnesAreNot) {
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-DORM", "--status", "active"}).exit_code, 0);
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-NEW-PROV"}).exit_code, 0);
  ASSERT_EQ(Fg({"cert", "issue", "--data", data_, "--device", "FG-DORM", "--csr", Csr("FG-DORM")}).exit_code, 0);
  auto later = [](int days) { return FormatLater(days); };
  // 30 days on: nobody is dormant.
  auto early = Fg({"device", "sweep-dormant", "--data", data_, "--as-of", later(30)});
  EXPECT_EQ(early.exit_code, 0) << early.out;
  EXPECT_THAT(early.out, HasSubstr("0 of 1 active devices dormant"));
  // 91 days on, dry run: reported, nothing changes.
  auto dry = Fg({"device", "sweep-dormant", "--data", data_, "--as-of", later(91), "--dry-run"});
  EXPECT_THAT(dry.out, HasSubstr("would suspend FG-DORM"));
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "active"}).out, HasSubstr("FG-DORM"));
  // For real: suspended, certificate on hold, audited with the reason; the
  // provisioned (never deployed) device is left alone.
  auto sweep = Fg({"device", "sweep-dormant", "--data", data_, "--as-of", later(91)});
  EXPECT_THAT(sweep.out, HasSubstr("suspended FG-DORM"));
  EXPECT_THAT(sweep.out, Not(HasSubstr("FG-NEW-PROV")));
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "suspended"}).out, HasSubstr("FG-DORM"));
  EXPECT_THAT(Fg({"cert", "list", "--data", data_, "--device", "FG-DORM"}).out, HasSubstr("hold"));
  EXPECT_THAT(Fg({"audit", "list", "--data", data_, "--subject", "FG-DORM"}).out, HasSubstr("dormant"));
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "provisioned"}).out, HasSubstr("FG-NEW-PROV"));
}

}  // namespace
}  // namespace fg::testing
