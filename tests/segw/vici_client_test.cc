// The vici client against a fake charon on a unix socket: commands, streamed
// commands, events, timeouts and a broken peer.

#include "segw/vici_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "segw/fake_charon.h"
#include "testing/harness.h"

namespace fg::segw::vici {
namespace {

using segw::testing::FakeCharon;
using segw::testing::FakeSa;
using segw::testing::WaitFor;
using ::testing::HasSubstr;

class ViciClientTest : public ::testing::Test {
 protected:
  ViciClientTest() : charon_(dir_ / "charon.vici") {}

  std::unique_ptr<Client> Connect() {
    auto c = Client::Connect(
        charon_.path(), 2000,
        [this](const std::string& name, const Section& m) {
          std::lock_guard lock(mutex_);
          events_.emplace_back(name, m);
        },
        [this](const Status& why) {
          std::lock_guard lock(mutex_);
          closed_ = why.ToString();
        });
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  size_t EventCount() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }
  std::string Closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  fg::testing::TempDir dir_;
  FakeCharon charon_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, Section>> events_;
  std::string closed_;
};

TEST_F(ViciClientTest, VersionRequest) {
  auto c = Connect();
  ASSERT_TRUE(c);
  auto v = c->Request("version", {}, 2000);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Get("daemon"), "charon");
  EXPECT_EQ(v->Get("version"), "5.9.8-fake");
  EXPECT_TRUE(c->open());
}

TEST_F(ViciClientTest, UnknownCommandAndEventAreNotFoundAndKeepTheConnection) {
  auto c = Connect();
  ASSERT_TRUE(c);
  auto r = c->Request("no-such-command", {}, 2000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  Status s = c->Register("no-such-event", 2000);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(c->open());
  EXPECT_TRUE(c->Request("version", {}, 2000).ok());
}

TEST_F(ViciClientTest, StreamedCommandGathersItsEventsOnly) {
  charon_.AddSa({.uniqueid = "1", .remote_id = "CN=FG-1", .remote_host = "10.0.0.1", .spi_i = "a", .spi_r = "b"});
  charon_.AddSa({.uniqueid = "2", .remote_id = "CN=FG-2", .remote_host = "10.0.0.2", .spi_i = "c", .spi_r = "d"});
  auto c = Connect();
  ASSERT_TRUE(c);
  auto listed = c->StreamRequest("list-sas", {}, "list-sa", 2000);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->events.size(), 2u);
  EXPECT_EQ(listed->events[0].Child("segw")->Get("remote-id"), "CN=FG-1");
  EXPECT_EQ(listed->events[1].Child("segw")->Get("uniqueid"), "2");
  // The stream went to the caller, not to the event handler; and the
  // client unregistered afterwards.
  EXPECT_EQ(EventCount(), 0u);
  EXPECT_FALSE(charon_.Registered("list-sa"));
  auto cmds = charon_.Commands();
  EXPECT_THAT(cmds, ::testing::ElementsAre("list-sas"));
}

TEST_F(ViciClientTest, RegisteredEventsReachTheHandler) {
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Register("ike-updown", 2000).ok());
  charon_.BringUp({.uniqueid = "7", .remote_id = "CN=FG-7", .remote_host = "10.0.0.7", .spi_i = "1", .spi_r = "2"});
  ASSERT_TRUE(WaitFor([&] { return EventCount() == 1; }));
  {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(events_[0].first, "ike-updown");
    EXPECT_EQ(events_[0].second.Get("up"), "yes");
    EXPECT_EQ(events_[0].second.Child("segw")->Get("uniqueid"), "7");
  }
  // Unregistered: no more events.
  ASSERT_TRUE(c->Unregister("ike-updown", 2000).ok());
  charon_.BringDown("7");
  ASSERT_TRUE(c->Request("version", {}, 2000).ok());  // anything sent before this answer has arrived
  EXPECT_EQ(EventCount(), 1u);
}

TEST_F(ViciClientTest, TimeoutClosesTheConnectionForGood) {
  auto c = Connect();
  ASSERT_TRUE(c);
  charon_.SetSilent(true);
  auto r = c->Request("version", {}, 200);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("within 200 ms"));
  EXPECT_FALSE(c->open());
  charon_.SetSilent(false);
  // A late answer must not be taken for the next command's: the connection is gone.
  auto again = c->Request("version", {}, 200);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(WaitFor([&] { return !Closed().empty(); }));
}

TEST_F(ViciClientTest, GarbageFromThePeerClosesTheConnectionWithAReason) {
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Request("version", {}, 2000).ok());
  charon_.SendRaw(std::string("\x00\x00\x00\x02\x01\x09", 6));  // CMD_RESPONSE with element type 9
  ASSERT_TRUE(WaitFor([&] { return !c->open() && !Closed().empty(); }));
  EXPECT_THAT(Closed(), HasSubstr("unknown element type 9"));
  EXPECT_FALSE(c->Request("version", {}, 200).ok());
}

TEST_F(ViciClientTest, OversizedLengthClosesTheConnection) {
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Request("version", {}, 2000).ok());  // the fake has accepted us
  charon_.SendRaw(std::string("\x7f\xff\xff\xff", 4));
  ASSERT_TRUE(WaitFor([&] { return !c->open() && !Closed().empty(); }));
  EXPECT_THAT(Closed(), HasSubstr("exceeds the limit"));
}

TEST_F(ViciClientTest, PeerGoingAwayIsReportedAndLaterCallsFail) {
  auto c = Connect();
  ASSERT_TRUE(c);
  charon_.Shutdown();
  ASSERT_TRUE(WaitFor([&] { return !c->open() && !Closed().empty(); }));
  EXPECT_THAT(Closed(), ::testing::StartsWith("unavailable: vici: "));
  auto r = c->Request("version", {}, 500);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST_F(ViciClientTest, ConnectFailsClearly) {
  auto none = Client::Connect(dir_ / "nobody-here.vici", 500, {}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("nobody-here.vici"));
  auto too_long = Client::Connect("/" + std::string(200, 'x'), 500, {}, {});
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ViciClientTest, ConcurrentCallersAreSerialised) {
  auto c = Connect();
  ASSERT_TRUE(c);
  charon_.AddSa({.uniqueid = "1", .remote_id = "CN=FG-1", .remote_host = "10.0.0.1", .spi_i = "a", .spi_r = "b"});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto v = c->Request("version", {}, 2000);
        auto l = c->StreamRequest("list-sas", {}, "list-sa", 2000);
        if (v.ok() && v->Get("daemon") == "charon" && l.ok() && l->events.size() == 1) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace fg::segw::vici
