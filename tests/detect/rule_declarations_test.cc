// Each detector declares its parameters (typed, with default and range) and
// its evidence kinds (detector.h RuleSpec); the rules file is validated
// against the declarations, and a rule the file leaves out runs with the
// declared defaults.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "detect/default_rules.h"
#include "detect/detector.h"
#include "detect/rules.h"

namespace fg::detect {
namespace {

using ::testing::HasSubstr;

TEST(RuleDeclarations, EveryDetectorDeclaresItselfWithValidDefaults) {
  ASSERT_FALSE(AllDetectors().empty());
  for (const DetectorInfo& d : AllDetectors()) {
    SCOPED_TRACE(std::string(d.rule));
    ASSERT_NE(d.spec, nullptr);
    EXPECT_EQ(d.spec->rule, d.rule);
    EXPECT_FALSE(d.spec->meaning.empty());
    EXPECT_FALSE(d.spec->action.empty());
    // The declared defaults, written as a params map, pass the declaration.
    std::string yaml = "{";
    std::set<std::string_view> names;
    for (const KeySpec& k : d.spec->params) {
      EXPECT_TRUE(names.insert(k.path).second) << "declared twice: " << k.path;
      EXPECT_FALSE(k.meaning.empty()) << k.path;
      yaml += std::string(yaml.size() > 1 ? ", " : "") + std::string(k.path) + ": " +
              std::string(k.default_text);
    }
    yaml += "}";
    Status s = ValidateKeys(YAML::Load(yaml), d.spec->params, "params");
    EXPECT_TRUE(s.ok()) << yaml << ": " << s.ToString();
    std::set<std::string_view> kinds;
    for (const ReasonSpec& k : d.spec->kinds) {
      EXPECT_TRUE(kinds.insert(k.code).second) << k.code;
      EXPECT_FALSE(k.meaning.empty());
      EXPECT_FALSE(k.action.empty());
    }
  }
}

TEST(RuleDeclarations, ARuleTheFileLeavesOutGetsTheDeclaredDefaults) {
  EXPECT_EQ(DeclaredDefaults("cert.clone").GetInt("grace_s", -1), 60);
  EXPECT_EQ(DeclaredDefaults("cell.unregistered").GetInt("max_tracked_cells", -1), 65536);
  EXPECT_DOUBLE_EQ(DeclaredDefaults("location.mismatch").GetDouble("margin_m", -1), 250);
  EXPECT_FALSE(DeclaredDefaults("no.such.rule").Has("grace_s"));
  // Named without params: completed with the defaults too.
  auto set = RuleSet::Parse("rules:\n  cert.clone: {severity: high}\n", AllRuleIds());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->Find("cert.clone")->params.GetString("grace_s", ""), "60");
  // A value given wins over the default.
  auto given = RuleSet::Parse("rules:\n  cert.clone: {params: {grace_s: 5}}\n", AllRuleIds());
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->Find("cert.clone")->params.GetInt("grace_s", -1), 5);
}

TEST(RuleDeclarations, TyposWrongTypesRangesAndKindsAreRefusedWithPathAndLine) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"rules:\n  cert.clone:\n    params: {grace_seconds: 5}\n",
       "line 3: rules.cert.clone.params.grace_seconds: unknown key (known here: grace_s, "
       "same_prefix_is_reconnect)"},
      {"rules:\n  cert.clone:\n    params:\n      grace_s: sixty\n",
       "line 4: rules.cert.clone.params.grace_s: expected an integer, got 'sixty'"},
      {"rules:\n  cert.clone:\n    params: {grace_s: 90000}\n",
       "rules.cert.clone.params.grace_s: must be in [0, 86400], got 90000"},
      {"rules:\n  location.moving:\n    params: {min_positions: 7}\n",
       "rules.location.moving.params.min_positions: must be in [2, 3], got 7"},
      {"rules:\n  location.mismatch:\n    params: {margin_m: far}\n",
       "rules.location.mismatch.params.margin_m: expected a number"},
      {"rules:\n  cert.shared:\n    params: {exempt_fps: sha256:aa}\n",
       "rules.cert.shared.params.exempt_fps: expected a list"},
      {"rules:\n  cert.legacy:\n    params:\n      legacy_credentials: [{fp: a, cutof: b}]\n",
       "line 4: rules.cert.legacy.params.legacy_credentials[0].cutof: unknown key"},
      {"rules:\n  device.unknown:\n    params: {anything: 1}\n",
       "rules.device.unknown.params.anything: unknown key (known here: none)"},
      {"rules:\n  ue.capture:\n    kinds:\n      rouge: {severity: low}\n",
       "line 4: rules.ue.capture.kinds.rouge: unknown evidence kind (known: closed_nonmembers, "
       "rogue, over_capacity)"},
      {"rules:\n  cert.clone:\n    kinds:\n      line: {severity: low}\n",
       "rules.cert.clone.kinds.line: unknown evidence kind (known: none)"},
      {"rules:\n  cert.clone:\n    sevrity: high\n",
       "line 3: rules.cert.clone.sevrity: unknown key"},
  };
  for (const Case& c : cases) {
    auto set = RuleSet::Parse(c.yaml, AllRuleIds());
    ASSERT_FALSE(set.ok()) << c.yaml;
    EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(set.status().message(), HasSubstr(c.error)) << c.yaml;
  }
}

// Must not happen: a shipped rules file, or a rules file of the data tests,
// that no longer loads.
TEST(RuleDeclarations, EveryShippedRulesFileLoads) {
  auto embedded = LoadRulesOrDefault("");
  EXPECT_TRUE(embedded.ok()) << embedded.status().ToString();
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(FG_SOURCE_DIR) + "/rules")) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    auto set = RuleSet::Load(e.path().string(), AllRuleIds());
    EXPECT_TRUE(set.ok()) << e.path() << ": " << set.status().ToString();
  }
  EXPECT_GE(n, 1);
}

// The evidence kinds the rule data tests expect are all declared (a kind
// the detector emits but does not declare could not be tuned in the file).
TEST(RuleDeclarations, KindsTheDataTestsExpectAreDeclared) {
  int seen = 0;
  for (const auto& dir :
       std::filesystem::directory_iterator(std::string(FG_SOURCE_DIR) + "/tests/rules")) {
    std::ifstream in(dir.path() / "expected.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("rule")) continue;
      std::string rule = j["rule"].get<std::string>();
      std::string kind = j.value("kind", "");
      const RuleSpec* spec = FindRuleSpec(rule);
      ASSERT_NE(spec, nullptr) << rule;
      if (kind.empty()) continue;
      ++seen;
      bool declared = false;
      for (const ReasonSpec& k : spec->kinds) declared |= k.code == kind;
      EXPECT_TRUE(declared) << rule << " kind " << kind << " (" << dir.path() << ")";
    }
  }
  EXPECT_GT(seen, 0);
}

}  // namespace
}  // namespace fg::detect
