// Refused enrolments: aggregated per source and minute in the audit log,
// security events bounded per source, throttling, and nothing unescaped in
// what is stored.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/metrics.h"
#include "pki/enrolment.h"
#include "pki_fixture.h"

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RefusalLogTest : public PkiFixture {
 protected:
  void SetUp() override {
    PkiFixture::SetUp();
    enrolment_ = std::make_unique<Enrolment>(*store_, *ca_, *policy_, TokenSecrets("k"), nullptr);
    // 2026-12-06T10:00:05Z: inside one calendar minute.
    enrolment_->SetClockForTest([this] { return now_; });
  }

  std::vector<AuditEntry> Rows(const std::string& action) {
    auto all = store_->ListAudit({});
    EXPECT_TRUE(all.ok());
    std::vector<AuditEntry> out;
    for (const auto& e : *all) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }
  static nlohmann::json Detail(const AuditEntry& e) { return nlohmann::json::parse(e.detail); }

  // One replayed CMP ir, as the CMP server records it once the token is used.
  void Replay(const std::string& source = "198.51.100.7") {
    if (!enrolment_->AllowSource(source, "cmp")) return;
    PresentedCredential cred = enrolment_->FromToken("tok-0000000000000000");
    enrolment_->RecordRefusal(cred.refusal_reason, "", "FG-1", cred.refusal, "cmp", source);
  }

  UnixMillis now_ = 1796551205000;
  std::unique_ptr<Enrolment> enrolment_;
};

TEST_F(RefusalLogTest, NReplaysFromOneSourceMakeOneRowPerMinuteWithCountN) {
  constexpr int kReplays = 2000;
  for (int i = 0; i < kReplays; ++i) Replay();
  enrolment_->FlushRefusals();
  auto rows = Rows("enrol.refused");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].subject, "198.51.100.7");
  auto d = Detail(rows[0]);
  EXPECT_EQ(d["count"], kReplays);
  // The first kRefusalsPerMinute were looked at; the rest were throttled.
  EXPECT_EQ(d["reasons"]["token_unknown"], Enrolment::kRefusalsPerMinute);
  EXPECT_EQ(d["reasons"]["rate_limited"], kReplays - Enrolment::kRefusalsPerMinute);
  EXPECT_EQ(d["protocols"]["cmp"], kReplays);
  EXPECT_THAT(rows[0].reason, HasSubstr("2000 refused enrolment attempts from 198.51.100.7"));

  // More in the same minute update the same row; the next minute has its own.
  for (int i = 0; i < 5; ++i) Replay();
  enrolment_->FlushRefusals();
  rows = Rows("enrol.refused");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Detail(rows[0])["count"], kReplays + 5);
  now_ += 60 * 1000;
  Replay();
  enrolment_->FlushRefusals();
  rows = Rows("enrol.refused");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(Detail(rows[1])["count"], 1);
}

TEST_F(RefusalLogTest, TheFirstRowIsWrittenByTheFlusherWithoutAnExplicitFlush) {
  Replay();
  for (int i = 0; i < 100 && Rows("enrol.refused").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(Rows("enrol.refused").size(), 1u);
  for (int i = 0; i < 9; ++i) Replay();
  // Counts catch up within about a second.
  for (int i = 0; i < 150 && Detail(Rows("enrol.refused")[0])["count"] != 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Detail(Rows("enrol.refused")[0])["count"], 10);
}

TEST_F(RefusalLogTest, ThrottleIsPerSourceAndAnIpv6SourceIsItsSlash64) {
  for (uint64_t i = 0; i < Enrolment::kRefusalsPerMinute; ++i) {
    EXPECT_TRUE(enrolment_->AllowSource("2001:db8:1:2::10", "est"));
    enrolment_->RecordRefusal(RefusalReason::kTokenSecret, "", "", "wrong secret", "est",
                              "2001:db8:1:2::10");
  }
  EXPECT_FALSE(enrolment_->AllowSource("2001:db8:1:2::10", "est"));
  // Another address in the same /64 buys no fresh budget; another /64 does.
  EXPECT_FALSE(enrolment_->AllowSource("2001:db8:1:2:ffff::1", "est"));
  EXPECT_TRUE(enrolment_->AllowSource("2001:db8:1:3::10", "est"));
  EXPECT_TRUE(enrolment_->AllowSource("198.51.100.8", "est"));
  EXPECT_GT(enrolment_->RetryAfterSeconds(), 0);
  EXPECT_LE(enrolment_->RetryAfterSeconds(), 60);
  // A new minute, a new budget.
  now_ += 60 * 1000;
  EXPECT_TRUE(enrolment_->AllowSource("2001:db8:1:2::10", "est"));
  enrolment_->FlushRefusals();
  auto rows = Rows("enrol.refused");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].subject, "2001:db8:1:2::/64");
  EXPECT_EQ(Detail(rows[0])["count"], Enrolment::kRefusalsPerMinute + 2);
}

TEST_F(RefusalLogTest, SecurityEventsKeepTheirOwnRowsButBoundedPerSource) {
  for (int i = 0; i < 50; ++i) {
    enrolment_->RecordRefusal(RefusalReason::kSecurityEvent, "cert.clone", "FG-1",
                              "vendor certificate already used", "cmp", "198.51.100.9");
  }
  enrolment_->FlushRefusals();
  auto alerts = Rows("alert");
  ASSERT_EQ(alerts.size(), Enrolment::kAlertRowsPerMinute);
  EXPECT_EQ(alerts[0].subject, "FG-1");
  EXPECT_THAT(alerts[0].detail, HasSubstr("cert.clone"));
  auto rows = Rows("enrol.refused");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Detail(rows[0])["count"], 50);
  EXPECT_EQ(Detail(rows[0])["alerts_folded"], 50 - Enrolment::kAlertRowsPerMinute);
  EXPECT_EQ(Detail(rows[0])["reasons"]["security_event"], 50);
}

TEST_F(RefusalLogTest, RefusalsAreCountedByReason) {
  const auto before =
      Metrics::Global().Value("femtoguard_enrolment_refused_total", R"(reason="token_used")");
  enrolment_->RecordRefusal(RefusalReason::kTokenUsed, "", "FG-1", "bootstrap token already used",
                            "cmp", "10.0.0.1");
  EXPECT_EQ(Metrics::Global().Value("femtoguard_enrolment_refused_total", R"(reason="token_used")"),
            before + 1);
}

TEST_F(RefusalLogTest, WhatIsStoredIsEscapedAndBounded) {
  const std::string evil = "FG-1\nforged\x1b[31m" + std::string(300, 'x');
  enrolment_->RecordRefusal(RefusalReason::kUntrusted, "", evil, "why\r\nforged", "est",
                            "10.0.0.2\nforged");
  enrolment_->RecordRefusal(RefusalReason::kSecurityEvent, "device.unknown", evil, "why\nforged",
                            "est", "10.0.0.2");
  enrolment_->FlushRefusals();
  auto all = store_->ListAudit({});
  ASSERT_TRUE(all.ok());
  ASSERT_GE(all->size(), 2u);
  for (const auto& e : *all) {
    for (const std::string* f : {&e.actor, &e.action, &e.subject, &e.reason, &e.detail}) {
      EXPECT_TRUE(IsPrintable(*f) || f->find('\\') != std::string::npos) << *f;
      EXPECT_EQ(f->find('\n'), std::string::npos) << *f;
      EXPECT_EQ(f->find('\r'), std::string::npos) << *f;
      EXPECT_EQ(f->find('\x1b'), std::string::npos) << *f;
    }
    EXPECT_LT(e.subject.size(), 100u);
  }
}

TEST_F(RefusalLogTest, TokenReferencesOutsideTheAlphabetAreNotLookedUp) {
  PresentedCredential c = enrolment_->FromToken("tok-1\nforged");
  EXPECT_EQ(c.refusal_reason, RefusalReason::kBadIdentifier);
  EXPECT_THAT(c.refusal, Not(HasSubstr("forged")));
  EXPECT_TRUE(c.credential.empty());
}

}  // namespace
}  // namespace fg
