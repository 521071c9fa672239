// Store methods of the alert workflow (issue 14): the SIEM cursor
// (ListAlertsSince), GetBlock, skipped actions and the false-positive flag,
// and the version 5 migration that numbers existing alerts.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>
#include <string>
#include <vector>

#include "store/store.h"
#include "testing/harness.h"

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const AuditContext kOp{"cli:root", "test"};

StoredAlert MakeAlert(const std::string& id, UnixMillis ts, const std::string& severity = "high") {
  StoredAlert a;
  a.id = id;
  a.ts_ms = ts;
  a.rule = "cert.clone";
  a.severity = severity;
  a.device = "FG-1";
  a.json = "{\"id\":\"" + id + "\"}";
  a.state = AlertState::kActed;
  return a;
}

class AlertWorkflowStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    store_.reset();
    auto s = Store::Open("sqlite:" + path_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::vector<std::string> Poll(int64_t* cursor, size_t limit) {
    auto page = store_->ListAlertsSince(*cursor, limit);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> ids;
    for (const StoredAlert& a : *page) {
      EXPECT_GT(a.seq, *cursor);
      *cursor = a.seq;
      ids.push_back(a.id);
    }
    return ids;
  }

  fg::testing::TempDir dir_;
  std::string path_ = dir_ / "store.db";
  std::unique_ptr<Store> store_;
};

TEST_F(AlertWorkflowStoreTest, CursorGivesEveryAlertExactlyOnceAcrossPagesAndPolls) {
  // Event times out of order: the cursor follows insertion, not ts.
  ASSERT_TRUE(store_->AddAlert(MakeAlert("a", 300), kOp).ok());
  ASSERT_TRUE(store_->AddAlert(MakeAlert("b", 100), kOp).ok());
  ASSERT_TRUE(store_->AddAlert(MakeAlert("c", 200), kOp).ok());
  int64_t cursor = 0;
  EXPECT_THAT(Poll(&cursor, 2), ElementsAre("a", "b"));
  // Raised between two polls, with an older event time than all.
  ASSERT_TRUE(store_->AddAlert(MakeAlert("d", 50), kOp).ok());
  EXPECT_THAT(Poll(&cursor, 2), ElementsAre("c", "d"));
  EXPECT_THAT(Poll(&cursor, 2), IsEmpty());
  // A duplicate id is not a new alert; an update does not move it.
  ASSERT_FALSE(store_->AddAlert(MakeAlert("a", 300), kOp).value());
  auto a = store_->GetAlert("a").value();
  a.state = AlertState::kDismissed;
  ASSERT_TRUE(store_->UpdateAlert(a, kOp).ok());
  EXPECT_THAT(Poll(&cursor, 10), IsEmpty());
  ASSERT_TRUE(store_->AddAlert(MakeAlert("e", 400), kOp).ok());
  EXPECT_THAT(Poll(&cursor, 10), ElementsAre("e"));
  // The cursor survives a reopen (it is stored, not the rowid).
  Open();
  EXPECT_THAT(Poll(&cursor, 10), IsEmpty());
  int64_t from_start = 0;
  EXPECT_THAT(Poll(&from_start, 0), ElementsAre("a", "b", "c", "d", "e"));
}

TEST_F(AlertWorkflowStoreTest, SkippedActionsAndFalsePositiveRoundTrip) {
  StoredAlert a = MakeAlert("s1", 1);
  a.actions_done = {"block"};
  a.actions_skipped = {{"notify", "no notification channel configured"},
                       {"terminate", "no SeGW connected"}};
  ASSERT_TRUE(store_->AddAlert(a, kOp).ok());
  auto got = store_->GetAlert("s1").value();
  ASSERT_EQ(got.actions_skipped.size(), 2u);
  EXPECT_EQ(got.actions_skipped[1].action, "terminate");
  EXPECT_EQ(got.actions_skipped[1].reason, "no SeGW connected");
  EXPECT_FALSE(got.false_positive);
  got.false_positive = true;
  got.state = AlertState::kDismissed;
  got.actions_skipped.push_back({"hold_payments", "already held"});
  ASSERT_TRUE(store_->UpdateAlert(got, kOp).ok());
  auto again = store_->GetAlert("s1").value();
  EXPECT_TRUE(again.false_positive);
  EXPECT_EQ(again.actions_skipped.size(), 3u);
  EXPECT_EQ(again.seq, got.seq);
}

TEST_F(AlertWorkflowStoreTest, ListAlertsFiltersBySeverity) {
  ASSERT_TRUE(store_->AddAlert(MakeAlert("h", 1, "high"), kOp).ok());
  ASSERT_TRUE(store_->AddAlert(MakeAlert("c", 2, "critical"), kOp).ok());
  AlertFilter f;
  f.severity = "critical";
  auto got = store_->ListAlerts(f).value();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "c");
  f.severity = "low";
  EXPECT_THAT(store_->ListAlerts(f).value(), IsEmpty());
}

TEST_F(AlertWorkflowStoreTest, GetBlockFindsOnlyThatBlock) {
  ASSERT_TRUE(store_->AddBlock(Block{"payments", "imsi:01", "a1", "r", 0}, kOp).ok());
  auto b = store_->GetBlock("payments", "imsi:01");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->alert_id, "a1");
  EXPECT_TRUE(store_->GetBlock("payments", "imsi:02").status().IsNotFound());
  EXPECT_TRUE(store_->GetBlock("device", "imsi:01").status().IsNotFound());
  ASSERT_TRUE(store_->RemoveBlock("payments", "imsi:01", kOp).ok());
  EXPECT_TRUE(store_->GetBlock("payments", "imsi:01").status().IsNotFound());
}

// A store written before version 5 gets its alerts numbered in the order
// they were stored, and new alerts continue after them.
TEST_F(AlertWorkflowStoreTest, MigrationNumbersExistingAlertsInInsertionOrder) {
  ASSERT_TRUE(store_->AddAlert(MakeAlert("first", 900), kOp).ok());
  ASSERT_TRUE(store_->AddAlert(MakeAlert("second", 100), kOp).ok());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db,
                        "DROP INDEX alerts_seq; ALTER TABLE alerts DROP COLUMN seq; "
                        "ALTER TABLE alerts DROP COLUMN actions_skipped; ALTER TABLE alerts DROP "
                        "COLUMN false_positive; "
                        "DROP TABLE nodes; ALTER TABLE devices DROP COLUMN radio; "  // v9 (issue 17)
                        "DELETE FROM schema_version WHERE version >= 5;",
                        nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
  Open();
  int64_t cursor = 0;
  EXPECT_THAT(Poll(&cursor, 0), ElementsAre("first", "second"));
  EXPECT_EQ(cursor, 2);
  ASSERT_TRUE(store_->AddAlert(MakeAlert("third", 1), kOp).ok());
  EXPECT_THAT(Poll(&cursor, 0), ElementsAre("third"));
}

}  // namespace
}  // namespace fg
