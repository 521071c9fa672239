#include "node/change_follower.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "store/store.h"
#include "testing/harness.h"

namespace fg {
namespace {

const AuditContext kOperator{"cli:root", "change follower test"};

std::string DeviceId(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "FG-%07d", i);
  return buf;
}

// Records every change it is handed, page by page.
class Recorder final : public ChangeSubscriber {
 public:
  explicit Recorder(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Status OnChanges(std::span<const Change> changes) override {
    ++pages;
    for (const Change& c : changes) seen.push_back(c);
    return fail ? Status::Unavailable("told to fail") : Status::Ok();
  }
  std::vector<Change> seen;
  int pages = 0;
  bool fail = false;

 private:
  std::string name_;
};

class ChangeFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open("sqlite:" + (tmp_ / "store.db"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Adds devices [from, to): one kDevice change each.
  void AddDevices(int from, int to) {
    for (int i = from; i < to; ++i) {
      Device d;
      d.id = DeviceId(i);
      d.owner = "acct";
      ASSERT_TRUE(store_->AddDevice(d, kOperator).ok()) << d.id;
    }
  }
  // Every change in the feed after `after`, straight from the store.
  std::vector<Change> FeedAfter(int64_t after) {
    auto all = store_->ChangesSince(after, 1'000'000);
    EXPECT_TRUE(all.ok());
    return all.ok() ? *all : std::vector<Change>{};
  }
  static void ExpectSame(const std::vector<Change>& got, const std::vector<Change>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].seq, want[i].seq) << i;
      EXPECT_EQ(got[i].key, want[i].key) << i;
      EXPECT_EQ(got[i].kind, want[i].kind) << i;
    }
  }
  static uint64_t Errors(std::string_view subscriber) {
    return Metrics::Global()
        .GetCounter("femtoguard_change_subscriber_errors_total", "subscriber=\"" + std::string(subscriber) + "\"")
        .Value();
  }

  testing::TempDir tmp_;
  std::unique_ptr<Store> store_;
};

TEST_F(ChangeFollowerTest, EverySubscriberSeesEveryChangeOnceInOrderAcrossPages) {
  AddDevices(0, 3);  // before the follower's start: not delivered
  auto start = store_->LatestChangeSeq();
  ASSERT_TRUE(start.ok());
  ChangeFollower follower(*store_, *start, {.page_size = 4, .poll_ms = 10});
  Recorder a("a"), b("b");
  follower.Subscribe(a);
  follower.Subscribe(b);

  AddDevices(3, 13);  // 10 changes: pages of 4, 4, 2
  ASSERT_TRUE(follower.Sync().ok());
  const std::vector<Change> want = FeedAfter(*start);
  ASSERT_EQ(want.size(), 10u);
  EXPECT_EQ(want.front().key, DeviceId(3));
  ExpectSame(a.seen, want);
  ExpectSame(b.seen, want);
  EXPECT_EQ(a.pages, 3);
  EXPECT_EQ(follower.last_seq(), want.back().seq);

  // Nothing new: nothing handed over again.
  ASSERT_TRUE(follower.Sync().ok());
  EXPECT_EQ(a.seen.size(), 10u);
  EXPECT_EQ(b.pages, 3);

  AddDevices(13, 17);  // exactly one full page, then an empty read
  ASSERT_TRUE(follower.Sync().ok());
  ExpectSame(a.seen, FeedAfter(*start));
  ExpectSame(b.seen, FeedAfter(*start));
}

TEST_F(ChangeFollowerTest, AFailingSubscriberDoesNotStarveTheOthers) {
  ChangeFollower follower(*store_, 0, {.page_size = 3, .poll_ms = 10});
  Recorder failing("failing-test-subscriber"), healthy("healthy-test-subscriber");
  failing.fail = true;
  follower.Subscribe(failing);  // first, so that its error comes before the other is called
  follower.Subscribe(healthy);
  const uint64_t errors_before = Errors("failing-test-subscriber");

  AddDevices(0, 7);  // pages of 3, 3, 1
  EXPECT_TRUE(follower.Sync().ok());  // a subscriber's error is not the follower's
  const std::vector<Change> want = FeedAfter(0);
  ExpectSame(healthy.seen, want);
  // The failed pages are not replayed: the failing subscriber got each once.
  ExpectSame(failing.seen, want);
  EXPECT_EQ(Errors("failing-test-subscriber"), errors_before + 3);
  EXPECT_EQ(Errors("healthy-test-subscriber"), 0u);
  EXPECT_EQ(follower.last_seq(), want.back().seq);

  // Once it recovers, it gets the next changes, and only those.
  failing.fail = false;
  AddDevices(7, 9);
  EXPECT_TRUE(follower.Sync().ok());
  ExpectSame(failing.seen, FeedAfter(0));
  ExpectSame(healthy.seen, FeedAfter(0));
  EXPECT_EQ(Errors("failing-test-subscriber"), errors_before + 3);
}

TEST_F(ChangeFollowerTest, ChangesMadeWhileStoppedAreDeliveredAfterARestartFromItsSeq) {
  Recorder first_run("r1");
  int64_t seq = 0;
  {
    ChangeFollower follower(*store_, 0, {.page_size = 5, .poll_ms = 5});
    follower.Subscribe(first_run);
    std::thread thread([&follower] { follower.Run(); });
    AddDevices(0, 6);
    // Polled, not slept: Run picks the changes up on its own.
    for (int i = 0; i < 2000 && follower.last_seq() < FeedAfter(0).back().seq; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    follower.Stop();
    thread.join();
    seq = follower.last_seq();
  }
  ExpectSame(first_run.seen, FeedAfter(0));
  ASSERT_EQ(seq, FeedAfter(0).back().seq);

  AddDevices(6, 18);  // while no follower runs
  Recorder second_run("r2");
  ChangeFollower follower(*store_, seq, {.page_size = 5, .poll_ms = 5});
  follower.Subscribe(second_run);
  ASSERT_TRUE(follower.Sync().ok());
  const std::vector<Change> missed = FeedAfter(seq);
  ASSERT_EQ(missed.size(), 12u);
  ExpectSame(second_run.seen, missed);  // all of them, none of the first run's
  EXPECT_EQ(second_run.pages, 3);
}

TEST_F(ChangeFollowerTest, SyncHooksRunAroundACompleteRead) {
  ChangeFollower follower(*store_, 0);
  std::vector<std::string> calls;
  follower.Subscribe(MakeChangeSubscriber("hooks-fn", [&calls](std::span<const Change> page) {
    calls.push_back("page:" + std::to_string(page.size()));
    return Status::Ok();
  }));
  follower.SetSyncHooks([&calls] { calls.push_back("before"); }, [&calls] { calls.push_back("after"); });
  AddDevices(0, 2);
  ASSERT_TRUE(follower.Sync().ok());
  EXPECT_EQ(calls, (std::vector<std::string>{"before", "page:2", "after"}));
}

}  // namespace
}  // namespace fg
