// The engine with test-only detectors (and, for replay == live, with the
// build's real ones): evidence to alerts through the rules file, dedup,
// stable ids, timers by event time, the world as it was before the event,
// local effects of actions.

#include "detect/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "common/pseudonym.h"
#include "detect/default_rules.h"

namespace fg::detect {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr UnixMillis kT0 = 1756728000000;  // 2025-09-01T12:00:00Z
constexpr UnixMillis kMax = std::numeric_limits<UnixMillis>::max();

// What the test detectors observed.
struct Observed {
  std::vector<size_t> sessions_before;  // live sessions of the device when session.up was seen
  std::vector<std::pair<uint64_t, UnixMillis>> timers;  // key, now_ms
  int constructed = 0;
  std::vector<UnixMillis> expired;
};
Observed* g_observed = nullptr;

// Evidence for every session.up: kind = segw, dedup_extra = endpoint.
class EchoDetector final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp) return;
    DeviceIdx d = ctx.world().Find(e.device);
    g_observed->sessions_before.push_back(d == kNoDevice ? 0 : ctx.world().device(d).sessions.size());
    Evidence ev;
    ev.rule = "test.echo";
    ev.kind = e.segw;
    ev.device = e.device;
    ev.ts_ms = e.ts_ms;
    ev.dedup_extra = e.endpoint;
    ev.details_json = nlohmann::json{{"session", e.session}, {"line", e.line}}.dump();
    if (e.session == "bad-details") ev.details_json = "[1,2";
    ctx.Emit(std::move(ev));
  }
  void Expire(UnixMillis now) override { g_observed->expired.push_back(now); }
};

// session.up schedules a timer grace_s later; the timer emits evidence.
class TimerDetector final : public Detector {
 public:
  explicit TimerDetector(const RuleParams& p) : grace_ms_(p.GetInt("grace_s", 60) * 1000) {}
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp) return;
    devices_[e.line] = e.device;
    ctx.ScheduleAt(e.ts_ms + grace_ms_, e.line);
  }
  void OnTimer(uint64_t key, UnixMillis now_ms, Context& ctx) override {
    g_observed->timers.push_back({key, now_ms});
    Evidence ev;
    ev.rule = "test.timer";
    ev.device = devices_[key];
    ev.ts_ms = now_ms;
    ev.dedup_extra = std::to_string(key);
    ctx.Emit(std::move(ev));
  }

 private:
  int64_t grace_ms_;
  std::map<uint64_t, std::string> devices_;
};

// Per-subscriber evidence on ue.attach.
class SubjectDetector final : public Detector {
 public:
  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kUeAttach) return;
    Evidence ev;
    ev.rule = "test.subject";
    ev.device = e.device;
    ev.subjects = {e.imsi};
    ev.ts_ms = e.ts_ms;
    ev.dedup_extra = e.imsi.ToString("imsi");
    ctx.Emit(std::move(ev));
  }
};

// Reads the handset identity (a detector of IMEI changes would).
class HandsetDetector final : public Detector {
 public:
  void OnEvent(const Event&, Context&) override {}
  bool ReadsSecondaryIds() const override { return true; }
};

const std::vector<DetectorInfo>& TestDetectors() {
  static const std::vector<DetectorInfo> kAll = {
      {"test.echo",
       [](const RuleParams&) -> std::unique_ptr<Detector> {
         ++g_observed->constructed;
         return std::make_unique<EchoDetector>();
       }},
      {"test.timer", [](const RuleParams& p) -> std::unique_ptr<Detector> { return std::make_unique<TimerDetector>(p); }},
      {"test.subject", [](const RuleParams&) -> std::unique_ptr<Detector> { return std::make_unique<SubjectDetector>(); }},
      {"test.handset", [](const RuleParams&) -> std::unique_ptr<Detector> { return std::make_unique<HandsetDetector>(); }},
  };
  return kAll;
}
const std::vector<std::string> kTestRules = {"test.echo", "test.timer", "test.subject", "test.handset"};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : p_(std::string(32, 'e')) { g_observed = &observed_; }
  ~EngineTest() override { g_observed = nullptr; }

  void Start(const std::string& rules_yaml, World world = World()) {
    auto rules = RuleSet::Parse(rules_yaml, kTestRules);
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    engine_ = std::make_unique<Engine>(std::move(world), std::move(rules).value(),
                                       [this](const Alert& a) { alerts_.push_back(a); }, TestDetectors());
  }
  Event SessionUp(const std::string& device, UnixMillis ts, const std::string& kind = "", const std::string& extra = "e1",
                  const std::string& session = "") {
    Event e;
    e.type = EventType::kSessionUp;
    e.device = device;
    e.ts_ms = ts;
    e.segw = kind;
    e.endpoint = extra;
    e.session = session.empty() ? "s" + std::to_string(++line_) : session;
    e.line = ++line_;
    return e;
  }
  Event Attach(const std::string& device, const std::string& imsi, UnixMillis ts) {
    Event e;
    e.type = EventType::kUeAttach;
    e.device = device;
    e.ts_ms = ts;
    p_.PseudonymizeBytes("imsi", imsi, e.imsi.bytes.data());
    e.line = ++line_;
    return e;
  }
  std::vector<Alert> Of(const std::string& rule) const {
    std::vector<Alert> out;
    for (const Alert& a : alerts_)
      if (a.rule == rule) out.push_back(a);
    return out;
  }

  Pseudonymizer p_;
  Observed observed_;
  std::unique_ptr<Engine> engine_;
  std::vector<Alert> alerts_;
  uint64_t line_ = 0;
};

TEST_F(EngineTest, EvidenceBecomesAnAlertAsTheRulesFileSays) {
  Start(R"(
rules:
  test.echo:
    severity: low
    actions: [notify, block]
    approve: [revoke]
    kinds:
      quiet: {enabled: false}
      loud: {severity: critical, actions: [terminate]}
  test.timer: {enabled: false}
)");
  engine_->Process(SessionUp("FG-1", kT0));
  engine_->Process(SessionUp("FG-1", kT0 + 1, "quiet", "e2"));
  engine_->Process(SessionUp("FG-1", kT0 + 2, "loud", "e3"));
  auto echo = Of("test.echo");
  ASSERT_EQ(echo.size(), 2u) << "the disabled kind gives no alert";
  EXPECT_EQ(echo[0].severity, Severity::kLow);
  EXPECT_THAT(echo[0].actions, ElementsAre("notify", "block"));
  EXPECT_THAT(echo[0].approve, ElementsAre("revoke"));
  EXPECT_EQ(echo[0].device, "FG-1");
  EXPECT_EQ(echo[0].ts_ms, kT0);
  EXPECT_EQ(echo[1].kind, "loud");
  EXPECT_EQ(echo[1].severity, Severity::kCritical);
  EXPECT_THAT(echo[1].actions, ElementsAre("terminate"));
  EXPECT_EQ(nlohmann::json::parse(echo[0].evidence_json)["session"], "s1");

  // A rule the file does not name: medium, [notify].
  engine_->Process(Attach("FG-1", "450080000000001", kT0 + 3));
  auto subj = Of("test.subject");
  ASSERT_EQ(subj.size(), 1u);
  EXPECT_EQ(subj[0].severity, Severity::kMedium);
  EXPECT_THAT(subj[0].actions, ElementsAre("notify"));
  EXPECT_THAT(subj[0].approve, IsEmpty());
  EXPECT_THAT(subj[0].subjects, ElementsAre(p_.Pseudonymize("imsi", "450080000000001")));
  EXPECT_EQ(engine_->stats().alerts, 3u);
  EXPECT_EQ(engine_->stats().events, 4u);
}

TEST_F(EngineTest, ADisabledRulesDetectorIsNotRun) {
  Start("rules:\n  test.echo: {enabled: false}\n");
  EXPECT_EQ(observed_.constructed, 0);
  engine_->Process(SessionUp("FG-1", kT0));
  EXPECT_TRUE(Of("test.echo").empty());
  EXPECT_TRUE(observed_.sessions_before.empty());
}

// Replay derives imei / msisdn pseudonyms only when a running detector reads them.
TEST_F(EngineTest, SecondaryIdentitiesAreWantedOnlyByADetectorThatReadsThem) {
  Start("rules:\n  test.handset: {enabled: true}\n");
  EXPECT_TRUE(engine_->ReadsSecondaryIds());
  Start("rules:\n  test.handset: {enabled: false}\n");
  EXPECT_FALSE(engine_->ReadsSecondaryIds());
}

TEST(EngineShippedRulesTest, NoShippedDetectorReadsSecondaryIdentities) {
  // If one starts to, it must say so (Detector::ReadsSecondaryIds) or it
  // sees them empty in replay; the rules' data tests run through replay.
  auto rules = LoadRulesOrDefault("");
  ASSERT_TRUE(rules.ok());
  Engine engine(World(), std::move(rules).value(), [](const Alert&) {});
  EXPECT_FALSE(engine.ReadsSecondaryIds());
}

TEST_F(EngineTest, DuplicatesWithinDedupAreSuppressedThenAlertAgain) {
  Start("defaults: {dedup_s: 100}\nrules:\n  test.timer: {enabled: false}\n");
  engine_->Process(SessionUp("FG-1", kT0));
  engine_->Process(SessionUp("FG-1", kT0 + 50'000));          // same key: suppressed
  engine_->Process(SessionUp("FG-1", kT0 + 60'000, "", "e2"));  // other dedup_extra: its own alert
  engine_->Process(SessionUp("FG-1", kT0 + 70'000, "k"));       // other kind: its own alert
  engine_->Process(SessionUp("FG-2", kT0 + 80'000));            // other device: its own alert
  engine_->Process(SessionUp("FG-1", kT0 + 99'999));            // still within 100 s of the first
  engine_->Process(SessionUp("FG-1", kT0 + 100'000));           // window over: alerts again
  auto echo = Of("test.echo");
  ASSERT_EQ(echo.size(), 5u);
  EXPECT_EQ(echo[0].ts_ms, kT0);
  EXPECT_EQ(echo[4].ts_ms, kT0 + 100'000);
  EXPECT_EQ(echo[4].device, "FG-1");
  EXPECT_NE(echo[4].id, echo[0].id) << "a new alert, a new id";
  EXPECT_EQ(engine_->stats().suppressed, 2u);
}

TEST_F(EngineTest, DedupStateIsForgottenAfterItsWindow) {
  Start("defaults: {dedup_s: 10}\nrules:\n  test.timer: {enabled: false}\n");
  for (int i = 0; i < 1000; ++i) engine_->Process(SessionUp("FG-" + std::to_string(i), kT0 + i));
  // An hour later the table is purged; the same keys alert again.
  for (int i = 0; i < 1000; ++i) engine_->Process(SessionUp("FG-" + std::to_string(i), kT0 + 3'600'000 + i));
  EXPECT_EQ(Of("test.echo").size(), 2000u);
}

TEST_F(EngineTest, AlertIdsAreStableAndDocumented) {
  Start("rules:\n  test.timer: {enabled: false}\n");
  engine_->Process(SessionUp("FG-1", kT0, "k", "extra"));
  ASSERT_EQ(alerts_.size(), 1u);
  std::string material = "test.echo|k|FG-1|extra|" + std::to_string(kT0);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(EVP_Digest(material.data(), material.size(), md, &len, EVP_sha256(), nullptr), 1);
  char hex[17];
  for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
  EXPECT_EQ(alerts_[0].id, std::string(hex, 16));

  // A second engine over the same events gives the same id.
  std::string first = alerts_[0].id;
  alerts_.clear();
  line_ = 0;
  Start("rules:\n  test.timer: {enabled: false}\n");
  engine_->Process(SessionUp("FG-1", kT0, "k", "extra"));
  ASSERT_EQ(alerts_.size(), 1u);
  EXPECT_EQ(alerts_[0].id, first);
}

TEST_F(EngineTest, TimersRunByEventTimeNeverByTheWallClock) {
  Start("rules:\n  test.echo: {enabled: false}\n  test.timer: {params: {grace_s: 60}}\n");
  engine_->Process(SessionUp("FG-1", kT0));  // timer at kT0 + 60 s
  engine_->Process(SessionUp("FG-2", kT0 + 30'000));  // timer at kT0 + 90 s
  engine_->Flush(kT0 + 59'999);
  EXPECT_TRUE(observed_.timers.empty()) << "not due yet in event time (the wall clock is years later)";
  engine_->Process(SessionUp("FG-3", kT0 + 60'000));  // reaches the first timer
  ASSERT_EQ(observed_.timers.size(), 1u);
  EXPECT_EQ(observed_.timers[0].second, kT0 + 60'000) << "OnTimer gets the timer's own time";
  // A late event does not run timers backwards or forwards.
  engine_->Process(SessionUp("FG-4", kT0 + 10'000));
  EXPECT_EQ(observed_.timers.size(), 1u);
  engine_->Flush(kT0 + 95'000);
  ASSERT_EQ(observed_.timers.size(), 3u);
  EXPECT_EQ(observed_.timers[1].second, kT0 + 70'000) << "the late event's timer, in time order";
  EXPECT_EQ(observed_.timers[2].second, kT0 + 90'000);
  // The end of a replay runs the rest, at their own times.
  engine_->Flush(kMax);
  ASSERT_EQ(observed_.timers.size(), 4u);
  EXPECT_EQ(observed_.timers[3].second, kT0 + 120'000);
  auto timer_alerts = Of("test.timer");
  ASSERT_EQ(timer_alerts.size(), 4u);
  EXPECT_EQ(timer_alerts[0].device, "FG-1");
  EXPECT_EQ(timer_alerts[0].ts_ms, kT0 + 60'000);
}

TEST_F(EngineTest, DetectorsSeeTheWorldAsItWasBeforeTheEvent) {
  Start("rules:\n  test.timer: {enabled: false}\n");
  engine_->Process(SessionUp("FG-1", kT0, "", "e", "s1"));
  engine_->Process(SessionUp("FG-1", kT0 + 1, "", "e", "s2"));
  engine_->Process(SessionUp("FG-1", kT0 + 2, "", "e", "s3"));
  EXPECT_THAT(observed_.sessions_before, ElementsAre(0u, 1u, 2u));
  EXPECT_EQ(engine_->world().device(engine_->world().Find("FG-1")).sessions.size(), 3u) << "then applied";
}

TEST_F(EngineTest, ExpireRunsAsEventTimeAdvances) {
  Start("rules:\n  test.timer: {enabled: false}\n");
  for (int i = 0; i <= 600; ++i) engine_->Process(SessionUp("FG-1", kT0 + i * 1000));
  // Every 60 s of event time, not per event.
  EXPECT_GE(observed_.expired.size(), 10u);
  EXPECT_LE(observed_.expired.size(), 12u);
  for (size_t i = 1; i < observed_.expired.size(); ++i) EXPECT_GT(observed_.expired[i], observed_.expired[i - 1]);
}

TEST_F(EngineTest, HighSeverityMakesTheDeviceSuspectForTheTtl) {
  Start(R"(
defaults: {suspect_ttl_s: 3600}
rules:
  test.timer: {enabled: false}
  test.echo:
    severity: medium
    kinds:
      high: {severity: high}
)");
  engine_->Process(SessionUp("FG-1", kT0));
  const World& w = engine_->world();
  EXPECT_FALSE(w.device(w.Find("FG-1")).Suspect(kT0)) << "medium does not make a suspect";
  engine_->Process(SessionUp("FG-2", kT0, "high"));
  const DeviceState& d2 = w.device(w.Find("FG-2"));
  EXPECT_TRUE(d2.Suspect(kT0 + 3'599'999));
  EXPECT_FALSE(d2.Suspect(kT0 + 3'600'000));
  EXPECT_EQ(d2.suspect_rule, "test.echo");
}

TEST_F(EngineTest, ActionsHaveTheirLocalEffectsApproveOnesDoNot) {
  World world;
  Device d;
  d.id = "FG-1";
  d.status = DeviceStatus::kActive;
  world.Register(d);
  d.id = "FG-2";
  world.Register(d);
  d.id = "FG-3";
  world.Register(d);
  Start(R"(
rules:
  test.timer: {enabled: false}
  test.echo:
    actions: [notify]
    approve: [revoke, block]
    kinds:
      block: {actions: [block], approve: []}
      revoke: {actions: [revoke], approve: []}
      suspend: {actions: [suspend], approve: []}
  test.subject:
    actions: [hold_payments]
)",
        std::move(world));
  const World& w = engine_->world();
  engine_->Process(SessionUp("FG-1", kT0));
  EXPECT_FALSE(w.device(w.Find("FG-1")).blocked) << "approve waits for an operator";
  EXPECT_TRUE(w.device(w.Find("FG-1")).Active());
  engine_->Process(SessionUp("FG-1", kT0 + 1, "block"));
  EXPECT_TRUE(w.device(w.Find("FG-1")).blocked);
  engine_->Process(SessionUp("FG-2", kT0 + 2, "revoke"));
  EXPECT_EQ(w.device(w.Find("FG-2")).status, DeviceStatus::kDecommissioned);
  engine_->Process(SessionUp("FG-2", kT0 + 3, "suspend"));
  EXPECT_EQ(w.device(w.Find("FG-2")).status, DeviceStatus::kDecommissioned) << "decommissioned is terminal";
  engine_->Process(SessionUp("FG-3", kT0 + 4, "suspend"));
  EXPECT_EQ(w.device(w.Find("FG-3")).status, DeviceStatus::kSuspended);

  engine_->Process(Attach("FG-3", "450080000000009", kT0 + 5));
  SubjectId s;
  p_.PseudonymizeBytes("imsi", "450080000000009", s.bytes.data());
  ASSERT_NE(w.subscriber(s), nullptr);
  EXPECT_TRUE(w.subscriber(s)->payments_held);
}

TEST_F(EngineTest, AlertJsonIsOneLineInTheDocumentedShape) {
  Start("rules:\n  test.timer: {enabled: false}\n  test.echo: {severity: critical, actions: [block], approve: [revoke]}\n");
  engine_->Process(SessionUp("FG-\"q\"\n", kT0 + 5, "k"));
  engine_->Process(Attach("FG-1", "450080000000001", kT0 + 1000));
  ASSERT_EQ(alerts_.size(), 2u);
  std::string text = alerts_[0].ToJson();
  EXPECT_EQ(text.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["id"], alerts_[0].id);
  EXPECT_EQ(j["ts"], "2025-09-01T12:00:00.005Z");
  EXPECT_EQ(j["rule"], "test.echo");
  EXPECT_EQ(j["kind"], "k");
  EXPECT_EQ(j["severity"], "critical");
  EXPECT_EQ(j["device"], "FG-\"q\"\n");
  EXPECT_EQ(j["subjects"], nlohmann::json::array());
  EXPECT_EQ(j["actions"], nlohmann::json::array({"block"}));
  EXPECT_EQ(j["approve"], nlohmann::json::array({"revoke"}));
  EXPECT_TRUE(j["evidence"].is_object());
  EXPECT_EQ(j["evidence"]["session"], "s1");

  auto k = nlohmann::json::parse(alerts_[1].ToJson());
  EXPECT_EQ(k["ts"], "2025-09-01T12:00:01.000Z") << "milliseconds always";
  EXPECT_EQ(k["subjects"][0], p_.Pseudonymize("imsi", "450080000000001"));

  Alert no_device;
  no_device.rule = "cell.unregistered";
  auto n = nlohmann::json::parse(no_device.ToJson());
  EXPECT_TRUE(n["device"].is_null());
  EXPECT_EQ(n["evidence"], nlohmann::json::object());
}

TEST_F(EngineTest, EvidenceThatIsNotAJsonObjectIsReplacedAndCounted) {
  Start("rules:\n  test.timer: {enabled: false}\n");
  uint64_t before = Metrics::Global().Value("femtoguard_detect_invalid_evidence_total");
  engine_->Process(SessionUp("FG-1", kT0, "", "e", "bad-details"));
  ASSERT_EQ(alerts_.size(), 1u);
  auto j = nlohmann::json::parse(alerts_[0].ToJson());
  EXPECT_TRUE(j["evidence"].contains("error"));
  EXPECT_EQ(Metrics::Global().Value("femtoguard_detect_invalid_evidence_total"), before + 1);
}

// ---- replay == live ----

std::vector<Event> Scenario(const Pseudonymizer& p) {
  std::vector<Event> events;
  uint64_t line = 0;
  auto add = [&](Event e) {
    e.line = ++line;
    events.push_back(std::move(e));
  };
  auto up = [&](const std::string& device, const std::string& session, UnixMillis ts, const std::string& ip,
                const std::string& endpoint, const std::string& fp) {
    Event e;
    e.type = EventType::kSessionUp;
    e.ts_ms = ts;
    e.device = device;
    e.session = session;
    e.src_ip = ip;
    e.endpoint = endpoint;
    e.cert_fp = fp;
    e.segw = "segw-1";
    add(e);
  };
  auto ue = [&](EventType type, const std::string& device, int subscriber, UnixMillis ts) {
    Event e;
    e.type = type;
    e.ts_ms = ts;
    e.device = device;
    p.PseudonymizeBytes("imsi", "45008" + std::to_string(1000000000 + subscriber), e.imsi.bytes.data());
    if (type == EventType::kSmsDeliver) e.sms_class = SmsClass::kOtp;
    add(e);
  };
  UnixMillis t = kT0;
  for (int d = 0; d < 20; ++d) {
    std::string dev = "FG-" + std::to_string(d);
    up(dev, dev + "-a", t + d * 1000, "211.36.130." + std::to_string(d), "segw1:500", "sha256:" + std::to_string(d));
  }
  // A clone: same identity from another line while the first stays up.
  up("FG-3", "FG-3-b", t + 100'000, "10.9.9.9", "segw2:500", "sha256:3");
  // A certificate shared by two identities, an unknown device, a retired endpoint.
  up("FG-5", "FG-5-b", t + 110'000, "211.36.130.5", "segw1:500", "sha256:7");
  up("FG-ROGUE", "r-1", t + 120'000, "1.2.3.4", "segw-old:500", "sha256:rogue");
  Event retire;
  retire.type = EventType::kEndpointStatus;
  retire.ts_ms = t + 125'000;
  retire.endpoint = "segw-old:500";
  retire.status = "retired";
  add(retire);
  up("FG-6", "FG-6-b", t + 130'000, "211.36.130.6", "segw-old:500", "sha256:6");
  // A closed femtocell serving many non-members, OTP SMS through it, payments.
  for (int s = 0; s < 6; ++s) ue(EventType::kUeAttach, "FG-ROGUE", s, t + 140'000 + s * 1000);
  for (int s = 0; s < 6; ++s) ue(EventType::kSmsDeliver, "FG-ROGUE", s, t + 150'000 + s * 1000);
  for (int s = 0; s < 6; ++s) {
    Event pay;
    pay.type = EventType::kPaymentAuth;
    pay.ts_ms = t + 160'000 + s * 1000;
    p.PseudonymizeBytes("imsi", "45008" + std::to_string(1000000000 + s), pay.imsi.bytes.data());
    pay.merchant = "m";
    pay.amount = 100;
    pay.channel = PayChannel::kSmsOtp;
    add(pay);
  }
  // A femtocell far from its registered site.
  for (int k = 0; k < 4; ++k) {
    Event loc;
    loc.type = EventType::kLocationReport;
    loc.ts_ms = t + 200'000 + k * 3'600'000;
    loc.device = "FG-2";
    loc.has_fix = true;
    loc.lat = 35.1 + k * 0.2;
    loc.lon = 129.0;
    loc.acc_m = 10;
    add(loc);
  }
  return events;
}

World ScenarioWorld(const Pseudonymizer& p) {
  World w;
  for (int d = 0; d < 20; ++d) {
    Device dev;
    dev.id = "FG-" + std::to_string(d);
    dev.status = DeviceStatus::kActive;
    dev.site = Site{37.5, 127.0, 150};
    dev.prefixes = {"211.36.128.0/20"};
    dev.cert_fp = "sha256:" + std::to_string(d);
    dev.csg = {p.Pseudonymize("imsi", "450080000009999")};
    dev.max_ues = 4;
    w.Register(dev);
  }
  return w;
}

std::vector<std::string> RunScenario(bool live) {
  Pseudonymizer p(std::string(32, 's'));
  auto rules = LoadRulesOrDefault("");
  EXPECT_TRUE(rules.ok()) << rules.status().ToString();
  std::vector<std::string> out;
  Engine engine(ScenarioWorld(p), std::move(rules).value(), [&](const Alert& a) { out.push_back(a.ToJson()); });
  std::vector<Event> events = Scenario(p);
  for (size_t i = 0; i < events.size(); ++i) {
    engine.Process(events[i]);
    if (live) {
      // A live node also runs timers from a clock between events.
      engine.Flush(events[i].ts_ms);
      if (i + 1 < events.size()) engine.Flush((events[i].ts_ms + events[i + 1].ts_ms) / 2);
    }
  }
  engine.Flush(kMax);
  return out;
}

TEST(EngineReplayTest, ReplayGivesTheAlertsLiveStreamingGave) {
  std::vector<std::string> batch = RunScenario(/*live=*/false);
  std::vector<std::string> live = RunScenario(/*live=*/true);
  EXPECT_EQ(batch, live);
  if (!AllDetectors().empty()) {
    EXPECT_FALSE(batch.empty()) << "the scenario should make the real detectors fire";
  }
  // And twice the same: nothing depends on addresses or hash order.
  EXPECT_EQ(RunScenario(false), batch);
}

// SIGHUP in serve (docs/operations.md "Signals"): new rules take effect for
// the next evidence; a detector whose params did not change keeps its state
// (here: a pending timer), one whose params changed restarts (its pending
// timers are dropped), one switched off stops.
TEST_F(EngineTest, ReplacingTheRulesKeepsDetectorsWhoseParamsDidNotChange) {
  auto parse = [](const std::string& yaml) {
    auto r = RuleSet::Parse(yaml, kTestRules);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  };
  Start("rules:\n  test.echo: {severity: low}\n  test.timer:\n    params: {grace_s: 60}\n");
  engine_->Process(SessionUp("FG-1", kT0));  // a timer at kT0 + 60 s
  EXPECT_EQ(observed_.constructed, 1);

  EXPECT_EQ(engine_->ReplaceRules(parse("rules:\n  test.echo: {severity: critical}\n  test.timer:\n    params: {grace_s: 60}\n")),
            0u);
  EXPECT_EQ(observed_.constructed, 1) << "echo's params did not change: it must not be rebuilt";
  engine_->Process(SessionUp("FG-2", kT0 + 1000));
  auto echo = Of("test.echo");
  ASSERT_EQ(echo.size(), 2u);
  EXPECT_EQ(echo[0].severity, Severity::kLow);
  EXPECT_EQ(echo[1].severity, Severity::kCritical);
  engine_->Flush(kT0 + 61000);
  EXPECT_EQ(observed_.timers.size(), 2u) << "the kept timer detector still fires what it scheduled before";

  engine_->Process(SessionUp("FG-3", kT0 + 62000));  // a timer at kT0 + 122 s, dropped below
  EXPECT_EQ(engine_->ReplaceRules(parse("rules:\n  test.echo: {severity: critical}\n  test.timer:\n    params: {grace_s: 5}\n")),
            1u);
  engine_->Flush(kT0 + 200000);
  EXPECT_EQ(observed_.timers.size(), 2u) << "a restarted detector's old timers must not fire";
  engine_->Process(SessionUp("FG-4", kT0 + 300000));
  engine_->Flush(kT0 + 306000);
  ASSERT_EQ(observed_.timers.size(), 3u);
  EXPECT_EQ(observed_.timers.back().second, kT0 + 305000) << "the new grace_s applies";

  const size_t echoed = Of("test.echo").size();
  EXPECT_EQ(echoed, 4u);
  EXPECT_EQ(engine_->ReplaceRules(parse("rules:\n  test.echo: {enabled: false}\n  test.timer:\n    params: {grace_s: 5}\n")),
            1u);
  engine_->Process(SessionUp("FG-5", kT0 + 400000));
  EXPECT_EQ(Of("test.echo").size(), echoed) << "a switched-off detector must not run";
}

}  // namespace
}  // namespace fg::detect
