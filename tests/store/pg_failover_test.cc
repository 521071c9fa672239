// The PostgreSQL store across a failover: a primary with a synchronous
// standby (both started by the test), the primary killed with SIGKILL while
// four threads issue certificates, the standby promoted, issuance going on.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sql_driver.h"
#include "store/store.h"
#include "testing/pg_server.h"

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const AuditContext kOperator{"cli:root", "failover test"};

TEST(PgStoreOpenTest, UnreachableServerIsUnavailableWithoutEchoingThePassword) {
  // Port 1 on loopback: nothing listens there.
  auto s = Store::Open("postgresql://fg:s3cret@127.0.0.1:1/fgdb?connect_timeout=2");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(s.status().message(), HasSubstr("store unreachable"));
  EXPECT_THAT(s.status().message(), HasSubstr("fgdb"));
  EXPECT_THAT(s.status().message(), Not(HasSubstr("s3cret")));
  auto bad = Store::Open("postgresql://fg:s3cret@[::1/x");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("s3cret")));
}

// A node frozen inside a write transaction (SIGSTOP, a paused VM) holds the
// cluster-wide write lock. Here this test is that node: it begins a write
// transaction, inserts a row and then sends nothing more. Another node's
// write must go through once the server has ended the frozen session
// (idle_in_transaction_session_timeout, set by the driver on connect), not
// wait for the frozen node; and the frozen node's write must not commit.
TEST(PgStallTest, AWriterFrozenInItsTransactionDoesNotHoldTheOtherNodesWrites) {
  auto started = testing::PgServer::Start({});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<testing::PgServer> pg = std::move(started).value();
  auto db = pg->CreateDatabase("stall");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const std::string url = pg->Url(*db);
  auto opened = Store::Open(url);  // migrates
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> other = std::move(opened).value();

  auto frozen_pool = sql::OpenPgPool(url);
  ASSERT_TRUE(frozen_pool.ok()) << frozen_pool.status().ToString();
  {
    auto lease = (*frozen_pool)->Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease)->Exec("CREATE TABLE stall_probe (x integer)").ok());
  }
  auto lease = (*frozen_pool)->Acquire();
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE((*lease)->Begin().ok());  // takes the write lock
  ASSERT_TRUE((*lease)->Exec("INSERT INTO stall_probe VALUES (1)").ok());

  // The other node writes while this one is "frozen" (sends nothing).
  std::atomic<bool> written{false};
  Status status;
  std::thread writer([&] {
    Device d;
    d.id = "FG-STALL1";
    d.status = DeviceStatus::kProvisioned;
    status = other->AddDevice(d, kOperator);
    written = true;
  });
  for (int i = 0; i < 600 && !written; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const bool went_through = written.load();
  // Thaw (or, if the write is still waiting, end the test's transaction so
  // that the thread can finish).
  const Status committed = (*lease)->Commit();
  if (!committed.ok()) (*lease)->Rollback();
  writer.join();
  ASSERT_TRUE(went_through) << "the other node's write waited 60 s for the frozen transaction";
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(committed.ok()) << "the frozen transaction should have been ended by the server";
  EXPECT_TRUE(other->GetDevice("FG-STALL1").ok());
  // Its row is not there: the server rolled it back.
  auto probe = sql::OpenPgPool(url);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  auto check = (*probe)->Acquire();
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  auto st = (*check)->Prepare("SELECT count(*) FROM stall_probe");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto row = st->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(st->Int(0), 0);
}

TEST(PgFailoverTest, NoAcknowledgedIssuanceIsLostAcrossPromotion) {
  auto started = testing::PgServer::Start({.standby = true});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<testing::PgServer> pg = std::move(started).value();
  auto db = pg->CreateDatabase("failover");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto opened = Store::Open(pg->Url(*db));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();

  // One device and one bootstrap token per issuance.
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  const UnixMillis now = NowMillis();
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    Device d;
    d.id = "FG-F" + std::to_string(i);
    d.status = DeviceStatus::kProvisioned;
    ASSERT_TRUE(store->AddDevice(d, kOperator).ok());
    BootstrapToken t;
    t.ref = "ft-" + std::to_string(i);
    t.device = d.id;
    t.expires_ms = now + kMillisPerDay;
    ASSERT_TRUE(store->AddBootstrapToken(t, kOperator).ok());
  }

  std::mutex mu;
  std::set<std::string> acknowledged;  // guarded by mu
  std::atomic<int> acks{0};
  std::atomic<bool> promoted{false};
  std::atomic<int> unavailable{0};
  std::atomic<int> unknown_committed{0};  // "outcome unknown" that had committed
  std::vector<std::string> unexpected;    // guarded by mu
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const int i = t * kPerThread + k;
        Certificate c;
        c.serial = "F" + std::to_string(i);
        c.device = "FG-F" + std::to_string(i);
        c.key_fp = "sha256:fk" + std::to_string(i);
        c.cert_fp = "sha256:fc" + std::to_string(i);
        c.not_before_ms = now;
        c.not_after_ms = now + 30 * kMillisPerDay;
        c.der = "der-" + c.serial;
        EnrolmentAuthorization auth;
        auth.kind = EnrolmentKind::kBootstrapToken;
        auth.credential = "ft-" + std::to_string(i);
        // Retried until answered: OK, or refused because an earlier attempt
        // whose outcome was unknown did commit (the token is then used). A
        // plain Unavailable must mean "not committed".
        std::string last_unavailable;
        bool outcome_unknown = false;  // any earlier attempt, not only the last one
        for (int attempt = 0; attempt < 1200; ++attempt) {
          auto r = store->RecordIssuedCertificate(c, kOperator, auth);
          if (r.ok()) {
            std::lock_guard lock(mu);
            acknowledged.insert(c.serial);
            ++acks;
            break;
          }
          if (r.status().code() == StatusCode::kUnavailable) {
            ++unavailable;
            last_unavailable = r.status().message();
            outcome_unknown = outcome_unknown || last_unavailable.find("outcome unknown") != std::string::npos;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));  // a client's backoff
            continue;
          }
          const bool committed_before =
              r.status().code() == StatusCode::kPermissionDenied &&
              r.status().message().find("already used") != std::string::npos;
          // An "outcome unknown" attempt may be followed by plain
          // Unavailable ones (no primary yet) before the refusal.
          if (committed_before && outcome_unknown) {
            ++unknown_committed;
            break;
          }
          std::lock_guard lock(mu);
          unexpected.push_back(c.serial + ": " + r.status().ToString() +
                               " (after: " + last_unavailable + ")");
          break;
        }
      }
    });
  }

  // Kill the primary once issuance is under way.
  for (int i = 0; i < 2000 && acks.load() < kThreads * kPerThread / 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(pg->KillPrimary().ok());
  // While no primary answers: not writable, and calls fail fast and say why.
  bool saw_not_writable = false;
  for (int i = 0; i < 1000 && !saw_not_writable; ++i) {
    saw_not_writable = !store->Health().writable;
    if (!saw_not_writable) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(saw_not_writable) << "Health() never said the store is not writable";
  EXPECT_THAT(store->Health().detail, HasSubstr("store unreachable"));
  const auto t0 = std::chrono::steady_clock::now();
  auto during = store->GetCertificate("F0");
  EXPECT_EQ(during.status().code(), StatusCode::kUnavailable) << during.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  const int acks_before = acks.load();

  ASSERT_TRUE(pg->PromoteStandby().ok());
  promoted = true;
  for (auto& th : threads) th.join();

  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  }
  EXPECT_GT(unavailable.load(), 0) << "the failover was never noticed";
  EXPECT_GT(acks.load(), acks_before) << "no issuance after the promotion";
  EXPECT_TRUE(store->Health().writable);
  std::printf(
      "failover: %d acknowledged before the promotion, %d in all, %d Unavailable answers, %d "
      "outcome "
      "unknown that had committed\n",
      acks_before, acks.load(), unavailable.load(), unknown_committed.load());

  // Read back from a fresh store on the promoted server.
  auto reopened = Store::Open(pg->Url(*db));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto certs = (*reopened)->ListCertificates(std::nullopt);
  ASSERT_TRUE(certs.ok()) << certs.status().ToString();
  std::map<std::string, int> per_device;
  std::set<std::string> serials;
  for (const Certificate& c : *certs) {
    ++per_device[c.device];
    EXPECT_TRUE(serials.insert(c.serial).second) << "serial twice: " << c.serial;
  }
  // No acknowledged issuance lost.
  for (const std::string& serial : acknowledged) {
    EXPECT_TRUE(serials.count(serial))
        << "acknowledged certificate " << serial << " lost in the failover";
  }
  // Every device got its certificate exactly once, and a token is used if
  // and only if its device has the certificate it paid for.
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    const std::string dev = "FG-F" + std::to_string(i);
    EXPECT_EQ(per_device[dev], 1) << dev;
    auto token = (*reopened)->GetBootstrapToken("ft-" + std::to_string(i));
    ASSERT_TRUE(token.ok());
    EXPECT_EQ(token->used_ms != 0, per_device[dev] == 1) << dev;
  }
}

}  // namespace
}  // namespace fg
