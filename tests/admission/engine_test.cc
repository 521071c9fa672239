// The engine as a whole: combining answers, policy overrides, fail closed,
// the change feed, the decision log and the counters.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "admission/admission_fixture.h"
#include "common/metrics.h"

namespace fg::admission {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

uint64_t CounterValue(const std::string& name, const std::string& labels) {
  return Metrics::Global().Value(name, labels);
}

// A check that answers whatever the test wants.
class ScriptedCheck final : public Check {
 public:
  enum Mode { kAnswer, kError, kThrow, kSlow };
  ScriptedCheck(Mode mode, CheckAnswer answer = {}) : mode_(mode), answer_(std::move(answer)) {}
  std::string_view name() const override { return "scripted"; }
  Result<CheckAnswer> Evaluate(const CheckContext&) override {
    switch (mode_) {
      case kAnswer:
        return answer_;
      case kError:
        return Status::Internal("scripted failure");
      case kThrow:
        throw std::runtime_error("scripted exception");
      case kSlow:
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        return CheckAnswer::Allow();
    }
    return CheckAnswer::Allow();
  }

 private:
  Mode mode_;
  CheckAnswer answer_;
};

EngineOptions WithScripted(ScriptedCheck::Mode mode, CheckAnswer answer = {}) {
  EngineOptions o;
  o.extra_checks.push_back({"scripted", [mode, answer](const AdmissionPolicy&) {
                              return std::make_unique<ScriptedCheck>(mode, answer);
                            }});
  return o;
}

TEST_F(AdmissionTest, AnyDenyDeniesAndAllReasonsAreListed) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"}, Site{37.5, 127.0, 100});
  AddEndpoint("192.0.2.1:4500", EndpointStatus::kRetired);
  auto engine = MakeEngine();
  AdmissionRequest r = Request("FG-1", c, "198.51.100.1", "1", "192.0.2.1:4500");
  r.gnss = GnssFix{38.5, 127.0, 10};
  Decision d = engine->Admit(r);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  // In chain order: endpoint, line, gnss (a quarantine reason is listed too).
  EXPECT_THAT(d.reasons, ElementsAre("endpoint.retired", "location.line", "location.gnss"));
  EXPECT_NE(Evidence(d, "gnss.distance_m"), "<absent>");
  EXPECT_NE(Evidence(d, "line.src_ip"), "<absent>");
}

TEST_F(AdmissionTest, QuarantineWithoutDenyQuarantines) {
  Certificate c = AddActiveDevice("FG-1", {}, Site{37.5, 127.0, 100});
  auto engine = MakeEngine();
  AdmissionRequest r = Request("FG-1", c, "198.51.100.1");
  r.gnss = GnssFix{38.5, 127.0, 10};
  Decision d = engine->Admit(r);
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_THAT(d.reasons, ElementsAre("location.gnss"));
  // A quarantined session is live (the clone check sees it).
  EXPECT_EQ(engine->LiveSessions("FG-1").size(), 1u);
}

TEST_F(AdmissionTest, PolicyVerdictsTurnReasonsIntoQuarantineOrWaiveThem) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  policy_.verdicts["location.line"] = Verdict::kQuarantine;
  auto engine = MakeEngine();
  Decision d = engine->Admit(Request("FG-1", c, "198.51.100.1", "1"));
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_THAT(d.reasons, ElementsAre("location.line"));
  engine->SessionDown("FG-1", "1");

  policy_.verdicts["location.line"] = Verdict::kAllow;
  auto waiving = MakeEngine();
  Decision w = waiving->Admit(Request("FG-1", c, "198.51.100.1", "2"));
  EXPECT_EQ(w.verdict, Verdict::kAllow);
  EXPECT_THAT(w.reasons, IsEmpty());
  EXPECT_EQ(Evidence(w, "waived"), "location.line");
}

TEST_F(AdmissionTest, ChainOrderAndMembershipComeFromPolicy) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  policy_.chain = {"certificate", "device"};  // no line check
  auto engine = MakeEngine();
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.1")).verdict, Verdict::kAllow);
  policy_.chain = {"certificate", "nonsense"};
  auto bad = Engine::Create(*store_, policy_, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("nonsense"));
}

// ---- fail closed ----

TEST_F(AdmissionTest, StoreDownAtStartDeniesInternalUntilItLoads) {
  Certificate c = AddActiveDevice("FG-1");
  FailingStore failing(*store_);
  failing.fail = true;
  auto engine = MakeEngine(&failing);
  ASSERT_NE(engine, nullptr);
  EXPECT_FALSE(engine->LoadStatus().ok());
  uint64_t before = CounterValue("femtoguard_admission_internal_total", "cause=\"store\"");
  Decision d = engine->Admit(Request("FG-1", c, "203.0.113.1"));
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("internal"));
  EXPECT_THAT(Evidence(d, "internal.error"), HasSubstr("store down"));
  EXPECT_EQ(CounterValue("femtoguard_admission_internal_total", "cause=\"store\""), before + 1);
  EXPECT_TRUE(engine->LiveSessions("FG-1").empty());
  failing.fail = false;
  ASSERT_TRUE(engine->Reload().ok());
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, FailedReReadOfOneDeviceDeniesThatDeviceOnly) {
  Certificate c1 = AddActiveDevice("FG-1");
  Certificate c2 = AddActiveDevice("FG-2");
  FailingStore failing(*store_);
  auto engine = MakeEngine(&failing);
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, {"t", "t"}).ok());
  auto changes = store_->ChangesSince(last_seq_, 1000);
  ASSERT_TRUE(changes.ok());
  failing.fail = true;
  for (const Change& ch : *changes) EXPECT_FALSE(engine->Apply(ch).ok());
  failing.fail = false;
  // FG-1's state is unknown: denied "internal", not admitted on stale data.
  Decision d = engine->Admit(Request("FG-1", c1, "203.0.113.1"));
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("internal"));
  EXPECT_EQ(engine->Admit(Request("FG-2", c2, "203.0.113.2")).verdict, Verdict::kAllow);
  // The next successful re-read settles it.
  for (const Change& ch : *changes) EXPECT_TRUE(engine->Apply(ch).ok());
  EXPECT_THAT(engine->Admit(Request("FG-1", c1, "203.0.113.1", "2")).reasons,
              ElementsAre("cert.hold", "device.inactive"));
}

TEST_F(AdmissionTest, FailedReloadOfBlocksDeniesEveryone) {
  Certificate c = AddActiveDevice("FG-1");
  FailingStore failing(*store_);
  auto engine = MakeEngine(&failing);
  failing.fail = true;
  EXPECT_FALSE(engine->Apply({.seq = 1, .kind = ChangeKind::kBlock, .key = "device:FG-9"}).ok());
  failing.fail = false;
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.1")).reasons, ElementsAre("internal"));
  EXPECT_TRUE(engine->Apply({.seq = 1, .kind = ChangeKind::kBlock, .key = "device:FG-9"}).ok());
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, CheckErrorExceptionAndBudgetDenyInternal) {
  Certificate c = AddActiveDevice("FG-1");
  policy_.chain = {"certificate", "scripted", "device"};
  struct Case {
    ScriptedCheck::Mode mode;
    const char* cause;
    const char* error;
  } cases[] = {{ScriptedCheck::kError, "check", "scripted failure"},
               {ScriptedCheck::kThrow, "exception", "scripted exception"},
               {ScriptedCheck::kSlow, "budget", "time_budget_ms=5"}};
  for (const Case& k : cases) {
    policy_.time_budget_ms = k.mode == ScriptedCheck::kSlow ? 5 : 0;
    auto engine = MakeEngine(nullptr, WithScripted(k.mode));
    std::string labels = std::string("cause=\"") + k.cause + "\"";
    uint64_t before = CounterValue("femtoguard_admission_internal_total", labels);
    Decision d = engine->Admit(Request("FG-1", c, "203.0.113.1"));
    EXPECT_EQ(d.verdict, Verdict::kDeny) << k.cause;
    EXPECT_THAT(d.reasons, ElementsAre("internal")) << k.cause;
    EXPECT_EQ(Evidence(d, "internal.where"), "scripted") << k.cause;
    EXPECT_THAT(Evidence(d, "internal.error"), HasSubstr(k.error)) << k.cause;
    EXPECT_EQ(CounterValue("femtoguard_admission_internal_total", labels), before + 1) << k.cause;
    EXPECT_TRUE(engine->LiveSessions("FG-1").empty()) << k.cause;
  }
}

TEST_F(AdmissionTest, InternalCannotBeWaivedByPolicy) {
  policy_.verdicts["internal"] = Verdict::kAllow;
  EXPECT_FALSE(policy_.Validate().ok());
}

// ---- the change feed ----

TEST_F(AdmissionTest, RevocationSeenThroughApplyFlipsTheDecision) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "1")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "1");
  ASSERT_TRUE(store_->RevokeCertificate(c.serial, RevocationReason::kKeyCompromise, NowMillis(), {"t", "leak"}).ok());
  Feed(*engine);
  Decision d = engine->Admit(Request("FG-1", c, "203.0.113.1", "2"));
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("cert.revoked"));
}

TEST_F(AdmissionTest, SuspensionAndReactivationSeenThroughApply) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, {"t", "t"}).ok());
  Feed(*engine);
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.1", "1")).reasons,
              ElementsAre("cert.hold", "device.inactive"));
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kActive, {"t", "t"}).ok());
  Feed(*engine);
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "2")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, NewDeviceAndRenewedCertificateSeenThroughApply) {
  AddActiveDevice("FG-0");
  auto engine = MakeEngine();
  Certificate c = AddActiveDevice("FG-NEW", {"203.0.113.0/24"});
  EXPECT_THAT(engine->Admit(Request("FG-NEW", c, "203.0.113.1", "1")).reasons,
              ::testing::Contains("device.unknown"));
  Feed(*engine);
  EXPECT_EQ(engine->Admit(Request("FG-NEW", c, "203.0.113.1", "2")).verdict, Verdict::kAllow);
  // Renewal supersedes the old certificate.
  Certificate renewed = Issue("FG-NEW");
  Feed(*engine);
  EXPECT_EQ(engine->Admit(Request("FG-NEW", renewed, "203.0.113.1", "3")).verdict, Verdict::kAllow);
  EXPECT_THAT(engine->Admit(Request("FG-NEW", c, "203.0.113.1", "4")).reasons, ElementsAre("cert.revoked"));
}

// ---- decision log and counters ----

TEST_F(AdmissionTest, EveryDecisionIsOneJsonLineInTheLog) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "ike-1")).verdict, Verdict::kAllow);
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.66", "ike-2")).verdict, Verdict::kDeny);
  AdmissionRequest odd = Request("FG-\"quoted\"\n", c, "203.0.113.1", "ike-3");
  engine->Admit(odd);
  ASSERT_TRUE(engine->FlushLog().ok());
  std::ifstream in(LogPath());
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    lines.push_back(j);
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["device"], "FG-1");
  EXPECT_EQ(lines[0]["session"], "ike-1");
  EXPECT_EQ(lines[0]["src_ip"], "203.0.113.1");
  EXPECT_EQ(lines[0]["endpoint"], "segw1.example.net:4500");
  EXPECT_EQ(lines[0]["segw"], "segw-a");
  EXPECT_EQ(lines[0]["decision"], "allow");
  EXPECT_TRUE(lines[0]["reasons"].empty());
  EXPECT_TRUE(ParseRfc3339(lines[0]["ts"].get<std::string>()).ok());
  EXPECT_EQ(lines[1]["decision"], "deny");
  EXPECT_EQ(lines[1]["reasons"], nlohmann::json::array({"cert.clone"}));
  EXPECT_EQ(lines[1]["evidence"]["clone.session"], "ike-1");
  EXPECT_EQ(lines[2]["device"], "FG-\"quoted\"\n");
}

TEST_F(AdmissionTest, LogIsWrittenWithoutAnExplicitFlush) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  engine->Admit(Request("FG-1", c, "203.0.113.1"));
  // The background writer flushes within ~100 ms; poll up to 5 s.
  std::string text;
  for (int i = 0; i < 100 && text.find("FG-1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    text = testing::ReadAll(LogPath());
  }
  EXPECT_THAT(text, HasSubstr("\"decision\":\"allow\""));
}

TEST_F(AdmissionTest, DecisionsAndReasonsAreCounted) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  auto engine = MakeEngine();
  uint64_t allow = CounterValue("femtoguard_admission_decisions_total", "decision=\"allow\"");
  uint64_t deny = CounterValue("femtoguard_admission_decisions_total", "decision=\"deny\"");
  uint64_t line = CounterValue("femtoguard_admission_reasons_total", "reason=\"location.line\"");
  engine->Admit(Request("FG-1", c, "203.0.113.1", "1"));
  engine->Admit(Request("FG-1", c, "198.51.100.1", "2"));
  EXPECT_EQ(CounterValue("femtoguard_admission_decisions_total", "decision=\"allow\""), allow + 1);
  EXPECT_EQ(CounterValue("femtoguard_admission_decisions_total", "decision=\"deny\""), deny + 1);
  EXPECT_EQ(CounterValue("femtoguard_admission_reasons_total", "reason=\"location.line\""), line + 1);
}

TEST_F(AdmissionTest, ConcurrentNewcomersOfOneIdentityAdmitExactlyOne) {
  Certificate c = AddActiveDevice("FG-1");
  policy_.rate_identity = {0, 60};
  policy_.rate_line = {0, 60};
  auto engine = MakeEngine();
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::string ip = "198.51.100." + std::to_string(t + 1);
      if (engine->Admit(Request("FG-1", c, ip, "ike-" + std::to_string(t))).verdict == Verdict::kAllow) ++allowed;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1);
  EXPECT_EQ(engine->LiveSessions("FG-1").size(), 1u);
}

TEST_F(AdmissionTest, CreateForDataDirUsesPolicyCellsAndLog) {
  testing::WriteAll(tmp_ / "admission.yaml", "verdicts: {location.line: quarantine}\nhome_plmns: [\"450-08\"]\n");
  testing::WriteAll(tmp_ / "cells.csv",
                    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
                    "LTE,450,8,1,1,1,127.0,37.5,100,1,1,0,0,0\n");
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  auto engine = Engine::CreateForDataDir(*store_, *dir_, config_);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->policy().cells_csv, (tmp_.path() / "cells.csv").string());
  EXPECT_EQ((*engine)->Admit(Request("FG-1", c, "198.51.100.1")).verdict, Verdict::kQuarantine);
  ASSERT_TRUE((*engine)->FlushLog().ok());
  EXPECT_THAT(testing::ReadAll((tmp_.path() / "log" / "admission.jsonl").string()), HasSubstr("location.line"));

  testing::WriteAll(tmp_ / "admission.yaml", "chain: [certificate, bogus]\n");
  auto bad = Engine::CreateForDataDir(*store_, *dir_, config_);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("chain"));
}

// SIGHUP in serve: a new policy replaces the running one only once its chain
// is built; a policy naming an unknown check changes nothing. Live sessions
// survive the swap.
TEST_F(AdmissionTest, ReplacePolicyTakesAGoodPolicyAndKeepsTheOldOneOnError) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  auto engine = MakeEngine();
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.1", "1")).verdict, Verdict::kDeny);

  AdmissionPolicy broken = policy_;
  broken.chain = {"certificate", "nonsense"};
  broken.verdicts["location.line"] = Verdict::kAllow;
  Status s = engine->ReplacePolicy(broken, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("nonsense"));
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.1", "2")).verdict, Verdict::kDeny)
      << "a refused policy must not take effect, not even in part";

  AdmissionPolicy waiving = policy_;
  waiving.verdicts["location.line"] = Verdict::kAllow;
  ASSERT_TRUE(engine->ReplacePolicy(waiving, nullptr).ok());
  Decision w = engine->Admit(Request("FG-1", c, "198.51.100.1", "3"));
  EXPECT_EQ(w.verdict, Verdict::kAllow);
  EXPECT_EQ(Evidence(w, "waived"), "location.line");
  EXPECT_EQ(engine->LiveSessions("FG-1").size(), 1u);
  ASSERT_TRUE(engine->ReplacePolicy(policy_, nullptr).ok());
  EXPECT_EQ(engine->LiveSessions("FG-1").size(), 1u) << "live sessions survive a reload";
}

}  // namespace
}  // namespace fg::admission
