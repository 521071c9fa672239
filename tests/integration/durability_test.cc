// Fault tests of a node's promises (issue 13), against the real binary:
//  - kill -9 of `serve` in the middle of ingest, once while the alerts of
//    the last acknowledged batch could not yet be stored (another process
//    held the store's write lock) and once with a batch in flight: after the
//    restarts the node has the same alerts (by id) and the same audit rows
//    as a node that was never killed; a client that re-sends a batch with
//    its Idempotency-Key adds nothing; no action runs twice;
//  - a store whose write lock another process holds while a clone is
//    detected: the clone is denied at admission at once, the alert and its
//    block land once the lock is gone, one log line says so, and the clone
//    stays denied;
//  - a full disk under the journal: a clear 503, nothing half-written, and
//    the same batch taken once space is back.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

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

#include "integration/fg_node_fixture.h"
#include "testing/harness.h"

namespace fg::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 300);
}

// A node (init, registry, cells, tokens) that can be started, killed and
// started again on the same data dir.
class Node {
 public:
  // `pseudonym_key_from`: another node's data dir whose pseudonymization key
  // this one shares (alert ids derive from pseudonyms: two nodes compare
  // alerts by id only with one key).
  Node(const std::string& root, const std::string& registry, const std::string& cells,
       const std::string& pseudonym_key_from = {})
      : root_(root) {
    data_ = root + "/data";
    port_ = FreePort();
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_)});
    EXPECT_EQ(init.exit_code, 0) << init.out;
    // serve runs with --tls-listen off here: the lab switch keeps the API on
    // the plain loopback listener (the TLS API is tested in tls_api_test.cc).
    SetPlainHttpApi(data_, true);
    if (!pseudonym_key_from.empty()) {
      fs::copy_file(pseudonym_key_from + "/secrets/pseudonym.key", data_ + "/secrets/pseudonym.key",
                    fs::copy_options::overwrite_existing);
    }
    auto imp = Fg({"device", "import", "--data", data_, "--registry", registry});
    EXPECT_EQ(imp.exit_code, 0) << imp.out;
    if (!cells.empty()) fs::copy_file(cells, data_ + "/cells.csv");
    for (const char* role : {"ingest", "operator", "segw"}) {
      tokens_[role] = FindApiToken(Fg({"token", "create", "--data", data_, "--role", role}).out);
      EXPECT_FALSE(tokens_[role].empty()) << role;
    }
  }
  ~Node() { Kill(); }

  void Start() {
    ++starts_;
    serve_ =
        std::make_unique<Process>(std::vector<std::string>{Femtoguard(), "serve", "--data", data_,
                                                           "--tls-listen", "off", "--threads", "2"},
                                  log());
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz", 60000)) << ReadAll(log());
  }
  void Kill() {
    if (!serve_) return;
    ::kill(serve_->pid(), SIGKILL);
    serve_->Stop();  // reaps
    serve_.reset();
  }
  std::string log() const { return root_ + "/serve-" + std::to_string(starts_) + ".log"; }
  const std::string& data() const { return data_; }
  const std::string& url() const { return url_; }

  // POST /v1/events; the HTTP status (0: no answer).
  int PostEvents(const std::string& body_path, const std::string& key,
                 std::string* reply = nullptr) {
    std::vector<std::string> argv = {"curl",
                                     "-sS",
                                     "--max-time",
                                     "30",
                                     "-o",
                                     root_ + "/reply",
                                     "-w",
                                     "%{http_code}",
                                     "-H",
                                     "Authorization: Bearer " + tokens_["ingest"],
                                     "-H",
                                     "Content-Type: application/x-ndjson",
                                     "--data-binary",
                                     "@" + body_path};
    if (!key.empty()) {
      argv.push_back("-H");
      argv.push_back("Idempotency-Key: " + key);
    }
    argv.push_back(url_ + "/v1/events");
    auto r = Run(argv, {}, 60);
    if (reply) *reply = ReadAll(root_ + "/reply");
    try {
      return std::stoi(r.out.substr(r.out.size() >= 3 ? r.out.size() - 3 : 0));
    } catch (...) {
      return 0;
    }
  }

  json Admit(const json& request) {
    WriteAll(root_ + "/admit.json", request.dump());
    auto r =
        Run({"curl", "-sS", "--max-time", "10", "-H", "Authorization: Bearer " + tokens_["segw"],
             "-H", "Content-Type: application/json", "--data-binary", "@" + root_ + "/admit.json",
             url_ + "/v1/admission"});
    return json::parse(r.out, nullptr, false);
  }

  // A gauge or counter from /metrics (sum over label sets); -1 if absent.
  double Metric(const std::string& name) {
    auto r = Run({"curl", "-sS", "--max-time", "10", "-H",
                  "Authorization: Bearer " + tokens_["operator"], url_ + "/metrics"});
    std::istringstream in(r.out);
    double sum = -1;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) != 0) continue;
      char next = line.size() > name.size() ? line[name.size()] : '\0';
      if (next != ' ' && next != '{') continue;
      sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  // Waits until the journal's backlog and the responder's queue are empty
  // and the store's alert count has not moved for a second.
  void Settle() {
    size_t last = SIZE_MAX;
    int quiet = 0;
    for (int i = 0; i < 600 && quiet < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      if (Metric("femtoguard_journal_backlog_records") != 0 ||
          Metric("femtoguard_response_pending") > 0) {
        quiet = 0;
        continue;
      }
      size_t n = AlertIds().size();
      quiet = n == last ? quiet + 1 : 0;
      last = n;
    }
  }

  std::set<std::string> AlertIds() {
    auto r = Fg({"alert", "list", "--data", data_, "--json", "--limit", "100000"});
    std::set<std::string> ids;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("id")) ids.insert(j["id"].get<std::string>());
    }
    return ids;
  }

  // Audit rows by action (what the responder did, each once per alert).
  std::map<std::string, int> AuditActions() {
    std::map<std::string, int> n;
    for (const auto& row : Query("SELECT action, COUNT(*) FROM audit GROUP BY action"))
      n[row[0]] = std::stoi(row[1]);
    return n;
  }
  // Rows of a query on the store, read-only, as text.
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2((data_ + "/store.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
        SQLITE_OK)
      return rows;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        rows.emplace_back();
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
          const unsigned char* v = sqlite3_column_text(st, i);
          rows.back().push_back(v ? reinterpret_cast<const char*>(v) : "");
        }
      }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
  }

 private:
  std::string root_, data_, url_;
  int port_ = 0;
  int starts_ = 0;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> serve_;
};

// events.jsonl cut into files of `per` lines.
std::vector<std::string> Batches(const std::string& events, const std::string& dir, size_t per) {
  std::ifstream in(events);
  std::vector<std::string> files;
  std::string body;
  size_t n = 0;
  auto flush = [&] {
    if (n == 0) return;
    files.push_back(dir + "/batch-" + std::to_string(files.size()) + ".jsonl");
    WriteAll(files.back(), body);
    body.clear();
    n = 0;
  };
  for (std::string line; std::getline(in, line);) {
    body += line + "\n";
    if (++n == per) flush();
  }
  flush();
  return files;
}

TEST(Durability, KillDashNineDuringIngestLosesNothingAcknowledgedAndActsOnce) {
  TempDir t;
  const std::string world = t / "world";
  auto sim = Fg({"sim", "--scenario", "kt-2025", "--devices", "300", "--seed", "11", "--days", "2",
                 "--out", world});
  ASSERT_EQ(sim.exit_code, 0) << sim.out;
  fs::create_directories(t / "batches");
  auto batches = Batches(world + "/events.jsonl", t / "batches", 500);
  ASSERT_GT(batches.size(), 8u);

  // The second quarter goes as one big batch, so that the kill right after
  // its acknowledgement finds most of it (and its responses) not yet done.
  // (At most 900 KB: the node takes bodies up to 1 MiB.)
  const size_t quarter = batches.size() / 4;
  size_t half = quarter;
  std::string big;
  while (half < batches.size() - 2 && big.size() + ReadAll(batches[half]).size() < (900u << 10)) {
    big += ReadAll(batches[half++]);
  }
  ASSERT_GT(half, quarter + 2);
  WriteAll(t / "batches/big.jsonl", big);
  struct Post {
    std::string file, key;
  };
  std::vector<Post> plan;
  for (size_t i = 0; i < quarter; ++i) plan.push_back({batches[i], "b" + std::to_string(i)});
  plan.push_back({t / "batches/big.jsonl", "big"});
  const size_t big_index = plan.size() - 1;
  for (size_t i = half; i < batches.size(); ++i)
    plan.push_back({batches[i], "b" + std::to_string(i)});

  // The reference: a node that is never killed.
  fs::create_directories(t / "ref");
  Node ref(t / "ref", world + "/registry.jsonl", world + "/cells.csv");
  ref.Start();
  for (const Post& p : plan) ASSERT_EQ(ref.PostEvents(p.file, p.key), 200);
  ref.Settle();
  const std::set<std::string> expected = ref.AlertIds();
  ASSERT_GT(expected.size(), 10u) << "the scenario should raise alerts";
  const auto expected_actions = ref.AuditActions();

  // The victim: killed right after the big batch is acknowledged, and again
  // while the next batch is in flight.
  fs::create_directories(t / "victim");
  Node victim(t / "victim", world + "/registry.jsonl", world + "/cells.csv", ref.data());
  victim.Start();
  for (size_t i = 0; i < big_index; ++i)
    ASSERT_EQ(victim.PostEvents(plan[i].file, plan[i].key), 200);
  // While the big batch is handled, another process holds the store's write
  // lock: its alerts are raised, enforced in memory, and cannot be stored
  // before the kill.
  sqlite3* locker = nullptr;
  ASSERT_EQ(sqlite3_open((victim.data() + "/store.db").c_str(), &locker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(locker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(victim.PostEvents(plan[big_index].file, plan[big_index].key), 200);
  for (int i = 0; i < 100 && victim.Metric("femtoguard_response_pending") <= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT(victim.Metric("femtoguard_response_pending"), 0) << "the big batch should raise alerts";
  victim.Kill();
  ASSERT_EQ(sqlite3_exec(locker, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(locker);
  victim.Start();
  // The restart found acknowledged work not yet done (else this test proves nothing).
  std::smatch m;
  const std::string restart_log = ReadAll(victim.log());
  ASSERT_TRUE(std::regex_search(restart_log, m,
                                std::regex("records replayed \\(([0-9]+) past the checkpoint")))
      << restart_log;
  EXPECT_GT(std::stoi(m[1]), 0) << restart_log;
  int in_flight = -1;
  const Post& next = plan[big_index + 1];
  std::thread poster([&] { in_flight = victim.PostEvents(next.file, next.key); });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  victim.Kill();
  poster.join();
  victim.Start();
  // A client that got no answer sends the same batch again, with its key;
  // so does one that did get an answer but lost it.
  for (size_t i = big_index + 1; i < plan.size(); ++i) {
    std::string reply;
    ASSERT_EQ(victim.PostEvents(plan[i].file, plan[i].key, &reply), 200) << reply;
    if (i == big_index + 1 && in_flight == 200)
      EXPECT_THAT(reply, ::testing::HasSubstr("\"duplicate\":true"));
  }
  std::string reply;
  ASSERT_EQ(victim.PostEvents(plan[big_index].file, "big", &reply), 200);
  EXPECT_THAT(reply, ::testing::HasSubstr("\"duplicate\":true"));
  victim.Settle();

  const std::set<std::string> got = victim.AlertIds();
  std::vector<std::string> missing, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << expected.size()
                               << " alerts lost, e.g. " << (missing.empty() ? "" : missing[0]);
  EXPECT_TRUE(extra.empty()) << extra.size() << " alerts the reference does not have";
  // Every action once: the same audit rows per action as the reference.
  // (Both nodes were set up alike, so every audit row matches.)
  EXPECT_EQ(victim.AuditActions(), expected_actions);
  EXPECT_THAT(ReadAll(victim.log()), ::testing::HasSubstr("journal records processed at start"));
}

TEST(Durability, ACloneIsDeniedWhileTheStoreIsLockedAndAfter) {
  TempDir t;
  const std::string rules = std::string(FG_SOURCE_DIR) + "/tests/rules/cert.clone";
  Node node(t.path().string(), rules + "/registry.jsonl", rules + "/cells.csv");
  node.Start();
  const json ask = {
      {"device", "FG-0000001"},
      {"session", "ike-9"},
      {"cert_fp", "sha256:0101010101010101010101010101010101010101010101010101010101010101"},
      {"src_ip", "211.36.128.10"},
      {"endpoint", "segw-a.example"},
      {"segw", "segw-1"}};
  json before = node.Admit(ask);
  ASSERT_TRUE(before.is_object()) << before.dump();
  EXPECT_THAT(before["reasons"].dump(), ::testing::Not(::testing::HasSubstr("\"blocked\"")))
      << before.dump();

  // Another process takes the store's write lock and keeps it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((node.data() + "/store.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  ASSERT_EQ(node.PostEvents(rules + "/events.jsonl", "clone-1"), 200);
  // Denied at once, from memory, while nothing can be written.
  json during;
  for (int i = 0; i < 100; ++i) {
    during = node.Admit(ask);
    if (during.is_object() && during["reasons"].dump().find("\"blocked\"") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(during["decision"], "deny") << during.dump();
  EXPECT_THAT(during["reasons"].dump(), ::testing::HasSubstr("\"blocked\"")) << during.dump();
  EXPECT_GE(node.Metric("femtoguard_response_pending"), 1);
  EXPECT_EQ(node.Metric("femtoguard_admission_pending_blocks"), 1);
  std::this_thread::sleep_for(std::chrono::seconds(8));  // several retries (and busy timeouts) pass
  EXPECT_EQ(node.Admit(ask)["decision"], "deny");
  EXPECT_TRUE(node.AlertIds().empty());

  ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  node.Settle();
  for (int i = 0; i < 100 && node.Metric("femtoguard_admission_pending_blocks") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(node.Metric("femtoguard_admission_pending_blocks"), 0);
  EXPECT_EQ(node.Metric("femtoguard_response_pending"), 0);
  EXPECT_EQ(node.AlertIds().size(), 1u);
  auto blocks = node.Query("SELECT kind, value FROM blocks");
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0], (std::vector<std::string>{"device", "FG-0000001"}));
  // After: the stored block decides.
  json after = node.Admit(ask);
  EXPECT_EQ(after["decision"], "deny") << after.dump();
  EXPECT_THAT(after["reasons"].dump(), ::testing::HasSubstr("\"blocked\"")) << after.dump();
  // One line when the store started refusing, one when it came back.
  const std::string log = ReadAll(node.log());
  std::regex refuses("the store refuses writes");
  EXPECT_EQ(
      std::distance(std::sregex_iterator(log.begin(), log.end(), refuses), std::sregex_iterator()),
      1)
      << log;
  EXPECT_THAT(log, ::testing::HasSubstr("the store takes writes again"));
}

TEST(Durability, AFullDiskRefusesIngestClearlyAndRecovers) {
  if (::geteuid() != 0) GTEST_FAIL() << "needs root to mount a small tmpfs (CI runs as root)";
  TempDir t;
  const std::string rules = std::string(FG_SOURCE_DIR) + "/tests/rules/cert.clone";
  Node node(t.path().string(), rules + "/registry.jsonl", rules + "/cells.csv");
  // The journal on its own small tmpfs, through a symlink from the data dir.
  const std::string small = t / "small";
  fs::create_directories(small);
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  fs::create_directory_symlink(small, node.data() + "/journal");
  node.Start();

  // Fill the disk but for a few KB.
  {
    std::ofstream filler(small + "/filler", std::ios::binary);
    std::string chunk(64 << 10, 'f');
    while (filler.write(chunk.data(), chunk.size()) && filler.flush()) {
    }
  }
  // A batch that cannot fit: refused, clearly, and nothing of it stays.
  std::string big;
  for (int i = 0; i < 4000; ++i) {
    big +=
        R"({"ts":"2025-09-01T00:00:00Z","type":"location.report","device":"FG-0000001","lat":37.5,"lon":127.0,"acc_m":20})";
    big += "\n";
  }
  WriteAll(t / "big.jsonl", big);
  std::string reply;
  EXPECT_EQ(node.PostEvents(t / "big.jsonl", "big-1", &reply), 503);
  EXPECT_THAT(reply, ::testing::HasSubstr("No space left on device")) << reply;
  EXPECT_GE(node.Metric("femtoguard_journal_errors_total"), 1);
  uint64_t journal_bytes = 0;
  for (const auto& e : fs::directory_iterator(small)) {
    if (e.path().filename() != "filler" && e.is_regular_file()) journal_bytes += e.file_size();
  }
  EXPECT_LT(journal_bytes, 64u) << "a refused batch must leave nothing half-written";
  // Space is back: the same batch (same key) is taken, once.
  fs::remove(small + "/filler");
  EXPECT_EQ(node.PostEvents(t / "big.jsonl", "big-1", &reply), 200) << reply;
  EXPECT_THAT(reply, ::testing::HasSubstr("\"accepted\":4000"));
  EXPECT_EQ(node.PostEvents(t / "big.jsonl", "big-1", &reply), 200);
  EXPECT_THAT(reply, ::testing::HasSubstr("\"duplicate\":true"));
  node.Kill();
}

}  // namespace
}  // namespace fg::testing
