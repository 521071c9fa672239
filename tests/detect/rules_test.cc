// The rules file: what an operator writes, what it means, and the errors a
// mistake gets (naming where it is).

#include "detect/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "detect/default_rules.h"
#include "detect/detector.h"
#include "testing/harness.h"

namespace fg::detect {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// test.free is not a rule of the build: it declares nothing, so its params
// and kinds are free (what RuleParams stores is tested through it). Rules of
// the build are held to their declarations (rule_declarations_test.cc).
const std::vector<std::string> kKnown = {"cert.clone", "device.unknown", "location.mismatch", "cert.shared",
                                         "test.free"};

constexpr char kExample[] = R"(
version: 1
defaults: {dedup_s: 600, suspect_ttl_s: 7200}
rules:
  test.free:
    enabled: true
    severity: critical
    actions: [terminate, block, notify]
    approve: [revoke]
    dedup_s: 3600
    params: {grace_s: 60, ratio: 0.5, name: clone}
    kinds:
      line: {severity: medium, actions: [notify]}
      quiet: {enabled: false}
    doc: "one identity, two lines"
  device.unknown:
    severity: high
  location.mismatch:
    enabled: false
  cert.shared:
    params:
      legacy_credentials:
        - {fp: "sha256:aa", cutoff: "2025-10-01T00:00:00Z"}
        - {fp: "sha256:bb", cutoff: "2025-11-01T00:00:00Z"}
      exempt_fps: [x, y]
)";

TEST(RulesTest, ParsesWhatTheOperatorWrote) {
  auto set = RuleSet::Parse(kExample, kKnown);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->suspect_ttl_ms(), 7200 * 1000);

  const RuleConfig* clone = set->Find("test.free");
  ASSERT_NE(clone, nullptr);
  EXPECT_TRUE(clone->outcome.enabled);
  EXPECT_EQ(clone->outcome.severity, Severity::kCritical);
  EXPECT_THAT(clone->outcome.actions, ElementsAre("terminate", "block", "notify"));
  EXPECT_THAT(clone->outcome.approve, ElementsAre("revoke"));
  EXPECT_EQ(clone->outcome.dedup_ms, 3600 * 1000);
  EXPECT_EQ(clone->doc, "one identity, two lines");
  EXPECT_EQ(clone->params.GetInt("grace_s", 0), 60);
  EXPECT_DOUBLE_EQ(clone->params.GetDouble("ratio", 0), 0.5);
  EXPECT_EQ(clone->params.GetString("name", ""), "clone");
  EXPECT_EQ(clone->params.GetInt("missing", 7), 7);
  EXPECT_EQ(clone->params.GetInt("name", 7), 7) << "not a number: the fallback";

  // Kind overrides inherit what they do not set.
  const RuleOutcome& line = clone->For("line");
  EXPECT_EQ(line.severity, Severity::kMedium);
  EXPECT_THAT(line.actions, ElementsAre("notify"));
  EXPECT_THAT(line.approve, ElementsAre("revoke"));
  EXPECT_EQ(line.dedup_ms, 3600 * 1000);
  EXPECT_FALSE(clone->For("quiet").enabled);
  EXPECT_EQ(clone->For("quiet").severity, Severity::kCritical);
  EXPECT_EQ(&clone->For("other"), &clone->outcome);
  EXPECT_EQ(&clone->For(""), &clone->outcome);

  // A rule that sets only its severity gets the defaults for the rest.
  const RuleConfig* unknown = set->Find("device.unknown");
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->outcome.severity, Severity::kHigh);
  EXPECT_THAT(unknown->outcome.actions, ElementsAre("notify"));
  EXPECT_EQ(unknown->outcome.dedup_ms, 600 * 1000);

  EXPECT_FALSE(set->Find("location.mismatch")->outcome.enabled);

  const RuleParams& legacy = set->Find("cert.shared")->params;
  auto creds = legacy.GetMaps("legacy_credentials");
  ASSERT_EQ(creds.size(), 2u);
  EXPECT_EQ(creds[1].at("fp"), "sha256:bb");
  EXPECT_EQ(creds[0].at("cutoff"), "2025-10-01T00:00:00Z");
  EXPECT_THAT(legacy.GetList("exempt_fps"), ElementsAre("x", "y"));
  EXPECT_TRUE(legacy.Has("exempt_fps"));
  EXPECT_TRUE(legacy.Has("legacy_credentials"));
  EXPECT_FALSE(legacy.Has("nothing"));

  // Rules the file does not name: medium, notify, the default dedup.
  EXPECT_EQ(set->Find("ue.capture"), nullptr);
  const RuleOutcome& fallback = set->OutcomeFor("ue.capture", "x");
  EXPECT_EQ(fallback.severity, Severity::kMedium);
  EXPECT_THAT(fallback.actions, ElementsAre("notify"));
  EXPECT_EQ(fallback.dedup_ms, 600 * 1000);
  EXPECT_EQ(&set->OutcomeFor("test.free", "line"), &line);
}

TEST(RulesTest, DefaultsApplyWhateverTheKeyOrder) {
  auto set = RuleSet::Parse("rules:\n  cert.clone: {severity: low}\ndefaults: {dedup_s: 5}\n", kKnown);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->Find("cert.clone")->outcome.dedup_ms, 5000);
}

TEST(RulesTest, AnEmptyFileMeansEveryRuleWithItsDefaults) {
  auto set = RuleSet::Parse("", kKnown);
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->rules().empty());
  EXPECT_EQ(set->suspect_ttl_ms(), 86400 * 1000);
}

TEST(RulesTest, MistakesAreErrorsThatSayWhere) {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"rules:\n  cert.clone:\n    actions: [notify, explode]\n",
       "rules.cert.clone.actions[1]: unknown action 'explode'"},
      {"rules:\n  cert.clown: {severity: high}\n", "rules.cert.clown: unknown rule"},
      {"rules:\n  cert.clone: {sevrity: high}\n", "rules.cert.clone.sevrity: unknown key"},
      {"rules:\n  cert.clone: {severity: apocalyptic}\n",
       "rules.cert.clone.severity: unknown severity 'apocalyptic'"},
      {"rules:\n  cert.clone: {approve: [nuke]}\n", "rules.cert.clone.approve[0]: unknown action 'nuke'"},
      {"rules:\n  cert.clone: {actions: [revoke], approve: [revoke]}\n",
       "rules.cert.clone.approve[0]: action 'revoke' is also taken automatically"},
      {"rules:\n  cert.clone: {actions: [notify, notify]}\n", "rules.cert.clone.actions[1]: action 'notify' listed twice"},
      {"rules:\n  cert.clone: {actions: notify}\n", "rules.cert.clone.actions: expected a list of actions"},
      {"rules:\n  cert.clone: {enabled: maybe}\n", "rules.cert.clone.enabled: expected true or false"},
      {"rules:\n  cert.clone: {dedup_s: -5}\n", "rules.cert.clone.dedup_s: expected a number of seconds"},
      {"rules:\n  cert.clone: {dedup_s: 1h}\n", "rules.cert.clone.dedup_s: expected a number of seconds"},
      {"rules:\n  location.mismatch:\n    kinds:\n      line: {params: {a: 1}}\n",
       "rules.location.mismatch.kinds.line.params: unknown key"},
      {"rules:\n  location.mismatch:\n    kinds:\n      line: {severity: huge}\n",
       "rules.location.mismatch.kinds.line.severity: unknown severity 'huge'"},
      {"rules:\n  test.free:\n    params: {deep: {er: 1}}\n", "rules.test.free.params.deep: expected a scalar or a list"},
      {"rules:\n  test.free:\n    params: {mixed: [1, {a: 2}]}\n", "rules.test.free.params.mixed: a list must hold"},
      {"rules:\n  cert.clone: [1, 2]\n", "rules.cert.clone: expected a map"},
      {"version: 2\n", "version: unsupported version"},
      {"verzion: 1\n", "verzion: unknown key (version, defaults, rules)"},
      {"defaults: {dedup: 5}\n", "defaults.dedup: unknown key"},
      {"defaults: {suspect_ttl_s: soon}\n", "defaults.suspect_ttl_s: expected a number of seconds"},
      {"rules: [cert.clone]\n", "rules: expected a map"},
      {"- just\n- a list\n", "expected a map with version, defaults, rules"},
      {"rules:\n  cert.clone: {severity: high\n", "line "},
  };
  for (const Case& c : cases) {
    auto set = RuleSet::Parse(c.yaml, kKnown);
    ASSERT_FALSE(set.ok()) << c.yaml;
    EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(set.status().message(), HasSubstr(c.error)) << c.yaml;
  }
}

TEST(RulesTest, LoadNamesTheFile) {
  fg::testing::TempDir dir;
  fg::testing::WriteAll(dir / "r.yaml", "rules:\n  cert.clone: {actions: [explode]}\n");
  auto bad = RuleSet::Load(dir / "r.yaml", kKnown);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(dir / "r.yaml"));
  EXPECT_THAT(bad.status().message(), HasSubstr("rules.cert.clone.actions[0]: unknown action 'explode'"));
  auto missing = RuleSet::Load(dir / "none.yaml", kKnown);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("none.yaml"));
}

TEST(RulesTest, SeveritiesAndActions) {
  for (auto s : {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical}) {
    Severity back{};
    ASSERT_TRUE(ParseSeverity(SeverityName(s), &back));
    EXPECT_EQ(back, s);
  }
  for (std::string_view a : kActions) EXPECT_TRUE(IsKnownAction(a));
  EXPECT_FALSE(IsKnownAction("explode"));
  for (std::string_view a : {"revoke", "suspend", "terminate", "block"}) EXPECT_TRUE(IsDisruptiveAction(a));
  for (std::string_view a : {"notify", "hold_payments"}) EXPECT_FALSE(IsDisruptiveAction(a));
}

// The rules file the build ships (embedded) is valid for the build's
// detectors: a replay without --rules can always start.
TEST(RulesTest, TheShippedDefaultRulesLoad) {
  auto set = LoadRulesOrDefault("");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  for (const auto& [id, config] : set->rules()) {
    std::vector<std::string> ids = AllRuleIds();
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
  }
}

}  // namespace
}  // namespace fg::detect
