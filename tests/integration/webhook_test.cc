// The alert webhook end to end (issue 14): serve POSTs each notify alert to
// an HTTPS receiver (a small Python server started here, with a certificate
// from a CA made here), signed with HMAC-SHA256 (X-Femtoguard-Signature,
// verified by the receiver with DATA/secrets/webhook.key), the alert id in
// X-Femtoguard-Alert-Id. The receiver is down at start (a logged warning and
// femtoguard_webhook_up 0), alerts queue durably, serve is killed with
// SIGKILL and restarted, and once the receiver comes up it gets every alert.
// A malformed webhook URL is refused at start (exit 2).

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;
namespace fs = std::filesystem;

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    port_ = FreePort();
    do tls_port_ = FreePort();
    while (tls_port_ == port_);
    do recv_port_ = FreePort();
    while (recv_port_ == port_ || recv_port_ == tls_port_);
    auto init = fg::testing::Run({Femtoguard(), "init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_),
                     "--tls-listen", "127.0.0.1:" + std::to_string(tls_port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(dir_ / "chain.pem", fg::testing::Run({Femtoguard(), "ca", "cert", "--data", data_, "--chain"}).out);
    for (const char* role : {"ingest", "operator"}) {
      tokens_[role] = FindApiToken(fg::testing::Run({Femtoguard(), "token", "create", "--data", data_, "--role", role}).out);
      ASSERT_FALSE(tokens_[role].empty());
    }
    // The receiver's PKI: a CA and a server certificate for 127.0.0.1.
    const std::string ca_key = dir_ / "hook-ca.key", ca = dir_ / "hook-ca.pem";
    ASSERT_EQ(fg::testing::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", ca_key, "-out", ca, "-subj", "/CN=hook test CA", "-days", "2"})
                  .exit_code,
              0);
    ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", dir_ / "hook.key", "-out", dir_ / "hook.csr", "-subj", "/CN=127.0.0.1"})
                  .exit_code,
              0);
    WriteAll(dir_ / "hook.ext", "subjectAltName=IP:127.0.0.1\n");
    auto sign = fg::testing::Run({"openssl", "x509", "-req", "-in", dir_ / "hook.csr", "-CA", ca, "-CAkey", ca_key,
                     "-CAcreateserial", "-days", "2", "-extfile", dir_ / "hook.ext", "-out", dir_ / "hook.pem"});
    ASSERT_EQ(sign.exit_code, 0) << sign.out;
  }

  std::vector<std::string> ServeArgs(const std::string& url) {
    return {Femtoguard(), "serve", "--data", data_, "--threads", "1", "--webhook", url, "--webhook-cacert",
            dir_ / "hook-ca.pem", "--webhook-retry-max-s", "1"};
  }
  std::string HookUrl() const { return "https://127.0.0.1:" + std::to_string(recv_port_) + "/hook"; }

  void StartServe() {
    ++starts_;
    serve_ = std::make_unique<Process>(ServeArgs(HookUrl()), Log());
    ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port_) + "/healthz", 60000)) << ReadAll(Log());
  }
  void KillServe() {
    ::kill(serve_->pid(), SIGKILL);
    serve_->Stop();
    serve_.reset();
  }
  std::string Log() const { return dir_ / ("serve-" + std::to_string(starts_) + ".log"); }

  void StartReceiver(const std::string& secret_file) {
    receiver_ = std::make_unique<Process>(
        std::vector<std::string>{"python3", std::string(FG_SOURCE_DIR) + "/tests/integration/webhook_receiver.py",
                                 std::to_string(recv_port_), secret_file, dir_ / "received.jsonl", "--cert",
                                 dir_ / "hook.pem", "--key", dir_ / "hook.key"},
        dir_ / "receiver.log");
  }

  // curl on serve's TLS listener.
  RunResult Api(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "--cacert", dir_ / "chain.pem"};
    argv.insert(argv.end(), args.begin(), args.end());
    return fg::testing::Run(argv);
  }
  std::string TlsUrl(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(tls_port_) + path;
  }

  // session.up from devices nobody registered: one device.unknown alert
  // (actions terminate, block, notify) each.
  void PostUnknownSessions(int from, int to) {
    std::string body;
    for (int i = from; i < to; ++i) {
      json e = {{"ts", "2026-01-01T00:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z"},
                {"type", "session.up"},
                {"device", "FG-HOOK-" + std::to_string(i)},
                {"session", "s" + std::to_string(i)},
                {"src_ip", "10.77.0." + std::to_string(i + 1)},
                {"endpoint", "segw1.example:500"},
                {"segw", "segw1"}};
      body += e.dump() + "\n";
    }
    WriteAll(dir_ / "events.jsonl", body);
    auto r = Api({"-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer " + tokens_["ingest"], "-H",
                  "Content-Type: application/x-ndjson", "--data-binary", "@" + (dir_ / "events.jsonl"),
                  TlsUrl("/v1/events")});
    ASSERT_EQ(r.out, "200") << r.out;
  }

  // Alert ids in the store (via the API), polled until `n` are there.
  std::set<std::string> WaitForAlerts(size_t n) {
    std::set<std::string> ids;
    for (int i = 0; i < 200 && ids.size() < n; ++i) {
      auto r = Api({"-H", "Authorization: Bearer " + tokens_["operator"], TlsUrl("/v1/alerts?limit=1000")});
      json j = json::parse(r.out, nullptr, false);
      ids.clear();
      const json& list = j.is_object() && j.contains("alerts") ? j["alerts"] : j;
      if (list.is_array()) {
        for (const auto& a : list) {
          if (a.contains("rule") && a["rule"] == "device.unknown") ids.insert(a["id"].get<std::string>());
        }
      }
      if (ids.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ids;
  }

  double Metric(const std::string& name) {
    auto r = Api({"-H", "Authorization: Bearer " + tokens_["operator"], TlsUrl("/metrics")});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

  size_t QueueFiles() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(data_ + "/webhook", ec)) n += e.path().extension() == ".json";
    return n;
  }

  std::vector<json> Received() {
    std::vector<json> out;
    std::istringstream in(ReadAll(dir_ / "received.jsonl"));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(json::parse(line));
    }
    return out;
  }

  TempDir dir_;
  std::string data_;
  int port_ = 0, tls_port_ = 0, recv_port_ = 0, starts_ = 0;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> serve_;
  std::unique_ptr<Process> receiver_;
};

TEST_F(WebhookTest, InitMakesThePrivateSigningKey) {
  struct stat st{};
  ASSERT_EQ(::stat((data_ + "/secrets/webhook.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string key = ReadAll(data_ + "/secrets/webhook.key");
  while (!key.empty() && key.back() == '\n') key.pop_back();
  EXPECT_EQ(key.size(), 64u);
}

TEST_F(WebhookTest, MalformedUrlIsRefusedAtStart) {
  for (const std::string url : {"ftp://127.0.0.1/hook", "https://", "https://user:pw@127.0.0.1:9/hook",
                                "https://127.0.0.1:99999/hook", "127.0.0.1:9/hook", "https://127.0.0.1:9/a b"}) {
    auto r = fg::testing::Run(ServeArgs(url), "", 60);
    EXPECT_EQ(r.exit_code, 2) << url << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("webhook")) << url;
  }
  // An unreadable CA file is bad input too.
  auto args = ServeArgs(HookUrl());
  args[args.size() - 3] = dir_ / "no-such-ca.pem";
  auto r = fg::testing::Run(args, "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

TEST_F(WebhookTest, DownReceiverGetsEveryAlertSignedAcrossAKill9Restart) {
  StartServe();
  // Down at start: a warning and a metric, not silence.
  EXPECT_THAT(ReadAll(Log()), HasSubstr("cannot be reached at start"));
  EXPECT_EQ(Metric("femtoguard_webhook_up"), 0);

  PostUnknownSessions(0, 3);
  auto before_kill = WaitForAlerts(3);
  ASSERT_EQ(before_kill.size(), 3u) << ReadAll(Log());
  // Queued on disk (the receiver is down), then serve dies without warning.
  for (int i = 0; i < 100 && QueueFiles() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(QueueFiles(), 3u);
  EXPECT_GE(Metric("femtoguard_webhook_pending"), 3);
  KillServe();

  StartServe();
  EXPECT_THAT(ReadAll(Log()), HasSubstr("left undelivered by an earlier run"));
  PostUnknownSessions(3, 5);
  auto all = WaitForAlerts(5);
  ASSERT_EQ(all.size(), 5u) << ReadAll(Log());
  for (const auto& id : before_kill) EXPECT_TRUE(all.count(id));
  // A while later the receiver comes up.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_TRUE(Received().empty());
  StartReceiver(data_ + "/secrets/webhook.key");

  std::set<std::string> got;
  for (int i = 0; i < 300 && got.size() < all.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    got.clear();
    for (const json& rec : Received()) got.insert(rec["id"].get<std::string>());
  }
  EXPECT_EQ(got, all) << ReadAll(Log()) << ReadAll(dir_ / "receiver.log");
  for (const json& rec : Received()) {
    EXPECT_TRUE(rec["sig_ok"].get<bool>()) << rec.dump();
    EXPECT_EQ(rec["path"], "/hook");
    EXPECT_EQ(rec["content_type"], "application/json");
    json alert = json::parse(rec["body"].get<std::string>());
    EXPECT_EQ(alert["id"], rec["id"]) << "the header names the alert in the body";
    EXPECT_EQ(alert["rule"], "device.unknown");
    EXPECT_THAT(rec["signature"].get<std::string>(), ::testing::MatchesRegex("t=[0-9]+,v1=[0-9a-f]{64}"));
  }
  for (int i = 0; i < 100 && QueueFiles() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(QueueFiles(), 0u) << "delivered alerts leave the queue";
  EXPECT_EQ(Metric("femtoguard_webhook_up"), 1);
  EXPECT_EQ(Metric("femtoguard_webhook_pending"), 0);
  serve_.reset();
  receiver_.reset();
}

TEST_F(WebhookTest, ReceiverWithAnotherSecretSeesABadSignature) {
  // The signature is checkable: a receiver holding a different key rejects it.
  WriteAll(dir_ / "wrong.key", std::string(64, 'a') + "\n");
  StartReceiver(dir_ / "wrong.key");
  for (int i = 0; i < 100; ++i) {
    if (fg::testing::Run({"curl", "-s", "-k", "-o", "/dev/null", "https://127.0.0.1:" + std::to_string(recv_port_) + "/"})
            .exit_code == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  StartServe();
  EXPECT_EQ(Metric("femtoguard_webhook_up"), 1);
  EXPECT_THAT(ReadAll(Log()), Not(HasSubstr("cannot be reached at start")));
  PostUnknownSessions(0, 1);
  ASSERT_EQ(WaitForAlerts(1).size(), 1u);
  std::vector<json> recs;
  for (int i = 0; i < 100 && recs.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    recs = Received();
  }
  ASSERT_FALSE(recs.empty());
  EXPECT_FALSE(recs[0]["sig_ok"].get<bool>());
  serve_.reset();
  receiver_.reset();
}

}  // namespace
}  // namespace fg::testing
