// A full disk during certificate issuance (issue 13): the data dir lives on a
// small tmpfs, mounted in a mount namespace private to this test process (it
// disappears with the process, also when the test is killed), and is filled
// (to the last byte, or to a few KiB) before `femtoguard cert issue` and
// `device import` run. What must hold: a clear error that says the disk is
// full, no certificate printed, nothing half-written (the store passes
// integrity_check, no certificate or device without its audit row, no audit
// row of a failed issuance, no partial key, certificate or temp file in the
// data dir, the CA files unchanged), and once space is back the same command
// succeeds.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "testing/harness.h"

namespace fg::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 120);
}

std::string Sql(const std::string& db, const std::string& query) {
  auto r = Run({"sqlite3", db, query});
  EXPECT_EQ(r.exit_code, 0) << query << ": " << r.out;
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Writes `path` until the file system refuses (ENOSPC): big blocks, then
// single bytes, so that not even one more byte fits; then gives `leave`
// bytes back.
std::string FillUp(const std::string& path, size_t leave = 0) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return std::string("cannot create filler: ") + std::strerror(errno);
  std::setvbuf(f, nullptr, _IONBF, 0);
  std::string block(64 * 1024, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  while (std::fwrite("x", 1, 1, f) == 1) {
  }
  std::fclose(f);
  if (leave > 0) {
    auto size = fs::file_size(path);
    if (size < leave || truncate(path.c_str(), static_cast<off_t>(size - leave)) != 0) return "cannot give space back";
  }
  return {};
}

// Every file under `dir` (relative path -> contents).
std::map<std::string, std::string> Files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = ReadAll(e.path().string());
  }
  return out;
}

class FullDiskTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_ = "needs root to mount a tmpfs (scripts/test runs as root in CI and on a fresh machine)";
      return;
    }
    // A mount namespace of this test process alone; the tmpfs dies with it.
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      setup_error_ = std::string("private mount namespace: ") + std::strerror(errno);
    }
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_EQ(setup_error_, "");
    disk_ = dir_ / "disk";
    fs::create_directories(disk_);
    ASSERT_EQ(mount("tmpfs", disk_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0700"), 0)
        << std::strerror(errno);
    mounted_ = true;
    data_ = disk_ + "/data";
    auto init = Fg({"init", "--data", data_});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    auto add = Fg({"device", "add", "--data", data_, "--device", "FG-0000001", "--status", "active"});
    ASSERT_EQ(add.exit_code, 0) << add.out;
  }

  // A fresh key and CSR for FG-0000001, outside the small disk.
  std::string Csr(const std::string& name) {
    std::string key = dir_ / (name + ".key"), csr = dir_ / (name + ".csr");
    auto r = fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=FG-0000001"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return csr;
  }

  void TearDown() override {
    if (mounted_) umount2(disk_.c_str(), MNT_DETACH);
  }

  // The store is whole and every certificate has its audit row.
  void ExpectConsistent() {
    std::string db = data_ + "/store.db";
    EXPECT_EQ(Sql(db, "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(Sql(db, "SELECT count(*) FROM certificates c WHERE NOT EXISTS "
                      "(SELECT 1 FROM audit a WHERE a.subject = c.serial AND a.action = 'cert.issue')"),
              "0");
  }

  TempDir dir_;
  std::string disk_, data_;
  bool mounted_ = false;
  static inline std::string skip_, setup_error_;
};

TEST_F(FullDiskTest, CertIssueFailsClearlyWritesNothingAndSucceedsOnceSpaceIsBack) {
  std::string db = data_ + "/store.db";
  auto before = Files(data_);
  // Full to the last byte (the store cannot even open its WAL), then with a
  // little room (the WAL index fits, the transaction's pages may not): each
  // attempt either fails saying the disk is full and leaves nothing, or, if
  // it fit, issued whole. The first must fail.
  std::string last_failed_csr;
  int issued = 0;
  for (int free_kib : {0, 36, 44}) {
    SCOPED_TRACE("free KiB: " + std::to_string(free_kib));
    std::string csr = Csr("try" + std::to_string(free_kib));
    std::string audit_before = Sql(db, "SELECT count(*) FROM audit");
    ASSERT_EQ(FillUp(disk_ + "/filler", free_kib * 1024), "");
    auto r = Fg({"cert", "issue", "--data", data_, "--device", "FG-0000001", "--csr", csr});
    fs::remove(disk_ + "/filler");  // sqlite3 needs a little room to check
    ExpectConsistent();
    if (r.exit_code == 0) {
      EXPECT_NE(free_kib, 0) << "issued on a disk with no byte free";
      EXPECT_THAT(r.out, HasSubstr("BEGIN CERTIFICATE"));
      ++issued;
    } else {
      EXPECT_THAT(r.out, HasSubstr("disk full"));
      EXPECT_THAT(r.out, Not(HasSubstr("BEGIN CERTIFICATE")));
      EXPECT_EQ(Sql(db, "SELECT count(*) FROM audit"), audit_before) << "no audit row of a failed issuance";
      last_failed_csr = csr;
    }
    EXPECT_THAT(r.out, Not(HasSubstr("PRIVATE KEY")));
    EXPECT_EQ(Sql(db, "SELECT count(*) FROM certificates"), std::to_string(issued));
    // No partial file; the CA files as they were.
    auto after = Files(data_);
    for (const auto& [name, contents] : after) {
      EXPECT_EQ(name.find(".tmp"), std::string::npos) << "partial file left: " << name;
      if (name.rfind("ca/", 0) == 0) {
        ASSERT_TRUE(before.count(name)) << "new CA file " << name;
        EXPECT_EQ(contents, before[name]) << name << " changed";
      }
    }
    for (const auto& [name, contents] : before) {
      if (name.rfind("ca/", 0) == 0) {
        EXPECT_TRUE(after.count(name)) << name << " lost";
      }
    }
  }
  ASSERT_FALSE(last_failed_csr.empty());

  // Recovery: the same request succeeds, recorded with its audit row.
  auto again = Fg({"cert", "issue", "--data", data_, "--device", "FG-0000001", "--csr", last_failed_csr});
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_EQ(Sql(db, "SELECT count(*) FROM certificates"), std::to_string(issued + 1));
  ExpectConsistent();
}

TEST_F(FullDiskTest, DeviceImportFailsClearlyAndSucceedsOnceSpaceIsBack) {
  std::string registry = dir_ / "registry.jsonl";
  std::string lines;
  for (int i = 2; i <= 200; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "FG-%07d", i);
    lines += std::string("{\"device\":\"") + id + "\",\"status\":\"active\",\"owner\":\"acct-" + std::to_string(i) +
             "\",\"mode\":\"closed\",\"site\":{\"lat\":37.4786,\"lon\":126.8647,\"radius_m\":150}}\n";
  }
  WriteAll(registry, lines);
  std::string db = data_ + "/store.db";
  ASSERT_EQ(FillUp(disk_ + "/filler"), "");

  auto full = Fg({"device", "import", "--data", data_, "--registry", registry});
  EXPECT_NE(full.exit_code, 0) << full.out;
  EXPECT_THAT(full.out, HasSubstr("disk full"));

  fs::remove(disk_ + "/filler");
  ExpectConsistent();
  // Import is one transaction: a full disk leaves none of the file behind
  // (FG-0000001, added by SetUp, is the only device).
  EXPECT_EQ(Sql(db, "SELECT count(*) FROM devices"), "1");
  EXPECT_EQ(Sql(db, "SELECT count(*) FROM audit WHERE action = 'device.add'"), "1");

  auto again = Fg({"device", "import", "--data", data_, "--registry", registry});
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Sql(db, "SELECT count(*) FROM devices"), "200");
  ExpectConsistent();
}

}  // namespace
}  // namespace fg::testing

namespace fg::testing {
namespace {

// `init` on a disk that fills at different points of its work (secrets, CA
// keys, store): each attempt fails saying so and leaves nothing behind, so
// the next init, once there is room, just works.
TEST_F(FullDiskTest, FailedInitLeavesNothingBehindAndTheNextInitWorks) {
  const std::string fresh = disk_ + "/fresh";
  ASSERT_EQ(FillUp(disk_ + "/filler"), "");
  const auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(disk_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const auto before = listing();
  int failed = 0;
  for (size_t free_kib : {0, 8, 24, 64, 160}) {
    fs::remove(disk_ + "/filler");
    ASSERT_EQ(FillUp(disk_ + "/filler", free_kib * 1024), "");
    auto r = Fg({"init", "--data", fresh});
    if (r.exit_code == 0) break;  // it fit: nothing more to see
    ++failed;
    EXPECT_THAT(r.out, ::testing::AnyOf(HasSubstr("No space left"), HasSubstr("disk full"))) << "free " << free_kib << " KiB: " << r.out;
    EXPECT_EQ(listing(), before) << "free " << free_kib << " KiB left something behind: " << r.out;
  }
  EXPECT_GE(failed, 1);
  fs::remove(disk_ + "/filler");
  fs::remove_all(fresh);
  auto ok = Fg({"init", "--data", fresh});
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_TRUE(fs::exists(fresh + "/secrets/pseudonym.key"));
  EXPECT_TRUE(fs::exists(fresh + "/store.db"));
}

}  // namespace
}  // namespace fg::testing
