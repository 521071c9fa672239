// Each admission check declares the admission.yaml keys it reads and the
// reason codes it answers (check.h CheckSpec); admission.yaml is validated
// against the declarations, `verdicts:` may name declared reasons only.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "admission/check.h"
#include "admission/policy.h"

namespace fg::admission {
namespace {

using ::testing::HasSubstr;

TEST(PolicyDeclarations, EveryCheckDeclaresItselfAndItsReasons) {
  std::vector<std::string> names = BuiltinCheckNames();
  ASSERT_EQ(BuiltinChecks().size(), names.size());
  std::set<std::string_view> reasons;
  for (size_t i = 0; i < names.size(); ++i) {
    const CheckRegistration& c = BuiltinChecks()[i];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.name, names[i]);
    ASSERT_NE(c.spec, nullptr);
    EXPECT_EQ(c.spec->name, c.name);
    EXPECT_FALSE(c.spec->reasons.empty());
    for (const ReasonSpec& r : c.spec->reasons) {
      EXPECT_FALSE(r.meaning.empty()) << r.code;
      EXPECT_FALSE(r.action.empty()) << r.code;
      EXPECT_TRUE(reasons.insert(r.code).second) << "declared by two checks: " << r.code;
    }
  }
  // The reasons a decision can carry (engine.cc adds "internal").
  std::set<std::string_view> all;
  for (const ReasonSpec& r : AdmissionReasons()) all.insert(r.code);
  for (const char* r :
       {"blocked", "rate", "cert.none", "cert.unknown", "cert.shared", "cert.revoked", "cert.hold",
        "cert.expired", "cert.not_yet_valid", "cert.clone", "device.unknown", "device.inactive",
        "endpoint.retired", "endpoint.unknown", "location.line", "location.gnss", "location.rem",
        "internal"}) {
    EXPECT_TRUE(all.count(r)) << r;
  }
}

TEST(PolicyDeclarations, DeclaredDefaultsAreThePolicysDefaults) {
  // Write every declared scalar key with its documented default: it loads,
  // and gives the built-in policy.
  AdmissionPolicy builtin;
  YAML::Node root;
  for (const KeySpec& k : AdmissionKeys()) {
    if (k.type != ValueType::kInt && k.type != ValueType::kNumber && k.type != ValueType::kBool)
      continue;
    std::string path(k.path);
    YAML::Node n = root;
    std::vector<std::string> parts;
    for (size_t s = 0, d; s <= path.size(); s = d + 1) {
      d = path.find('.', s);
      if (d == std::string::npos) d = path.size();
      parts.push_back(path.substr(s, d - s));
    }
    if (parts.size() == 1) root[parts[0]] = std::string(k.default_text);
    if (parts.size() == 2) root[parts[0]][parts[1]] = std::string(k.default_text);
    if (parts.size() == 3) root[parts[0]][parts[1]][parts[2]] = std::string(k.default_text);
  }
  YAML::Emitter e;
  e << root;
  auto p = AdmissionPolicy::FromYaml(e.c_str());
  ASSERT_TRUE(p.ok()) << e.c_str() << "\n" << p.status().ToString();
  EXPECT_EQ(p->time_budget_ms, builtin.time_budget_ms);
  EXPECT_EQ(p->gnss_margin_m, builtin.gnss_margin_m);
  EXPECT_EQ(p->gnss_max_acc_m, builtin.gnss_max_acc_m);
  EXPECT_EQ(p->rem.expected_radius_m, builtin.rem.expected_radius_m);
  EXPECT_EQ(p->rem.min_expected_cells, builtin.rem.min_expected_cells);
  EXPECT_EQ(p->rem.min_matched, builtin.rem.min_matched);
  EXPECT_EQ(p->rem.far_km, builtin.rem.far_km);
  EXPECT_EQ(p->rem.far_min_cells, builtin.rem.far_min_cells);
  EXPECT_EQ(p->rem.foreign_min_cells, builtin.rem.foreign_min_cells);
  EXPECT_EQ(p->rem.min_rsrp, builtin.rem.min_rsrp);
  EXPECT_EQ(p->rate_identity.max, builtin.rate_identity.max);
  EXPECT_EQ(p->rate_identity.window_s, builtin.rate_identity.window_s);
  EXPECT_EQ(p->rate_line.max, builtin.rate_line.max);
  EXPECT_EQ(p->rate_line.window_s, builtin.rate_line.window_s);
  EXPECT_EQ(p->clone_same_prefix_is_reconnect, builtin.clone_same_prefix_is_reconnect);
}

TEST(PolicyDeclarations, TyposWrongTypesRangesAndUnknownReasonsAreRefusedWithKeyAndLine) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"gnss:\n  margin: 5\n",
       "line 2: gnss.margin: unknown key (known here: margin_m, max_acc_m)"},
      {"time_budget_ms: fast\n", "line 1: time_budget_ms: expected an integer, got 'fast'"},
      {"rem: {min_rsrp: 5}\n", "rem.min_rsrp: must be in [-200, 0], got 5"},
      {"rate:\n  identity: {max: 10, window_s: 0}\n",
       "line 2: rate.identity.window_s: must be in [1, 86400], got 0"},
      {"verdicts:\n  endpoint.unknown: deny\n  endpoint.retird: allow\n",
       "line 3: verdicts.endpoint.retird: unknown reason code"},
      {"verdicts: {location.line: perhaps}\n",
       "verdicts.location.line: must be one of allow|deny|quarantine"},
      {"chain: [blocked, teleport]\n", "chain[1]: must be one of"},
      {"clone: {same_prefix_is_reconnect: perhaps}\n",
       "clone.same_prefix_is_reconnect: expected true or false"},
  };
  for (const Case& c : cases) {
    auto p = AdmissionPolicy::FromYaml(c.yaml);
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr(c.error)) << c.yaml;
  }
  // Every declared reason can be given a verdict.
  for (const ReasonSpec& r : AdmissionReasons()) {
    if (r.code == "internal") continue;
    auto p = AdmissionPolicy::FromYaml("verdicts: {" + std::string(r.code) + ": quarantine}\n");
    EXPECT_TRUE(p.ok()) << r.code << ": " << p.status().ToString();
  }
}

}  // namespace
}  // namespace fg::admission
