// SIEM export end to end (issue 18): serve sends every alert it stores as
// RFC 5424 syslog, octet-counted, with an ECS JSON body, to a real rsyslog
// (Debian's rsyslogd, imtcp with the gtls driver, started here with its own
// configuration on a free loopback port, writing what it receives to a
// file). Shown: every alert of the simulator's kt-2025 attack arrives over
// TLS exactly once; a collector whose certificate does not chain to the CA
// serve was given gets nothing; a collector down (and serve killed -9 while
// it is) loses nothing once it is back; plain TCP works too; and a second,
// independent receiver (Python's ssl module) sees well-formed frames.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

constexpr char kRsyslogd[] = "/usr/sbin/rsyslogd";

bool PortListening(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

template <typename F>
bool PollUntil(F done, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 100) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// A certificate authority and a server certificate for 127.0.0.1, made with
// the openssl CLI in `dir`.
void MakePki(const TempDir& dir, const std::string& name) {
  const std::string ca_key = dir / (name + "-ca.key"), ca = dir / (name + "-ca.pem");
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", ca_key, "-out", ca, "-subj", "/CN=" + name + " test CA", "-days", "2"})
                .exit_code,
            0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", dir / (name + ".key"), "-out", dir / (name + ".csr"), "-subj", "/CN=127.0.0.1"})
                .exit_code,
            0);
  WriteAll(dir / (name + ".ext"), "subjectAltName=IP:127.0.0.1\n");
  auto sign = fg::testing::Run({"openssl", "x509", "-req", "-in", dir / (name + ".csr"), "-CA", ca, "-CAkey", ca_key,
                   "-CAcreateserial", "-days", "2", "-extfile", dir / (name + ".ext"), "-out", dir / (name + ".pem")});
  ASSERT_EQ(sign.exit_code, 0) << sign.out;
}

// rsyslogd in the foreground with its own configuration: imtcp on
// 127.0.0.1:port (TLS with the gtls driver, anonymous clients, or plain
// TCP), every message's MSGID, HOSTNAME, severity and MSG to one file.
class Rsyslog {
 public:
  Rsyslog(const TempDir& dir, int port, bool tls) : dir_(dir), port_(port), tls_(tls) {
    work_ = dir / "rsyslog-work";
    std::filesystem::create_directories(work_);
    std::string conf = "global(workDirectory=\"" + work_ + "\" maxMessageSize=\"64k\"";
    if (tls) {
      conf += " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"" + (dir / "collector-ca.pem") +
              "\" DefaultNetstreamDriverCertFile=\"" + (dir / "collector.pem") +
              "\" DefaultNetstreamDriverKeyFile=\"" + (dir / "collector.key") + "\"";
    }
    conf += ")\n";
    conf += tls ? "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" "
                  "StreamDriver.AuthMode=\"anon\")\n"
                : "module(load=\"imtcp\")\n";
    conf += "input(type=\"imtcp\" port=\"" + std::to_string(port) + "\" address=\"127.0.0.1\")\n";
    conf += "template(name=\"fields\" type=\"string\" string=\"%msgid% %hostname% %syslogfacility% "
            "%syslogseverity% %msg%\\n\")\n";
    conf += "action(type=\"omfile\" file=\"" + Out() + "\" template=\"fields\")\n";
    WriteAll(dir / "rsyslog.conf", conf);
  }
  ~Rsyslog() { Stop(); }

  void Start() {
    ++starts_;
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{kRsyslogd, "-n", "-f", dir_ / "rsyslog.conf", "-i", work_ + "/rsyslogd.pid"},
        dir_ / ("rsyslogd-" + std::to_string(starts_) + ".log"));
    ASSERT_TRUE(PollUntil([&] { return PortListening(port_); }, 15000))
        << ReadAll(dir_ / ("rsyslogd-" + std::to_string(starts_) + ".log"));
  }
  void Stop() {
    if (proc_) proc_->Stop();  // SIGTERM by PID: rsyslog writes out what it has and exits
    proc_.reset();
  }
  std::string Out() const { return dir_ / "received.log"; }

  // MSG (the ECS JSON) of every line received, by event.id.
  std::map<std::string, int> CountById() const {
    std::map<std::string, int> out;
    std::istringstream in(ReadAll(Out()));
    for (std::string line; std::getline(in, line);) {
      size_t brace = line.find('{');
      if (brace == std::string::npos) continue;
      auto j = json::parse(line.substr(brace), nullptr, false);
      if (j.is_object() && j.contains("event") && j["event"].contains("id")) {
        ++out[j["event"]["id"].get<std::string>()];
      }
    }
    return out;
  }

 private:
  const TempDir& dir_;
  int port_;
  bool tls_;
  std::string work_;
  int starts_ = 0;
  std::unique_ptr<Process> proc_;
};

std::set<std::string> StoredAlertIds(const std::string& db_path) {
  std::set<std::string> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT id FROM alerts", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) out.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

class SiemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    port_ = FreePort();
    do collector_port_ = FreePort();
    while (collector_port_ == port_);
    auto init = fg::testing::Run({Femtoguard(), "init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    SetPlainHttpApi(data_, true);  // loopback lab: the API on the plain listener
    for (const char* role : {"ingest", "operator"}) {
      tokens_[role] = FindApiToken(fg::testing::Run({Femtoguard(), "token", "create", "--data", data_, "--role", role}).out);
      ASSERT_FALSE(tokens_[role].empty());
    }
    ASSERT_NO_FATAL_FAILURE(MakePki(dir_, "collector"));
    ASSERT_NO_FATAL_FAILURE(MakePki(dir_, "stranger"));
  }

  std::string Target(bool tls) const {
    return std::string(tls ? "tls" : "tcp") + "://127.0.0.1:" + std::to_string(collector_port_);
  }
  void StartServe(const std::vector<std::string>& siem_args) {
    ++starts_;
    std::vector<std::string> argv = {Femtoguard(), "serve", "--data", data_, "--tls-listen", "off",
                                     "--threads", "2", "--syslog-retry-max-s", "1"};
    argv.insert(argv.end(), siem_args.begin(), siem_args.end());
    serve_ = std::make_unique<Process>(argv, Log());
    ASSERT_TRUE(WaitForHttp(Url() + "/healthz", 60000)) << ReadAll(Log());
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return dir_ / ("serve-" + std::to_string(starts_) + ".log"); }

  // session.up from devices nobody registered: one device.unknown alert each.
  void PostUnknownSessions(int from, int to) {
    std::string body;
    for (int i = from; i < to; ++i) {
      json e = {{"ts", "2026-01-01T00:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z"},
                {"type", "session.up"},
                {"device", "FG-SIEM-" + std::to_string(i)},
                {"session", "s" + std::to_string(i)},
                {"src_ip", "10.78.0." + std::to_string(i + 1)},
                {"endpoint", "segw1.example:500"},
                {"segw", "segw1"}};
      body += e.dump() + "\n";
    }
    WriteAll(dir_ / "events.jsonl", body);
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                  "Authorization: Bearer " + tokens_["ingest"], "-H", "Content-Type: application/x-ndjson",
                  "--data-binary", "@" + (dir_ / "events.jsonl"), Url() + "/v1/events"});
    ASSERT_EQ(r.out, "200") << r.out;
  }

  std::set<std::string> WaitForStoredAlerts(size_t n) {
    std::set<std::string> ids;
    PollUntil([&] { return (ids = StoredAlertIds(data_ + "/store.db")).size() >= n; }, 20000);
    return ids;
  }

  double Metric(const std::string& name) {
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "20", "-H", "Authorization: Bearer " + tokens_["operator"],
                  Url() + "/metrics"});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

  TempDir dir_;
  std::string data_;
  int port_ = 0, collector_port_ = 0, starts_ = 0;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> serve_;
};

TEST_F(SiemTest, EveryAlertOfTheKt2025AttackArrivesOverTlsExactlyOnce) {
  const std::string world = dir_ / "world";
  auto sim = fg::testing::Run({Femtoguard(), "sim", "--scenario", "kt-2025", "--devices", "300", "--seed", "2025", "--out", world},
                 {}, 300);
  ASSERT_EQ(sim.exit_code, 0) << sim.out;
  auto imp = fg::testing::Run({Femtoguard(), "device", "import", "--data", data_, "--registry", world + "/registry.jsonl"});
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  WriteAll(data_ + "/cells.csv", ReadAll(world + "/cells.csv"));
  WriteAll(dir_ / "ingest.token", tokens_["ingest"]);

  Rsyslog rsyslog(dir_, collector_port_, /*tls=*/true);
  ASSERT_NO_FATAL_FAILURE(rsyslog.Start());
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(true), "--syslog-cacert", dir_ / "collector-ca.pem"}));
  auto feed = fg::testing::Run({Femtoguard(), "feed", "--data", data_, "--server", "127.0.0.1:" + std::to_string(port_),
                   "--token-file", dir_ / "ingest.token", "--events", world + "/events.jsonl", "--duration", "8",
                   "--quiet"},
                  {}, 300);
  ASSERT_EQ(feed.exit_code, 0) << feed.out.substr(0, 4000);

  // The responses land (the stored count holds still), then the export
  // drains (nothing pending) and rsyslog has written them out.
  std::set<std::string> stored;
  size_t last = 0;
  for (int stable = 0, i = 0; stable < 4 && i < 120; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stored = StoredAlertIds(data_ + "/store.db");
    stable = stored.size() == last ? stable + 1 : 0;
    last = stored.size();
  }
  ASSERT_GT(stored.size(), 10u) << "the attack raised too few alerts to test anything";
  ASSERT_TRUE(PollUntil([&] { return Metric("femtoguard_siem_pending") == 0; }, 30000)) << ReadAll(Log());
  std::map<std::string, int> got;
  PollUntil([&] { return (got = rsyslog.CountById()).size() >= stored.size(); }, 30000);

  std::set<std::string> got_ids;
  for (const auto& [id, n] : got) {
    got_ids.insert(id);
    EXPECT_EQ(n, 1) << "alert " << id << " arrived " << n << " times";
  }
  EXPECT_EQ(got_ids, stored) << ReadAll(Log()).substr(0, 4000);
  EXPECT_EQ(Metric("femtoguard_siem_up"), 1);
  EXPECT_GE(Metric("femtoguard_siem_messages_total{result=\"sent\"}"), static_cast<double>(stored.size()));

  // What the SIEM reads: RFC 5424 fields rsyslog parsed out of the frames,
  // and an ECS document per alert.
  std::istringstream in(ReadAll(rsyslog.Out()));
  std::map<std::string, int> rules;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string msgid, host, facility, severity;
    fields >> msgid >> host >> facility >> severity;
    EXPECT_EQ(msgid, "alert") << line;
    EXPECT_EQ(facility, "10") << "authpriv: " << line;
    json ecs = json::parse(line.substr(line.find('{')));
    const json& alert = ecs["femtoguard"]["alert"];
    EXPECT_EQ(ecs["event"]["kind"], "alert");
    EXPECT_EQ(ecs["event"]["code"], alert["rule"]);
    EXPECT_EQ(ecs["rule"]["name"], alert["rule"]);
    EXPECT_EQ(ecs["@timestamp"], alert["ts"]);
    EXPECT_EQ(ecs["log"]["level"], alert["severity"]);
    const std::map<std::string, std::string> syslog_severity = {
        {"critical", "2"}, {"high", "3"}, {"medium", "4"}, {"low", "5"}, {"info", "6"}};
    EXPECT_EQ(severity, syslog_severity.at(alert["severity"].get<std::string>())) << line;
    if (alert["device"].is_string()) {
      EXPECT_EQ(ecs["device"]["id"], alert["device"]);
    }
    ++rules[alert["rule"].get<std::string>()];
  }
  EXPECT_GE(rules.size(), 3u) << "the attack's rule families reach the SIEM";

  // No raw subscriber identity leaves the node: none of the world's IMSIs
  // is in what rsyslog received.
  const std::string received = ReadAll(rsyslog.Out());
  std::regex imsi_re("\"imsi\":\"([0-9]{14,15})\"");
  std::string events = ReadAll(world + "/events.jsonl");
  std::set<std::string> imsis;
  for (auto it = std::sregex_iterator(events.begin(), events.end(), imsi_re); it != std::sregex_iterator(); ++it) {
    imsis.insert((*it)[1]);
    if (imsis.size() > 2000) break;
  }
  ASSERT_FALSE(imsis.empty());
  for (const std::string& imsi : imsis) ASSERT_EQ(received.find(imsi), std::string::npos) << "raw IMSI exported";
}

TEST_F(SiemTest, CollectorWithACertificateFromAnotherCaGetsNothing) {
  // rsyslog presents the stranger CA's certificate; serve trusts only the
  // collector CA.
  for (const char* ext : {".pem", ".key"}) {
    WriteAll(dir_ / (std::string("collector") + ext), ReadAll(dir_ / (std::string("stranger") + ext)));
  }
  Rsyslog rsyslog(dir_, collector_port_, /*tls=*/true);
  ASSERT_NO_FATAL_FAILURE(rsyslog.Start());
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(true), "--syslog-cacert", dir_ / "collector-ca.pem"}));
  PostUnknownSessions(0, 3);
  ASSERT_EQ(WaitForStoredAlerts(3).size(), 3u) << ReadAll(Log());
  ASSERT_TRUE(PollUntil([&] { return ReadAll(Log()).find("not trusted") != std::string::npos; }, 20000))
      << ReadAll(Log());
  EXPECT_EQ(Metric("femtoguard_siem_up"), 0);
  EXPECT_EQ(Metric("femtoguard_siem_pending"), 3) << "refused alerts stay queued";
  EXPECT_GE(Metric("femtoguard_siem_messages_total{result=\"failed\"}"), 1);
  EXPECT_TRUE(rsyslog.CountById().empty()) << ReadAll(rsyslog.Out());
}

TEST_F(SiemTest, CollectorDownThenUpLosesNothingAcrossAKill9OfServe) {
  Rsyslog rsyslog(dir_, collector_port_, /*tls=*/true);
  ASSERT_NO_FATAL_FAILURE(rsyslog.Start());
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(true), "--syslog-cacert", dir_ / "collector-ca.pem"}));
  PostUnknownSessions(0, 3);
  ASSERT_EQ(WaitForStoredAlerts(3).size(), 3u) << ReadAll(Log());
  ASSERT_TRUE(PollUntil([&] { return rsyslog.CountById().size() == 3; }, 20000)) << ReadAll(Log());

  // The collector goes away; alerts keep coming, on a connection that is
  // now dead, and queue on disk.
  rsyslog.Stop();
  PostUnknownSessions(3, 6);
  ASSERT_EQ(WaitForStoredAlerts(6).size(), 6u) << ReadAll(Log());
  ASSERT_TRUE(PollUntil([&] { return Metric("femtoguard_siem_pending") == 3; }, 20000)) << ReadAll(Log());
  // serve dies without warning while they wait; a new serve takes them up.
  ::kill(serve_->pid(), SIGKILL);
  serve_->Stop();
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(true), "--syslog-cacert", dir_ / "collector-ca.pem"}));
  EXPECT_THAT(ReadAll(Log()), HasSubstr("left unsent by an earlier run"));
  PostUnknownSessions(6, 8);
  const std::set<std::string> all = WaitForStoredAlerts(8);
  ASSERT_EQ(all.size(), 8u);

  ASSERT_NO_FATAL_FAILURE(rsyslog.Start());
  std::map<std::string, int> got;
  ASSERT_TRUE(PollUntil([&] { return (got = rsyslog.CountById()).size() == all.size(); }, 30000))
      << ReadAll(Log());
  for (const auto& [id, n] : got) {
    EXPECT_TRUE(all.count(id)) << id;
    EXPECT_EQ(n, 1) << "alert " << id << " arrived " << n << " times";
  }
  EXPECT_TRUE(PollUntil([&] { return Metric("femtoguard_siem_pending") == 0; }, 10000));
  EXPECT_EQ(Metric("femtoguard_siem_up"), 1);
  std::error_code ec;
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(data_ + "/siem", ec)) files += e.path().extension() == ".msg";
  EXPECT_EQ(files, 0u) << "acknowledged alerts leave the queue";
}

TEST_F(SiemTest, PlainTcpCollectorGetsEveryAlert) {
  Rsyslog rsyslog(dir_, collector_port_, /*tls=*/false);
  ASSERT_NO_FATAL_FAILURE(rsyslog.Start());
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(false)}));
  PostUnknownSessions(0, 4);
  const std::set<std::string> stored = WaitForStoredAlerts(4);
  ASSERT_EQ(stored.size(), 4u);
  std::map<std::string, int> got;
  ASSERT_TRUE(PollUntil([&] { return (got = rsyslog.CountById()).size() == 4; }, 20000)) << ReadAll(Log());
  for (const auto& [id, n] : got) {
    EXPECT_TRUE(stored.count(id)) << id;
    EXPECT_EQ(n, 1);
  }
}

TEST_F(SiemTest, AMalformedTargetOrCaFileIsRefusedAtStartWithExit2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--syslog-export", "udp://127.0.0.1:514"}, "tcp://HOST:PORT or tls://HOST:PORT"},
      {{"--syslog-export", "tls://127.0.0.1"}, "no port"},
      {{"--syslog-export", "tls://127.0.0.1:6514", "--syslog-cacert", dir_ / "missing.pem"}, "cannot be read"},
      {{"--syslog-export", "tcp://127.0.0.1:601", "--syslog-cacert", dir_ / "collector-ca.pem"}, "only for a tls://"},
  };
  for (const auto& [flags, why] : cases) {
    std::vector<std::string> argv = {Femtoguard(), "serve", "--data", data_, "--tls-listen", "off"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = fg::testing::Run(argv, {}, 60);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(why));
  }
  EXPECT_FALSE(std::filesystem::exists(data_ + "/siem")) << "nothing was started";
}

// A second receiver, not rsyslog: Python's ssl module accepting one TLS
// connection after another and appending the raw bytes to a file; they must
// be back-to-back octet-counted RFC 5424 frames.
constexpr char kTlsReceiver[] = R"(
import socket, ssl, sys
port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.create_server(("127.0.0.1", port))
while True:
    conn, _ = srv.accept()
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        while True:
            data = tls.recv(65536)
            if not data:
                break
            with open(out, "ab") as f:
                f.write(data)
    except (ssl.SSLError, OSError):
        pass
    finally:
        conn.close()
)";

TEST_F(SiemTest, AnotherTlsReceiverReadsWellFormedOctetCountedFrames) {
  Process server({"python3", "-c", kTlsReceiver, std::to_string(collector_port_), dir_ / "collector.pem",
                  dir_ / "collector.key", dir_ / "frames.bin"},
                 dir_ / "receiver.log");
  ASSERT_TRUE(PollUntil([&] { return PortListening(collector_port_); }, 15000)) << ReadAll(dir_ / "receiver.log");
  ASSERT_NO_FATAL_FAILURE(StartServe({"--syslog-export", Target(true), "--syslog-cacert", dir_ / "collector-ca.pem"}));
  PostUnknownSessions(0, 3);
  const std::set<std::string> stored = WaitForStoredAlerts(3);
  ASSERT_EQ(stored.size(), 3u);
  ASSERT_TRUE(PollUntil([&] { return Metric("femtoguard_siem_pending") == 0; }, 20000)) << ReadAll(Log());

  std::string bytes;
  std::set<std::string> ids;
  PollUntil(
      [&] {
        bytes = ReadAll(dir_ / "frames.bin");
        ids.clear();
        size_t at = 0;
        while (at < bytes.size()) {
          size_t sp = bytes.find(' ', at);
          if (sp == std::string::npos) return false;
          const size_t len = std::stoul(bytes.substr(at, sp - at));
          if (sp + 1 + len > bytes.size()) return false;
          const std::string msg = bytes.substr(sp + 1, len);
          at = sp + 1 + len;
          // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
          std::smatch m;
          if (!std::regex_match(msg, m, std::regex(R"(<(\d{1,3})>1 (\S+) (\S+) femtoguard - alert - (\{.*\}))"))) {
            ADD_FAILURE() << "not an RFC 5424 alert message: " << msg;
            return true;
          }
          ids.insert(json::parse(m[4].str())["event"]["id"].get<std::string>());
        }
        return ids.size() == stored.size();
      },
      20000);
  EXPECT_EQ(ids, stored) << bytes.substr(0, 2000);
}

}  // namespace
}  // namespace fg::testing
