// Each scenario end to end, as an operator would run it: `femtoguard sim`
// writes a small world, `femtoguard replay` runs the shipped detectors and
// rules over it, `femtoguard score --json` compares the alerts with the
// ground truth. Thresholds (issue 6): every attacked rule family is found
// (recall 1.0), no benign femtocell gets a disruptive action, and in kt-2025
// every fraudulent payment after the first detection is denied by the
// payment check. The raw subscriber identities of the input never reach the
// alerts.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "testing/harness.h"

namespace fg::testing {
namespace {

struct Case {
  const char* scenario;
  uint64_t seed;
  uint32_t devices;
  std::set<std::string> attacked;  // rule families the scenario must label
};

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 300);
}

// The JSON object score prints (the last line that is one; warnings go to stderr).
nlohmann::json ScoreJson(const std::string& out) {
  std::istringstream in(out);
  nlohmann::json j;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) j = parsed;
  }
  return j;
}

const std::set<std::string> kKt = {"device.unknown", "device.inactive", "location.mismatch", "location.moving",
                                   "cert.shared",    "ue.capture",      "sms.intercept",     "payment.risk"};
const std::set<std::string> kAll = {"device.unknown", "device.inactive",  "location.mismatch", "location.moving",
                                    "cert.shared",    "ue.capture",       "sms.intercept",     "payment.risk",
                                    "cert.clone",     "endpoint.retired", "cell.unregistered", "identity.mismatch"};

class ScenarioTest : public ::testing::TestWithParam<Case> {};

TEST_P(ScenarioTest, SimReplayScore) {
  const Case& c = GetParam();
  TempDir t;
  const std::string world = t / "world";
  RunResult sim = Fg({"sim", "--scenario", c.scenario, "--devices", std::to_string(c.devices), "--seed",
                      std::to_string(c.seed), "--out", world});
  ASSERT_EQ(sim.exit_code, 0) << sim.out;
  RunResult replay = Fg({"replay", "--registry", world + "/registry.jsonl", "--cells", world + "/cells.csv",
                         "--events", world + "/events.jsonl", "--alerts", t / "alerts.jsonl"});
  ASSERT_EQ(replay.exit_code, 0) << replay.out;
  // Every line the simulator writes is one the decoder takes.
  EXPECT_THAT(replay.out, ::testing::Not(::testing::ContainsRegex("events\\.jsonl:[0-9]+:"))) << replay.out.substr(0, 2000);
  EXPECT_THAT(replay.out, ::testing::ContainsRegex("malformed +0[^0-9]")) << replay.out.substr(0, 2000);
  RunResult score = Fg({"score", "--truth", world + "/truth.jsonl", "--alerts", t / "alerts.jsonl", "--json"});
  ASSERT_EQ(score.exit_code, 0) << score.out;
  nlohmann::json s = ScoreJson(score.out);
  ASSERT_TRUE(s.is_object()) << score.out;
  EXPECT_EQ(s["scenario"], c.scenario);
  EXPECT_EQ(s["malformed"]["truth"], 0);
  EXPECT_EQ(s["malformed"]["alerts"], 0);

  // The world labels exactly the families the scenario attacks ...
  std::set<std::string> labelled;
  for (const auto& [rule, r] : s["rules"].items())
    if (r["labels"].get<int>() > 0) labelled.insert(rule);
  EXPECT_EQ(labelled, c.attacked);
  // ... and every one of them is found.
  for (const auto& rule : labelled) {
    EXPECT_EQ(s["rules"][rule]["recall"], 1.0) << rule << " missed: " << s["missed"].dump();
  }
  if (!c.attacked.empty()) {
    EXPECT_EQ(s["recall"], 1.0) << s["missed"].dump();
  }
  // identity.mismatch fires on the rogue's setup and on nothing else: every
  // benign femtocell's S1 setup (one after each session) claims its own identity.
  if (c.attacked.count("identity.mismatch")) {
    EXPECT_EQ(s["rules"]["identity.mismatch"]["precision"], 1.0) << s["rules"]["identity.mismatch"].dump();
  } else if (s["rules"].contains("identity.mismatch")) {
    EXPECT_EQ(s["rules"]["identity.mismatch"]["false_positives"], 0) << s["rules"]["identity.mismatch"].dump();
  }

  // No benign femtocell is disrupted (moved house, swapped unit, busy cafe, re-addressing, reboots ...).
  EXPECT_EQ(s["false_blocks"], 0) << score.out;

  const auto& fraud = s["fraud_payments"];
  if (c.attacked.count("payment.risk")) {
    EXPECT_GT(fraud["total"].get<int>(), 0);
    EXPECT_EQ(fraud["prevented"], fraud["after_detection"]) << fraud.dump();
  } else {
    EXPECT_EQ(fraud["total"], 0);
  }

  // Input IMSIs (4500899xxxxxxxx) and IMEIs never reach the alerts.
  std::string alerts = ReadAll(t / "alerts.jsonl");
  EXPECT_EQ(alerts.find("4500899"), std::string::npos);
  EXPECT_EQ(alerts.find("3599990"), std::string::npos);
}

TEST(SimCli, BadArgumentsAndUnreadableFilesAreRefusedClearly) {
  TempDir t;
  RunResult bad = Fg({"sim", "--scenario", "kt-2024", "--devices", "300", "--seed", "1", "--out", t / "w"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.out, ::testing::HasSubstr("unknown scenario 'kt-2024'"));
  EXPECT_THAT(bad.out, ::testing::HasSubstr("kt-2025"));
  RunResult start = Fg({"sim", "--scenario", "benign", "--devices", "300", "--seed", "1", "--out", t / "w",
                        "--start", "yesterday"});
  EXPECT_NE(start.exit_code, 0);
  EXPECT_THAT(start.out, ::testing::HasSubstr("--start"));
  RunResult missing = Fg({"score", "--truth", t / "nope.jsonl", "--alerts", t / "nope2.jsonl"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.out, ::testing::HasSubstr("nope.jsonl"));
}

TEST(SimCli, ScoreTableAndMalformedLines) {
  TempDir t;
  ASSERT_EQ(Fg({"sim", "--scenario", "clone", "--devices", "200", "--seed", "3", "--days", "1", "--out", t / "w"})
                .exit_code,
            0);
  WriteAll(t / "alerts.jsonl", "{not json\n");
  RunResult r = Fg({"score", "--truth", t / "w/truth.jsonl", "--alerts", t / "alerts.jsonl"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::HasSubstr("alerts.jsonl line 1"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("cert.clone"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("missed:"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("scenario clone, 200 devices"));
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, ScenarioTest,
    ::testing::Values(Case{"benign", 2025, 300, {}}, Case{"benign", 7, 300, {}},
                      Case{"kt-2025", 2025, 300, kKt}, Case{"kt-2025", 7, 300, kKt},
                      Case{"clone", 2025, 300, {"cert.clone", "location.mismatch"}},
                      Case{"clone", 7, 300, {"cert.clone", "location.mismatch"}},
                      Case{"decommissioned", 2025, 300, {"device.inactive", "location.mismatch"}},
                      Case{"decommissioned", 7, 300, {"device.inactive", "location.mismatch"}},
                      Case{"rogue-radio", 2025, 300, {"cell.unregistered"}},
                      Case{"rogue-radio", 7, 300, {"cell.unregistered"}},
                      Case{"stale-endpoint", 2025, 300, {"endpoint.retired", "cert.clone", "location.mismatch"}},
                      Case{"stale-endpoint", 7, 300, {"endpoint.retired", "cert.clone", "location.mismatch"}},
                      Case{"identity-theft", 2025, 300, {"identity.mismatch"}},
                      Case{"identity-theft", 7, 300, {"identity.mismatch"}},
                      Case{"all", 2025, 300, kAll}, Case{"all", 7, 2000, kAll}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = std::string(info.param.scenario) + "_" + std::to_string(info.param.seed) + "_" +
                         std::to_string(info.param.devices);
      for (char& ch : name)
        if (ch == '-') ch = '_';
      return name;
    });

}  // namespace
}  // namespace fg::testing
