// Validated configuration with the real binary (issue 14, "Typos pass"): a
// rules file, an admission.yaml and a config.yaml with a typo'd key, a wrong
// type, an out-of-range value or an unknown reason are each refused by
// `replay`, `serve` and `config check` with the file and key named and exit
// 2; the file is left as it was. Must not happen: a shipped or freshly
// written file that no longer loads. The docs carry the declarations.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RunResult Fg(std::vector<std::string> args, int timeout_s = 60) {
  args.insert(args.begin(), Femtoguard());
  return fg::testing::Run(args, {}, timeout_s);
}

constexpr char kCells[] =
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,450,8,1234,123456789,301,127.0,37.5,2000,10,1,1500000000,1600000000,0\n";

class ConfigValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    auto init = Fg({"init", "--data", data_});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(dir_ / "cells.csv", kCells);
    WriteAll(dir_ / "registry.jsonl", R"({"device":"FG-0000001","status":"active","mode":"open"})"
                                      "\n");
    WriteAll(
        dir_ / "events.jsonl",
        R"({"ts":"2026-01-01T00:00:00Z","type":"session.up","device":"FG-0000001","session":"s1","cert_fp":"sha256:01","src_ip":"203.0.113.1","endpoint":"segw1.example:500"})"
        "\n");
  }
  RunResult Replay(const std::string& rules) {
    return Fg({"replay", "--registry", dir_ / "registry.jsonl", "--cells", dir_ / "cells.csv",
               "--events", dir_ / "events.jsonl", "--alerts", dir_ / "alerts.jsonl", "--rules",
               rules});
  }
  RunResult Serve() {
    return Fg({"serve", "--data", data_, "--listen", "127.0.0.1:0", "--tls-listen", "off"}, 30);
  }
  TempDir dir_;
  std::string data_;
};

struct BadFile {
  const char* yaml;
  std::vector<const char*> expect;  // substrings of the error
};

TEST_F(ConfigValidationTest, BadRulesFilesExit2NamingFileKeyAndLine) {
  const BadFile cases[] = {
      {"rules:\n  cert.clone:\n    params: {grace_seconds: 5}\n",
       {"rules.cert.clone.params.grace_seconds: unknown key", "line 3"}},
      {"rules:\n  cert.clone:\n    params:\n      grace_s: sixty\n",
       {"rules.cert.clone.params.grace_s: expected an integer, got 'sixty'", "line 4"}},
      {"rules:\n  cert.clone:\n    params: {grace_s: 100000}\n",
       {"rules.cert.clone.params.grace_s: must be in [0, 86400], got 100000"}},
      {"rules:\n  ue.capture:\n    kinds:\n      rouge: {severity: low}\n",
       {"rules.ue.capture.kinds.rouge: unknown evidence kind", "line 4"}},
  };
  int n = 0;
  for (const BadFile& c : cases) {
    std::string file = dir_ / ("rules" + std::to_string(++n) + ".yaml");
    WriteAll(file, c.yaml);
    auto replay = Replay(file);
    EXPECT_EQ(replay.exit_code, 2) << replay.out;
    EXPECT_THAT(replay.out, HasSubstr(file)) << "the file is named";
    for (const char* e : c.expect) EXPECT_THAT(replay.out, HasSubstr(e)) << c.yaml;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "alerts.jsonl") &&
                 !ReadAll(dir_ / "alerts.jsonl").empty())
        << "nothing was replayed";
    EXPECT_EQ(ReadAll(file), c.yaml) << "the file is left as it was";

    auto check = Fg({"config", "check", "--data", data_, "--rules", file});
    EXPECT_EQ(check.exit_code, 2) << check.out;
    for (const char* e : c.expect) EXPECT_THAT(check.out, HasSubstr(e));

    // serve reads DIR/rules.yaml.
    WriteAll(data_ + "/rules.yaml", c.yaml);
    auto serve = Serve();
    EXPECT_EQ(serve.exit_code, 2) << serve.out;
    for (const char* e : c.expect) EXPECT_THAT(serve.out, HasSubstr(e));
    std::filesystem::remove(data_ + "/rules.yaml");
  }
}

TEST_F(ConfigValidationTest, BadAdmissionYamlExits2NamingFileKeyAndLine) {
  const BadFile cases[] = {
      {"gnss:\n  margin: 5\n", {"gnss.margin: unknown key", "line 2"}},
      {"time_budget_ms: fast\n", {"time_budget_ms: expected an integer, got 'fast'"}},
      {"rem: {min_rsrp: 5}\n", {"rem.min_rsrp: must be in [-200, 0], got 5"}},
      {"verdicts:\n  endpoint.retird: allow\n",
       {"verdicts.endpoint.retird: unknown reason code", "line 2"}},
  };
  for (const BadFile& c : cases) {
    std::string file = data_ + "/admission.yaml";
    WriteAll(file, c.yaml);
    auto check = Fg({"config", "check", "--data", data_});
    EXPECT_EQ(check.exit_code, 2) << check.out;
    EXPECT_THAT(check.out, HasSubstr(file));
    for (const char* e : c.expect) EXPECT_THAT(check.out, HasSubstr(e)) << c.yaml;
    auto serve = Serve();
    EXPECT_EQ(serve.exit_code, 2) << serve.out;
    EXPECT_THAT(serve.out, HasSubstr("admission.yaml"));
    for (const char* e : c.expect) EXPECT_THAT(serve.out, HasSubstr(e)) << c.yaml;
    EXPECT_EQ(ReadAll(file), c.yaml);
  }
}

TEST_F(ConfigValidationTest, BadConfigYamlExits2NamingFileAndKey) {
  std::string file = data_ + "/config.yaml";
  std::string good = ReadAll(file);
  const BadFile cases[] = {
      {"lisen: 127.0.0.1:1\n", {"lisen: unknown key"}},
      {"certificates: {renew_at_percent: most}\n",
       {"certificates.renew_at_percent: expected an integer"}},
      {"crl: {validity_s: 5}\n", {"crl.validity_s: must be in [300, 2592000], got 5"}},
  };
  for (const BadFile& c : cases) {
    WriteAll(file, good + c.yaml);
    for (auto args : {std::vector<std::string>{"config", "check", "--data", data_},
                      std::vector<std::string>{"device", "list", "--data", data_}}) {
      auto r = Fg(args);
      EXPECT_EQ(r.exit_code, 2) << r.out;
      EXPECT_THAT(r.out, HasSubstr(file));
      for (const char* e : c.expect) EXPECT_THAT(r.out, HasSubstr(e)) << c.yaml;
    }
    auto serve = Serve();
    EXPECT_EQ(serve.exit_code, 2) << serve.out;
    for (const char* e : c.expect) EXPECT_THAT(serve.out, HasSubstr(e)) << c.yaml;
  }
}

// Must not happen: what init writes, the shipped rules and an admission.yaml
// spelling out every documented default stop loading.
TEST_F(ConfigValidationTest, ShippedAndWrittenFilesLoad) {
  auto fresh = Fg({"config", "check", "--data", data_});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(FG_SOURCE_DIR) + "/rules")) {
    auto r = Fg({"config", "check", "--data", data_, "--rules", e.path().string()});
    EXPECT_EQ(r.exit_code, 0) << e.path() << ": " << r.out;
  }
  WriteAll(data_ + "/admission.yaml",
           "chain: [blocked, rate, certificate, device, endpoint, clone, line, gnss, rem]\n"
           "verdicts: {endpoint.unknown: deny, location.gnss: quarantine}\n"
           "access_networks: [10.0.0.0/8]\nhome_plmns: [\"450-08\"]\ntime_budget_ms: 500\n"
           "gnss: {margin_m: 200, max_acc_m: 1000}\n"
           "rem: {expected_radius_m: 1000, min_expected_cells: 3, min_matched: 1, far_km: 30, "
           "far_min_cells: 2,\n"
           "      foreign_min_cells: 2, min_rsrp: -125}\n"
           "rate: {identity: {max: 20, window_s: 60}, line: {max: 200, window_s: 60}}\n"
           "clone: {same_prefix_is_reconnect: false}\n");
  auto full = Fg({"config", "check", "--data", data_});
  EXPECT_EQ(full.exit_code, 0) << full.out;
  auto replay = Replay(std::string(FG_SOURCE_DIR) + "/rules/default.yaml");
  EXPECT_EQ(replay.exit_code, 0) << replay.out;
}

// The operator docs carry the declarations verbatim: a key, parameter or
// reason added to the code and not to docs/ fails here.
TEST_F(ConfigValidationTest, DocsCarryTheDeclarations) {
  auto keys = Fg({"config", "keys"});
  ASSERT_EQ(keys.exit_code, 0) << keys.out;
  std::string configuration = ReadAll(std::string(FG_SOURCE_DIR) + "/docs/configuration.md");
  EXPECT_THAT(configuration, HasSubstr(keys.out))
      << "docs/configuration.md is out of date: paste `femtoguard config keys` between its markers";
  auto reasons = Fg({"config", "reasons"});
  ASSERT_EQ(reasons.exit_code, 0) << reasons.out;
  std::string reasons_md = ReadAll(std::string(FG_SOURCE_DIR) + "/docs/reasons.md");
  EXPECT_THAT(reasons_md, HasSubstr(reasons.out))
      << "docs/reasons.md is out of date: paste `femtoguard config reasons` between its markers";
  EXPECT_THAT(keys.out, HasSubstr("`grace_s`"));
  EXPECT_THAT(reasons.out, HasSubstr("`endpoint.retired`"));
}

}  // namespace
}  // namespace fg::testing
