// femtoguard score on hand-made truth and alerts: every way an alert can
// count (true positive, false positive, expected, false block) and every
// fraud payment outcome, with numbers worked out by hand.

#include "sim/score.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "testing/harness.h"

namespace fg::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// 200,000 devices over one week: one false block = 0.5 per 100k device-weeks.
const char kTruth[] =
    R"({"kind":"meta","scenario":"hand","seed":1,"devices":200000,"subscribers":9,"from":"2025-03-01T00:00:00Z","to":"2025-03-08T00:00:00Z"}
{"kind":"attack","rule":"cert.clone","device":"FG-0000001","imsi":null,"from":"2025-03-02T10:00:00Z","to":"2025-03-02T12:00:00Z"}
{"kind":"attack","rule":"device.unknown","device":"FG-9000009","imsi":null,"from":"2025-03-03T00:00:00Z","to":"2025-03-03T01:00:00Z"}
{"kind":"attack","rule":"cell.unregistered","device":null,"imsi":null,"cell":{"pci":500,"earfcn":1350},"from":"2025-03-04T10:00:00Z","to":"2025-03-04T11:00:00Z"}
{"kind":"fraud_payment","rule":"payment.risk","device":"FG-9000009","imsi":"450089900000001","from":"2025-03-03T00:10:00Z","to":"2025-03-03T00:10:00Z","merchant":"CultureLand","amount":30000}
{"kind":"fraud_payment","rule":"payment.risk","device":"FG-9000009","imsi":"450089900000002","from":"2025-03-03T00:20:00Z","to":"2025-03-03T00:20:00Z","merchant":"HappyMoney","amount":10000}
{"kind":"fraud_payment","rule":"payment.risk","device":"FG-9000009","imsi":"450089900000003","from":"2025-03-02T23:50:00Z","to":"2025-03-02T23:50:00Z","merchant":"HappyMoney","amount":20000}
{"kind":"expected","rule":"location.mismatch","device":"FG-0000005","imsi":null,"from":"2025-03-02T00:00:00Z","to":"2025-03-08T00:00:00Z"}
{"kind":"expected","rule":"payment.risk","device":"FG-9000009","imsi":"450089900000004","from":"2025-03-05T08:00:00Z","to":"2025-03-05T08:00:00Z","merchant":"Melon","amount":5500}
)";

std::string Alert(const std::string& ts, const std::string& rule, const std::string& device,
                  const std::string& actions, const std::string& evidence = "{}") {
  std::string dev = device.empty() ? "" : R"(,"device":")" + device + "\"";
  return R"({"id":"x","ts":")" + ts + R"(","rule":")" + rule + "\"" + dev + R"(,"severity":"high","subjects":[],"actions":)" +
         actions + R"(,"evidence":)" + evidence + "}\n";
}

std::string HandAlerts() {
  std::string a;
  a += Alert("2025-03-02T10:01:00Z", "cert.clone", "FG-0000001", R"(["terminate","block"])");  // TP, ttd 60 s
  a += Alert("2025-03-02T12:59:00Z", "cert.clone", "FG-0000001", R"(["notify"])");             // TP (to + 1 h)
  a += Alert("2025-03-02T13:30:00Z", "cert.clone", "FG-0000001", R"(["notify"])");             // FP: too late
  a += Alert("2025-03-03T00:00:05Z", "device.unknown", "FG-9000009", R"(["block"])");          // TP, ttd 5 s
  a += Alert("2025-03-03T00:10:00Z", "payment.risk", "", R"(["hold_payments"])",
             R"({"decision":"deny","payment":{"ts":"2025-03-03T00:10:00Z","merchant":"CultureLand","amount":30000}})");
  a += Alert("2025-03-03T00:20:00Z", "payment.risk", "FG-9000009", R"(["hold_payments"])",
             R"({"decision":"step_up","payment":{"ts":"2025-03-03T00:20:00Z","merchant":"HappyMoney","amount":10000}})");
  a += Alert("2025-03-05T08:00:00Z", "payment.risk", "", R"(["hold_payments"])",
             R"({"decision":"deny","payment":{"ts":"2025-03-05T08:00:00Z","merchant":"Melon","amount":5500}})");  // expected
  a += Alert("2025-03-04T12:00:00Z", "location.mismatch", "FG-0000005", R"(["notify"])");  // expected
  a += Alert("2025-03-04T13:00:00Z", "location.mismatch", "FG-0000005", R"(["suspend"])");  // expected, false block
  a += Alert("2025-03-04T14:00:00Z", "ue.capture", "FG-0000007", R"(["hold_payments","block"])");  // FP, false block
  a += Alert("2025-03-04T10:30:00Z", "cell.unregistered", "", R"(["notify"])", R"({"pci":500,"earfcn":1350})");  // TP
  a += Alert("2025-03-04T10:40:00Z", "cell.unregistered", "", R"(["notify"])", R"({"pci":501,"earfcn":1350})");  // FP
  return a;
}

TEST(Score, CountsTruePositivesFalsePositivesExpectedAndFalseBlocks) {
  ScoreReport r = ScoreTexts(kTruth, HandAlerts());
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.has_meta);
  EXPECT_EQ(r.alerts, 12u);
  EXPECT_EQ(r.overall.labels, 6u);
  EXPECT_EQ(r.overall.detected, 5u);
  EXPECT_EQ(r.overall.true_positives, 6u);
  EXPECT_EQ(r.overall.false_positives, 3u);
  EXPECT_EQ(r.overall.expected, 3u);
  EXPECT_DOUBLE_EQ(*r.overall.Recall(), 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(*r.overall.Precision(), 6.0 / 9.0);
  // Blocks on FG-0000005 (expected, still a false block) and FG-0000007; the
  // block on the attacked FG-0000001 and FG-9000009 is not.
  EXPECT_EQ(r.overall.false_blocks, 2u);
  EXPECT_EQ(r.false_blocked_devices, 2u);
  EXPECT_DOUBLE_EQ(*r.false_blocks_per_100k_device_weeks, 1.0);

  const RuleScore& clone = r.rules.at("cert.clone");
  EXPECT_EQ(clone.labels, 1u);
  EXPECT_EQ(clone.true_positives, 2u);
  EXPECT_EQ(clone.false_positives, 1u);
  EXPECT_DOUBLE_EQ(*clone.TtdMedianSeconds(), 60);
  const RuleScore& pay = r.rules.at("payment.risk");
  EXPECT_EQ(pay.labels, 3u);
  EXPECT_EQ(pay.detected, 2u);
  EXPECT_EQ(pay.expected, 1u);
  const RuleScore& cell = r.rules.at("cell.unregistered");
  EXPECT_EQ(cell.true_positives, 1u);
  EXPECT_EQ(cell.false_positives, 1u);
  EXPECT_DOUBLE_EQ(*cell.TtdMaxSeconds(), 1800);
  const RuleScore& mismatch = r.rules.at("location.mismatch");
  EXPECT_EQ(mismatch.labels, 0u);
  EXPECT_FALSE(mismatch.Recall().has_value());
  EXPECT_EQ(mismatch.expected, 2u);
  EXPECT_EQ(mismatch.false_blocks, 1u);
  EXPECT_EQ(r.rules.at("ue.capture").false_positives, 1u);

  // Overall time to detect: attack labels only (60 s, 5 s, 1800 s).
  EXPECT_DOUBLE_EQ(*r.overall.TtdMedianSeconds(), 60);
  EXPECT_DOUBLE_EQ(*r.overall.TtdMaxSeconds(), 1800);
  EXPECT_THAT(r.missed, ElementsAre("payment.risk FG-9000009 2025-03-02T23:50:00Z"));
}

TEST(Score, FraudPaymentsBeforeAndAfterDetectionAndWhichWerePrevented) {
  ScoreReport r = ScoreTexts(kTruth, HandAlerts());
  EXPECT_EQ(r.fraud.total, 3u);
  // 23:50 happened before FG-9000009 was first detected (00:00:05).
  EXPECT_EQ(r.fraud.before_detection, 1u);
  EXPECT_EQ(r.fraud.after_detection, 2u);
  // 00:10 was denied; 00:20 only stepped up: not prevented.
  EXPECT_EQ(r.fraud.prevented, 1u);
  EXPECT_EQ(r.fraud.victims, 3u);
  EXPECT_EQ(r.fraud.victims_protected, 1u);
}

TEST(Score, APaymentAlertOnlyCountsForItsOwnPayment) {
  // Same device and time window, but another payment: not this label's detection.
  std::string alerts =
      Alert("2025-03-03T00:10:30Z", "payment.risk", "FG-9000009", R"(["hold_payments"])",
            R"({"decision":"deny","payment":{"ts":"2025-03-03T00:10:30Z","merchant":"Nexon","amount":1100}})");
  ScoreReport r = ScoreTexts(kTruth, alerts);
  EXPECT_EQ(r.rules.at("payment.risk").detected, 0u);
  EXPECT_EQ(r.overall.false_positives, 1u);
  EXPECT_EQ(r.fraud.prevented, 0u);
}

TEST(Score, APaymentAlertDetectsItsPaymentsDeviceFromThenOn) {
  // Only one payment alert and no device alert: its payment is "after
  // detection" (at its own time) and denied, so prevented; the device's
  // later fraud is after detection too but nothing denied it.
  std::string alerts =
      Alert("2025-03-03T00:10:00Z", "payment.risk", "", R"(["hold_payments"])",
            R"({"decision":"deny","payment":{"ts":"2025-03-03T00:10:00Z","merchant":"CultureLand","amount":30000}})");
  ScoreReport r = ScoreTexts(kTruth, alerts);
  EXPECT_EQ(r.fraud.after_detection, 2u);
  EXPECT_EQ(r.fraud.prevented, 1u);
  EXPECT_EQ(r.fraud.before_detection, 1u);
  EXPECT_EQ(r.fraud.victims_protected, 1u);
}

TEST(Score, MalformedLinesAreReportedWithTheirNumbersAndSkipped) {
  std::string alerts = HandAlerts();
  alerts.insert(0, "not json\n\n{\"ts\":\"2025-03-02T10:01:00Z\"}\r\n");
  std::string truth = std::string(kTruth) + "{\"kind\":\"attack\",\"rule\":\"cert.clone\"}\n[1]\n";
  ScoreReport r = ScoreTexts(truth, alerts, "truth.jsonl", "alerts.jsonl");
  EXPECT_EQ(r.malformed_alerts, 2u);
  EXPECT_EQ(r.malformed_truth, 2u);
  ASSERT_EQ(r.problems.size(), 4u);
  EXPECT_THAT(r.problems[0], HasSubstr("truth.jsonl line 10"));
  EXPECT_THAT(r.problems[1], HasSubstr("truth.jsonl line 11"));
  EXPECT_THAT(r.problems[2], HasSubstr("alerts.jsonl line 1"));
  EXPECT_THAT(r.problems[3], HasSubstr("alerts.jsonl line 3"));
  EXPECT_THAT(r.problems[3], HasSubstr("rule"));
  // The good lines still count exactly as before.
  EXPECT_EQ(r.alerts, 12u);
  EXPECT_EQ(r.overall.true_positives, 6u);
  EXPECT_EQ(r.overall.labels, 6u);
}

TEST(Score, JsonAndTableCarryTheHeadlineNumbers) {
  ScoreReport r = ScoreTexts(kTruth, HandAlerts());
  auto j = nlohmann::json::parse(r.ToJson());
  for (const char* k : {"recall", "precision", "false_blocks", "time_to_detect_s", "fraud_payments", "rules"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_DOUBLE_EQ(j["recall"].get<double>(), 5.0 / 6.0);
  EXPECT_EQ(j["false_blocks"], 2);
  EXPECT_EQ(j["time_to_detect_s"]["median"], 60.0);
  EXPECT_EQ(j["fraud_payments"]["prevented"], 1);
  EXPECT_EQ(j["fraud_payments"]["before_detection"], 1);
  EXPECT_EQ(j["rules"]["cert.clone"]["recall"], 1.0);
  EXPECT_TRUE(j["rules"]["location.mismatch"]["recall"].is_null());
  std::string table = r.ToTable();
  EXPECT_THAT(table, HasSubstr("cert.clone"));
  EXPECT_THAT(table, HasSubstr("prevented 1"));
  EXPECT_THAT(table, HasSubstr("false blocks: 2 on 2 benign devices (1.00 per 100,000 devices per week)"));
  EXPECT_THAT(table, HasSubstr("missed:\n  payment.risk FG-9000009"));
}

TEST(Score, NoAlertsMeansNoRecallAndNoPrecisionButNoFalseBlocks) {
  ScoreReport r = ScoreTexts(kTruth, "");
  EXPECT_DOUBLE_EQ(*r.overall.Recall(), 0);
  EXPECT_FALSE(r.overall.Precision().has_value());
  EXPECT_EQ(r.overall.false_blocks, 0u);
  EXPECT_EQ(r.fraud.before_detection, 3u);
  auto j = nlohmann::json::parse(r.ToJson());
  EXPECT_TRUE(j["precision"].is_null());
}

TEST(Score, UnreadableFilesAreAnError) {
  testing::TempDir t;
  testing::WriteAll(t / "truth.jsonl", kTruth);
  auto r = ScoreFiles(t / "truth.jsonl", t / "missing.jsonl");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("missing.jsonl"));
  testing::WriteAll(t / "alerts.jsonl", HandAlerts());
  auto ok = ScoreFiles(t / "truth.jsonl", t / "alerts.jsonl");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->overall.true_positives, 6u);
}

}  // namespace
}  // namespace fg::sim
