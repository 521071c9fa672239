// Monitoring end to end (issue 18): a real Prometheus (Debian's
// `prometheus`, started here with its own configuration and storage on a
// free loopback port) scrapes a node's /metrics with an operator bearer
// token and evaluates contrib/prometheus/femtoguard-rules.yml. Before the
// attack no alert is firing; during the simulator's kt-2025 attack
// FemtoguardAttackResponse fires (asked of the Prometheus API,
// /api/v1/alerts); the latency histograms and fleet gauges are in its
// storage; and the rules for a node in trouble (down, OCSP errors, stream
// lag) stay quiet.

#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using nlohmann::json;

template <typename F>
bool PollUntil(F done, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 200) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    port_ = FreePort();
    do prom_port_ = FreePort();
    while (prom_port_ == port_);
    auto init = fg::testing::Run({Femtoguard(), "init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    SetPlainHttpApi(data_, true);  // loopback lab: the API (and /metrics) on the plain listener
    for (const char* role : {"ingest", "operator"}) {
      auto tok = fg::testing::Run({Femtoguard(), "token", "create", "--data", data_, "--role", role});
      tokens_[role] = FindApiToken(tok.out);
      ASSERT_FALSE(tokens_[role].empty()) << tok.out;
    }
    WriteAll(dir_ / "scrape.token", tokens_["operator"]);
    WriteAll(dir_ / "ingest.token", tokens_["ingest"]);
  }

  void StartPrometheus() {
    const std::string rules = std::string(FG_SOURCE_DIR) + "/contrib/prometheus/femtoguard-rules.yml";
    WriteAll(dir_ / "prometheus.yml",
             "global:\n"
             "  scrape_interval: 1s\n"
             "  evaluation_interval: 1s\n"
             "rule_files:\n"
             "  - " + rules + "\n"
             "scrape_configs:\n"
             "  - job_name: femtoguard\n"
             "    authorization:\n"
             "      credentials_file: " + (dir_ / "scrape.token") + "\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:" + std::to_string(port_) + "']\n");
    prometheus_ = std::make_unique<Process>(
        std::vector<std::string>{"prometheus", "--config.file=" + (dir_ / "prometheus.yml"),
                                 "--storage.tsdb.path=" + (dir_ / "tsdb"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)},
        dir_ / "prometheus.log");
    ASSERT_TRUE(WaitForHttp(PromUrl() + "/-/ready", 60000)) << ReadAll(dir_ / "prometheus.log");
  }
  std::string PromUrl() const { return "http://127.0.0.1:" + std::to_string(prom_port_); }

  json PromGet(const std::string& path_and_query) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "10", "-g", PromUrl() + path_and_query});
    return json::parse(r.out, nullptr, false);
  }
  // The value of an instant query's first sample, or -1.
  double Query(const std::string& promql) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "10", "--data-urlencode", "query=" + promql,
                  PromUrl() + "/api/v1/query"});
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object() || j["status"] != "success" || j["data"]["result"].empty()) return -1;
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }
  // Alert name -> state ("pending", "firing") from /api/v1/alerts.
  std::map<std::string, std::string> Alerts() {
    std::map<std::string, std::string> out;
    json j = PromGet("/api/v1/alerts");
    last_alerts_ = j.dump();
    if (!j.is_object() || !j["data"].is_object()) return out;
    for (const json& a : j["data"]["alerts"]) {
      out[a["labels"]["alertname"].get<std::string>()] = a["state"].get<std::string>();
    }
    return out;
  }

  TempDir dir_;
  std::string data_;
  int port_ = 0, prom_port_ = 0;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> serve_;
  std::unique_ptr<Process> prometheus_;
  std::string last_alerts_;
};

TEST_F(PrometheusTest, ScrapesANodeOverItsTokenAndAnAlertFiresDuringTheKt2025Attack) {
  const std::string world = dir_ / "world";
  auto sim = fg::testing::Run({Femtoguard(), "sim", "--scenario", "kt-2025", "--devices", "300", "--seed", "2025", "--out", world},
                 {}, 300);
  ASSERT_EQ(sim.exit_code, 0) << sim.out;
  auto imp = fg::testing::Run({Femtoguard(), "device", "import", "--data", data_, "--registry", world + "/registry.jsonl"});
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  WriteAll(data_ + "/cells.csv", ReadAll(world + "/cells.csv"));
  serve_ = std::make_unique<Process>(
      std::vector<std::string>{Femtoguard(), "serve", "--data", data_, "--tls-listen", "off", "--threads", "2"},
      dir_ / "serve.log");
  ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port_) + "/healthz", 60000))
      << ReadAll(dir_ / "serve.log");
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());

  // The scrape works with the token (up == 1) and sees the node's fleet.
  ASSERT_TRUE(PollUntil([&] { return Query("up{job=\"femtoguard\"}") == 1; }, 30000))
      << ReadAll(dir_ / "prometheus.log") << PromGet("/api/v1/targets").dump();
  EXPECT_EQ(Query("femtoguard_build_info"), 1);
  EXPECT_GT(Query("sum(femtoguard_devices)"), 250) << "300 devices were imported";
  // Quiet before the attack: nothing firing, nothing pending.
  ASSERT_TRUE(PollUntil([&] { return Query("count(femtoguard_response_actions_total)") > 0; }, 10000));
  EXPECT_TRUE(Alerts().empty()) << last_alerts_;

  auto feed = fg::testing::Run({Femtoguard(), "feed", "--data", data_, "--server", "127.0.0.1:" + std::to_string(port_),
                   "--token-file", dir_ / "ingest.token", "--events", world + "/events.jsonl", "--duration", "8",
                   "--quiet"},
                  {}, 300);
  ASSERT_EQ(feed.exit_code, 0) << feed.out.substr(0, 4000);

  std::map<std::string, std::string> alerts;
  ASSERT_TRUE(PollUntil(
      [&] {
        alerts = Alerts();
        return alerts.count("FemtoguardAttackResponse") && alerts["FemtoguardAttackResponse"] == "firing";
      },
      60000))
      << last_alerts_ << ReadAll(dir_ / "prometheus.log").substr(0, 4000);
  // The alert carries what routing needs.
  json j = PromGet("/api/v1/alerts");
  bool found = false;
  for (const json& a : j["data"]["alerts"]) {
    if (a["labels"]["alertname"] != "FemtoguardAttackResponse") continue;
    found = true;
    EXPECT_EQ(a["labels"]["severity"], "page");
    EXPECT_EQ(a["labels"]["instance"], "127.0.0.1:" + std::to_string(port_));
    EXPECT_THAT(a["annotations"]["summary"].get<std::string>(), ::testing::HasSubstr("cut off devices"));
  }
  EXPECT_TRUE(found);
  // A node in trouble is not what this is: those rules stay quiet.
  for (const char* quiet : {"FemtoguardDown", "FemtoguardOcspErrors", "FemtoguardStreamLag",
                            "FemtoguardAdmissionFailingClosed", "FemtoguardSiemExportDown"}) {
    EXPECT_EQ(alerts.count(quiet), 0u) << quiet << " " << last_alerts_;
  }
  // The latency histogram of the attack's actions reached Prometheus.
  EXPECT_TRUE(PollUntil([&] { return Query("sum(femtoguard_event_to_action_seconds_count)") > 0; }, 10000));
  EXPECT_GE(Query("histogram_quantile(0.95, sum by (le) (femtoguard_event_to_action_seconds_bucket))"), 0);
  EXPECT_GT(Query("sum(femtoguard_alerts_total)"), 10);
}

TEST_F(PrometheusTest, AScrapeWithoutTheTokenIsRefusedAndSeenAsDown) {
  serve_ = std::make_unique<Process>(
      std::vector<std::string>{Femtoguard(), "serve", "--data", data_, "--tls-listen", "off", "--threads", "1"},
      dir_ / "serve.log");
  ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port_) + "/healthz", 60000));
  WriteAll(dir_ / "scrape.token", tokens_["ingest"]);  // a real token, of a role that may not read metrics
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  ASSERT_TRUE(PollUntil([&] { return Query("up{job=\"femtoguard\"}") == 0; }, 30000));
  json targets = PromGet("/api/v1/targets");
  ASSERT_FALSE(targets["data"]["activeTargets"].empty());
  EXPECT_THAT(targets["data"]["activeTargets"][0]["lastError"].get<std::string>(), ::testing::HasSubstr("403"));
  EXPECT_EQ(Query("femtoguard_build_info"), -1) << "nothing of the node was stored";
}

}  // namespace
}  // namespace fg::testing
