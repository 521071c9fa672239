// Daemon manners of `femtoguard serve` (issue 14, docs/operations.md):
// the data-dir lock (a second serve refuses, exit 4, and touches nothing),
// SIGHUP reloads (a good rules file changes behaviour, a broken one keeps
// the old rules and serve stays up), and the JSON log during the
// simulator's kt-2025 attack: every stderr line is one JSON object, one
// alert.raised line per stored alert, one alert.action line per action
// done, and no raw subscriber identity anywhere.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/fg_node_fixture.h"
#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

RunResult Fg(std::vector<std::string> args, int timeout_s = 120) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, timeout_s);
}

std::string Url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

// A data dir with tokens, and `serve` on a free loopback port (no TLS
// listener: not needed here).
class Daemon {
 public:
  explicit Daemon(const TempDir& t) : t_(t), data_(t / "data"), port_(FreePort()) {}

  void Init() {
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    // These tests drive serve (TLS listener off) with plain curl on loopback:
    // the documented lab switch keeps the API on the plain listener.
    SetPlainHttpApi(data_, true);
    for (const char* role : {"ingest", "operator"}) {
      auto tok = Fg({"token", "create", "--data", data_, "--role", role});
      ASSERT_EQ(tok.exit_code, 0) << tok.out;
      tokens_[role] = FindApiToken(tok.out);
      ASSERT_FALSE(tokens_[role].empty()) << tok.out;
    }
  }

  void Serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {Femtoguard(), "serve", "--data", data_, "--tls-listen", "off", "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    serve_ = std::make_unique<Process>(argv, log());
    ASSERT_TRUE(WaitForHttp(Url(port_) + "/healthz")) << ReadAll(log());
  }

  // POST /v1/events (JSON Lines); the HTTP status.
  std::string PostEvents(const std::string& body) {
    WriteAll(t_ / "events-body.jsonl", body);
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                  "Authorization: Bearer " + tokens_["ingest"], "-H", "Content-Type: application/x-ndjson",
                  "--data-binary", "@" + (t_ / "events-body.jsonl"), Url(port_) + "/v1/events"});
    return r.out;
  }

  // GET with a bearer token; {status, body}.
  std::pair<std::string, std::string> Get(const std::string& path, const std::string& token) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "20", "-o", t_ / "get-body", "-w", "%{http_code}", "-H",
                  "Authorization: Bearer " + token, Url(port_) + path});
    return {r.out, ReadAll(t_ / "get-body")};
  }

  // The first stored alert of `device`, waiting for it (at most ~15 s).
  json WaitForAlert(const std::string& device) {
    for (int i = 0; i < 150; ++i) {
      auto r = Fg({"alert", "list", "--data", data_, "--device", device, "--json"});
      std::istringstream in(r.out);
      for (std::string line; std::getline(in, line);) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_object()) return j;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return {};
  }

  // Waits until the log has `n` lines holding every one of `needles`.
  bool WaitForLogLines(const std::vector<std::string>& needles, size_t n, int timeout_ms = 10000) {
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
      if (CountLogLines(needles) >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  size_t CountLogLines(const std::vector<std::string>& needles) const {
    std::istringstream in(ReadAll(log()));
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      bool all = true;
      for (const auto& needle : needles) all = all && line.find(needle) != std::string::npos;
      n += all ? 1 : 0;
    }
    return n;
  }

  std::string log() const { return t_ / "serve.log"; }
  const std::string& data() const { return data_; }
  int port() const { return port_; }
  Process& serve() { return *serve_; }
  std::map<std::string, std::string>& tokens() { return tokens_; }

 private:
  const TempDir& t_;
  std::string data_;
  int port_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> serve_;
};

std::string SessionUp(const std::string& device, int second) {
  json e = {{"ts", "2026-01-01T00:00:" + std::string(second < 10 ? "0" : "") + std::to_string(second) + "Z"},
            {"type", "session.up"},
            {"device", device},
            {"session", "s-" + device},
            {"cert_fp", "sha256:00"},
            {"src_ip", "198.51.100.7"},
            {"endpoint", "segw.example:500"},
            {"segw", "segw-1"}};
  return e.dump() + "\n";
}

// The value of one Prometheus sample line `name{labels} value`; -1 if absent.
double Sample(const std::string& metrics, const std::string& name_and_labels) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  }
  return -1;
}

TEST(DaemonTest, SecondServeOnTheSameDataDirRefusesAndTouchesNothing) {
  TempDir t;
  Daemon d(t);
  ASSERT_NO_FATAL_FAILURE(d.Init());
  ASSERT_NO_FATAL_FAILURE(d.Serve());
  const std::string sock = d.data() + "/run/control.sock";
  struct stat before {};
  ASSERT_EQ(::stat(sock.c_str(), &before), 0);

  const int other_port = FreePort();
  auto second = Fg({"serve", "--data", d.data(), "--listen", "127.0.0.1:" + std::to_string(other_port),
                    "--tls-listen", "off"},
                   30);
  EXPECT_EQ(second.exit_code, 4) << second.out;
  EXPECT_THAT(second.out, HasSubstr("serve.lock"));
  EXPECT_THAT(second.out, HasSubstr("pid " + std::to_string(d.serve().pid())));
  // Must not: take over the control socket, or listen anywhere.
  struct stat after {};
  ASSERT_EQ(::stat(sock.c_str(), &after), 0) << "the second serve removed the first one's control socket";
  EXPECT_EQ(after.st_ino, before.st_ino) << "the second serve re-bound the control socket";
  EXPECT_FALSE(WaitForHttp(Url(other_port) + "/healthz", 300));

  // The first one still serves, and a command that writes the store while it
  // runs still works and still reaches it over the control socket.
  EXPECT_TRUE(d.serve().Running());
  EXPECT_TRUE(WaitForHttp(Url(d.port()) + "/healthz", 2000));
  auto add = Fg({"device", "add", "--data", d.data(), "--device", "FG-0000042", "--status", "active"});
  EXPECT_EQ(add.exit_code, 0) << add.out;
  EXPECT_THAT(add.out, Not(HasSubstr("did not confirm")));

  // The lock goes with the process: once the first stops, a new serve starts.
  EXPECT_EQ(d.serve().Stop(), 0);
  Process third({Femtoguard(), "serve", "--data", d.data(), "--listen", "127.0.0.1:" + std::to_string(other_port),
                 "--tls-listen", "off"},
                t / "third.log");
  EXPECT_TRUE(WaitForHttp(Url(other_port) + "/healthz")) << ReadAll(t / "third.log");
}

TEST(DaemonTest, SighupReloadsRulesAndKeepsTheOldOnesWhenTheNewFileIsBroken) {
  TempDir t;
  Daemon d(t);
  ASSERT_NO_FATAL_FAILURE(d.Init());
  const std::string rules = t / "rules.yaml";
  auto rules_with = [](const std::string& severity) {
    return "version: 1\nrules:\n  device.unknown:\n    severity: " + severity + "\n    actions: [notify]\n";
  };
  WriteAll(rules, rules_with("low"));
  ASSERT_NO_FATAL_FAILURE(d.Serve({"--rules", rules}));

  ASSERT_EQ(d.PostEvents(SessionUp("FG-9000001", 1)), "200");
  json a1 = d.WaitForAlert("FG-9000001");
  ASSERT_TRUE(a1.is_object()) << ReadAll(d.log());
  EXPECT_EQ(a1["rule"].get<std::string>(), "device.unknown");
  EXPECT_EQ(a1["severity"].get<std::string>(), "low");

  // A good file: the next alert follows it.
  WriteAll(rules, rules_with("critical"));
  ASSERT_EQ(::kill(d.serve().pid(), SIGHUP), 0);
  ASSERT_TRUE(d.WaitForLogLines({"reload what=rules", "result=ok"}, 1)) << ReadAll(d.log());
  ASSERT_EQ(d.PostEvents(SessionUp("FG-9000002", 2)), "200");
  json a2 = d.WaitForAlert("FG-9000002");
  ASSERT_TRUE(a2.is_object()) << ReadAll(d.log());
  EXPECT_EQ(a2["severity"].get<std::string>(), "critical");

  // A broken file (a severity that does not exist): refused, logged, counted;
  // serve stays up with the rules it had (critical, not low, not the
  // built-in high).
  WriteAll(rules, rules_with("apocalyptic"));
  ASSERT_EQ(::kill(d.serve().pid(), SIGHUP), 0);
  ASSERT_TRUE(d.WaitForLogLines({"reload what=rules", "result=failed"}, 1)) << ReadAll(d.log());
  EXPECT_EQ(d.CountLogLines({"reload what=rules", "result=failed", "apocalyptic"}), 1u) << ReadAll(d.log());
  // A broken admission.yaml is refused the same way, on the next SIGHUP.
  WriteAll(d.data() + "/admission.yaml", "chain: [no_such_check]\n");
  ASSERT_EQ(::kill(d.serve().pid(), SIGHUP), 0);
  ASSERT_TRUE(d.WaitForLogLines({"reload what=admission", "result=failed"}, 1)) << ReadAll(d.log());
  EXPECT_TRUE(d.serve().Running());
  EXPECT_TRUE(WaitForHttp(Url(d.port()) + "/healthz", 2000));
  ASSERT_EQ(d.PostEvents(SessionUp("FG-9000003", 3)), "200");
  json a3 = d.WaitForAlert("FG-9000003");
  ASSERT_TRUE(a3.is_object()) << ReadAll(d.log());
  EXPECT_EQ(a3["severity"].get<std::string>(), "critical");

  auto [code, metrics] = d.Get("/metrics", d.tokens()["operator"]);
  ASSERT_EQ(code, "200");
  EXPECT_EQ(Sample(metrics, R"(femtoguard_reload_total{what="rules",result="ok"})"), 1) << metrics;
  EXPECT_EQ(Sample(metrics, R"(femtoguard_reload_total{what="rules",result="failed"})"), 2) << metrics;
  EXPECT_EQ(Sample(metrics, R"(femtoguard_reload_total{what="admission",result="ok"})"), 2) << metrics;
  EXPECT_EQ(Sample(metrics, R"(femtoguard_reload_total{what="admission",result="failed"})"), 1) << metrics;

  // A broken cell database: refused for detection (and for admission, which
  // reads the same DIR/cells.csv); serve stays up.
  WriteAll(d.data() + "/cells.csv", "this is not the OpenCellID header\n");
  ASSERT_EQ(::kill(d.serve().pid(), SIGHUP), 0);
  ASSERT_TRUE(d.WaitForLogLines({"reload what=cells", "result=failed", "OpenCellID header"}, 1)) << ReadAll(d.log());
  EXPECT_TRUE(d.serve().Running());
  EXPECT_TRUE(WaitForHttp(Url(d.port()) + "/healthz", 2000));

  // SIGTERM still stops it cleanly.
  EXPECT_EQ(d.serve().Stop(), 0);
}

// The JSON lines of `log` whose "event" is `event`.
std::vector<json> Events(const std::string& log, const std::string& event) {
  std::vector<json> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == event) out.push_back(j);
  }
  return out;
}

TEST(DaemonTest, CmpEnrolmentIssuedAndRefusedAreLoggedOnceWithoutTheSecret) {
  TempDir t;
  Daemon d(t);
  ASSERT_NO_FATAL_FAILURE(d.Init());
  ASSERT_NO_FATAL_FAILURE(d.Serve({"--log-format", "json"}));
  ASSERT_EQ(Fg({"device", "add", "--data", d.data(), "--device", "FG-LOG-0001"}).exit_code, 0);
  auto tok = Fg({"device", "token", "--data", d.data(), "--device", "FG-LOG-0001"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(tok.out, m, std::regex("(tok-[0-9a-f]+) ([0-9a-f]+)"))) << tok.out;
  const std::string ref = m[1], secret = m[2];
  const std::string key = t / "dev.key";
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key})
                .exit_code,
            0);
  const std::string key2 = t / "dev2.key";
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key2})
                .exit_code,
            0);
  auto cmp = [&](const std::string& pass, const std::string& out, const std::string& newkey) {
    return fg::testing::Run({"openssl", "cmp", "-server", "127.0.0.1:" + std::to_string(d.port()), "-path", "pkix/", "-cmd", "ir",
                "-ref", ref, "-secret", "pass:" + pass, "-newkey", newkey, "-subject", "/CN=FG-LOG-0001", "-certout", out,
                "-unprotected_errors", "-msg_timeout", "20", "-total_timeout", "30"});
  };
  auto ok = cmp(secret, t / "dev.pem", key);
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  // The used token with another key (the same key within the retry window
  // would get its certificate again: docs/pki.md).
  auto reuse = cmp(secret, t / "dev2.pem", key2);
  ASSERT_NE(reuse.exit_code, 0);
  const std::string serial = fg::testing::Run({"openssl", "x509", "-in", t / "dev.pem", "-noout", "-serial"}).out;
  EXPECT_EQ(d.serve().Stop(), 0);

  const std::string log = ReadAll(d.log());
  auto issued = Events(log, "enrolment.issued");
  ASSERT_EQ(issued.size(), 1u) << log;
  EXPECT_EQ(issued[0]["protocol"], "cmp");
  EXPECT_EQ(issued[0]["device"], "FG-LOG-0001");
  EXPECT_EQ(issued[0]["remote"], "127.0.0.1");
  // openssl prints serial=HEX (upper case); ours may differ in case and zeros.
  std::string ours = issued[0]["serial"].get<std::string>();
  std::transform(ours.begin(), ours.end(), ours.begin(), ::toupper);
  EXPECT_THAT(serial, HasSubstr(ours.substr(ours.find_first_not_of('0')))) << ours;
  auto refused = Events(log, "enrolment.refused");
  ASSERT_EQ(refused.size(), 1u) << log;
  EXPECT_EQ(refused[0]["reason"], "token_used");
  EXPECT_EQ(refused[0]["device"], "FG-LOG-0001");
  EXPECT_THAT(log, Not(HasSubstr(secret)));
}

// The datagrams serve sends to $NOTIFY_SOCKET (sd_notify, no libsystemd).
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 200 * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // Collects datagrams until one contains `needle` (at most `timeout_ms`).
  bool WaitFor(const std::string& needle, int timeout_ms = 10000) {
    for (int waited = 0; waited < timeout_ms; waited += 200) {
      char buf[512];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) seen_ += std::string(buf, static_cast<size_t>(n)) + "|";
      if (seen_.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  const std::string& seen() const { return seen_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::string seen_;
};

TEST(DaemonTest, TellsSystemdWhenReadyAroundAReloadAndWhenStopping) {
  TempDir t;
  Daemon d(t);
  ASSERT_NO_FATAL_FAILURE(d.Init());
  NotifySocket notify(t / "notify.sock");
  ASSERT_TRUE(notify.bound());
  Process serve({Femtoguard(), "serve", "--data", d.data(), "--tls-listen", "off"}, d.log(),
                {"NOTIFY_SOCKET=" + (t / "notify.sock")});
  ASSERT_TRUE(notify.WaitFor("READY=1")) << notify.seen() << ReadAll(d.log());
  // Not before the listener answers.
  EXPECT_TRUE(WaitForHttp(Url(d.port()) + "/healthz", 1000));
  EXPECT_THAT(notify.seen(), HasSubstr("MAINPID=" + std::to_string(serve.pid())));
  ASSERT_EQ(::kill(serve.pid(), SIGHUP), 0);
  ASSERT_TRUE(notify.WaitFor("RELOADING=1")) << notify.seen();
  EXPECT_TRUE(serve.Running());
  EXPECT_EQ(serve.Stop(), 0);
  EXPECT_TRUE(notify.WaitFor("STOPPING=1", 1000)) << notify.seen();
}

// Every value under "imsi"/"imei"/"msisdn"/"sender" (and the registry's CSG
// lists) of the simulator's files: the raw identities that must never be
// logged.
std::set<std::string> RawIdentities(const std::string& events, const std::string& registry) {
  std::set<std::string> out;
  std::istringstream in(ReadAll(events));
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    for (const char* k : {"imsi", "imei", "msisdn", "sender"}) {
      if (j.contains(k) && j[k].is_string() && j[k].get<std::string>().size() >= 6) out.insert(j[k].get<std::string>());
    }
  }
  std::istringstream reg(ReadAll(registry));
  for (std::string line; std::getline(reg, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("csg") || !j["csg"].is_array()) continue;
    for (const auto& s : j["csg"]) {
      if (s.is_string()) out.insert(s.get<std::string>());
    }
  }
  return out;
}

struct StoredAlertRow {
  std::string device;
  std::vector<std::string> actions_done;
};

std::map<std::string, StoredAlertRow> StoredAlerts(const std::string& db_path) {
  std::map<std::string, StoredAlertRow> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT id, device, actions_done FROM alerts", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      StoredAlertRow row;
      row.device = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      auto done = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), nullptr, false);
      if (done.is_array()) {
        for (const auto& a : done) row.actions_done.push_back(a.get<std::string>());
      }
      out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = std::move(row);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(DaemonTest, JsonLogDuringTheKt2025AttackHasOneLinePerAlertAndActionAndNoRawIdentity) {
  TempDir t;
  const std::string world = t / "world";
  auto sim = Fg({"sim", "--scenario", "kt-2025", "--devices", "300", "--seed", "2025", "--out", world}, 300);
  ASSERT_EQ(sim.exit_code, 0) << sim.out;
  Daemon d(t);
  ASSERT_NO_FATAL_FAILURE(d.Init());
  auto imp = Fg({"device", "import", "--data", d.data(), "--registry", world + "/registry.jsonl"});
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  WriteAll(d.data() + "/cells.csv", ReadAll(world + "/cells.csv"));
  WriteAll(t / "ingest.token", d.tokens()["ingest"]);
  ASSERT_NO_FATAL_FAILURE(d.Serve({"--log-format", "json", "--log-level", "info"}));

  auto feed = Fg({"feed", "--data", d.data(), "--server", "127.0.0.1:" + std::to_string(d.port()), "--token-file",
                  t / "ingest.token", "--events", world + "/events.jsonl", "--duration", "8", "--quiet"},
                 300);
  ASSERT_EQ(feed.exit_code, 0) << feed.out.substr(0, 4000);

  // Two refused API calls: 401 (a token of the right shape nobody issued)
  // and 403 (an ingest token on an operator route).
  const std::string bogus = "fgt_000000000000_" + std::string(64, 'a');
  EXPECT_EQ(d.Get("/metrics", bogus).first, "401");
  EXPECT_EQ(d.Get("/v1/alerts", d.tokens()["ingest"]).first, "403");

  // Let the responses land (the alert count holds still), then stop, so
  // that the log is complete.
  size_t last = 0;
  for (int stable = 0, i = 0; stable < 4 && i < 120; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    size_t n = StoredAlerts(d.data() + "/store.db").size();
    stable = n == last ? stable + 1 : 0;
    last = n;
  }
  ASSERT_EQ(d.serve().Stop(), 0);
  const auto stored = StoredAlerts(d.data() + "/store.db");
  ASSERT_GT(stored.size(), 10u) << "the attack raised too few alerts to test anything";

  std::map<std::string, int> raised;                                // alert id -> alert.raised lines
  std::map<std::pair<std::string, std::string>, int> actions_done;  // (alert, action) -> result=done lines
  int auth_401 = 0, auth_403 = 0, non_json = 0;
  const std::string log = ReadAll(d.log());
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    // The one stdout line (the listening banner) shares the file; every
    // stderr line is one JSON object.
    if (line.rfind("femtoguard serve: listening on port", 0) == 0) {
      ++non_json;
      continue;
    }
    auto j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    ASSERT_TRUE(j["ts"].is_string()) << line;
    ASSERT_TRUE(j["event"].is_string()) << line;
    ASSERT_THAT(j["level"].get<std::string>(), ::testing::AnyOf("debug", "info", "warn", "error", "critical"))
        << line;
    const std::string event = j["event"].get<std::string>();
    if (event == "alert.raised") {
      for (const char* k : {"id", "rule", "severity", "device"}) ASSERT_TRUE(j[k].is_string()) << line;
      const std::string id = j["id"].get<std::string>();
      ++raised[id];
      ASSERT_TRUE(stored.count(id)) << "logged alert not in the store: " << line;
      EXPECT_EQ(j["device"].get<std::string>(), stored.at(id).device) << line;
    } else if (event == "alert.action") {
      for (const char* k : {"alert", "action", "device", "result"}) ASSERT_TRUE(j[k].is_string()) << line;
      if (j["result"] == "done") ++actions_done[{j["alert"].get<std::string>(), j["action"].get<std::string>()}];
    } else if (event == "auth.failure") {
      (j["status"] == "401" ? auth_401 : auth_403) += 1;
      if (j["status"] == "401") {
        EXPECT_EQ(j["route"].get<std::string>(), "/metrics") << line;
      } else {
        EXPECT_THAT(j["role_wanted"].get<std::string>(), HasSubstr("operator")) << line;
      }
      EXPECT_EQ(j["remote"].get<std::string>(), "127.0.0.1") << line;
    }
  }
  EXPECT_EQ(non_json, 1);
  // Exactly one line per stored alert, and none for an alert not stored.
  EXPECT_EQ(raised.size(), stored.size());
  for (const auto& [id, n] : raised) EXPECT_EQ(n, 1) << "alert " << id << " logged " << n << " times";
  // Exactly one line per action done, and none for an action not done.
  size_t done_total = 0;
  for (const auto& [id, row] : stored) {
    for (const std::string& action : row.actions_done) {
      ++done_total;
      auto it = actions_done.find({id, action});
      EXPECT_TRUE(it != actions_done.end() && it->second == 1)
          << "alert " << id << " action " << action << ": " << (it == actions_done.end() ? 0 : it->second)
          << " lines";
    }
  }
  size_t done_lines = 0;
  for (const auto& [key, n] : actions_done) done_lines += static_cast<size_t>(n);
  EXPECT_EQ(done_lines, done_total);
  EXPECT_GT(done_total, 0u);
  EXPECT_EQ(auth_401, 1);
  EXPECT_EQ(auth_403, 1);

  // No raw subscriber identity and no token in any line.
  const auto raw = RawIdentities(world + "/events.jsonl", world + "/registry.jsonl");
  ASSERT_GT(raw.size(), 100u);
  std::set<std::string> runs;  // every run of 6+ digits in the log
  std::regex digits("[0-9]{6,}");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), digits); it != std::sregex_iterator(); ++it) {
    runs.insert(it->str());
  }
  for (const std::string& id : raw) {
    for (const std::string& run : runs) ASSERT_EQ(run.find(id), std::string::npos) << "raw identity in the log: " << id;
  }
  for (const auto& [role, token] : d.tokens()) EXPECT_THAT(log, Not(HasSubstr(token))) << role;
  EXPECT_THAT(log, Not(HasSubstr(bogus)));
}

}  // namespace
}  // namespace fg::testing
