#pragma once

// A femtoguard node (init + serve) in a temp dir for one test suite, and the
// helpers the enrolment tests share: real `openssl` for keys, CSRs and CMP,
// real `curl` for the TLS listener (EST, device config, and the bearer-token
// API, which the plain listener refuses). Both listeners are on free loopback
// ports, never the defaults (8440/8443).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <string>
#include <vector>

#include "testing/harness.h"

namespace fg::testing {

// Sets config api.plain_http in DATA/config.yaml (as `init` wrote it): the
// bearer-token API also on the plain listener, for tests and benches on
// loopback that drive it with a plain-HTTP client. Off by default.
inline void SetPlainHttpApi(const std::string& data, bool on) {
  std::string path = data + "/config.yaml";
  std::string text = ReadAll(path);
  const std::string from = on ? "plain_http: false" : "plain_http: true";
  const std::string to = on ? "plain_http: true" : "plain_http: false";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << path << " has no api.plain_http key:\n" << text;
  text.replace(at, from.size(), to);
  WriteAll(path, text);
}

class NodeFixture : public ::testing::Test {
 protected:
  static void StartNode() {
    dir_ = new TempDir();
    port_ = FreePort();
    do {
      tls_port_ = FreePort();
    } while (tls_port_ == port_);
    data_ = *dir_ / "data";
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    tls_url_ = "https://127.0.0.1:" + std::to_string(tls_port_);
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_), "--tls-listen",
                    "127.0.0.1:" + std::to_string(tls_port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(*dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
    WriteAll(*dir_ / "root.pem", Fg({"ca", "cert", "--data", data_, "--root"}).out);
    WriteAll(*dir_ / "issuing.pem", Fg({"ca", "cert", "--data", data_}).out);
    serve_ = new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"}, *dir_ / "serve.log");
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(*dir_ / "serve.log");
    // The TLS listener is up before serve answers on the plain one.
    auto tls = Curl({"-o", "/dev/null", "-w", "%{http_code}", tls_url_ + "/healthz"});
    ASSERT_EQ(tls.out, "200") << ReadAll(*dir_ / "serve.log");
  }
  static void StopNode() {
    delete serve_;
    serve_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  static RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args);
  }
  static RunResult Sh(const std::vector<std::string>& argv) { return fg::testing::Run(argv); }
  static std::string P(const std::string& name) { return *dir_ / name; }

  // A fresh P-256 key file.
  static std::string NewKey(const std::string& name) {
    std::string path = P(name);
    auto r = Sh({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return path;
  }

  static void AddDevice(const std::string& id, const std::string& status = "provisioned",
                        const std::vector<std::string>& prefixes = {}) {
    std::vector<std::string> args = {"device", "add", "--data", data_, "--device", id, "--status", status};
    for (const auto& p : prefixes) {
      args.push_back("--prefix");
      args.push_back(p);
    }
    auto r = Fg(args);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  // `openssl cmp` against this node's /pkix/ with the given arguments.
  static RunResult Cmp(std::vector<std::string> args) {
    std::vector<std::string> argv = {"openssl", "cmp", "-server", "127.0.0.1:" + std::to_string(port_),
                                     "-path", "pkix/", "-msg_timeout", "20", "-total_timeout", "30"};
    argv.insert(argv.end(), args.begin(), args.end());
    return fg::testing::Run(argv);
  }

  static std::pair<std::string, std::string> Token(const std::string& device) {
    auto r = Fg({"device", "token", "--data", data_, "--device", device});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::smatch m;
    std::regex re("(tok-[0-9a-f]+) ([0-9a-f]+)");
    if (!std::regex_search(r.out, m, re)) return {};
    return {m[1], m[2]};
  }

  static size_t CertCount(const std::string& device = {}) {
    std::vector<std::string> args = {"cert", "list", "--data", data_};
    if (!device.empty()) {
      args.push_back("--device");
      args.push_back(device);
    }
    auto out = Fg(args).out;
    return static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) - 1;  // minus header
  }

  static std::string Subject(const std::string& cert) {
    return Sh({"openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253"}).out;
  }

  static std::string OcspStatus(const std::string& cert) {
    return Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", P("issuing.pem"), "-cert", cert, "-CAfile",
               P("chain.pem"), "-no_nonce"})
        .out;
  }

  // curl against this node's TLS listener, the server checked against the CA
  // chain: `curl -sS --cacert chain.pem ARGS...`. Add "--cert", "--key" for
  // a client certificate.
  static RunResult Curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "--cacert", P("chain.pem")};
    argv.insert(argv.end(), args.begin(), args.end());
    return fg::testing::Run(argv);
  }

  // (HTTP status, body) of a bearer-token API request on the TLS listener
  // (`url` defaults to it), the server checked against the CA chain.
  static std::pair<std::string, std::string> Api(const std::string& method, const std::string& path,
                                                 const std::string& token, const std::string& body = {},
                                                 const std::string& url = {}) {
    std::string out = P("api-" + std::to_string(++exchanges_) + ".body");
    std::vector<std::string> args = {"-o", out, "-w", "%{http_code}", "-X", method};
    if (!token.empty()) args.insert(args.end(), {"-H", "Authorization: Bearer " + token});
    if (!body.empty()) {
      WriteAll(out + ".req", body);
      args.insert(args.end(), {"-H", "Content-Type: application/json", "--data-binary", "@" + out + ".req"});
    }
    args.push_back((url.empty() ? tls_url_ : url) + path);
    auto r = Curl(args);
    return {r.out, ReadAll(out)};
  }

  // One HTTP exchange through curl: status, response Content-Type, and the
  // files holding the body and the headers.
  struct HttpExchange {
    int status = 0;
    std::string content_type;
    std::string body_path;
    std::string headers_path;
    std::string curl_out;  // curl's own output (errors)
    std::string Body() const { return ReadAll(body_path); }
    std::string Headers() const { return ReadAll(headers_path); }
  };
  // curl `args` (URL included) against the TLS listener, recording the exchange.
  static HttpExchange Exchange(std::vector<std::string> args) {
    std::string base = P("http-" + std::to_string(++exchanges_));
    HttpExchange x;
    x.body_path = base + ".body";
    x.headers_path = base + ".headers";
    args.insert(args.begin(), {"-o", x.body_path, "-D", x.headers_path, "-w", "%{http_code} %{content_type}"});
    auto r = Curl(args);
    x.curl_out = r.out;
    // The -w text comes last, after anything curl printed on stderr.
    size_t nl = r.out.rfind('\n');
    std::string tail = nl == std::string::npos ? r.out : r.out.substr(nl + 1);
    if (tail.size() >= 3 && std::all_of(tail.begin(), tail.begin() + 3, ::isdigit)) {
      x.status = std::stoi(tail.substr(0, 3));
      x.content_type = tail.size() > 4 ? tail.substr(4) : "";
    }
    return x;
  }

  // EST (RFC 7030) on the TLS listener: URL of an operation.
  static std::string Est(const std::string& op) { return tls_url_ + "/.well-known/est/" + op; }
  // A base64 DER PKCS#10 request for CN=`cn` over `key`, as EST posts it.
  static std::string EstCsr(const std::string& key, const std::string& cn) {
    std::string base = P("csr-" + std::to_string(++exchanges_));
    auto req = Sh({"openssl", "req", "-new", "-key", key, "-subj", "/CN=" + cn, "-outform", "DER", "-out",
                   base + ".der"});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto b64 = Sh({"openssl", "base64", "-in", base + ".der", "-out", base + ".b64"});
    EXPECT_EQ(b64.exit_code, 0) << b64.out;
    return base + ".b64";
  }
  // POST a base64 CSR to simpleenroll / simplereenroll; `auth` is extra curl
  // arguments ("-u", "REF:SECRET" or "--cert", C, "--key", K), may be empty.
  static HttpExchange EstPost(const std::string& op, const std::string& csr_b64,
                              const std::vector<std::string>& auth = {}) {
    std::vector<std::string> args = {"-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr_b64};
    args.insert(args.end(), auth.begin(), auth.end());
    args.push_back(Est(op));
    return Exchange(args);
  }
  // The certificates of a base64 certs-only PKCS#7 body, as PEM into `pem`.
  static RunResult P7ToPem(const std::string& b64_path, const std::string& pem) {
    // One line, no breaks (RFC 8951 §3): -A.
    auto dec = Sh({"openssl", "base64", "-d", "-A", "-in", b64_path, "-out", pem + ".p7.der"});
    if (dec.exit_code != 0) return dec;
    return Sh({"openssl", "pkcs7", "-inform", "DER", "-in", pem + ".p7.der", "-print_certs", "-out", pem});
  }
  // Enrols `device` (registered here) over EST with a fresh bootstrap token;
  // returns {cert, key} paths.
  static std::pair<std::string, std::string> EstEnrolWithToken(const std::string& device) {
    AddDevice(device);
    auto [ref, secret] = Token(device);
    std::string key = NewKey(device + ".key"), cert = P(device + ".pem");
    auto x = EstPost("simpleenroll", EstCsr(key, device), {"-u", ref + ":" + secret});
    EXPECT_EQ(x.status, 200) << x.curl_out << x.Body();
    auto pem = P7ToPem(x.body_path, cert);
    EXPECT_EQ(pem.exit_code, 0) << pem.out;
    return {cert, key};
  }

  static TempDir* dir_;
  static Process* serve_;
  static int port_;
  static std::string data_;
  static std::string url_;
  static inline int tls_port_ = 0;
  static inline int exchanges_ = 0;  // unique file names
  static inline std::string tls_url_;  // "https://127.0.0.1:<tls_port_>"
};

}  // namespace fg::testing
