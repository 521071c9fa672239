// The durable queue the SIEM export and the webhook share: its on-disk
// layout (which an upgrade must find again), order and batching, one
// delivery per pending id, all-or-nothing retries, an unreadable file that
// must not block the rest, and a full disk that must not lose an alert.
// Delivery itself is a function here; siem_test.cc and webhook_test.cc (and
// the integration tests) drive the real senders against real peers.

#include "response/outbox.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "testing/harness.h"

namespace fg::response {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

// What the deliver function saw: one entry per batch, "id=payload,...".
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> batches;
  int fail_next = 0;  // this many calls fail before one succeeds

  Outbox::Deliver Fn() {
    return [this](const std::vector<Outbox::Message>& batch) {
      std::lock_guard lock(mutex);
      std::string text;
      for (const Outbox::Message& m : batch) text += (text.empty() ? "" : ",") + m.id + "=" + m.payload;
      batches.push_back(text);
      if (fail_next > 0) {
        --fail_next;
        return Status::Unavailable("down");
      }
      return Status::Ok();
    };
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mutex);
    return batches;
  }
};

OutboxOptions Options(const fs::path& dir, size_t max_batch) {
  OutboxOptions o;
  o.dir = dir;
  o.suffix = ".msg";
  o.log_prefix = "test outbox";
  o.queue_name = "test queue";
  o.max_batch = max_batch;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 20;
  return o;
}

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(OutboxTest, OneFilePerAlertInTheLayoutAnUpgradeFindsAndReloadedInOrder) {
  fg::testing::TempDir tmp;
  const fs::path dir = tmp.path() / "q";
  {
    auto box = Outbox::Open(Options(dir, 10));
    ASSERT_TRUE(box.ok()) << box.status().ToString();
    (*box)->Enqueue("a1", "first");
    (*box)->Enqueue("b", "second");
    (*box)->Enqueue("a1", "again");  // still pending: not queued twice
    EXPECT_EQ((*box)->pending(), 2u);
    // Never started: nothing is sent, everything stays on disk.
  }
  EXPECT_THAT(Names(dir), ElementsAre("0000000000000001-6131.msg", "0000000000000002-62.msg"));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "0000000000000001-6131.msg").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "alerts are for the owner only";
  EXPECT_EQ(*ReadFile(dir / "0000000000000001-6131.msg"), "first");
  // A file that is not a queue file is left alone.
  ASSERT_TRUE(WriteFileAtomic(dir / "notes.txt", "x", 0600).ok());

  auto box = Outbox::Open(Options(dir, 10));
  ASSERT_TRUE(box.ok());
  EXPECT_EQ((*box)->pending(), 2u);
  (*box)->Enqueue("c", "third");  // numbered after what was reloaded
  EXPECT_THAT(Names(dir), ElementsAre("0000000000000001-6131.msg", "0000000000000002-62.msg",
                                      "0000000000000003-63.msg", "notes.txt"));
  Recorder r;
  (*box)->StartSending(r.Fn(), "back");
  ASSERT_TRUE((*box)->Flush(10000));
  EXPECT_THAT(r.Seen(), ElementsAre("a1=first,b=second,c=third"));
  EXPECT_THAT(Names(dir), ElementsAre("notes.txt")) << "delivered files are removed";
}

TEST(OutboxTest, AFailedBatchIsRetriedWholeAndBatchesRespectTheirSize) {
  fg::testing::TempDir tmp;
  auto box = Outbox::Open(Options(tmp.path() / "q", 2));
  ASSERT_TRUE(box.ok());
  for (const char* id : {"1", "2", "3"}) (*box)->Enqueue(id, std::string("p") + id);
  Recorder r;
  r.fail_next = 2;
  (*box)->StartSending(r.Fn(), "back");
  ASSERT_TRUE((*box)->Flush(10000));
  EXPECT_THAT(r.Seen(), ElementsAre("1=p1,2=p2", "1=p1,2=p2", "1=p1,2=p2", "3=p3"));
  EXPECT_EQ((*box)->pending(), 0u);
  // Delivered, so no longer pending: the same id is queued (and sent) again.
  (*box)->Enqueue("1", "p1 later");
  ASSERT_TRUE((*box)->Flush(10000));
  EXPECT_EQ(r.Seen().back(), "1=p1 later");
}

TEST(OutboxTest, FlushTimesOutWhileNothingIsAccepted) {
  fg::testing::TempDir tmp;
  auto box = Outbox::Open(Options(tmp.path() / "q", 1));
  ASSERT_TRUE(box.ok());
  (*box)->Enqueue("x", "p");
  Recorder r;
  r.fail_next = 1 << 30;
  (*box)->StartSending(r.Fn(), "back");
  EXPECT_FALSE((*box)->Flush(200));
  EXPECT_EQ((*box)->pending(), 1u);
  EXPECT_EQ(Names(tmp.path() / "q").size(), 1u) << "kept on disk for the next try";
}

TEST(OutboxTest, AnUnreadableQueueFileIsSkippedAndDoesNotBlockTheRest) {
  fg::testing::TempDir tmp;
  const fs::path dir = tmp.path() / "q";
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir / "0000000000000001-61.msg", "pa", 0600).ok());
  // Named like a queue file, but a link to nothing: it cannot be read.
  fs::create_symlink(dir / "gone", dir / "0000000000000002-62.msg");
  ASSERT_TRUE(WriteFileAtomic(dir / "0000000000000003-63.msg", "pc", 0600).ok());
  auto box = Outbox::Open(Options(dir, 10));
  ASSERT_TRUE(box.ok());
  EXPECT_EQ((*box)->pending(), 3u);
  Recorder r;
  (*box)->StartSending(r.Fn(), "back");
  ASSERT_TRUE((*box)->Flush(10000));
  EXPECT_THAT(r.Seen(), ElementsAre("a=pa,c=pc")) << "b is never delivered, a and c are";
  EXPECT_EQ((*box)->pending(), 0u);
  EXPECT_TRUE(Names(dir).empty()) << "not tried again at the next start either";
}

TEST(OutboxTest, AnAlertThatCannotBeWrittenToDiskIsStillSentFromMemory) {
  fg::testing::TempDir tmp;
  const fs::path dir = tmp.path() / "q";
  auto box = Outbox::Open(Options(dir, 10));
  ASSERT_TRUE(box.ok());
  fs::remove_all(dir);  // every write now fails
  (*box)->Enqueue("m", "from memory");
  EXPECT_EQ((*box)->pending(), 1u);
  EXPECT_FALSE(fs::exists(dir));
  Recorder r;
  (*box)->StartSending(r.Fn(), "back");
  ASSERT_TRUE((*box)->Flush(10000));
  EXPECT_THAT(r.Seen(), ElementsAre("m=from memory"));
}

TEST(OutboxTest, OpenRefusesAQueuePathThatIsAFile) {
  fg::testing::TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.path() / "q", "x", 0600).ok());
  auto box = Outbox::Open(Options(tmp.path() / "q", 1));
  ASSERT_FALSE(box.ok());
  EXPECT_EQ(box.status().message(), "test queue " + (tmp.path() / "q").string() + " is not a directory");
}

}  // namespace
}  // namespace fg::response
