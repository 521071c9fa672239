// Data-driven rule tests (Zeek btest style): every directory under
// tests/rules/ holds registry.jsonl, cells.csv, events.jsonl and
// expected.jsonl (and optionally params.yaml, merged into the shipped
// rules/default.yaml). The real binary replays it:
//
//   femtoguard replay --registry registry.jsonl --cells cells.csv
//                     --events events.jsonl --alerts OUT --rules RULES
//
// and OUT must equal expected.jsonl on what matters - ts, rule, kind,
// severity, device, actions, approve; the number of subjects and the
// evidence keys when the expected line names them - in any order. Ids and
// other evidence detail need not match textually (pseudonyms use a key made
// for the run). A "-benign-" directory is a must-not-fire twin: besides its
// expected file (usually empty) no alert in it may carry a disruptive action.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/time.h"
#include "detect/detector.h"
#include "detect/rules.h"
#include "testing/harness.h"

namespace fg::detect {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path RulesRoot() { return fs::path(FG_SOURCE_DIR) / "tests" / "rules"; }
fs::path DefaultRules() { return fs::path(FG_SOURCE_DIR) / "rules" / "default.yaml"; }

std::vector<std::string> RuleDirs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(RulesRoot()))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// One JSON object per non-blank line; a line that is not one fails the test.
std::vector<json> ReadJsonLines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << path << ":" << n << " is not a JSON object: " << line;
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// params.yaml ({rule: {param: value}}) merged into the shipped rules.
std::string MergedRules(const fs::path& params_file) {
  YAML::Node rules = YAML::LoadFile(DefaultRules().string());
  YAML::Node params = YAML::LoadFile(params_file.string());
  for (auto r = params.begin(); r != params.end(); ++r) {
    std::string rule = r->first.as<std::string>();
    for (auto p = r->second.begin(); p != r->second.end(); ++p) {
      rules["rules"][rule]["params"][p->first.as<std::string>()] = p->second;
    }
  }
  YAML::Emitter out;
  out << rules;
  return out.c_str();
}

std::vector<std::string> Sorted(const json& list) {
  std::vector<std::string> out;
  if (list.is_array())
    for (const json& a : list) out.push_back(a.get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

// What must match, as one comparable, printable value.
struct Key {
  UnixMillis ts = 0;
  std::string rule, kind, device, severity;
  std::vector<std::string> actions, approve;

  static Key Of(const json& a) {
    Key k;
    auto t = ParseRfc3339(a.value("ts", ""));
    k.ts = t.ok() ? *t : -1;
    k.rule = a.value("rule", "");
    k.kind = a.value("kind", "");
    k.device = a.contains("device") && a["device"].is_string() ? a["device"].get<std::string>() : "";
    k.severity = a.value("severity", "");
    k.actions = Sorted(a.value("actions", json::array()));
    k.approve = Sorted(a.value("approve", json::array()));
    return k;
  }
  auto Tie() const { return std::tie(ts, rule, device, kind, severity, actions, approve); }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
  bool operator==(const Key& o) const { return Tie() == o.Tie(); }
  std::string ToString() const {
    std::string s = FormatRfc3339(ts) + " " + rule + " kind=" + kind + " device=" + device + " " + severity +
                    " actions=[";
    for (const auto& a : actions) s += a + ",";
    s += "] approve=[";
    for (const auto& a : approve) s += a + ",";
    return s + "]";
  }
};

// Every key of `want` is in `got` with an equal value (objects recursively;
// numbers compare as numbers).
bool Subset(const json& want, const json& got, std::string* why, const std::string& path = "evidence") {
  if (want.is_object()) {
    if (!got.is_object()) {
      *why = path + " is not an object";
      return false;
    }
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (!got.contains(it.key())) {
        *why = path + "." + it.key() + " missing";
        return false;
      }
      if (!Subset(it.value(), got[it.key()], why, path + "." + it.key())) return false;
    }
    return true;
  }
  if (want != got) {
    *why = path + ": want " + want.dump() + ", got " + got.dump();
    return false;
  }
  return true;
}

std::string Listing(const std::vector<std::pair<Key, json>>& v) {
  std::string s;
  for (const auto& [k, j] : v) s += "    " + k.ToString() + "\n";
  return s.empty() ? "    (none)\n" : s;
}

class RulesData : public ::testing::TestWithParam<std::string> {};

TEST_P(RulesData, ReplayMatchesExpected) {
  const fs::path dir = RulesRoot() / GetParam();
  for (const char* f : {"registry.jsonl", "cells.csv", "events.jsonl", "expected.jsonl"})
    ASSERT_TRUE(fs::exists(dir / f)) << dir / f << " missing";

  fg::testing::TempDir tmp;
  std::string rules = DefaultRules().string();
  if (fs::exists(dir / "params.yaml")) {
    rules = tmp / "rules.yaml";
    fg::testing::WriteAll(rules, MergedRules(dir / "params.yaml"));
  }
  const std::string out = tmp / "alerts.jsonl";
  auto r = fg::testing::Run({FG_BINARY, "replay", "--registry", (dir / "registry.jsonl").string(), "--cells",
                             (dir / "cells.csv").string(), "--events", (dir / "events.jsonl").string(), "--alerts",
                             out, "--rules", rules});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Every input line must have been taken: a skipped line would make the
  // expectation meaningless.
  EXPECT_FALSE(std::regex_search(r.out, std::regex(R"(\.(jsonl|csv):[0-9]+:)"))) << r.out;

  // No raw subscriber identity in the alerts (the test IMSIs all start so).
  std::string raw = fg::testing::ReadAll(out);
  EXPECT_EQ(raw.find("45008100000"), std::string::npos) << "raw IMSI in alerts:\n" << raw;

  std::vector<std::pair<Key, json>> got, want;
  for (json& a : ReadJsonLines(out)) got.emplace_back(Key::Of(a), std::move(a));
  for (json& a : ReadJsonLines((dir / "expected.jsonl").string())) want.emplace_back(Key::Of(a), std::move(a));
  auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::sort(got.begin(), got.end(), by_key);
  std::sort(want.begin(), want.end(), by_key);

  bool same = got.size() == want.size();
  for (size_t i = 0; same && i < got.size(); ++i) same = got[i].first == want[i].first;
  ASSERT_TRUE(same) << GetParam() << ": alerts differ\n  expected:\n"
                    << Listing(want) << "  got:\n"
                    << Listing(got) << "  raw output:\n"
                    << raw;

  for (size_t i = 0; i < want.size(); ++i) {
    const json& w = want[i].second;
    const json& g = got[i].second;
    if (w.contains("subjects")) {
      EXPECT_EQ(g.value("subjects", json::array()).size(), w["subjects"].get<size_t>())
          << want[i].first.ToString() << "\n" << g.dump();
    }
    if (w.contains("evidence")) {
      std::string why;
      EXPECT_TRUE(Subset(w["evidence"], g.value("evidence", json::object()), &why))
          << want[i].first.ToString() << ": " << why << "\n" << g.dump();
    }
    EXPECT_FALSE(g.value("id", "").empty()) << g.dump();
  }

  if (GetParam().find("-benign") != std::string::npos) {
    for (const auto& [k, g] : got)
      for (const std::string& a : k.actions)
        EXPECT_FALSE(IsDisruptiveAction(a)) << "benign look-alike got a disruptive action: " << k.ToString();
  }
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Rules, RulesData, ::testing::ValuesIn(RuleDirs()), TestName);

TEST(RulesDataLayout, EveryRuleHasAFiringDirAndABenignTwin) {
  std::vector<std::string> dirs = RuleDirs();
  for (const std::string& rule : AllRuleIds()) {
    EXPECT_TRUE(std::find(dirs.begin(), dirs.end(), rule) != dirs.end()) << "tests/rules/" << rule << " missing";
    bool twin = std::any_of(dirs.begin(), dirs.end(),
                            [&](const std::string& d) { return d.rfind(rule + "-benign", 0) == 0; });
    EXPECT_TRUE(twin) << "tests/rules/" << rule << "-benign-* missing";
    // The firing directory expects its own rule to fire.
    bool fires = false;
    for (const json& a : ReadJsonLines((RulesRoot() / rule / "expected.jsonl").string()))
      if (a.value("rule", "") == rule) fires = true;
    EXPECT_TRUE(fires) << "tests/rules/" << rule << "/expected.jsonl does not expect " << rule;
  }
}

}  // namespace
}  // namespace fg::detect
