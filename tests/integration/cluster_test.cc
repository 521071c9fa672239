// Two femtoguard nodes on one PostgreSQL database (issue 15): every node
// serves everything, a change made on one is seen on the other within a
// second, losing a node loses no admission, and promoting the standby
// during enrolment loses nothing that was acknowledged.
//
// Real peers only: a PostgreSQL primary (and a synchronous streaming
// standby) started by the test in a temp dir, two `femtoguard serve`
// processes, `openssl cmp` and `openssl ocsp` as the device and the SeGW,
// curl (libcurl) as an SeGW asking the HTTP admission API with failover.

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "testing/harness.h"
#include "testing/pg_server.h"

namespace fg::testing {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// The rows of a CLI table (the header line skipped), split on blanks.
std::vector<std::vector<std::string>> Table(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  size_t at = out.find('\n');
  while (at != std::string::npos && at + 1 < out.size()) {
    size_t nl = out.find('\n', at + 1);
    std::string line = out.substr(at + 1, nl == std::string::npos ? std::string::npos : nl - at - 1);
    std::vector<std::string> cols;
    for (size_t i = 0; i < line.size();) {
      size_t j = line.find(' ', i);
      if (j == std::string::npos) j = line.size();
      if (j > i) cols.push_back(line.substr(i, j - i));
      i = j + 1;
    }
    if (cols.size() >= 5) rows.push_back(std::move(cols));
    at = nl;
  }
  return rows;
}

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 120);
}

// One node: its data dir, its two listeners and its serve process.
struct ClusterNode {
  std::string name;
  std::string data;
  int port = 0;
  int tls_port = 0;
  std::unique_ptr<Process> serve;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::string tls_url() const { return "https://127.0.0.1:" + std::to_string(tls_port); }
};

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  }

  void SetUp() override { dir_ = std::make_unique<TempDir>(); }

  void TearDown() override {
    for (ClusterNode* n : {&a_, &b_}) n->serve.reset();
    pg_.reset();
    dir_.reset();
  }

  std::string P(const std::string& name) const { return *dir_ / name; }

  void StartPostgres(bool standby) {
    PgServer::Options o;
    o.standby = standby;
    auto pg = PgServer::Start(o);
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = std::move(pg).value();
    auto db = pg_->CreateDatabase("cluster");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    store_url_ = pg_->Url(*db);
  }

  void Ports(ClusterNode& n, const std::string& name) {
    n.name = name;
    n.data = P(name);
    n.port = FreePort();
    do {
      n.tls_port = FreePort();
    } while (n.tls_port == n.port);
  }

  // Node A: `init --store`; node B: `node bundle` on A, `node join` with it.
  void MakeCluster() {
    Ports(a_, "a");
    auto init = Fg({"init", "--data", a_.data, "--store", store_url_, "--listen",
                    "127.0.0.1:" + std::to_string(a_.port), "--tls-listen", "127.0.0.1:" + std::to_string(a_.tls_port),
                    "--public-url", a_.url()});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    auto bundle = Fg({"node", "bundle", "--data", a_.data, "--out", P("bundle.fgb")});
    ASSERT_EQ(bundle.exit_code, 0) << bundle.out;
    Ports(b_, "b");
    auto join = Fg({"node", "join", "--data", b_.data, "--store", store_url_, "--bundle", P("bundle.fgb"),
                    "--passphrase-file", a_.data + "/secrets/ca.passphrase", "--public-url", b_.url(), "--url-order",
                    "1", "--listen", "127.0.0.1:" + std::to_string(b_.port),
                    "--tls-listen", "127.0.0.1:" + std::to_string(b_.tls_port)});
    ASSERT_EQ(join.exit_code, 0) << join.out;
    WriteAll(P("chain.pem"), Fg({"ca", "cert", "--data", a_.data, "--chain"}).out);
    WriteAll(P("issuing.pem"), Fg({"ca", "cert", "--data", a_.data}).out);
    for (ClusterNode* n : {&a_, &b_}) {
      std::string cfg = ReadAll(n->data + "/config.yaml");
      size_t at = cfg.find("plain_http: false");
      ASSERT_NE(at, std::string::npos);
      cfg.replace(at, 17, "plain_http: true");  // the storm's SeGW client speaks plain HTTP on loopback
      WriteAll(n->data + "/config.yaml", cfg);
    }
  }

  void StartServe(ClusterNode& n) {
    n.serve = std::make_unique<Process>(
        std::vector<std::string>{Femtoguard(), "serve", "--data", n.data, "--threads", "2"}, P(n.name + "-serve.log"));
    ASSERT_TRUE(WaitForHttp(n.url() + "/healthz", 20000)) << ReadAll(P(n.name + "-serve.log"));
  }

  void KillServe(ClusterNode& n) {
    ASSERT_TRUE(n.serve);
    ::kill(n.serve->pid(), SIGKILL);
    n.serve->Stop();  // reaps it
  }

  // `openssl ocsp` against `node`: "good", "revoked" or what went wrong.
  std::string Ocsp(const ClusterNode& node, const std::string& cert) {
    auto r = fg::testing::Run({"openssl", "ocsp", "-url", node.url() + "/ocsp", "-issuer", P("issuing.pem"), "-cert", cert,
                  "-CAfile", P("chain.pem"), "-no_nonce"});
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex(": (good|revoked|unknown)"))) return m[1];
    return "error: " + r.out;
  }

  // A one-time bootstrap token for `device` from `node`'s CLI: {REF, SECRET},
  // or empty ones when the CLI refused (e.g. no primary during a failover).
  std::pair<std::string, std::string> Token(const ClusterNode& node, const std::string& device) {
    auto tok = Fg({"device", "token", "--data", node.data, "--device", device});
    const std::string out = tok.out;
    std::smatch m;
    if (tok.exit_code != 0 || !std::regex_search(out, m, std::regex("(tok-[0-9a-f]+) ([0-9a-f]+)"))) return {};
    return {m[1], m[2]};
  }

  // A fresh P-256 key for `device`; its path.
  std::string NewKey(const std::string& device) {
    std::string key = P(device + ".key");
    auto r = fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-out", key});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return key;
  }

  // One `openssl cmp` ir against `node` (bootstrap token as PBM); the
  // certificate goes to P(device.pem).
  RunResult CmpIr(const ClusterNode& node, const std::string& device, const std::pair<std::string, std::string>& token,
                  const std::string& key) {
    return fg::testing::Run({"openssl", "cmp", "-cmd", "ir", "-server", "127.0.0.1:" + std::to_string(node.port),
                             "-path", "pkix/", "-ref", token.first, "-secret", "pass:" + token.second, "-newkey", key,
                             "-subject", "/CN=" + device, "-certout", P(device + ".pem"), "-trusted",
                             P("chain.pem"), "-msg_timeout", "20", "-total_timeout", "30"});
  }

  // Enrols `device` on `node` with `openssl cmp`: the certificate's path,
  // or "" with a test failure.
  std::string EnrolWithCmp(const ClusterNode& node, const std::string& device) {
    auto token = Token(node, device);
    if (token.first.empty()) {
      ADD_FAILURE() << "no token for " << device;
      return "";
    }
    auto r = CmpIr(node, device, token, NewKey(device));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return r.exit_code == 0 ? P(device + ".pem") : "";
  }

  // POST /v1/admission on `node` (plain HTTP, loopback): the decision.
  std::string Admit(const ClusterNode& node, const std::string& token, const std::string& device,
                    const std::string& serial) {
    json body = {{"device", device}, {"session", "s-" + device}, {"serial", serial},
                 {"src_ip", "10.1.2.3"}, {"endpoint", "segw1"}, {"segw", "segw1"}};
    auto r = fg::testing::Run({"curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer " + token, "-H",
                               "Content-Type: application/json", "--data-binary", body.dump(),
                               node.url() + "/v1/admission"});
    auto j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("decision", "") : "error: " + r.out;
  }

  std::string Serial(const std::string& cert) {
    auto r = fg::testing::Run({"openssl", "x509", "-in", cert, "-noout", "-serial"});
    std::string s = r.out.substr(r.out.find('=') + 1);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    while (s.size() > 1 && s[0] == '0') s.erase(0, 1);
    return s;
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PgServer> pg_;
  std::string store_url_;
  ClusterNode a_;
  ClusterNode b_;
};

// The first case: enrol on A with `openssl cmp`, B's OCSP answers
// good; revoke on B, A answers revoked within a second.
TEST_F(ClusterTest, EnrolOnAGoodOnBRevokeOnBRevokedOnAWithinOneSecond) {
  ASSERT_NO_FATAL_FAILURE(StartPostgres(/*standby=*/false));
  ASSERT_NO_FATAL_FAILURE(MakeCluster());
  ASSERT_NO_FATAL_FAILURE(StartServe(a_));
  ASSERT_NO_FATAL_FAILURE(StartServe(b_));
  ASSERT_EQ(Fg({"device", "add", "--data", a_.data, "--device", "FG-0000001"}).exit_code, 0);
  std::string cert = EnrolWithCmp(a_, "FG-0000001");
  ASSERT_FALSE(cert.empty());

  // The certificate names both nodes, A first (url order 0, then 1).
  std::string text = fg::testing::Run({"openssl", "x509", "-in", cert, "-noout", "-text"}).out;
  size_t ocsp_a = text.find("OCSP - URI:" + a_.url());
  size_t ocsp_b = text.find("OCSP - URI:" + b_.url());
  ASSERT_NE(ocsp_a, std::string::npos) << text;
  ASSERT_NE(ocsp_b, std::string::npos) << text;
  EXPECT_LT(ocsp_a, ocsp_b) << text;
  EXPECT_NE(text.find("URI:" + b_.url() + "/crl"), std::string::npos) << text;

  EXPECT_EQ(Ocsp(b_, cert), "good");
  EXPECT_EQ(Ocsp(a_, cert), "good");

  const std::string serial = Serial(cert);
  auto revoke = Fg({"cert", "revoke", "--data", b_.data, "--serial", serial, "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  const auto revoked_at = Clock::now();
  EXPECT_EQ(Ocsp(b_, cert), "revoked");  // the CLI pokes its own node before it returns
  std::string on_a;
  while (Clock::now() - revoked_at < std::chrono::seconds(5)) {
    on_a = Ocsp(a_, cert);
    if (on_a == "revoked") break;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - revoked_at);
  EXPECT_EQ(on_a, "revoked");
  EXPECT_LE(took.count(), 1000) << "node A answered revoked only after " << took.count() << " ms";
  std::printf("revoked on B, node A answered revoked %lld ms later\n", static_cast<long long>(took.count()));

  // And both nodes list each other, up.
  auto list = Fg({"node", "list", "--data", b_.data, "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find(a_.url()), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(b_.url()), std::string::npos) << list.out;
}

// An SeGW asking the HTTP admission API, with both nodes' URLs: on a
// connection failure it asks the other node (what an SeGW's failover does).
class AdmissionClient {
 public:
  AdmissionClient(std::vector<std::string> urls, std::string token) : urls_(std::move(urls)), token_(std::move(token)) {
    curl_ = curl_easy_init();
  }
  ~AdmissionClient() { curl_easy_cleanup(curl_); }

  // The decision ("allow", "deny", "quarantine"), or "" when no node answered.
  std::string Ask(const std::string& body, int* node_used) {
    for (size_t attempt = 0; attempt < 2 * urls_.size(); ++attempt) {
      const size_t i = (current_ + attempt) % urls_.size();
      std::string out;
      long status = 0;
      if (Post(urls_[i] + "/v1/admission", body, &out, &status) && status == 200) {
        current_ = i;
        *node_used = static_cast<int>(i);
        auto j = json::parse(out, nullptr, false);
        return j.is_object() ? j.value("decision", "") : "";
      }
    }
    return "";
  }

 private:
  static size_t Collect(char* p, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(p, size * n);
    return size * n;
  }
  bool Post(const std::string& url, const std::string& body, std::string* out, long* status) {
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &AdmissionClient::Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) return false;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, status);
    return true;
  }

  std::vector<std::string> urls_;
  std::string token_;
  CURL* curl_ = nullptr;
  size_t current_ = 0;
};

// kill -9 node A in the middle of a reconnect storm of 2,000 femtocells:
// every legitimate one is admitted (through B once A is gone), exactly once;
// no revoked, blocked or decommissioned one is.
TEST_F(ClusterTest, KillingANodeDuringAReconnectStormAdmitsEveryLegitimateFemtocellOnceAndNoBadOne) {
  ASSERT_NO_FATAL_FAILURE(StartPostgres(/*standby=*/false));
  ASSERT_NO_FATAL_FAILURE(MakeCluster());
  constexpr int kGood = 2000;
  constexpr int kBad = 120;  // 50 decommissioned, 50 suspended, 20 with a revoked certificate
  std::string registry;
  auto id = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "FG-%07d", i);
    return std::string(buf);
  };
  for (int i = 0; i < kGood + kBad; ++i) {
    std::string status = "active";
    if (i >= kGood && i < kGood + 50) status = "decommissioned";
    if (i >= kGood + 50 && i < kGood + 100) status = "suspended";
    registry += json{{"device", id(i)}, {"status", status}}.dump() + "\n";
  }
  WriteAll(P("registry.jsonl"), registry);
  auto import = Fg({"device", "import", "--data", a_.data, "--registry", P("registry.jsonl")});
  ASSERT_EQ(import.exit_code, 0) << import.out;
  std::map<int, std::string> revoked_serial;
  for (int i = kGood + 100; i < kGood + kBad; ++i) {
    const std::string key = P(id(i) + ".key"), csr = P(id(i) + ".csr"), cert = P(id(i) + ".pem");
    ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", key, "-subj", "/CN=" + id(i), "-out", csr})
                  .exit_code,
              0);
    auto issued = Fg({"cert", "issue", "--data", a_.data, "--device", id(i), "--csr", csr});
    ASSERT_EQ(issued.exit_code, 0) << issued.out;
    WriteAll(cert, issued.out);
    revoked_serial[i] = Serial(cert);
    auto revoke = Fg({"cert", "revoke", "--data", a_.data, "--serial", revoked_serial[i], "--reason", "keyCompromise"});
    ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  }
  auto token = Fg({"token", "create", "--data", a_.data, "--role", "segw"});
  ASSERT_EQ(token.exit_code, 0) << token.out;
  const std::string segw_token = FindApiToken(token.out);
  ASSERT_FALSE(segw_token.empty()) << token.out;
  ASSERT_NO_FATAL_FAILURE(StartServe(a_));
  ASSERT_NO_FATAL_FAILURE(StartServe(b_));

  // Each femtocell once, from its own address; 8 SeGW threads.
  std::vector<std::string> decision(kGood + kBad);
  std::vector<int> node(kGood + kBad, -1);
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      AdmissionClient client({a_.url(), b_.url()}, segw_token);
      for (int i = next++; i < kGood + kBad; i = next++) {
        json body = {{"device", id(i)},
                     {"session", "storm-" + id(i)},
                     {"src_ip", "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
                                    std::to_string(i % 256)},
                     {"endpoint", "segw1"},
                     {"segw", "segw1"}};
        if (revoked_serial.count(i)) body["serial"] = revoked_serial.at(i);
        decision[i] = client.Ask(body.dump(), &node[i]);
        ++done;
      }
    });
  }
  while (done < (kGood + kBad) / 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int killed_at = done;
  KillServe(a_);
  for (auto& t : threads) t.join();

  int allowed = 0, through_b = 0;
  for (int i = 0; i < kGood; ++i) {
    EXPECT_EQ(decision[i], "allow") << id(i) << " (asked node " << node[i] << ")";
    allowed += decision[i] == "allow";
    through_b += node[i] == 1;
  }
  for (int i = kGood; i < kGood + kBad; ++i) EXPECT_EQ(decision[i], "deny") << id(i);
  EXPECT_EQ(allowed, kGood);
  EXPECT_GT(through_b, kGood - killed_at - kBad) << "after A was killed, B took the rest";
  std::printf("storm: %d femtocells asked before A was killed, %d allowed through B\n", killed_at, through_b);
  // Admitted exactly once: B's decision log has one allow per legitimate
  // femtocell that it admitted, and none for those A admitted before it died.
  // The decision log is flushed every 100 ms: read it until B's answers are in.
  std::map<std::string, int> allows_on_b;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    allows_on_b.clear();
    std::string log = ReadAll(b_.data + "/log/admission.jsonl");
    for (size_t at = 0, nl; at < log.size(); at = nl + 1) {
      nl = log.find('\n', at);
      if (nl == std::string::npos) nl = log.size();
      auto j = json::parse(log.substr(at, nl - at), nullptr, false);
      if (j.is_object() && j.value("decision", "") == "allow") ++allows_on_b[j.value("device", "")];
    }
    int logged = 0;
    for (const auto& entry : allows_on_b) logged += entry.second;
    if (logged >= through_b) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int i = 0; i < kGood; ++i) {
    EXPECT_EQ(allows_on_b[id(i)], node[i] == 1 ? 1 : 0) << id(i);
  }
}

// Promote the standby while devices enrol on both nodes: no certificate is
// issued twice, no token is consumed without its certificate, and no
// acknowledged revocation is lost.
TEST_F(ClusterTest, PromotingTheStandbyDuringEnrolmentLosesNothingAcknowledged) {
  ASSERT_NO_FATAL_FAILURE(StartPostgres(/*standby=*/true));
  ASSERT_NO_FATAL_FAILURE(MakeCluster());
  ASSERT_NO_FATAL_FAILURE(StartServe(a_));
  ASSERT_NO_FATAL_FAILURE(StartServe(b_));
  constexpr int kDevices = 24;
  auto id = [](int i) { return "FG-" + std::to_string(1000000 + i); };
  for (int i = 0; i < kDevices; ++i) {
    ASSERT_EQ(Fg({"device", "add", "--data", a_.data, "--device", id(i)}).exit_code, 0);
  }
  ASSERT_EQ(Fg({"device", "add", "--data", a_.data, "--device", id(kDevices)}).exit_code, 0);
  auto token = Fg({"token", "create", "--data", a_.data, "--role", "segw"});
  const std::string segw_token = FindApiToken(token.out);
  ASSERT_FALSE(segw_token.empty()) << token.out;
  // Good, and revoked, before the failover: must stay so during and after.
  std::string good = EnrolWithCmp(b_, id(kDevices));
  ASSERT_FALSE(good.empty());
  std::string early = EnrolWithCmp(a_, id(0));
  ASSERT_FALSE(early.empty());
  // The SeGW asks both nodes all the time; its token is known to both.
  EXPECT_EQ(Admit(a_, segw_token, id(kDevices), Serial(good)), "allow");
  EXPECT_EQ(Admit(b_, segw_token, id(kDevices), Serial(good)), "allow");
  ASSERT_EQ(Fg({"cert", "revoke", "--data", a_.data, "--serial", Serial(early), "--reason", "keyCompromise"}).exit_code,
            0);

  std::vector<std::string> certs(kDevices);
  std::atomic<int> next{1};
  std::thread enrol([&] {
    for (int i = next++; i < kDevices; i = next++) {
      ClusterNode& n = i % 2 ? a_ : b_;
      // A device retries as a real one does: the token (asked of the
      // operator's CLI) and then the enrolment, with the same key and the
      // same token, until it gets its certificate or gives up after 40 s.
      // A retry after an answer lost in the failover gets the certificate
      // that was issued (re-delivery for the same key), not a second one.
      const auto give_up = Clock::now() + std::chrono::seconds(40);
      std::pair<std::string, std::string> token;
      while ((token = Token(n, id(i))).first.empty() && Clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      if (token.first.empty()) continue;
      const std::string key = NewKey(id(i));
      while (Clock::now() < give_up) {
        if (CmpIr(n, id(i), token, key).exit_code == 0) {
          certs[i] = P(id(i) + ".pem");
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  });
  while (next < kDevices / 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(pg_->KillPrimary().ok());
  // No primary: the nodes say so, and answer from their last state: the
  // good certificate stays good, the revoked one revoked, at OCSP and at
  // admission (deny nothing allowed a second before, allow nothing revoked).
  std::string health;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    health = fg::testing::Run({"curl", "-sS", "--max-time", "2", a_.url() + "/healthz"}).out;
    if (health.find("degraded") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(health.find("\"status\":\"degraded\""), std::string::npos) << health;
  EXPECT_NE(health.find("unreachable"), std::string::npos) << health;
  EXPECT_EQ(Ocsp(a_, good), "good");
  EXPECT_EQ(Ocsp(b_, early), "revoked");
  EXPECT_EQ(Admit(a_, segw_token, id(kDevices), Serial(good)), "allow");
  EXPECT_EQ(Admit(b_, segw_token, id(0), Serial(early)), "deny");
  // And refuse changes with a clear error.
  auto refused = Fg({"device", "add", "--data", a_.data, "--device", "FG-9999999"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("unreachable"), std::string::npos) << refused.out;
  ASSERT_TRUE(pg_->PromoteStandby().ok());
  enrol.join();

  // The early revocation survived.
  EXPECT_EQ(Ocsp(b_, early), "revoked");
  EXPECT_EQ(Ocsp(a_, good), "good");
  // `cert list`: SERIAL DEVICE STATUS ... (a header line first).
  auto listed = Fg({"cert", "list", "--data", b_.data});
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  std::map<std::string, int> per_device;
  std::set<std::string> serials;
  for (const auto& cols : Table(listed.out)) {
    ++per_device[cols[1]];
    EXPECT_TRUE(serials.insert(cols[0]).second) << "serial " << cols[0] << " twice";
  }
  int acknowledged = 0;
  for (int i = 1; i < kDevices; ++i) {
    if (certs[i].empty()) continue;
    ++acknowledged;
    // Every certificate a device received is in the store and good.
    EXPECT_EQ(Ocsp(a_, certs[i]), "good") << id(i);
    EXPECT_EQ(per_device[id(i)], 1) << id(i) << ": one certificate per device";
  }
  EXPECT_EQ(acknowledged, kDevices - 1) << "every device got its certificate, retrying through the failover";
  std::printf("failover during enrolment: %d of %d devices enrolled\n", acknowledged, kDevices - 1);
  // No token consumed without its certificate: every used token has one.
  // `device token list`: REF DEVICE CREATED EXPIRES STATE WHEN.
  auto tokens = Fg({"device", "token", "list", "--data", b_.data});
  ASSERT_EQ(tokens.exit_code, 0) << tokens.out;
  for (const auto& cols : Table(tokens.out)) {
    if (cols[4] != "used") continue;
    EXPECT_GE(per_device[cols[1]], 1) << "token " << cols[0] << " used without a certificate";
  }
}

}  // namespace
}  // namespace fg::testing
