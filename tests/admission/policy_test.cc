#include "admission/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/harness.h"

namespace fg::admission {
namespace {

using ::testing::HasSubstr;

TEST(AdmissionPolicyTest, DefaultsAreValid) {
  AdmissionPolicy p;
  EXPECT_TRUE(p.Validate().ok());
  EXPECT_EQ(p.chain, BuiltinCheckNames());
  auto empty = AdmissionPolicy::FromYaml("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->chain, p.chain);
}

TEST(AdmissionPolicyTest, ParsesEveryKey) {
  auto p = AdmissionPolicy::FromYaml(R"(
chain: [blocked, certificate, device, line]
verdicts: {location.line: quarantine, endpoint.unknown: deny, location.gnss: allow}
access_networks: [10.0.0.0/8, "2001:db8::/32"]
home_plmns: ["450-08", "450-005"]
cells_csv: /tmp/cells.csv
time_budget_ms: 20
gnss: {margin_m: 50, max_acc_m: 300}
rem: {expected_radius_m: 800, min_expected_cells: 4, min_matched: 2, far_km: 50, far_min_cells: 3,
      foreign_min_cells: 1, min_rsrp: -115}
rate: {identity: {max: 5, window_s: 30}, line: {max: 0, window_s: 60}}
clone: {same_prefix_is_reconnect: true}
)");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->chain, (std::vector<std::string>{"blocked", "certificate", "device", "line"}));
  EXPECT_EQ(p->verdicts.at("location.line"), Verdict::kQuarantine);
  EXPECT_EQ(p->verdicts.at("endpoint.unknown"), Verdict::kDeny);
  EXPECT_EQ(p->verdicts.at("location.gnss"), Verdict::kAllow);
  EXPECT_EQ(p->access_networks.size(), 2u);
  EXPECT_EQ(p->home_plmns, (std::vector<std::pair<int, int>>{{450, 8}, {450, 5}}));
  EXPECT_EQ(p->cells_csv, "/tmp/cells.csv");
  EXPECT_EQ(p->time_budget_ms, 20);
  EXPECT_EQ(p->gnss_margin_m, 50);
  EXPECT_EQ(p->gnss_max_acc_m, 300);
  EXPECT_EQ(p->rem.expected_radius_m, 800);
  EXPECT_EQ(p->rem.min_expected_cells, 4);
  EXPECT_EQ(p->rem.min_matched, 2);
  EXPECT_EQ(p->rem.far_km, 50);
  EXPECT_EQ(p->rem.far_min_cells, 3);
  EXPECT_EQ(p->rem.foreign_min_cells, 1);
  EXPECT_EQ(p->rem.min_rsrp, -115);
  EXPECT_EQ(p->rate_identity.max, 5);
  EXPECT_EQ(p->rate_identity.window_s, 30);
  EXPECT_EQ(p->rate_line.max, 0);
  EXPECT_TRUE(p->clone_same_prefix_is_reconnect);
}

TEST(AdmissionPolicyTest, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* key;
  } cases[] = {
      {"chain: [certificate, teleport]", "chain"},
      {"chain: [device, device]", "chain"},
      {"chain: device", "chain"},
      {"verdicts: {location.line: maybe}", "verdicts.location.line"},
      {"verdicts: {internal: allow}", "verdicts.internal"},
      {"access_networks: [10.0.0.0/33]", "access_networks[0]"},
      {"access_networks: [10.0.0.1]", "access_networks[0]"},
      {"home_plmns: [45008]", "home_plmns[0]"},
      {"time_budget_ms: soon", "time_budget_ms"},
      {"time_budget_ms: -1", "time_budget_ms"},
      {"gnss: {margin_m: -5}", "gnss.margin_m"},
      {"gnss: {radius: 5}", "gnss.radius"},
      {"rem: {far_km: 0}", "rem.far_km"},
      {"rem: {min_rsrp: 10}", "rem.min_rsrp"},
      {"rate: {identity: {max: -1}}", "rate.identity.max"},
      {"rate: {line: {window_s: 0}}", "rate.line.window_s"},
      {"rate: {burst: 3}", "rate.burst"},
      {"clone: {same_prefix_is_reconnect: perhaps}", "clone.same_prefix_is_reconnect"},
      {"colour: blue", "colour"},
      {"- just\n- a list", "top level"},
  };
  for (const Case& c : cases) {
    auto p = AdmissionPolicy::FromYaml(c.yaml);
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_THAT(p.status().message(), HasSubstr(c.key)) << c.yaml;
    EXPECT_THAT(p.status().message(), HasSubstr("admission.yaml")) << c.yaml;
  }
  auto broken = AdmissionPolicy::FromYaml("chain: [unclosed");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().message(), HasSubstr("not valid YAML"));
}

TEST(AdmissionPolicyTest, LoadForDataDirResolvesCellsAndDormancy) {
  testing::TempDir tmp;
  DataDir dir(tmp.path());
  Config config;
  config.dormancy_days = 45;
  auto none = AdmissionPolicy::LoadForDataDir(dir, config);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->dormancy_days, 45);
  EXPECT_EQ(none->cells_csv, "");
  testing::WriteAll(tmp / "cells.csv", "x");
  auto found = AdmissionPolicy::LoadForDataDir(dir, config);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->cells_csv, tmp / "cells.csv");
  testing::WriteAll(tmp / "admission.yaml", "cells_csv: other.csv\n");
  auto missing = AdmissionPolicy::LoadForDataDir(dir, config);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("cells_csv"));
  EXPECT_THAT(missing.status().message(), HasSubstr("other.csv"));
  testing::WriteAll(tmp / "admission.yaml", "rate: {identity: {max: x}}\n");
  auto bad = AdmissionPolicy::LoadForDataDir(dir, config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("rate.identity.max"));
  EXPECT_THAT(bad.status().message(), HasSubstr((tmp / "admission.yaml")));
}

}  // namespace
}  // namespace fg::admission
