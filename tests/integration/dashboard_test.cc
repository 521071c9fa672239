// The operations artefacts in contrib/ (issue 18): the Grafana dashboard
// parses as a dashboard, and every metric that it or the Prometheus rules
// name is one the node exports (a metric name string in src/). A renamed
// metric that leaves a panel empty or an alert silent fails here.
// (`promtool check rules` and `promtool test rules` run as their own ctest
// entries: PrometheusRules.*.)

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::set<std::string> Names(const std::string& text) {
  static const std::regex re("femtoguard_[a-z0-9_]*[a-z0-9]");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    out.insert(it->str());
  }
  return out;
}

// Every "femtoguard_..." string literal in the node's sources.
std::set<std::string> ExportedMetrics() {
  static const std::regex re("\"(femtoguard_[a-z0-9_]+)\"");
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(std::string(FG_SOURCE_DIR) + "/src")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cc" && ext != ".h") continue;
    const std::string text = ReadAll(e.path().string());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
      out.insert((*it)[1].str());
    }
  }
  return out;
}

bool Known(const std::set<std::string>& exported, const std::string& name) {
  if (exported.count(name)) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {  // a histogram's series
    if (name.ends_with(suffix) && exported.count(name.substr(0, name.size() - std::strlen(suffix)))) return true;
  }
  return false;
}

// Every PromQL expression of the dashboard: panel targets and query variables.
void CollectExpressions(const json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "definition") && v.is_string()) out->push_back(v.get<std::string>());
      if (k == "query" && v.is_object() && v.contains("query") && v["query"].is_string()) {
        out->push_back(v["query"].get<std::string>());
      }
      CollectExpressions(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) CollectExpressions(v, out);
  }
}

TEST(DashboardTest, GrafanaDashboardParsesAndNamesOnlyExportedMetrics) {
  const std::string path = std::string(FG_SOURCE_DIR) + "/contrib/grafana/femtoguard.json";
  json d = json::parse(ReadAll(path), nullptr, false);
  ASSERT_TRUE(d.is_object()) << path << " is not JSON";
  ASSERT_TRUE(d["title"].is_string());
  ASSERT_TRUE(d["uid"].is_string());
  ASSERT_TRUE(d["panels"].is_array());
  std::set<int> ids;
  size_t with_targets = 0;
  for (const json& p : d["panels"]) {
    ASSERT_TRUE(p["type"].is_string()) << p.dump();
    ASSERT_TRUE(p["gridPos"].is_object()) << p.dump();
    ASSERT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
    if (p["type"] == "row") continue;
    ASSERT_TRUE(p["targets"].is_array() && !p["targets"].empty()) << p["title"];
    ++with_targets;
    for (const json& t : p["targets"]) {
      ASSERT_TRUE(t["expr"].is_string()) << p["title"];
      EXPECT_FALSE(Names(t["expr"].get<std::string>()).empty()) << "no femtoguard metric in " << t["expr"];
    }
  }
  EXPECT_GE(with_targets, 12u);

  std::vector<std::string> exprs;
  CollectExpressions(d, &exprs);
  const auto exported = ExportedMetrics();
  ASSERT_GT(exported.size(), 50u) << "the metric names in src/ were not found";
  std::set<std::string> used;
  for (const std::string& e : exprs) {
    for (const std::string& n : Names(e)) {
      used.insert(n);
      EXPECT_TRUE(Known(exported, n)) << "the dashboard queries " << n << ", which the node does not export";
    }
  }
  // What the issue asks the dashboard to show.
  for (const char* m : {"femtoguard_admission_seconds_bucket", "femtoguard_ocsp_response_seconds_bucket",
                        "femtoguard_payment_check_seconds_bucket", "femtoguard_event_to_action_seconds_bucket",
                        "femtoguard_devices", "femtoguard_certificates", "femtoguard_devices_dormant",
                        "femtoguard_journal_backlog_records", "femtoguard_build_info"}) {
    EXPECT_TRUE(used.count(m)) << "the dashboard does not show " << m;
  }
}

TEST(DashboardTest, PrometheusRulesNameOnlyExportedMetrics) {
  const std::string text = ReadAll(std::string(FG_SOURCE_DIR) + "/contrib/prometheus/femtoguard-rules.yml");
  ASSERT_FALSE(text.empty());
  const auto exported = ExportedMetrics();
  std::istringstream in(text);
  size_t checked = 0;
  for (std::string line; std::getline(in, line);) {
    // Expressions only: not comments, not annotation text.
    const size_t hash = line.find('#');
    if (hash != std::string::npos && line.find_first_not_of(' ') == hash) continue;
    if (line.find("summary:") != std::string::npos || line.find("description:") != std::string::npos) continue;
    for (const std::string& n : Names(line)) {
      ++checked;
      EXPECT_TRUE(Known(exported, n)) << "a rule uses " << n << ", which the node does not export: " << line;
    }
  }
  EXPECT_GE(checked, 13u);
}

}  // namespace
}  // namespace fg::testing
