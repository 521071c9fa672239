// The bearer-token API over TLS (issue 14, "bearer tokens in clear"), end to
// end with the real binary: the plain listener refuses every token route with
// 403 and never reads the token; the TLS listener serves them to curl and to
// GnuTLS's gnutls-cli (an independent TLS stack); the api.plain_http switch
// works on loopback only; `femtoguard feed` posts over https, checking the
// server against the CA file.

#include <map>
#include <regex>
#include <sstream>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TlsApiTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    StartNode();
    for (const char* role : {"operator", "ingest", "segw"}) {
      auto t = Fg({"token", "create", "--data", data_, "--role", role});
      ASSERT_EQ(t.exit_code, 0) << t.out;
      tokens_[role] = FindApiToken(t.out);
      ASSERT_FALSE(tokens_[role].empty()) << t.out;
      WriteAll(P(std::string(role) + ".token"), tokens_[role] + "\n");
    }
  }
  static void TearDownTestSuite() { StopNode(); }

  // Sum of a metric over its label sets, read over TLS; -1 if absent.
  static double Metric(const std::string& name) {
    auto [code, body] = Api("GET", "/metrics", tokens_["operator"]);
    EXPECT_EQ(code, "200") << body;
    std::istringstream in(body);
    double sum = -1;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) != 0) continue;
      char next = line.size() > name.size() ? line[name.size()] : '\0';
      if (next != ' ' && next != '{') continue;
      sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  static inline std::map<std::string, std::string> tokens_;
};

const std::vector<std::pair<std::string, std::string>> kTokenRoutes = {
    {"POST", "/v1/admission"}, {"POST", "/v1/events"}, {"POST", "/v1/payment/check"},
    {"GET", "/v1/alerts"},     {"GET", "/metrics"},    {"GET", "/v1/not-a-route-yet"}};

TEST_F(TlsApiTest, InitWritesTlsOnlyByDefault) {
  EXPECT_THAT(ReadAll(data_ + "/config.yaml"), HasSubstr("plain_http: false"));
}

TEST_F(TlsApiTest, PlainHttpRefusesEveryTokenRouteAndNeverReadsTheToken) {
  const double auth_failures = std::max(0.0, Metric("femtoguard_api_auth_failures_total"));
  const double refused = std::max(0.0, Metric("femtoguard_api_plain_http_refused_total"));
  const size_t alerts_before = Api("GET", "/v1/alerts", tokens_["operator"]).second.size();
  int sent = 0;
  for (const auto& [method, path] : kTokenRoutes) {
    // A valid token of the right role, a bogus token, and none: all the same
    // 403 (a 401 for the bogus one would mean the token was looked at).
    for (const std::string& token : {tokens_["operator"], tokens_["segw"], std::string("fgt_0000_bogus"),
                                     std::string()}) {
      std::string body = method == "POST" ? R"({"device":"FG-PLAIN"})" : "";
      auto [code, reply] = Api(method, path, token, body, url_);
      ++sent;
      EXPECT_EQ(code, "403") << method << " " << path << ": " << reply;
      EXPECT_THAT(reply, HasSubstr("https")) << path;
      EXPECT_THAT(reply, HasSubstr("\"error\"")) << path;
      EXPECT_THAT(reply, Not(HasSubstr(token.empty() ? "fgt_" : token)));
    }
  }
  EXPECT_EQ(Metric("femtoguard_api_auth_failures_total") < 0 ? 0 : Metric("femtoguard_api_auth_failures_total"),
            auth_failures)
      << "no token was checked on the plain listener";
  EXPECT_EQ(Metric("femtoguard_api_plain_http_refused_total"), refused + sent);
  // Nothing was ingested or decided: the alert list is unchanged.
  EXPECT_EQ(Api("GET", "/v1/alerts", tokens_["operator"]).second.size(), alerts_before);
}

TEST_F(TlsApiTest, PlainHttpKeepsWhatRfcsExpectThere) {
  for (const std::string path : {"/healthz", "/crl", "/ca/root.crt", "/ca/issuing.crt"}) {
    auto r = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url_ + path});
    EXPECT_EQ(r.out, "200") << path;
  }
  // OCSP over plain HTTP still answers (malformed request -> 400 with an OCSP body).
  auto r = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/ocsp-request",
               "--data-binary", "x", url_ + "/ocsp"});
  EXPECT_EQ(r.out, "400");
}

TEST_F(TlsApiTest, TlsServesTheApiToCurl) {
  EXPECT_EQ(Api("GET", "/v1/alerts", tokens_["operator"]).first, "200");
  EXPECT_EQ(Api("GET", "/metrics", tokens_["operator"]).first, "200");
  EXPECT_EQ(Api("GET", "/v1/alerts", "").first, "401");
  EXPECT_EQ(Api("GET", "/v1/alerts", "fgt_0000_bogus").first, "401");
  EXPECT_EQ(Api("GET", "/v1/alerts", tokens_["ingest"]).first, "403") << "wrong role";
  auto [code, body] = Api("POST", "/v1/admission", tokens_["segw"], R"({"device":"FG-NOBODY","src_ip":"10.9.9.9"})");
  EXPECT_EQ(code, "200") << body;
  EXPECT_THAT(body, HasSubstr("\"decision\":\"deny\""));
  // A client that does not trust the node's CA gets nowhere.
  auto untrusted = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                       "Authorization: Bearer " + tokens_["operator"], tls_url_ + "/metrics"});
  EXPECT_NE(untrusted.exit_code, 0);
  EXPECT_EQ(untrusted.out, "000");
}

TEST_F(TlsApiTest, TlsServesTheApiToGnutlsCli) {
  // GnuTLS, not OpenSSL, on the client side: the request goes in on stdin,
  // which stays open until the answer is in (Connection: close ends it).
  std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + tokens_["operator"] +
                        "\r\nConnection: close\r\n\r\n";
  WriteAll(P("gnutls.req"), request);
  auto r = Sh({"sh", "-c",
               "(cat \"$0\"; sleep 3) | gnutls-cli --x509cafile \"$1\" -p \"$2\" 127.0.0.1",
               P("gnutls.req"), P("chain.pem"), std::to_string(tls_port_)});
  EXPECT_THAT(r.out, HasSubstr("HTTP/1.1 200")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("femtoguard_http_connections"));
  // Without the token: 401, over the same stack.
  WriteAll(P("gnutls-anon.req"), "GET /v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto anon = Sh({"sh", "-c", "(cat \"$0\"; sleep 3) | gnutls-cli --x509cafile \"$1\" -p \"$2\" 127.0.0.1",
                  P("gnutls-anon.req"), P("chain.pem"), std::to_string(tls_port_)});
  EXPECT_THAT(anon.out, HasSubstr("HTTP/1.1 401")) << anon.out;
  // gnutls-cli refuses a server its CA file does not vouch for.
  auto self = Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", P("other-ca.key"), "-out", P("other-ca.pem"), "-subj", "/CN=other", "-days", "2"});
  ASSERT_EQ(self.exit_code, 0) << self.out;
  auto bad = Sh({"sh", "-c", "(cat \"$0\"; sleep 1) | gnutls-cli --x509cafile \"$1\" -p \"$2\" 127.0.0.1",
                 P("gnutls.req"), P("other-ca.pem"), std::to_string(tls_port_)});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.out, Not(HasSubstr("HTTP/1.1 200")));
}

TEST_F(TlsApiTest, PlainHttpSwitchServesTheApiOnLoopback) {
  TempDir dir;
  const std::string data = dir / "data";
  const int port = FreePort();
  int tls = FreePort();
  while (tls == port) tls = FreePort();
  auto init = Fg({"init", "--data", data, "--listen", "127.0.0.1:" + std::to_string(port), "--tls-listen",
                  "127.0.0.1:" + std::to_string(tls)});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  SetPlainHttpApi(data, true);
  std::string token = FindApiToken(Fg({"token", "create", "--data", data, "--role", "operator"}).out);
  ASSERT_FALSE(token.empty());
  const std::string plain = "http://127.0.0.1:" + std::to_string(port);
  Process serve({Femtoguard(), "serve", "--data", data, "--threads", "1"}, dir / "serve.log");
  ASSERT_TRUE(WaitForHttp(plain + "/healthz")) << ReadAll(dir / "serve.log");
  EXPECT_EQ(Api("GET", "/v1/alerts", token, "", plain).first, "200");
  EXPECT_EQ(Api("GET", "/v1/alerts", "", "", plain).first, "401") << "the token is still required";
  // The TLS listener serves the API as well.
  WriteAll(dir / "chain.pem", Fg({"ca", "cert", "--data", data, "--chain"}).out);
  auto r = Sh({"curl", "-s", "--cacert", dir / "chain.pem", "-o", "/dev/null", "-w", "%{http_code}", "-H",
               "Authorization: Bearer " + token, "https://127.0.0.1:" + std::to_string(tls) + "/v1/alerts"});
  EXPECT_EQ(r.out, "200");
}

TEST_F(TlsApiTest, PlainHttpSwitchIsRefusedOffLoopback) {
  TempDir dir;
  const std::string data = dir / "data";
  const int port = FreePort();
  int tls = FreePort();
  while (tls == port) tls = FreePort();
  auto init = Fg({"init", "--data", data, "--listen", "0.0.0.0:" + std::to_string(port), "--tls-listen",
                  "127.0.0.1:" + std::to_string(tls)});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  SetPlainHttpApi(data, true);
  auto serve = fg::testing::Run({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off"}, "", 60);
  EXPECT_EQ(serve.exit_code, 2) << serve.out;
  EXPECT_THAT(serve.out, HasSubstr("api.plain_http"));
  EXPECT_THAT(serve.out, HasSubstr("loopback"));
  // Nothing listens there: serve stopped before binding.
  auto probe = Sh({"curl", "-s", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:" + std::to_string(port) + "/healthz"});
  EXPECT_EQ(probe.out, "000");
  // The same data dir, switch off: serve starts (TLS listener off: no API at all).
  SetPlainHttpApi(data, false);
  {
    Process ok({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off", "--listen",
                "127.0.0.1:" + std::to_string(port)},
               dir / "serve-ok.log");
    ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port) + "/healthz")) << ReadAll(dir / "serve-ok.log");
  }
  // --listen on a non-loopback address with the switch on: refused too.
  SetPlainHttpApi(data, true);
  auto serve2 = fg::testing::Run({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off", "--listen",
                     "0.0.0.0:" + std::to_string(port)},
                    "", 60);
  EXPECT_EQ(serve2.exit_code, 2) << serve2.out;
}

TEST_F(TlsApiTest, FeedPostsOverHttpsCheckingTheCaFile) {
  WriteAll(P("feed.jsonl"),
           R"({"ts":"2026-01-01T00:00:00Z","type":"session.up","device":"FG-FEED-UNKNOWN","session":"s1","src_ip":"10.7.0.1","endpoint":"segw1.example:500","segw":"segw1"})"
           "\n"
           R"({"ts":"2026-01-01T00:00:01Z","type":"session.down","device":"FG-FEED-UNKNOWN","session":"s1"})"
           "\n");
  // With the CA file given, and with the default (the data dir's root CA).
  auto r = Fg({"feed", "--data", data_, "--server", tls_url_, "--cacert", P("chain.pem"), "--token-file",
               P("ingest.token"), "--events", P("feed.jsonl"), "--duration", "1", "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("fed 2 events"));
  r = Fg({"feed", "--data", data_, "--server", tls_url_ + "/", "--token-file", P("ingest.token"), "--events",
          P("feed.jsonl"), "--duration", "1", "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // A CA that did not sign the node's certificate: refused at once, nothing sent.
  auto self = Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", P("feed-other.key"), "-out", P("feed-other.pem"), "-subj", "/CN=other", "-days", "2"});
  ASSERT_EQ(self.exit_code, 0) << self.out;
  r = Fg({"feed", "--data", data_, "--server", tls_url_, "--cacert", P("feed-other.pem"), "--token-file",
          P("ingest.token"), "--events", P("feed.jsonl"), "--duration", "1", "--quiet"});
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_THAT(r.out, HasSubstr("not trusted"));
  // Plain HTTP to the node: 403, and feed says why.
  r = Fg({"feed", "--data", data_, "--server", "127.0.0.1:" + std::to_string(port_), "--token-file",
          P("ingest.token"), "--events", P("feed.jsonl"), "--duration", "1", "--quiet"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("403"));
  EXPECT_THAT(r.out, HasSubstr("https"));
  // A malformed --server is bad input.
  r = Fg({"feed", "--data", data_, "--server", "ftp://x:1", "--token-file", P("ingest.token"), "--events",
          P("feed.jsonl"), "--quiet"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

TEST_F(TlsApiTest, AdmitAsksOverHttps) {
  std::vector<std::string> env = {"IKE_REMOTE_ID=CN=FG-ADMIT-NOBODY", "IKE_REMOTE_HOST=10.9.9.9",
                                  "IKE_LOCAL_HOST=192.0.2.1", "IKE_UNIQUE_ID=7"};
  // Unknown device: denied (exit 1) -- an answer, so the https exchange worked.
  auto r = fg::testing::Run({Femtoguard(), "admit", "--server", tls_url_, "--cacert", P("chain.pem"), "--token-file",
                P("segw.token")},
               "", 30, env);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("deny"));
  // Default CA from --data.
  r = fg::testing::Run({Femtoguard(), "admit", "--server", tls_url_, "--data", data_, "--token-file", P("segw.token")}, "", 30,
          env);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  // Untrusted server: error, exit 2 (deny by default).
  auto self = Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", P("other-admit.key"), "-out", P("other-admit.pem"), "-subj", "/CN=other", "-days", "2"});
  ASSERT_EQ(self.exit_code, 0) << self.out;
  r = fg::testing::Run({Femtoguard(), "admit", "--server", tls_url_, "--cacert", P("other-admit.pem"), "--token-file",
           P("segw.token")},
          "", 30, env);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("not trusted"));
}

}  // namespace
}  // namespace fg::testing
