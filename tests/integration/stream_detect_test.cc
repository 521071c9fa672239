// Cluster-mode detection over JetStream (issue 16, docs/stream.md), with the
// real binary, a real 3-node nats-server cluster and, for serve, a real
// PostgreSQL cluster store:
//  - `replay --bus --workers N` (N = 1, 2, 4, 16 partitions) writes exactly
//    the alerts single-process replay writes (ids, rules, devices,
//    subjects), for kt-2025 and for every scenario of the simulator;
//  - a replay worker killed with SIGKILL mid-run: the other takes its
//    partitions over and the union is still replay's;
//  - kt-2025 fed through two serve nodes (batches alternating between them)
//    gives replay's alert ids, each stored once, each published once on
//    FG_ALERTS; a re-sent batch makes no new alert;
//  - kill -9 of a serve node mid-stream: its partitions are taken over
//    within 10 s, nothing is lost, and no action is taken twice.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/harness.h"
#include "testing/nats_server.h"
#include "testing/pg_server.h"

namespace fg::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

RunResult Fg(std::vector<std::string> args, int timeout_s = 300) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, timeout_s);
}

// What the invariant compares: id -> "rule|device|subjects".
using AlertSet = std::map<std::string, std::string>;

AlertSet ParseAlerts(const std::string& text) {
  AlertSet out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("id")) continue;
    const auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
    std::string v = text("rule") + "|" + text("device") + "|";
    if (j.contains("subjects")) v += j["subjects"].dump();
    out[j["id"].get<std::string>()] = v;
  }
  return out;
}

std::string Tail(const std::string& text, size_t bytes = 6000) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

std::string Diff(const AlertSet& want, const AlertSet& got) {
  std::ostringstream o;
  int shown = 0;
  for (const auto& [id, v] : want) {
    auto it = got.find(id);
    if (it == got.end() && shown++ < 5) o << "\n  missing " << id << " " << v;
    if (it != got.end() && it->second != v && shown++ < 5) o << "\n  differs " << id << " " << v << " / " << it->second;
  }
  for (const auto& [id, v] : got)
    if (!want.count(id) && shown++ < 10) o << "\n  extra " << id << " " << v;
  return o.str();
}

class StreamDetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = NatsCluster::Start();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    nats_ = std::move(c).value();
  }
  std::string P(const std::string& name) const { return dir_ / name; }

  void Sim(const std::string& scenario, int devices, const std::string& out) {
    auto sim = Fg({"sim", "--scenario", scenario, "--devices", std::to_string(devices), "--seed", "7", "--out", out});
    ASSERT_EQ(sim.exit_code, 0) << sim.out;
  }

  // Single-process replay of `world` with the pseudonym key and store of `data`.
  AlertSet Replay(const std::string& data, const std::string& world) {
    auto r = Fg({"replay", "--data", data, "--registry", world + "/registry.jsonl", "--cells", world + "/cells.csv",
                 "--events", world + "/events.jsonl", "--alerts", world + "/replay.jsonl"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return ParseAlerts(ReadAll(world + "/replay.jsonl"));
  }

  // A kt-2025 world of `devices`, its replay alerts in want_, and the log
  // published for run `run` over 8 partitions with no worker (--workers 0):
  // workers are started by hand with Join, as on other machines.
  void PublishOnly(const std::string& run, int devices) {
    ASSERT_EQ(Fg({"init", "--data", P("d")}).exit_code, 0);
    world_ = P("kt");
    ASSERT_NO_FATAL_FAILURE(Sim("kt-2025", devices, world_));
    want_ = Replay(P("d"), world_);
    auto pub = Fg({"replay", "--data", P("d"), "--bus", nats_->Urls(), "--workers", "0", "--run", run,
                   "--partitions", "8", "--registry", world_ + "/registry.jsonl", "--cells", world_ + "/cells.csv",
                   "--events", world_ + "/events.jsonl", "--alerts", P("unused.jsonl")});
    ASSERT_EQ(pub.exit_code, 0) << pub.out;
  }
  // A `replay --join` worker of two, writing <name>.jsonl and <name>.log.
  std::unique_ptr<Process> Join(const std::string& run, const std::string& name,
                                const std::vector<std::string>& env = {}) {
    return std::make_unique<Process>(
        std::vector<std::string>{Femtoguard(), "replay", "--join", run, "--bus", nats_->Urls(), "--partitions", "8",
                                 "--expect-workers", "2", "--data", P("d"), "--registry",
                                 world_ + "/registry.jsonl", "--cells", world_ + "/cells.csv", "--alerts",
                                 P(name + ".jsonl")},
        P(name + ".log"), env);
  }
  // Until the worker has taken a partition (10 s at most).
  bool WaitForLog(const std::string& name) {
    for (int i = 0; i < 400; ++i) {
      if (ReadAll(P(name + ".log")).find("taken") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
  // The worker exits 0 within 180 s.
  void Finishes(Process& worker, const std::string& name) {
    for (int i = 0; i < 1800 && worker.Running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_FALSE(worker.Running()) << name << " hangs:\n" << ReadAll(P(name + ".log"));
    EXPECT_EQ(worker.Stop(), 0) << ReadAll(P(name + ".log"));
  }
  // The union of the alerts the workers wrote.
  AlertSet Union(const std::vector<std::string>& names) {
    AlertSet got;
    for (const std::string& name : names)
      for (auto& [id, v] : ParseAlerts(ReadAll(P(name + ".jsonl")))) got[id] = v;
    return got;
  }

  TempDir dir_;
  std::unique_ptr<NatsCluster> nats_;
  std::string world_;
  AlertSet want_;
};

TEST_F(StreamDetectTest, DistributedReplayWritesReplaysAlertsForAnyWorkerCount) {
  ASSERT_EQ(Fg({"init", "--data", P("d")}).exit_code, 0);
  for (const auto& [scenario, devices] : std::vector<std::pair<std::string, int>>{{"kt-2025", 2000}, {"all", 1500}}) {
    const std::string world = P(scenario);
    ASSERT_NO_FATAL_FAILURE(Sim(scenario, devices, world));
    const AlertSet want = Replay(P("d"), world);
    ASSERT_GT(want.size(), 50u) << "the scenario should raise alerts";
    std::set<std::string> rules;
    for (const auto& [id, v] : want) rules.insert(v.substr(0, v.find('|')));
    if (scenario == "all") {
      // Every rule family whose state is not the device's is exercised.
      for (const char* r : {"payment.risk", "cell.unregistered", "cert.shared", "identity.mismatch", "endpoint.retired"})
        EXPECT_TRUE(rules.count(r)) << scenario << " raises no " << r;
    }
    for (int workers : {1, 2, 4}) {
      const std::string out = world + "/bus-" + std::to_string(workers) + ".jsonl";
      auto r = Fg({"replay", "--data", P("d"), "--bus", nats_->Urls(), "--workers", std::to_string(workers),
                   "--partitions", "16", "--registry", world + "/registry.jsonl", "--cells", world + "/cells.csv",
                   "--events", world + "/events.jsonl", "--alerts", out});
      ASSERT_EQ(r.exit_code, 0) << r.out;
      const AlertSet got = ParseAlerts(ReadAll(out));
      EXPECT_EQ(got.size(), want.size()) << scenario << ", " << workers << " workers" << Diff(want, got);
      EXPECT_TRUE(got == want) << scenario << ", " << workers << " workers" << Diff(want, got);
      // Each worker did part of the work (none idle, none did it all).
      if (workers > 1) {
        std::smatch m;
        std::string text = r.out;
        int busy = 0;
        while (std::regex_search(text, m, std::regex("worker [0-9]+: ([0-9]+) events"))) {
          busy += std::stoll(m[1]) > 0;
          text = m.suffix();
        }
        EXPECT_EQ(busy, workers) << r.out;
      }
    }
  }
}

TEST_F(StreamDetectTest, AReplayWorkerKilledMidRunIsTakenOverAndNothingIsLost) {
  ASSERT_NO_FATAL_FAILURE(PublishOnly("killrun", 20000));
  auto victim = Join("killrun", "victim");
  auto survivor = Join("killrun", "survivor");
  // Once the victim works on its partitions, SIGKILL.
  ASSERT_TRUE(WaitForLog("victim")) << ReadAll(P("victim.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(victim->pid(), SIGKILL);
  victim->Stop();
  // The survivor finishes alone (the victim's leases expire after 6 s).
  ASSERT_NO_FATAL_FAILURE(Finishes(*survivor, "survivor"));
  const std::string log = ReadAll(P("survivor.log"));
  EXPECT_TRUE(std::regex_search(log, std::regex("worker [0-9]+: [0-9]+ events"))) << "it finished: " << log;
  int taken = 0;
  for (size_t at = log.find("taken"); at != std::string::npos; at = log.find("taken", at + 1)) ++taken;
  EXPECT_GT(taken, 4) << "the survivor should have taken the victim's partitions over:\n" << log;
  // The union of what both wrote (the victim's partial file included).
  EXPECT_TRUE(Union({"victim", "survivor"}) == want_) << Diff(want_, Union({"victim", "survivor"}));
}

// A client that drops deliveries: cnats drops a consumer's messages past
// its pending limit when the fetching thread is slower than the socket (a
// partition rebuilt from a backlog on a starved machine). Here the limit is
// 2 messages, so it drops on almost every fetch; the workers must notice
// each hole, read again, and write replay's alerts.
TEST_F(StreamDetectTest, WorkersWhoseClientDropsDeliveriesReadAgainAndLoseNothing) {
  ASSERT_NO_FATAL_FAILURE(PublishOnly("droprun", 2000));
  auto w1 = Join("droprun", "w1", {"FEMTOGUARD_STREAM_PENDING_MSGS=2"});
  auto w2 = Join("droprun", "w2", {"FEMTOGUARD_STREAM_PENDING_MSGS=2"});
  ASSERT_NO_FATAL_FAILURE(Finishes(*w1, "w1"));
  ASSERT_NO_FATAL_FAILURE(Finishes(*w2, "w2"));
  // The fault happened (or this test shows nothing).
  const std::string logs = ReadAll(P("w1.log")) + ReadAll(P("w2.log"));
  EXPECT_NE(logs.find("reading again from stream sequence"), std::string::npos) << logs;
  EXPECT_TRUE(Union({"w1", "w2"}) == want_) << Diff(want_, Union({"w1", "w2"}));
}

// A stalled peer: every nats-server frozen (SIGSTOP) mid-run for longer
// than the client's request timeout and the leases' TTL, then the leader of
// the progress bucket alone. Calls time out, leader elections follow; the
// workers must neither hang nor lose or double an alert.
TEST_F(StreamDetectTest, ReplayWorkersFinishAfterTheClusterStalls) {
  ASSERT_NO_FATAL_FAILURE(PublishOnly("stallrun", 20000));
  auto w1 = Join("stallrun", "w1");
  auto w2 = Join("stallrun", "w2");
  ASSERT_TRUE(WaitForLog("w1") && WaitForLog("w2")) << ReadAll(P("w1.log")) << ReadAll(P("w2.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(w1->Running() && w2->Running()) << "the stall must come mid-run";
  for (int i = 0; i < nats_->size(); ++i) ASSERT_TRUE(nats_->Pause(i).ok());
  std::this_thread::sleep_for(std::chrono::seconds(8));
  for (int i = 0; i < nats_->size(); ++i) ASSERT_TRUE(nats_->Resume(i).ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto leader = nats_->WaitForStreamLeader("KV_FG_RPP_stallrun");
  ASSERT_TRUE(leader.ok()) << leader.status().message();
  ASSERT_TRUE(nats_->Pause(*leader).ok());
  std::this_thread::sleep_for(std::chrono::seconds(8));
  ASSERT_TRUE(nats_->Resume(*leader).ok());
  ASSERT_NO_FATAL_FAILURE(Finishes(*w1, "w1"));
  ASSERT_NO_FATAL_FAILURE(Finishes(*w2, "w2"));
  EXPECT_TRUE(Union({"w1", "w2"}) == want_) << Diff(want_, Union({"w1", "w2"}));
}

// A dead peer at start: serve --bus comes up while no NATS server answers
// (ingest 503, payment checks step_up: exposure unknown), and starts
// detecting on the stream as soon as the cluster is back.
TEST_F(StreamDetectTest, ServeStartsWithoutNatsAndDetectsOnceItIsBack) {
  for (int i = 0; i < nats_->size(); ++i) ASSERT_TRUE(nats_->Kill(i).ok());
  const std::string data = P("n");
  const int port = FreePort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_EQ(Fg({"init", "--data", data, "--listen", "127.0.0.1:" + std::to_string(port)}).exit_code, 0);
  std::string cfg = ReadAll(data + "/config.yaml");
  cfg.replace(cfg.find("plain_http: false"), 17, "plain_http: true");
  WriteAll(data + "/config.yaml", cfg);
  const std::string ingest = FindApiToken(Fg({"token", "create", "--data", data, "--role", "ingest"}).out);
  const std::string op = FindApiToken(Fg({"token", "create", "--data", data, "--role", "operator"}).out);
  const std::string pay = FindApiToken(Fg({"token", "create", "--data", data, "--role", "payments"}).out);
  Process serve({Femtoguard(), "serve", "--data", data, "--tls-listen", "off", "--bus", nats_->Urls()}, P("n.log"));
  ASSERT_TRUE(WaitForHttp(url + "/healthz", 60000)) << ReadAll(P("n.log"));
  auto curl = [&](const std::string& token, const std::string& path, const std::string& body, const std::string& type) {
    return fg::testing::Run({"curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", "-H",
                             "Authorization: Bearer " + token, "-H", "Content-Type: " + type, "--data-binary", body,
                             url + path});
  };
  const std::string line =
      json({{"ts", "2025-03-01T00:00:00.000Z"}, {"type", "ue.attach"}, {"device", "FG-9990001"}, {"imsi", "450089999000009"}})
          .dump() + "\n";
  auto refused = curl(ingest, "/v1/events", line, "application/x-ndjson");
  EXPECT_NE(refused.out.find("\n503"), std::string::npos) << refused.out;
  auto check = curl(pay, "/v1/payment/check",
                    json({{"imsi", "450089999000009"}, {"channel", "sms_otp"}, {"ts", "2025-03-01T00:00:01.000Z"}}).dump(),
                    "application/json");
  EXPECT_NE(check.out.find("exposure_unknown"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("step_up"), std::string::npos) << check.out;
  for (int i = 0; i < nats_->size(); ++i) ASSERT_TRUE(nats_->Restart(i).ok());
  // Once back: every partition taken, the event accepted, its alert stored.
  std::string metrics;
  for (int i = 0; i < 600; ++i) {
    metrics = fg::testing::Run({"curl", "-sS", "-H", "Authorization: Bearer " + op, url + "/metrics"}).out;
    if (metrics.find("femtoguard_stream_partitions_owned 16") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(metrics.find("femtoguard_stream_partitions_owned 16"), std::string::npos) << ReadAll(P("n.log"));
  std::string accepted;
  for (int i = 0; i < 60; ++i) {
    accepted = curl(ingest, "/v1/events", line, "application/x-ndjson").out;
    if (accepted.find("\n200") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_NE(accepted.find("\n200"), std::string::npos) << accepted;
  std::string alerts;
  for (int i = 0; i < 100 && alerts.find("device.unknown") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    alerts = Fg({"alert", "list", "--data", data, "--json"}).out;
  }
  EXPECT_NE(alerts.find("device.unknown"), std::string::npos) << alerts << ReadAll(P("n.log"));
}

// serve on the cluster store: two nodes, PostgreSQL, the NATS cluster.
class ServeStreamTest : public StreamDetectTest {
 protected:
  struct Node {
    std::string name, data, url, ingest, op;
    int port = 0;
    std::unique_ptr<Process> serve;
  };

  void SetUp() override {
    StreamDetectTest::SetUp();
    auto pg = PgServer::Start({});
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = std::move(pg).value();
    auto db = pg_->CreateDatabase("stream");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    store_ = pg_->Url(*db);
    world_ = P("world");
    ASSERT_NO_FATAL_FAILURE(Sim("kt-2025", 500, world_));
    a_.name = "a", b_.name = "b";
    for (Node* n : {&a_, &b_}) {
      n->data = P(n->name);
      n->port = FreePort();
      n->url = "http://127.0.0.1:" + std::to_string(n->port);
    }
    auto init = Fg({"init", "--data", a_.data, "--store", store_, "--listen", "127.0.0.1:" + std::to_string(a_.port),
                    "--tls-listen", "127.0.0.1:" + std::to_string(FreePort()), "--public-url", a_.url});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    ASSERT_EQ(Fg({"node", "bundle", "--data", a_.data, "--out", P("bundle.fgb")}).exit_code, 0);
    auto join = Fg({"node", "join", "--data", b_.data, "--store", store_, "--bundle", P("bundle.fgb"),
                    "--passphrase-file", a_.data + "/secrets/ca.passphrase", "--public-url", b_.url, "--url-order",
                    "1", "--listen", "127.0.0.1:" + std::to_string(b_.port), "--tls-listen",
                    "127.0.0.1:" + std::to_string(FreePort())});
    ASSERT_EQ(join.exit_code, 0) << join.out;
    ASSERT_EQ(Fg({"device", "import", "--data", a_.data, "--registry", world_ + "/registry.jsonl"}).exit_code, 0);
    for (Node* n : {&a_, &b_}) {
      std::string cfg = ReadAll(n->data + "/config.yaml");
      size_t at = cfg.find("plain_http: false");
      ASSERT_NE(at, std::string::npos);
      cfg.replace(at, 17, "plain_http: true");
      WriteAll(n->data + "/config.yaml", cfg);
      fs::copy_file(world_ + "/cells.csv", n->data + "/cells.csv");
    }
    a_.ingest = FindApiToken(Fg({"token", "create", "--data", a_.data, "--role", "ingest"}).out);
    a_.op = FindApiToken(Fg({"token", "create", "--data", a_.data, "--role", "operator"}).out);
    payments_ = FindApiToken(Fg({"token", "create", "--data", a_.data, "--role", "payments"}).out);
    b_.ingest = a_.ingest, b_.op = a_.op;  // one store: tokens are the cluster's
    ASSERT_FALSE(a_.ingest.empty());
    // The events, cut into batches of 1,000 lines.
    std::ifstream in(world_ + "/events.jsonl");
    std::string line, body;
    int lines = 0;
    while (std::getline(in, line)) {
      body += line + "\n";
      if (++lines % 1000 == 0) {
        batches_.push_back(P("batch" + std::to_string(batches_.size())));
        WriteAll(batches_.back(), body);
        body.clear();
      }
    }
    if (!body.empty()) {
      batches_.push_back(P("batch" + std::to_string(batches_.size())));
      WriteAll(batches_.back(), body);
    }
    want_ = Replay(a_.data, world_);
    ASSERT_GT(want_.size(), 20u);
  }
  void TearDown() override {
    for (Node* n : {&a_, &b_}) n->serve.reset();
    pg_.reset();
  }

  void Start(Node& n) {
    n.serve = std::make_unique<Process>(std::vector<std::string>{Femtoguard(), "serve", "--data", n.data, "--threads",
                                                                 "2", "--tls-listen", "off", "--bus", nats_->Urls()},
                                        P(n.name + "-serve.log"));
    ASSERT_TRUE(WaitForHttp(n.url + "/healthz", 60000)) << ReadAll(P(n.name + "-serve.log"));
  }

  // POST a batch with its key; the HTTP status and the body.
  std::pair<int, std::string> Post(const Node& n, size_t batch) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}", "-H", "Authorization: Bearer " + n.ingest,
                  "-H", "Content-Type: application/x-ndjson", "-H", "Idempotency-Key: kt-" + std::to_string(batch),
                  "--data-binary", "@" + batches_[batch], n.url + "/v1/events"},
                 {}, 90);
    const size_t nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {0, r.out};
    return {std::atoi(r.out.substr(nl + 1).c_str()), r.out.substr(0, nl)};
  }

  double Metric(const Node& n, const std::string& name) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "10", "-H", "Authorization: Bearer " + n.op, n.url + "/metrics"});
    std::istringstream in(r.out);
    double sum = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) == 0 && (line[name.size()] == ' ' || line[name.size()] == '{'))
        sum += std::atof(line.substr(line.rfind(' ') + 1).c_str());
    }
    return sum;
  }

  AlertSet Stored(const Node& n) {
    auto r = Fg({"alert", "list", "--data", n.data, "--json", "--limit", "100000"});
    EXPECT_EQ(r.exit_code, 0) << "alert list: " << Tail(r.out, 2000);
    AlertSet out;
    for (auto& [id, v] : ParseAlerts(r.out)) out[id] = v;
    return out;
  }

  // Until the store holds as many alerts as replay made and that stays
  // so for 2 s (or 90 s pass).
  AlertSet Settle(const Node& n) {
    AlertSet got;
    size_t last = SIZE_MAX;
    int quiet = 0;
    for (int i = 0; i < 180 && quiet < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      got = Stored(n);
      quiet = (got.size() == last && got.size() >= want_.size()) ? quiet + 1 : 0;
      last = got.size();
    }
    return got;
  }

  // Until both nodes work on partitions (16 in all): a node that starts
  // later gets its share within a few lease rounds.
  void WaitBalanced() {
    double a = 0, b = 0;
    for (int i = 0; i < 200; ++i) {
      a = Metric(a_, "femtoguard_stream_partitions_owned");
      b = Metric(b_, "femtoguard_stream_partitions_owned");
      if (a > 0 && b > 0 && a + b == 16) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "partitions not shared: A " << a << ", B " << b;
  }

  // Both nodes up and sharing the partitions, the first half of the batches
  // posted to them in turn; A works on some partitions. Returns the half.
  size_t FeedHalfThroughBoth() {
    Start(a_);
    if (!HasFatalFailure()) Start(b_);
    if (!HasFatalFailure()) WaitBalanced();
    if (HasFatalFailure()) return 0;
    const size_t half = batches_.size() / 2;
    for (size_t i = 0; i < half && !HasFatalFailure(); ++i) EXPECT_EQ(Post(i % 2 ? b_ : a_, i).first, 200);
    EXPECT_GT(Metric(a_, "femtoguard_stream_partitions_owned"), 0) << "A should work on some partitions";
    return half;
  }
  // The partitions B holds, once it holds all 16 or 30 s after `since`.
  double WaitUntilBOwnsAll(std::chrono::steady_clock::time_point since) {
    double owned = Metric(b_, "femtoguard_stream_partitions_owned");
    while (owned < 16 && std::chrono::steady_clock::now() - since < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      owned = Metric(b_, "femtoguard_stream_partitions_owned");
    }
    return owned;
  }
  // The store (read through `n`) settles on replay's alert set, and every
  // audited action was taken once.
  void ExpectReplaysAlertsActedOnce(const Node& n) {
    AlertSet got = Settle(n);
    EXPECT_TRUE(got == want_) << got.size() << " stored, replay " << want_.size() << Diff(want_, got) << "\n"
                              << Fg({"alert", "list", "--data", n.data, "--json", "--limit", "3"}).out
                              << "\nA:\n" << Tail(ReadAll(P("a-serve.log"))) << "\nB:\n"
                              << Tail(ReadAll(P("b-serve.log")));
    const auto actions = ActionsByAlert(n);
    EXPECT_GT(actions.size(), 10u);
    for (const auto& [key, count] : actions) EXPECT_EQ(count, 1) << key;
  }

  // Audit rows an alert's actions wrote: (action, subject, alert) -> count.
  std::map<std::string, int> ActionsByAlert(const Node& n) {
    auto r = Fg({"audit", "list", "--data", n.data, "--limit", "0"});
    std::map<std::string, int> count;
    std::istringstream in(r.out);
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
      if (!std::regex_search(line, m, std::regex(R"(serve:response\s+(\S+)\s+(\S+)\s+alert ([0-9a-f]+))"))) continue;
      ++count[m[1].str() + " " + m[2].str() + " " + m[3].str()];
    }
    return count;
  }

  std::unique_ptr<PgServer> pg_;
  std::string store_, world_;
  Node a_, b_;
  std::vector<std::string> batches_;
  AlertSet want_;
  std::string payments_;  // token of the payments role
};

TEST_F(ServeStreamTest, KtThroughTwoNodesGivesReplaysAlertsOnceEachAndAResentBatchAddsNone) {
  ASSERT_NO_FATAL_FAILURE(Start(a_));
  ASSERT_NO_FATAL_FAILURE(Start(b_));
  ASSERT_NO_FATAL_FAILURE(WaitBalanced());
  for (size_t i = 0; i < batches_.size(); ++i) {
    auto [status, body] = Post(i % 2 ? b_ : a_, i);
    ASSERT_EQ(status, 200) << body;
  }
  AlertSet got = Settle(a_);
  EXPECT_TRUE(got == want_) << got.size() << " stored, replay " << want_.size() << Diff(want_, got);
  // Both nodes worked: the partitions are shared.
  EXPECT_GT(Metric(a_, "femtoguard_stream_partitions_owned"), 0) << ReadAll(P("a-serve.log"));
  EXPECT_GT(Metric(b_, "femtoguard_stream_partitions_owned"), 0) << ReadAll(P("b-serve.log"));
  // A batch re-sent (to the other node) is a duplicate and raises nothing.
  auto [status, body] = Post(b_, 0);
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("\"duplicate\":true"), std::string::npos) << body;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Stored(a_).size(), want_.size());
  const auto actions = ActionsByAlert(a_);
  EXPECT_GT(actions.size(), 10u) << "kt-2025's alerts act (hold payments, block, ...)";
  for (const auto& [key, n] : actions) EXPECT_EQ(n, 1) << key;
}

// POST /v1/payment/check on a node; the decision and the reasons.
std::string Check(const std::string& url, const std::string& token, const std::string& imsi, const std::string& ts) {
  json body = {{"imsi", imsi}, {"channel", "sms_otp"}, {"amount", 10}, {"ts", ts}};
  auto r = fg::testing::Run({"curl", "-sS", "--max-time", "10", "-H", "Authorization: Bearer " + token, "-H",
                             "Content-Type: application/json", "--data-binary", body.dump(), url + "/v1/payment/check"});
  auto j = json::parse(r.out, nullptr, false);
  return j.is_object() ? j.value("decision", "") + " " + j["reasons"].dump() : "error: " + r.out;
}

TEST_F(ServeStreamTest, PaymentCheckOnAnyNodeSeesExposureWithinTheStreamsLag) {
  ASSERT_NO_FATAL_FAILURE(Start(a_));
  ASSERT_NO_FATAL_FAILURE(Start(b_));
  ASSERT_NO_FATAL_FAILURE(WaitBalanced());
  for (size_t i = 0; i < batches_.size(); ++i) ASSERT_EQ(Post(i % 2 ? b_ : a_, i).first, 200);
  AlertSet got = Settle(a_);
  ASSERT_TRUE(got == want_) << Diff(want_, got);
  // A counterfeit femtocell (device.unknown: not in the registry, so
  // risky for good) and a benign one.
  std::string rogue, benign;
  std::set<std::string> alerted;
  for (const auto& [id, v] : want_) {
    alerted.insert(v.substr(v.find('|') + 1, v.find('|', v.find('|') + 1) - v.find('|') - 1));
    if (v.rfind("device.unknown|", 0) == 0 && rogue.empty()) rogue = v.substr(15, v.find('|', 15) - 15);
  }
  ASSERT_FALSE(rogue.empty());
  for (int i = 1; i < 400 && benign.empty(); ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "FG-%07d", i);
    if (!alerted.count(id)) benign = id;
  }
  // Two subscribers nobody has seen, attached now (after the last event).
  const std::string t0 = "2025-03-05T00:00:00.000Z", t1 = "2025-03-05T00:00:01.000Z";
  const std::string exposed_imsi = "450089999000001", clean_imsi = "450089999000002";
  EXPECT_EQ(Check(a_.url, payments_, exposed_imsi, t1).substr(0, 5), "allow");
  WriteAll(P("attach.jsonl"),
           json({{"ts", t0}, {"type", "ue.attach"}, {"device", rogue}, {"imsi", exposed_imsi}}).dump() + "\n" +
               json({{"ts", t0}, {"type", "ue.attach"}, {"device", benign}, {"imsi", clean_imsi}}).dump() + "\n");
  batches_.push_back(P("attach.jsonl"));
  const auto posted = std::chrono::steady_clock::now();
  ASSERT_EQ(Post(a_, batches_.size() - 1).first, 200);
  // Both nodes answer from the exposure bucket: deny (OTP through a
  // blocked femtocell), whichever node the subscriber's stage runs on.
  std::string on_a, on_b;
  double lag_a = -1, lag_b = -1;
  while (std::chrono::steady_clock::now() - posted < std::chrono::seconds(20) && (lag_a < 0 || lag_b < 0)) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - posted).count();
    if (lag_a < 0 && (on_a = Check(a_.url, payments_, exposed_imsi, t1)).rfind("deny", 0) == 0) lag_a = t;
    if (lag_b < 0 && (on_b = Check(b_.url, payments_, exposed_imsi, t1)).rfind("deny", 0) == 0) lag_b = t;
  }
  std::printf("payment check lag (POST of the attach to deny): node A %.3f s, node B %.3f s\n", lag_a, lag_b);
  EXPECT_GE(lag_a, 0) << on_a << "\n" << rogue << " / " << benign;
  EXPECT_GE(lag_b, 0) << on_b;
  EXPECT_NE(on_a.find("femto_"), std::string::npos) << on_a;
  // The subscriber of the benign femtocell is not held up, on either node.
  EXPECT_EQ(Check(a_.url, payments_, clean_imsi, t1).substr(0, 5), "allow");
  EXPECT_EQ(Check(b_.url, payments_, clean_imsi, t1).substr(0, 5), "allow");
  // Outside the exposure window (payment.risk exposure_s: 1800 s), allowed.
  EXPECT_EQ(Check(b_.url, payments_, exposed_imsi, "2025-03-05T01:00:00.000Z").substr(0, 5), "allow");
}

TEST_F(ServeStreamTest, KillNineOfANodeMidStreamLosesNothingAndActsOnce) {
  const size_t half = FeedHalfThroughBoth();
  ASSERT_FALSE(HasFailure());
  const double b_before = Metric(b_, "femtoguard_stream_partitions_owned");
  ::kill(a_.serve->pid(), SIGKILL);
  a_.serve->Stop();
  const auto killed = std::chrono::steady_clock::now();
  // The rest goes to B while it takes A's partitions over.
  for (size_t i = half; i < batches_.size(); ++i) ASSERT_EQ(Post(b_, i).first, 200);
  const double owned = WaitUntilBOwnsAll(killed);
  const double takeover_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::printf("takeover: B held %.0f partitions before the kill, all 16 %.1f s after it\n", b_before, takeover_s);
  EXPECT_EQ(owned, 16);
  EXPECT_LE(takeover_s, 10.0);
  ExpectReplaysAlertsActedOnce(b_);
}

// A node that stalls without dying (SIGSTOP: swapped out, a long GC-like
// pause, a VM frozen) past its leases' TTL: B takes its partitions over and
// acts on what comes after A's progress. When A resumes, its partition
// threads run on for a moment with what they had fetched before they learn
// that the leases are gone; whatever they raise again must find B's
// alerts in the store and act on nothing twice. Then the partitions are
// shared again (A rebuilds its share) and the alert set is replay's.
TEST_F(ServeStreamTest, ANodeStalledPastItsLeasesResumesAndNothingIsActedTwice) {
  const size_t half = FeedHalfThroughBoth();
  ASSERT_FALSE(HasFailure());
  ::kill(a_.serve->pid(), SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  for (size_t i = half; i < batches_.size(); ++i) ASSERT_EQ(Post(b_, i).first, 200);
  EXPECT_EQ(WaitUntilBOwnsAll(stopped), 16) << "B should hold every partition while A is stopped";
  ::kill(a_.serve->pid(), SIGCONT);
  // A comes back and gets a share again.
  ASSERT_NO_FATAL_FAILURE(WaitBalanced());
  ExpectReplaysAlertsActedOnce(b_);
}

// The event stream's leader killed mid-stream: clients re-send refused
// batches with their keys; nothing is lost or raised twice, and no batch
// waits more than a few seconds.
TEST_F(ServeStreamTest, KillingTheStreamLeaderMidStreamLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(Start(a_));
  ASSERT_NO_FATAL_FAILURE(Start(b_));
  ASSERT_NO_FATAL_FAILURE(WaitBalanced());
  const size_t third = batches_.size() / 3;
  double longest = 0;
  int refused = 0;
  for (size_t i = 0; i < batches_.size(); ++i) {
    if (i == third) {
      auto killed = nats_->KillStreamLeader("FG_EVENTS");
      ASSERT_TRUE(killed.ok()) << killed.status().ToString();
    }
    const auto start = std::chrono::steady_clock::now();
    for (int attempt = 0;; ++attempt) {
      auto [status, body] = Post(i % 2 ? b_ : a_, i);
      if (status == 200) break;
      ASSERT_EQ(status, 503) << body;  // not acknowledged: send again, same key
      ++refused;
      ASSERT_LT(attempt, 30) << body;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    longest = std::max(longest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("stream leader killed: longest batch %.1f s, %d refusals (re-sent)\n", longest, refused);
  EXPECT_LE(longest, 15.0);
  AlertSet got = Settle(a_);
  EXPECT_TRUE(got == want_) << got.size() << " stored, replay " << want_.size() << Diff(want_, got);
  for (const auto& [key, n] : ActionsByAlert(a_)) EXPECT_EQ(n, 1) << key;
}

}  // namespace
}  // namespace fg::testing
