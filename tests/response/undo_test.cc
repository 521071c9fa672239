// Undo and the alert workflow (issue 14): dismiss --false-positive rolls
// back what an alert did, only that, once; actions with nothing to act on
// are recorded as skipped with their reason.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "common/time.h"
#include "response/response.h"
#include "testing/harness.h"

namespace fg::response {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const AuditContext kOp{"test", "setup"};
const std::string kSub1 = "imsi:000000000000000000000001";
const std::string kSub2 = "imsi:000000000000000000000002";

Options Quiet() {
  Options o;
  o.syslog = false;
  return o;
}

class CountingTerminator : public admission::SessionTerminator {
 public:
  explicit CountingTerminator(int live) : live_(live) {}
  int TerminateDevice(std::string_view, std::string_view) override { return live_; }
  bool TerminateSession(std::string_view, std::string_view) override { return false; }

 private:
  int live_;
};

class UndoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open("sqlite:" + dir_ / "store.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (const char* id : {"FG-1", "FG-2"}) {
      Device d;
      d.id = id;
      d.status = DeviceStatus::kActive;
      ASSERT_TRUE(store_->AddDevice(d, kOp).ok());
    }
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
                                 std::vector<std::string> subjects = {kSub1},
                                 std::string device = "FG-1") {
    detect::Alert a;
    a.id = std::move(id);
    a.ts_ms = 1700000000000;
    a.rule = "location.mismatch";
    a.severity = detect::Severity::kHigh;
    a.device = std::move(device);
    a.subjects = std::move(subjects);
    a.actions = std::move(actions);
    a.evidence_json = "{}";
    return a;
  }
  bool HasBlock(const std::string& kind, const std::string& value) {
    return store_->GetBlock(kind, value).ok();
  }
  std::vector<AuditEntry> AuditOf(const std::string& subject) {
    return store_->ListAudit(AuditFilter{subject, 0}).value();
  }
  static const UndoStep* Step(const UndoReport& r, const std::string& action) {
    for (const UndoStep& s : r.steps) {
      if (s.action == action) return &s;
    }
    return nullptr;
  }

  fg::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(UndoTest, FalsePositiveUnblocksReleasesAndReactivatesEachStepAudited) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(
      r.Handle(MakeAlert("fp1", {"suspend", "block", "hold_payments"}, {kSub1, kSub2})).ok());
  ASSERT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kSuspended);
  ASSERT_TRUE(HasBlock("device", "FG-1"));
  ASSERT_TRUE(HasBlock("payments", kSub1));
  ASSERT_TRUE(HasBlock("payments", kSub2));

  auto report = r.DismissFalsePositive("fp1", AuditContext{"cli:alice", "customer moved house"});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->already_undone);
  EXPECT_EQ(Step(*report, "block")->outcome, "undone");
  EXPECT_EQ(Step(*report, "hold_payments")->outcome, "undone");
  EXPECT_EQ(Step(*report, "suspend")->outcome, "undone");
  EXPECT_EQ(Step(*report, "suspicion")->outcome, "undone");

  EXPECT_FALSE(HasBlock("device", "FG-1"));
  EXPECT_FALSE(HasBlock("payments", kSub1));
  EXPECT_FALSE(HasBlock("payments", kSub2));
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive);
  EXPECT_EQ(store_->GetCertificate("0A")->status, CertStatus::kValid)
      << "the hold of the suspension is lifted";
  auto a = store_->GetAlert("fp1").value();
  EXPECT_EQ(a.state, AlertState::kDismissed);
  EXPECT_TRUE(a.false_positive);

  // Who, when and why, for every step.
  bool unblocked = false, released = false, reactivated = false, undo = false;
  for (const AuditEntry& e : AuditOf("device:FG-1")) {
    if (e.action == "block.remove") unblocked = e.actor == "cli:alice" && e.ts_ms > 0;
  }
  for (const AuditEntry& e : AuditOf("payments:" + kSub1)) {
    if (e.action == "block.remove") released = e.actor == "cli:alice";
  }
  for (const AuditEntry& e : AuditOf("FG-1")) {
    if (e.action == "device.status" && e.actor == "cli:alice") {
      reactivated = true;
      EXPECT_THAT(e.reason, HasSubstr("false positive: alert fp1"));
      EXPECT_THAT(e.reason, HasSubstr("customer moved house"));
    }
  }
  for (const AuditEntry& e : AuditOf("fp1")) {
    if (e.action == "alert.undo") {
      undo = true;
      EXPECT_THAT(e.detail, HasSubstr("\"suspend\""));
    }
  }
  EXPECT_TRUE(unblocked);
  EXPECT_TRUE(released);
  EXPECT_TRUE(reactivated);
  EXPECT_TRUE(undo);
}

TEST_F(UndoTest, DismissingTwiceChangesNothingTheSecondTime) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(r.Handle(MakeAlert("fp2", {"block", "hold_payments"})).ok());
  ASSERT_TRUE(r.DismissFalsePositive("fp2", kOp).ok());
  const int64_t seq = store_->LatestChangeSeq().value();
  const size_t audit = store_->ListAudit(AuditFilter{}).value().size();
  // Someone blocks the device again by hand after the undo: a second
  // dismissal must not lift that.
  ASSERT_TRUE(store_->AddBlock(Block{"device", "FG-1", "", "by hand", 0}, kOp).ok());
  const int64_t seq2 = store_->LatestChangeSeq().value();
  ASSERT_GT(seq2, seq);
  auto again = r.DismissFalsePositive("fp2", kOp);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_undone);
  EXPECT_THAT(again->steps, IsEmpty());
  EXPECT_EQ(store_->LatestChangeSeq().value(), seq2) << "a second dismissal writes nothing";
  EXPECT_EQ(store_->ListAudit(AuditFilter{}).value().size(), audit + 1)
      << "only the manual block was audited";
  EXPECT_TRUE(HasBlock("device", "FG-1"));
}

TEST_F(UndoTest, AnUndoNeverUnrevokesAndSaysToReenrol) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(r.Handle(MakeAlert("fp3", {"revoke", "block"})).ok());
  ASSERT_EQ(store_->GetCertificate("0A")->status, CertStatus::kRevoked);
  auto report = r.DismissFalsePositive("fp3", kOp);
  ASSERT_TRUE(report.ok());
  const UndoStep* revoke = Step(*report, "revoke");
  ASSERT_NE(revoke, nullptr);
  EXPECT_EQ(revoke->outcome, "impossible");
  EXPECT_THAT(revoke->note, HasSubstr("re-enrol"));
  EXPECT_THAT(revoke->note, HasSubstr("0A"));
  EXPECT_EQ(store_->GetCertificate("0A")->status, CertStatus::kRevoked);
  EXPECT_FALSE(HasBlock("device", "FG-1")) << "the rest is still undone";
}

TEST_F(UndoTest, DismissWithoutFalsePositiveUndoesNothing) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(r.Handle(MakeAlert("d1", {"suspend", "block", "hold_payments"})).ok());
  ASSERT_TRUE(r.Dismiss("d1", kOp).ok());
  EXPECT_TRUE(HasBlock("device", "FG-1"));
  EXPECT_TRUE(HasBlock("payments", kSub1));
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kSuspended);
  auto a = store_->GetAlert("d1").value();
  EXPECT_EQ(a.state, AlertState::kDismissed);
  EXPECT_FALSE(a.false_positive);
  // The false-positive dismissal afterwards still undoes it.
  ASSERT_TRUE(r.DismissFalsePositive("d1", kOp).ok());
  EXPECT_FALSE(HasBlock("device", "FG-1"));
}

TEST_F(UndoTest, OnlyWhatThisAlertPlacedIsReleased) {
  Responder r(*store_, Quiet());
  // Another alert holds subscriber 2 and blocks FG-2; an operator blocked a line.
  ASSERT_TRUE(r.Handle(MakeAlert("other", {"block", "hold_payments"}, {kSub2}, "FG-2")).ok());
  ASSERT_TRUE(store_->AddBlock(Block{"line", "198.51.100.0/24", "", "by hand", 0}, kOp).ok());
  // The false positive holds subscribers 1 and 2 (2 already held: not its hold).
  ASSERT_TRUE(r.Handle(MakeAlert("fp4", {"block", "hold_payments"}, {kSub1, kSub2})).ok());
  auto report = r.DismissFalsePositive("fp4", kOp);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(HasBlock("payments", kSub1));
  EXPECT_TRUE(HasBlock("payments", kSub2))
      << "releasing one subscriber must not release another alert's hold";
  EXPECT_THAT(Step(*report, "hold_payments")->note, HasSubstr(kSub2));
  EXPECT_TRUE(HasBlock("device", "FG-2"));
  EXPECT_TRUE(HasBlock("line", "198.51.100.0/24"));
  EXPECT_FALSE(HasBlock("device", "FG-1"));
}

TEST_F(UndoTest, ALaterSuspensionByAnOperatorStands) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(r.Handle(MakeAlert("fp5", {"suspend"})).ok());
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kActive, kOp).ok());
  ASSERT_TRUE(
      store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, AuditContext{"cli:bob", "stolen"})
          .ok());
  auto report = r.DismissFalsePositive("fp5", kOp);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(Step(*report, "suspend")->outcome, "skipped");
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kSuspended);
}

TEST_F(UndoTest, AnApprovedSuspensionIsUndoneToo) {
  Responder r(*store_, Quiet());
  auto a = MakeAlert("fp6", {});
  a.approve = {"suspend"};
  ASSERT_TRUE(r.Handle(a).ok());
  ASSERT_TRUE(r.Approve("fp6", AuditContext{"cli:op", "looks bad"}).ok());
  ASSERT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kSuspended);
  ASSERT_TRUE(r.DismissFalsePositive("fp6", kOp).ok());
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive);
}

TEST_F(UndoTest, AnUnknownAlertIsNotFoundAndChangesNothing) {
  Responder r(*store_, Quiet());
  const int64_t seq = store_->LatestChangeSeq().value();
  auto report = r.DismissFalsePositive("no-such-alert", kOp);
  EXPECT_TRUE(report.status().IsNotFound());
  EXPECT_EQ(store_->LatestChangeSeq().value(), seq);
}

TEST_F(UndoTest, ActionsWithNothingToActOnAreSkippedWithTheReason) {
  ASSERT_TRUE(store_->AddBlock(Block{"device", "FG-1", "", "by hand", 0}, kOp).ok());
  ASSERT_TRUE(store_->AddBlock(Block{"payments", kSub1, "older", "x", 0}, kOp).ok());
  {
    Responder r(*store_, Quiet());  // no webhook, no SeGW
    ASSERT_TRUE(r.Handle(MakeAlert("sk1", {"block", "terminate", "notify", "hold_payments"})).ok());
    auto a = store_->GetAlert("sk1").value();
    EXPECT_THAT(a.actions_done, IsEmpty());
    std::map<std::string, std::string> skipped;
    for (const auto& k : a.actions_skipped) skipped[k.action] = k.reason;
    EXPECT_THAT(skipped["block"], HasSubstr("already blocked"));
    EXPECT_THAT(skipped["terminate"], HasSubstr("no SeGW"));
    EXPECT_THAT(skipped["notify"], HasSubstr("no notification channel"));
    EXPECT_THAT(skipped["hold_payments"], HasSubstr("already held"));
    // The manual block is not this alert's: an undo leaves it.
    ASSERT_TRUE(r.DismissFalsePositive("sk1", kOp).ok());
    EXPECT_TRUE(HasBlock("device", "FG-1"));
    EXPECT_TRUE(HasBlock("payments", kSub1));
  }
  {
    Responder r(*store_, Quiet());
    CountingTerminator none(0);
    r.SetTerminator(&none);
    ASSERT_TRUE(r.Handle(MakeAlert("sk2", {"terminate"})).ok());
    auto a = store_->GetAlert("sk2").value();
    EXPECT_THAT(a.actions_done, IsEmpty());
    ASSERT_EQ(a.actions_skipped.size(), 1u);
    EXPECT_THAT(a.actions_skipped[0].reason, HasSubstr("no live session"));
  }
  {
    Responder r(*store_, Quiet());
    CountingTerminator one(1);
    r.SetTerminator(&one);
    ASSERT_TRUE(r.Handle(MakeAlert("sk3", {"terminate"})).ok());
    EXPECT_THAT(store_->GetAlert("sk3")->actions_done, ElementsAre("terminate"));
  }
  {
    Options o = Quiet();
    o.terminate_via_node = true;  // the CLI: serve terminates from the change feed
    Responder r(*store_, o);
    ASSERT_TRUE(r.Handle(MakeAlert("sk4", {"terminate"})).ok());
    EXPECT_THAT(store_->GetAlert("sk4")->actions_done, ElementsAre("terminate"));
  }
}

// A block or hold that a second, genuine alert also wanted (its action was
// skipped as "already blocked/held") stays when the first is undone.
TEST_F(UndoTest, ABlockAnotherAlertAlsoWantedStays) {
  Responder r(*store_, Quiet());
  ASSERT_TRUE(r.Handle(MakeAlert("fp7", {"block", "hold_payments"}, {kSub1, kSub2})).ok());
  ASSERT_TRUE(r.Handle(MakeAlert("real", {"block", "hold_payments"}, {kSub1})).ok());
  auto real = store_->GetAlert("real").value();
  ASSERT_EQ(real.actions_skipped.size(), 2u) << "found both in place";
  auto report = r.DismissFalsePositive("fp7", kOp);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(HasBlock("device", "FG-1"));
  EXPECT_THAT(Step(*report, "block")->note, HasSubstr("real"));
  EXPECT_TRUE(HasBlock("payments", kSub1)) << "the genuine alert named subscriber 1";
  EXPECT_FALSE(HasBlock("payments", kSub2)) << "only the false positive named subscriber 2";
  // Once the second one is a false positive too, nothing keeps them.
  ASSERT_TRUE(r.DismissFalsePositive("real", kOp).ok());
  EXPECT_FALSE(HasBlock("device", "FG-1"));
  EXPECT_FALSE(HasBlock("payments", kSub1));
}

}  // namespace
}  // namespace fg::response
