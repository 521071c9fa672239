#include "response/response.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include <atomic>
#include <limits>
#include <thread>

#include "common/time.h"
#include "testing/harness.h"

namespace fg::response {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const AuditContext kOp{"test", "setup"};

// No syslog; a webhook only when named.
Options QuietOptions(std::string webhook_url = "", int webhook_timeout_ms = 1000) {
  Options o;
  o.webhook_url = std::move(webhook_url);
  o.webhook_timeout_ms = webhook_timeout_ms;
  o.syslog = false;
  return o;
}

class FakeTerminator : public admission::SessionTerminator {
 public:
  int TerminateDevice(std::string_view device, std::string_view) override {
    devices.emplace_back(device);
    return 1;
  }
  bool TerminateSession(std::string_view, std::string_view) override { return false; }
  std::vector<std::string> devices;
};

class ResponderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open("sqlite:" + dir_ / "store.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    Device d;
    d.id = "FG-1";
    d.status = DeviceStatus::kActive;
    ASSERT_TRUE(store_->AddDevice(d, kOp).ok());
    Certificate c;
    c.serial = "0A";
    c.device = "FG-1";
    c.key_fp = "sha256:k1";
    c.cert_fp = "sha256:c1";
    c.not_before_ms = NowMillis() - 1000;
    c.not_after_ms = NowMillis() + 86400000;
    c.issued_ms = c.not_before_ms;
    c.der = "x";
    ASSERT_TRUE(store_->RecordIssuedCertificate(c, kOp).ok());
  }

  static detect::Alert MakeAlert(std::string id, std::vector<std::string> actions,
                                 std::vector<std::string> approve = {}) {
    detect::Alert a;
    a.id = std::move(id);
    a.ts_ms = 1700000000000;
    a.rule = "cert.clone";
    a.severity = detect::Severity::kCritical;
    a.device = "FG-1";
    a.subjects = {"imsi:000000000000000000000001"};
    a.actions = std::move(actions);
    a.approve = std::move(approve);
    a.evidence_json = "{}";
    return a;
  }
  CertStatus CertStatusOf(const std::string& serial) { return store_->GetCertificate(serial)->status; }
  std::vector<Block> Blocks() { return store_->ListBlocks().value(); }

  fg::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ResponderTest, AutomaticActionsRunOnceByAlertId) {
  Responder r(*store_, QuietOptions());
  FakeTerminator term;
  r.SetTerminator(&term);
  auto first = r.Handle(MakeAlert("a1", {"revoke", "terminate", "block", "hold_payments"}));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  EXPECT_EQ(CertStatusOf("0A"), CertStatus::kRevoked);
  EXPECT_THAT(term.devices, ElementsAre("FG-1"));
  auto blocks = Blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].kind, "device");
  EXPECT_EQ(blocks[1].kind, "payments");
  EXPECT_EQ(blocks[1].value, "imsi:000000000000000000000001");
  auto stored = store_->GetAlert("a1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, AlertState::kActed);
  EXPECT_THAT(stored->actions_done, ElementsAre("revoke", "block", "terminate", "hold_payments"));

  const int64_t seq = store_->LatestChangeSeq().value();
  auto again = r.Handle(MakeAlert("a1", {"revoke", "terminate", "block", "hold_payments"}));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "a re-delivered alert must not act twice";
  EXPECT_EQ(term.devices.size(), 1u);
  EXPECT_EQ(store_->LatestChangeSeq().value(), seq) << "nothing may change on a duplicate";
}

TEST_F(ResponderTest, ApproveActionsWaitForTheOperator) {
  Responder r(*store_, QuietOptions());
  ASSERT_TRUE(r.Handle(MakeAlert("a2", {"notify"}, {"suspend"})).ok());
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive) << "suspend must wait for approval";
  EXPECT_EQ(store_->GetAlert("a2")->state, AlertState::kPendingApproval);

  ASSERT_TRUE(r.Approve("a2", AuditContext{"cli:op", "confirmed"}).ok());
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kSuspended);
  EXPECT_EQ(CertStatusOf("0A"), CertStatus::kHold);
  auto a = store_->GetAlert("a2").value();
  EXPECT_EQ(a.state, AlertState::kActed);
  EXPECT_THAT(a.actions_done, ElementsAre("suspend")) << "notify had no channel: skipped, not done";
  ASSERT_EQ(a.actions_skipped.size(), 1u);
  EXPECT_EQ(a.actions_skipped[0].action, "notify");
  EXPECT_EQ(r.Approve("a2", kOp).code(), StatusCode::kFailedPrecondition) << "approving twice must be refused";
  EXPECT_TRUE(r.Approve("nope", kOp).IsNotFound());
}

TEST_F(ResponderTest, DismissDropsPendingActionsAndDoesNothing) {
  Responder r(*store_, QuietOptions());
  ASSERT_TRUE(r.Handle(MakeAlert("a3", {}, {"revoke"})).ok());
  ASSERT_TRUE(r.Dismiss("a3", kOp).ok());
  EXPECT_EQ(CertStatusOf("0A"), CertStatus::kValid);
  EXPECT_EQ(store_->GetAlert("a3")->state, AlertState::kDismissed);
  EXPECT_EQ(r.Approve("a3", kOp).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(CertStatusOf("0A"), CertStatus::kValid);
}

TEST_F(ResponderTest, ActionsOnAnUnregisteredDeviceAreSkippedNotFatal) {
  Responder r(*store_, QuietOptions());
  auto a = MakeAlert("a4", {"revoke", "suspend", "block"});
  a.device = "FG-COUNTERFEIT";
  auto h = r.Handle(a);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  auto stored = store_->GetAlert("a4").value();
  // Nothing to revoke or suspend, but the identity is blocked at admission.
  EXPECT_THAT(stored.actions_done, ElementsAre("block"));
  EXPECT_EQ(Blocks().at(0).value, "FG-COUNTERFEIT");
}

TEST_F(ResponderTest, NotifyPostsTheAlertJsonToTheWebhook) {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(lfd, 4);
  std::string received;
  std::thread server([&] {
    // The webhook first connects once without a request (its reachability
    // probe at start): skip empty connections.
    int fd = -1;
    std::string req;
    while (req.empty()) {
      if (fd >= 0) ::close(fd);
      fd = ::accept(lfd, nullptr, nullptr);
      char buf[8192];
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        auto hdr_end = req.find("\r\n\r\n");
        if (hdr_end != std::string::npos && req.find("}\n", hdr_end) != std::string::npos) break;
        if (hdr_end != std::string::npos && req.back() == '}') break;
      }
    }
    received = req;
    const char* resp = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!::write(fd, resp, strlen(resp));
    ::close(fd);
  });
  Responder r(*store_, QuietOptions("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/hook", 2000));
  ASSERT_TRUE(r.Handle(MakeAlert("a5", {"notify"})).ok());
  r.FlushNotifications();
  server.join();
  ::close(lfd);
  EXPECT_THAT(received, HasSubstr("POST /hook"));
  EXPECT_THAT(received, HasSubstr("X-Femtoguard-Alert-Id: a5\r\n"));
  EXPECT_THAT(received, HasSubstr("X-Femtoguard-Signature: t="));
  EXPECT_THAT(received, HasSubstr("\"rule\":\"cert.clone\""));
  EXPECT_THAT(received, HasSubstr("\"id\":\"a5\""));
}

// A response is never dropped: while another process holds the store's
// write lock, the decision is enforced in memory at once, the writes wait
// and are retried, and they land once the lock is gone.
TEST_F(ResponderTest, SubmitEnforcesAtOnceAndRetriesUntilTheStoreTakesTheWrites) {
  std::atomic<int> enforced{0}, landed{0};
  Options o = QuietOptions();
  o.enforce = [&](const detect::Alert& a) {
    EXPECT_EQ(a.id, "s1");
    ++enforced;
  };
  o.landed = [&](const detect::Alert&) { ++landed; };
  o.retry_initial_ms = 20;
  o.retry_max_ms = 200;
  Responder r(*store_, o);

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "store.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  r.Submit(MakeAlert("s1", {"revoke", "block", "hold_payments"}), /*seq=*/7);
  EXPECT_EQ(enforced.load(), 1) << "in force before any write";
  EXPECT_EQ(r.LowestPendingSeq(), 7u);
  EXPECT_FALSE(r.WaitIdle(6000)) << "nothing can land while the lock is held";
  EXPECT_EQ(landed.load(), 0);
  EXPECT_EQ(r.pending(), 1u);
  EXPECT_EQ(r.LowestPendingSeq(), 7u) << "the journal must not move past it";

  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(r.WaitIdle(20000));
  EXPECT_EQ(landed.load(), 1);
  EXPECT_EQ(r.LowestPendingSeq(), std::numeric_limits<uint64_t>::max());
  auto stored = store_->GetAlert("s1");
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_THAT(stored->actions_done, ElementsAre("revoke", "block", "hold_payments"));
  EXPECT_EQ(CertStatusOf("0A"), CertStatus::kRevoked);
  EXPECT_EQ(Blocks().size(), 2u);
  EXPECT_EQ(enforced.load(), 1);
}

// A crash after the actions but before the alert row: the replayed alert
// runs its actions again, which change nothing, and is stored once.
TEST_F(ResponderTest, ActionsDoneBeforeACrashAreNotDoneTwice) {
  Responder r(*store_, QuietOptions());
  ASSERT_TRUE(store_->AddBlock(Block{"device", "FG-1", "a9", "cert.clone", NowMillis()}, kOp).ok());
  auto handled = r.Handle(MakeAlert("a9", {"block"}));
  ASSERT_TRUE(handled.ok()) << handled.status().ToString();
  EXPECT_TRUE(*handled);
  EXPECT_EQ(Blocks().size(), 1u);
  auto again = r.Handle(MakeAlert("a9", {"block"}));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

}  // namespace
}  // namespace fg::response
