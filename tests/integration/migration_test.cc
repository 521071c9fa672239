// Migration off a shared legacy credential (the seed's failure): 100
// registered devices each trade the one credential they all share for their
// own certificate, once; a repeat, a use from outside the registered prefix
// and a use after the cutoff are refused and recorded.

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;

class MigrationTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  static void MakeLegacy(const std::string& name, const std::string& cutoff) {
    auto r = Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", P(name + ".key"), "-out", P(name + ".pem"), "-subj", "/O=OldVendor/CN=HNB shared",
                 "-days", "3650", "-addext", "keyUsage=critical,digitalSignature"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto add = Fg({"legacy", "add", "--data", data_, "--cert", P(name + ".pem"), "--cutoff", cutoff});
    ASSERT_EQ(add.exit_code, 0) << add.out;
  }

  static RunResult Migrate(const std::string& legacy, const std::string& device, const std::string& key) {
    return Cmp({"-cmd", "ir", "-cert", P(legacy + ".pem"), "-key", P(legacy + ".key"), "-newkey", key, "-subject",
                "/CN=" + device, "-trusted", P("root.pem"), "-certout", P(device + ".pem"), "-unprotected_errors"});
  }
};

TEST_F(MigrationTest, HundredDevicesEachOnceThenRepeatAndPostCutoffRefused) {
  MakeLegacy("legacy", "2099-01-01");
  const int kDevices = 100;
  for (int i = 1; i <= kDevices; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "FG-MIG-%03d", i);
    // Every device's line is loopback here, so the prefix binding is satisfied.
    AddDevice(id, "active", {"127.0.0.0/8"});
  }
  for (int i = 1; i <= kDevices; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "FG-MIG-%03d", i);
    auto r = Migrate("legacy", id, NewKey(std::string(id) + ".key"));
    ASSERT_EQ(r.exit_code, 0) << id << ": " << r.out;
    ASSERT_THAT(Subject(P(std::string(id) + ".pem")), HasSubstr(std::string("CN=") + id));
  }
  EXPECT_EQ(CertCount(), static_cast<size_t>(kDevices));

  // The 101st attempt: a repeat of a serial that already migrated (a clone).
  auto repeat = Migrate("legacy", "FG-MIG-001", NewKey("repeat.key"));
  EXPECT_NE(repeat.exit_code, 0);
  EXPECT_THAT(repeat.out, HasSubstr("already used once"));
  EXPECT_EQ(CertCount(), static_cast<size_t>(kDevices));
  EXPECT_THAT(Fg({"audit", "list", "--data", data_, "--subject", "FG-MIG-001"}).out, HasSubstr("cert.clone"));
}

TEST_F(MigrationTest, UseAfterCutoffIsRefused) {
  MakeLegacy("expired-legacy", "2020-01-01");
  AddDevice("FG-MIG-LATE", "active");
  auto r = Migrate("expired-legacy", "FG-MIG-LATE", NewKey("late.key"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("after its cutoff"));
  EXPECT_EQ(CertCount("FG-MIG-LATE"), 0u);
  EXPECT_THAT(Fg({"audit", "list", "--data", data_, "--subject", "FG-MIG-LATE"}).out, HasSubstr("cert.legacy"));
}

TEST_F(MigrationTest, UseFromOutsideRegisteredPrefixIsRefused) {
  MakeLegacy("legacy2", "2099-01-01");
  AddDevice("FG-MIG-AWAY", "active", {"211.36.128.0/20"});
  auto r = Migrate("legacy2", "FG-MIG-AWAY", NewKey("away.key"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("outside its registered prefixes"));
  EXPECT_EQ(CertCount("FG-MIG-AWAY"), 0u);
  // An unregistered identity cannot migrate either.
  auto unknown = Migrate("legacy2", "FG-MIG-GHOST", NewKey("ghost.key"));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.out, HasSubstr("not pre-registered"));
}

}  // namespace
}  // namespace fg::testing
