// HttpServer with Options::tls, driven by real TLS clients (curl and
// openssl s_client). The PKI is made in-test with the openssl CLI:
//
//   root CA -> sub CA -> server leaf (SAN IP:127.0.0.1)
//                     -> client leaf (clientAuth)
//
// The server is given "server leaf + sub CA" (so curl can only verify it if
// the chain certificate is really sent) and knows nothing of the client's
// issuers: the client chain reaches the handler unverified.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/ossl.h"
#include "http/http.h"
#include "testing/harness.h"

namespace fg {
namespace {

using testing::ReadAll;
using testing::RunResult;
using testing::TempDir;
using testing::WriteAll;

constexpr std::string_view kOpensslConfig = R"(
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

// Hex SHA-256 of each certificate (DER) of a PEM bundle, in order.
std::vector<std::string> PemFingerprints(const std::string& pem) {
  std::vector<std::string> out;
  auto certs = ossl::CertsFromPem(pem);
  if (!certs.ok()) {
    ADD_FAILURE() << certs.status().message();
    return out;
  }
  for (const auto& c : *certs) {
    std::string md = ossl::Sha256(ossl::CertToDer(c.get()));
    out.push_back(ossl::HexLower(reinterpret_cast<const unsigned char*>(md.data()), md.size()));
  }
  return out;
}

// What /whoami answers for a given chain: "tls=1 n=2 <fp leaf> <fp next>".
std::string Whoami(bool tls, const std::vector<std::string>& fingerprints) {
  std::string s =
      std::string("tls=") + (tls ? "1" : "0") + " n=" + std::to_string(fingerprints.size());
  for (const auto& fp : fingerprints) s += " " + fp;
  return s;
}

// The test PKI, made once for the suite.
struct Pki {
  TempDir dir;
  bool ok = false;
  std::string error;

  std::string root_pem() const { return dir / "root.pem"; }
  std::string server_chain() const { return dir / "server_chain.pem"; }
  std::string server_key() const { return dir / "server.key"; }
  std::string server_key_encrypted() const { return dir / "server_enc.key"; }
  std::string client_chain() const { return dir / "client_chain.pem"; }
  std::string client_key() const { return dir / "client.key"; }
  std::string client_leaf() const { return dir / "client.pem"; }

  bool Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    RunResult r = testing::Run(args, {}, 60);
    if (r.exit_code != 0) {
      error += "openssl failed:";
      for (const auto& a : args) error += " " + a;
      error += "\n" + r.out;
      return false;
    }
    return true;
  }

  bool NewKeyAndCsr(const std::string& name, const std::string& cn) {
    return Openssl({"req", "-new", "-config", dir / "openssl.cnf", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir / (name + ".key"), "-out",
                    dir / (name + ".csr"), "-subj", "/CN=" + cn});
  }

  bool Sign(const std::string& name, const std::string& issuer, const std::string& extensions,
            const std::string& serial) {
    return Openssl({"x509", "-req", "-in", dir / (name + ".csr"), "-CA", dir / (issuer + ".pem"),
                    "-CAkey", dir / (issuer + ".key"), "-set_serial", serial, "-days", "2",
                    "-extfile", dir / "openssl.cnf", "-extensions", extensions, "-out",
                    dir / (name + ".pem")});
  }

  Pki() {
    WriteAll(dir / "openssl.cnf", std::string(kOpensslConfig));
    ok =
        Openssl({"req", "-x509", "-config", dir / "openssl.cnf", "-extensions", "v3_ca", "-newkey",
                 "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir / "root.key",
                 "-out", dir / "root.pem", "-days", "2", "-subj", "/CN=fg test root"}) &&
        NewKeyAndCsr("sub", "fg test sub") && Sign("sub", "root", "v3_ca", "2") &&
        NewKeyAndCsr("server", "127.0.0.1") && Sign("server", "sub", "v3_server", "3") &&
        NewKeyAndCsr("client", "device-1") && Sign("client", "sub", "v3_client", "4") &&
        Openssl({"pkey", "-in", dir / "server.key", "-aes256", "-passout", "pass:secret", "-out",
                 dir / "server_enc.key"});
    if (!ok) return;
    WriteAll(server_chain(), ReadAll(dir / "server.pem") + ReadAll(dir / "sub.pem"));
    WriteAll(client_chain(), ReadAll(dir / "client.pem") + ReadAll(dir / "sub.pem"));
  }
};

uint64_t HandshakeRejections() {
  return Metrics::Global().Value("femtoguard_http_rejected_total", "reason=\"tls_handshake\"");
}

// Waits (briefly) for the handshake-failure counter to reach `at_least`.
bool WaitForHandshakeRejections(uint64_t at_least) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (HandshakeRejections() < at_least) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class HttpsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new Pki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(pki_->ok) << pki_->error; }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  static HttpServer::Options::Tls ServerTls() {
    return {ReadAll(pki_->server_chain()), ReadAll(pki_->server_key())};
  }

  static HttpServer::Options BaseOptions() {
    HttpServer::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.max_body_bytes = 1024;
    options.idle_timeout_s = 5;
    return options;
  }

  static void AddRoutes(HttpServer& server) {
    server.Route("GET", "/hello",
                 [](const HttpRequest&) { return HttpResponse::Text(200, "hello world"); });
    server.Route("GET", "/whoami", [](const HttpRequest& req) {
      std::vector<std::string> fps;
      for (const auto& der : req.peer_chain_der) {
        std::string md = ossl::Sha256(der);
        fps.push_back(ossl::HexLower(reinterpret_cast<const unsigned char*>(md.data()), md.size()));
        // Every element parses as a certificate.
        if (!ossl::CertFromDer(der).ok()) return HttpResponse::Text(500, "bad DER");
      }
      return HttpResponse::Text(200, Whoami(req.tls, fps));
    });
    server.Route("POST", "/echo",
                 [](const HttpRequest& req) { return HttpResponse::Text(201, req.body); });
  }

  void StartTls(HttpServer::Options options) {
    options.tls = ServerTls();
    server_ = std::make_unique<HttpServer>(options);
    AddRoutes(*server_);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void StartTls() { StartTls(BaseOptions()); }

  std::string Url(std::string_view path, std::string_view scheme = "https") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // curl with the test's root CA; extra args before the URLs.
  static RunResult Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS",      "--max-time",
                                     "10",   "--cacert", pki_->root_pem()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {}, 30);
  }

  // GET over TLS, returns the body; fails the test on a curl error.
  std::string CurlGet(std::string_view path, std::vector<std::string> args = {}) {
    TempDir tmp;
    args.insert(args.end(), {"-o", tmp / "body", "-w", "%{http_code}", Url(path)});
    RunResult r = Curl(args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "200");
    return ReadAll(tmp / "body");
  }

  // A fresh TLS connection is still served.
  void ExpectStillServes() { EXPECT_EQ(CurlGet("/hello"), "hello world"); }

  static Pki* pki_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

Pki* HttpsServerTest::pki_ = nullptr;

TEST_F(HttpsServerTest, CurlWithoutClientCertificate) {
  StartTls();
  EXPECT_EQ(CurlGet("/whoami"), Whoami(true, {}));
  EXPECT_EQ(CurlGet("/hello"), "hello world");
}

TEST_F(HttpsServerTest, CurlWithClientChainReachesHandlerLeafFirst) {
  StartTls();
  auto expected = PemFingerprints(ReadAll(pki_->client_chain()));
  ASSERT_EQ(expected.size(), 2u);
  EXPECT_EQ(expected[0], PemFingerprints(ReadAll(pki_->client_leaf()))[0]);
  EXPECT_EQ(CurlGet("/whoami", {"--cert", pki_->client_chain(), "--key", pki_->client_key()}),
            Whoami(true, expected));
}

TEST_F(HttpsServerTest, ClientLeafAloneGivesOneElementChain) {
  StartTls();
  auto expected = PemFingerprints(ReadAll(pki_->client_leaf()));
  ASSERT_EQ(expected.size(), 1u);
  EXPECT_EQ(CurlGet("/whoami", {"--cert", pki_->client_leaf(), "--key", pki_->client_key()}),
            Whoami(true, expected));
}

TEST_F(HttpsServerTest, KeepAliveTwoRequestsOneConnectionSameChain) {
  StartTls();
  TempDir tmp;
  RunResult r = Curl({"--cert", pki_->client_chain(), "--key", pki_->client_key(), "-w",
                      "%{http_code}:%{num_connects}\n", "-o", tmp / "b1", Url("/whoami"), "-o",
                      tmp / "b2", Url("/whoami")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // One new connection for the first transfer, none for the second.
  EXPECT_EQ(r.out, "200:1\n200:0\n");
  std::string expected = Whoami(true, PemFingerprints(ReadAll(pki_->client_chain())));
  EXPECT_EQ(ReadAll(tmp / "b1"), expected);
  EXPECT_EQ(ReadAll(tmp / "b2"), expected);
}

TEST_F(HttpsServerTest, PostAndExpectContinueOverTls) {
  StartTls();
  TempDir tmp;
  RunResult r = Curl({"-H", "Expect: 100-continue", "--data-binary", "abcde", "-o", tmp / "body",
                      "-w", "%{http_code}", Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "201");
  EXPECT_EQ(ReadAll(tmp / "body"), "abcde");
}

TEST_F(HttpsServerTest, OversizedBodyIs413OverTlsAndServerLivesOn) {
  StartTls();
  TempDir tmp;
  WriteAll(tmp / "big", std::string(64 << 10, 'x'));
  RunResult r = Curl(
      {"--data-binary", "@" + tmp / "big", "-o", tmp / "body", "-w", "%{http_code}", Url("/echo")});
  // curl may report a send error after the early answer; the answer counts.
  EXPECT_EQ(r.out.substr(r.out.size() >= 3 ? r.out.size() - 3 : 0), "413") << r.out;
  ExpectStillServes();
}

TEST_F(HttpsServerTest, PlainHttpToTlsPortFailsAndServerLivesOn) {
  StartTls();
  uint64_t before = HandshakeRejections();
  RunResult r = testing::Run({"curl", "-sS", "--max-time", "5", Url("/hello", "http")}, {}, 30);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("hello world"), std::string::npos) << r.out;
  EXPECT_TRUE(WaitForHandshakeRejections(before + 1));
  ExpectStillServes();
}

TEST_F(HttpsServerTest, UntrustingClientFailsHandshakeAndServerLivesOn) {
  StartTls();
  uint64_t before = HandshakeRejections();
  // No --cacert: the client refuses our (private) root and aborts.
  RunResult r = testing::Run({"curl", "-sS", "--max-time", "5", Url("/hello")}, {}, 30);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(WaitForHandshakeRejections(before + 1));
  ExpectStillServes();
}

TEST_F(HttpsServerTest, SilentClientHandshakeTimesOut) {
  HttpServer::Options options = BaseOptions();
  options.idle_timeout_s = 1;
  StartTls(options);
  uint64_t before = HandshakeRejections();

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto start = std::chrono::steady_clock::now();
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);  // says nothing: the server gives up
  ::close(fd);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << errno;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_TRUE(WaitForHandshakeRejections(before + 1));
  ExpectStillServes();
}

TEST_F(HttpsServerTest, Tls12AcceptedTls11Refused) {
  StartTls();
  const std::string connect = "127.0.0.1:" + std::to_string(port_);
  const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    RunResult r =
        testing::Run({"openssl", "s_client", "-connect", connect, "-CAfile", pki_->root_pem(),
                      "-verify_return_error", "-quiet", "-ign_eof", version},
                     request, 30);
    EXPECT_EQ(r.exit_code, 0) << version << "\n" << r.out;
    EXPECT_NE(r.out.find("hello world"), std::string::npos) << version << "\n" << r.out;
  }
  // The client allows TLS 1.1 (security level 0); the server must refuse it.
  // (OpenSSL 3's default security level refuses it too; the server's
  // explicit TLS 1.2 minimum also holds where that level was lowered.)
  RunResult r =
      testing::Run({"openssl", "s_client", "-connect", connect, "-CAfile", pki_->root_pem(),
                    "-quiet", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"},
                   request, 30);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("hello world"), std::string::npos) << r.out;
}

// TLS 1.2: ECDHE with AEAD only. Two independent client stacks: OpenSSL's
// s_client and GnuTLS's gnutls-cli (package gnutls-bin).
TEST_F(HttpsServerTest, Tls12OffersEcdheAeadOnly) {
  StartTls();
  const std::string connect = "127.0.0.1:" + std::to_string(port_);
  const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto s_client = [&](const char* cipher) {
    return testing::Run({"openssl", "s_client", "-connect", connect, "-CAfile", pki_->root_pem(),
                         "-quiet", "-ign_eof", "-tls1_2", "-cipher", cipher},
                        request, 30);
  };
  for (const char* cbc : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                          "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"}) {
    RunResult r = s_client(cbc);
    EXPECT_NE(r.exit_code, 0) << cbc << "\n" << r.out;
    EXPECT_EQ(r.out.find("hello world"), std::string::npos) << cbc << "\n" << r.out;
  }
  for (const char* aead : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                           "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    RunResult r = s_client(aead);
    EXPECT_EQ(r.exit_code, 0) << aead << "\n" << r.out;
    EXPECT_NE(r.out.find("hello world"), std::string::npos) << aead << "\n" << r.out;
  }

  auto gnutls = [&](const std::string& ciphers) {
    return testing::Run(
        {"gnutls-cli", "--insecure", "-p", std::to_string(port_),
         "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:" + ciphers, "127.0.0.1"},
        request, 30);
  };
  RunResult cbc = gnutls("+AES-128-CBC:+AES-256-CBC");
  EXPECT_NE(cbc.exit_code, 0) << cbc.out;
  EXPECT_EQ(cbc.out.find("hello world"), std::string::npos) << cbc.out;
  RunResult gcm = gnutls("+AES-128-GCM");
  EXPECT_EQ(gcm.exit_code, 0) << gcm.out;
  EXPECT_NE(gcm.out.find("hello world"), std::string::npos) << gcm.out;
}

TEST_F(HttpsServerTest, ConnectionCloseEndsWithCloseNotify) {
  StartTls();
  // Without -quiet, s_client reports how the connection ended; an abrupt
  // TCP close (no close_notify) makes OpenSSL 3 report "unexpected eof".
  RunResult r =
      testing::Run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_),
                    "-CAfile", pki_->root_pem(), "-verify_return_error", "-ign_eof"},
                   "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 30);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("hello world"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("unexpected eof"), std::string::npos) << r.out;
}

TEST_F(HttpsServerTest, NoSessionResumption) {
  // Every connection does a full handshake, so the chain a handler sees is
  // always the one presented on that connection.
  StartTls();
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    RunResult r =
        testing::Run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_),
                      "-CAfile", pki_->root_pem(), "-cert", pki_->client_chain(), "-key",
                      pki_->client_key(), "-reconnect", version},
                     "", 30);
    EXPECT_EQ(r.exit_code, 0) << version << "\n" << r.out;
    EXPECT_NE(r.out.find("New, TLS"), std::string::npos) << version << "\n" << r.out;
    EXPECT_EQ(r.out.find("Reused, TLS"), std::string::npos) << version << "\n" << r.out;
  }
}

TEST_F(HttpsServerTest, PlainServerReportsNoTls) {
  server_ = std::make_unique<HttpServer>(BaseOptions());
  AddRoutes(*server_);
  ASSERT_TRUE(server_->Start().ok());
  port_ = server_->port();
  TempDir tmp;
  RunResult r = Curl({"-o", tmp / "body", Url("/whoami", "http")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ReadAll(tmp / "body"), Whoami(false, {}));
}

// --- Start() errors -------------------------------------------------------

Status StartWith(std::string cert_chain_pem, std::string key_pem) {
  HttpServer::Options options;
  options.port = 0;
  options.threads = 1;
  options.tls = HttpServer::Options::Tls{std::move(cert_chain_pem), std::move(key_pem)};
  HttpServer server(options);
  Status s = server.Start();
  server.Stop();
  return s;
}

TEST_F(HttpsServerTest, KeyNotMatchingCertificateIsInvalidArgument) {
  Status s = StartWith(ReadAll(pki_->server_chain()), ReadAll(pki_->client_key()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
  // The key never appears in the message.
  EXPECT_EQ(s.message().find("PRIVATE KEY"), std::string::npos) << s.message();
}

TEST_F(HttpsServerTest, ChainInWrongOrderIsInvalidArgument) {
  // Sub CA first: the key belongs to the second certificate, not the first.
  Status s = StartWith(ReadAll(pki_->dir / "sub.pem") + ReadAll(pki_->dir / "server.pem"),
                       ReadAll(pki_->server_key()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
}

TEST_F(HttpsServerTest, GarbageCertificateIsInvalidArgument) {
  Status s = StartWith("not a certificate", ReadAll(pki_->server_key()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("certificate"), std::string::npos) << s.message();
}

TEST_F(HttpsServerTest, GarbageKeyIsInvalidArgument) {
  Status s = StartWith(ReadAll(pki_->server_chain()), "not a key");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("private key"), std::string::npos) << s.message();
}

TEST_F(HttpsServerTest, EncryptedKeyIsInvalidArgumentWithoutPrompting) {
  std::string key = ReadAll(pki_->server_key_encrypted());
  ASSERT_NE(key.find("ENCRYPTED"), std::string::npos);
  Status s = StartWith(ReadAll(pki_->server_chain()), key);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("private key"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fg
