// The admission decision log rotates by size with a bounded number of kept
// files (issue 13), never splitting a line, and keeps appending across
// restarts.

#include "admission/decision_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "testing/harness.h"

namespace fg::admission {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

AdmissionRequest Req(int i) {
  AdmissionRequest r;
  r.device = "FG-" + std::to_string(1000000 + i);
  r.session = std::to_string(100 + i);  // every line the same length
  r.src_ip = "198.51.100.7";
  r.endpoint = "segw1:4500";
  r.segw = "segw-a";
  return r;
}

Decision Deny() {
  Decision d;
  d.verdict = Verdict::kDeny;
  d.reasons = {"cert.clone"};
  return d;
}

class DecisionLogTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& suffix = "") const { return (tmp_.path() / "log" / "admission.jsonl").string() + suffix; }
  testing::TempDir tmp_;
};

TEST_F(DecisionLogTest, RotatesBySizeAndKeepsAtMostKeepFiles) {
  const size_t line_bytes = DecisionLog::Format(Req(0), 0, Deny()).size() + 1;
  DecisionLogRotation rotation;
  rotation.max_bytes = 10 * line_bytes;  // ten lines a file
  rotation.keep = 2;
  auto log = DecisionLog::Open(Path(), rotation);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  // 45 lines in uneven batches: files of 10, the newest 5 in the live file.
  int n = 0;
  for (int batch : {7, 1, 13, 3, 20, 1}) {
    for (int i = 0; i < batch; ++i, ++n) (*log)->Append(Req(n), 0, Deny());
    ASSERT_TRUE((*log)->Flush().ok());
  }
  ASSERT_EQ(n, 45);
  auto live = Lines(Path()), one = Lines(Path(".1")), two = Lines(Path(".2"));
  EXPECT_EQ(live.size(), 5u);
  EXPECT_EQ(one.size(), 10u);
  EXPECT_EQ(two.size(), 10u);
  EXPECT_FALSE(fs::exists(Path(".3"))) << "keep = 2";
  for (const auto* f : {&live, &one, &two}) {
    EXPECT_LE(fs::file_size(f == &live ? Path() : f == &one ? Path(".1") : Path(".2")), rotation.max_bytes);
  }
  // Oldest first across .2, .1, live: lines 20..44, whole and in order.
  std::vector<std::string> all;
  for (const auto* f : {&two, &one, &live}) all.insert(all.end(), f->begin(), f->end());
  ASSERT_EQ(all.size(), 25u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], DecisionLog::Format(Req(20 + static_cast<int>(i)), 0, Deny()));
}

TEST_F(DecisionLogTest, ReopeningContinuesTheFileAndItsSize) {
  const size_t line_bytes = DecisionLog::Format(Req(0), 0, Deny()).size() + 1;
  DecisionLogRotation rotation;
  rotation.max_bytes = 4 * line_bytes;
  rotation.keep = 1;
  for (int run = 0; run < 2; ++run) {
    auto log = DecisionLog::Open(Path(), rotation);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) (*log)->Append(Req(run * 3 + i), 0, Deny());
  }  // destruction flushes
  // 6 lines: the first restart found 3 lines already there, so 1 more fit.
  EXPECT_EQ(Lines(Path(".1")).size(), 4u);
  EXPECT_EQ(Lines(Path()).size(), 2u);
}

TEST_F(DecisionLogTest, ALineLongerThanMaxBytesIsWrittenWholeInAFileOfItsOwn) {
  DecisionLogRotation rotation;
  rotation.max_bytes = 16;
  rotation.keep = 3;
  auto log = DecisionLog::Open(Path(), rotation);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i) (*log)->Append(Req(i), 0, Deny());
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(Lines(Path()), std::vector<std::string>{DecisionLog::Format(Req(2), 0, Deny())});
  EXPECT_EQ(Lines(Path(".1")), std::vector<std::string>{DecisionLog::Format(Req(1), 0, Deny())});
  EXPECT_EQ(Lines(Path(".2")), std::vector<std::string>{DecisionLog::Format(Req(0), 0, Deny())});
}

TEST_F(DecisionLogTest, MaxBytesZeroNeverRotates) {
  DecisionLogRotation rotation;
  rotation.max_bytes = 0;
  auto log = DecisionLog::Open(Path(), rotation);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 100; ++i) (*log)->Append(Req(i), 0, Deny());
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(Lines(Path()).size(), 100u);
  EXPECT_FALSE(fs::exists(Path(".1")));
}

TEST(ConfigLogTest, RotationSettingsRoundTripAndAreChecked) {
  fg::Config c;
  c.log_admission_max_mb = 8;
  c.log_admission_keep = 3;
  auto back = fg::Config::FromYaml(c.ToYaml());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->log_admission_max_mb, 8);
  EXPECT_EQ(back->log_admission_keep, 3);
  auto bad = fg::Config::FromYaml("log:\n  admission_keep: -1\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().ToString(), ::testing::HasSubstr("log.admission_keep"));
}

}  // namespace
}  // namespace fg::admission
