// End-to-end: `femtoguard init` + `serve`, certificates issued by the CLI,
// checked by the real OpenSSL clients (`openssl ocsp`, `openssl verify`) and
// curl, exactly as a SeGW or an operator would.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// testing::Test has a private Run(); call ours by another name.
RunResult Sh(const std::vector<std::string>& argv) { return fg::testing::Run(argv); }

class OcspCrlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    port_ = FreePort();
    data_ = *dir_ / "data";
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    int tls_port = FreePort();
    while (tls_port == port_) tls_port = FreePort();
    tls_url_ = "https://127.0.0.1:" + std::to_string(tls_port);
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_), "--tls-listen",
                    "127.0.0.1:" + std::to_string(tls_port)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(*dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
    WriteAll(*dir_ / "issuing.pem", Fg({"ca", "cert", "--data", data_}).out);
    serve_ = new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"}, *dir_ / "serve.log");
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(*dir_ / "serve.log");
  }

  static void TearDownTestSuite() {
    delete serve_;
    delete dir_;
  }

  static RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return Sh(args);
  }

  // Registers `device` (status given) and issues it a certificate from a
  // fresh P-256 key. Returns the certificate path; serial in *serial.
  static std::string Enrol(const std::string& device, std::string* serial,
                           const std::string& status = "active") {
    auto add = Fg({"device", "add", "--data", data_, "--device", device, "--status", status});
    EXPECT_EQ(add.exit_code, 0) << add.out;
    std::string key = *dir_ / (device + ".key"), csr = *dir_ / (device + ".csr");
    auto req = Sh({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=" + device});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    std::string cert = *dir_ / (device + ".pem");
    auto issue = Sh({Femtoguard(), "cert", "issue", "--data", data_, "--device", device, "--csr", csr});
    EXPECT_EQ(issue.exit_code, 0) << issue.out;
    // stdout (the PEM) and stderr (the summary) share one pipe here.
    size_t begin = issue.out.find("-----BEGIN CERTIFICATE-----");
    size_t end = issue.out.find("-----END CERTIFICATE-----");
    EXPECT_NE(begin, std::string::npos) << issue.out;
    if (begin != std::string::npos && end != std::string::npos) {
      WriteAll(cert, issue.out.substr(begin, end + 26 - begin));
    }
    std::smatch m;
    std::regex re("issued serial ([0-9A-F]+)");
    if (std::regex_search(issue.out, m, re)) *serial = m[1];
    return cert;
  }

  static RunResult Ocsp(const std::string& cert, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", *dir_ / "issuing.pem",
                                     "-cert", cert, "-CAfile", *dir_ / "chain.pem"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Sh(args);
  }

  static std::string CrlText() {
    std::string der = *dir_ / "current.crl";
    if (Sh({"curl", "-sf", "-o", der, url_ + "/crl"}).exit_code != 0) return "fetch failed";
    return Sh({"openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-text"}).out;
  }

  static TempDir* dir_;
  static Process* serve_;
  static int port_;
  static std::string data_;
  static std::string url_;
  static inline std::string tls_url_;  // the API (/metrics) is on the TLS listener
};

TempDir* OcspCrlTest::dir_ = nullptr;
Process* OcspCrlTest::serve_ = nullptr;
int OcspCrlTest::port_ = 0;
std::string OcspCrlTest::data_;
std::string OcspCrlTest::url_;

TEST_F(OcspCrlTest, GoodThenRevokedRightAfterCliRevoke) {
  std::string serial;
  std::string cert = Enrol("FG-OCSP-1", &serial);
  ASSERT_FALSE(serial.empty());

  // With a nonce (openssl's default): signed per request.
  auto good = Ocsp(cert);
  EXPECT_EQ(good.exit_code, 0) << good.out;
  EXPECT_THAT(good.out, HasSubstr("Response verify OK"));
  EXPECT_THAT(good.out, HasSubstr(cert + ": good"));
  EXPECT_THAT(good.out, Not(HasSubstr("WARNING: no nonce")));
  // Without a nonce: the pre-produced response.
  auto cached = Ocsp(cert, {"-no_nonce"});
  EXPECT_THAT(cached.out, HasSubstr("Response verify OK"));
  EXPECT_THAT(cached.out, HasSubstr(cert + ": good"));

  auto revoke = Fg({"cert", "revoke", "--data", data_, "--serial", serial, "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  EXPECT_THAT(revoke.out, Not(HasSubstr("warning")));

  // Immediately after the CLI returns: no wait, both paths.
  for (auto extra : {std::vector<std::string>{"-no_nonce"}, std::vector<std::string>{}}) {
    auto revoked = Ocsp(cert, extra);
    EXPECT_THAT(revoked.out, HasSubstr("Response verify OK"));
    EXPECT_THAT(revoked.out, HasSubstr(cert + ": revoked"));
    EXPECT_THAT(revoked.out, HasSubstr("Reason: keyCompromise"));
    EXPECT_THAT(revoked.out, Not(HasSubstr(": good")));
  }
}

TEST_F(OcspCrlTest, SerialOfAnotherCaIsUnknown) {
  // A CA femtoguard never heard of, and a certificate it issued.
  std::string ca_key = *dir_ / "other-ca.key", ca = *dir_ / "other-ca.pem";
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", ca_key, "-out", ca, "-subj", "/CN=Other CA", "-days", "30"})
                .exit_code,
            0);
  std::string key = *dir_ / "other.key", csr = *dir_ / "other.csr", cert = *dir_ / "other.pem";
  ASSERT_EQ(Sh({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=FG-OTHER"})
                .exit_code,
            0);
  ASSERT_EQ(Sh({"openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out",
                 cert, "-days", "30"})
                .exit_code,
            0);
  auto r = Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", ca, "-cert", cert, "-CAfile",
                *dir_ / "chain.pem"});
  EXPECT_THAT(r.out, HasSubstr(cert + ": unknown"));
  EXPECT_THAT(r.out, Not(HasSubstr(": good")));
}

TEST_F(OcspCrlTest, NeverIssuedSerialOfOurCaIsRevokedNotGood) {
  std::string serial;
  std::string cert = Enrol("FG-OCSP-NI", &serial);
  // Ask about a serial this CA never issued (RFC 6960 §2.2: "revoked").
  auto r = Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", *dir_ / "issuing.pem", "-serial",
                "0x1234567890ABCDEF", "-CAfile", *dir_ / "chain.pem"});
  EXPECT_THAT(r.out, HasSubstr("Response verify OK"));
  EXPECT_THAT(r.out, HasSubstr("revoked"));
  EXPECT_THAT(r.out, Not(HasSubstr(": good")));
}

TEST_F(OcspCrlTest, SuspendHoldsReactivateReleasesDecommissionRevokes) {
  std::string serial;
  std::string cert = Enrol("FG-OCSP-LC", &serial);
  EXPECT_THAT(Ocsp(cert, {"-no_nonce"}).out, HasSubstr(cert + ": good"));

  ASSERT_EQ(Fg({"device", "set-status", "--data", data_, "--device", "FG-OCSP-LC", "--status", "suspended"}).exit_code,
            0);
  auto held = Ocsp(cert, {"-no_nonce"});
  EXPECT_THAT(held.out, HasSubstr(cert + ": revoked"));
  EXPECT_THAT(held.out, HasSubstr("Reason: certificateHold"));

  EXPECT_THAT(CrlText(), HasSubstr(serial));  // on hold: listed

  ASSERT_EQ(Fg({"device", "set-status", "--data", data_, "--device", "FG-OCSP-LC", "--status", "active"}).exit_code,
            0);
  EXPECT_THAT(Ocsp(cert, {"-no_nonce"}).out, HasSubstr(cert + ": good"));
  EXPECT_THAT(CrlText(), Not(HasSubstr(serial)));  // hold released: off the CRL at once

  ASSERT_EQ(
      Fg({"device", "set-status", "--data", data_, "--device", "FG-OCSP-LC", "--status", "decommissioned"}).exit_code,
      0);
  auto gone = Ocsp(cert, {"-no_nonce"});
  EXPECT_THAT(gone.out, HasSubstr(cert + ": revoked"));
  EXPECT_THAT(gone.out, HasSubstr("Reason: cessationOfOperation"));
}

TEST_F(OcspCrlTest, CrlRejectsRevokedAndAcceptsGood) {
  std::string good_serial, bad_serial;
  std::string good = Enrol("FG-CRL-GOOD", &good_serial);
  std::string bad = Enrol("FG-CRL-BAD", &bad_serial);
  ASSERT_EQ(Fg({"cert", "revoke", "--data", data_, "--serial", bad_serial, "--reason", "keyCompromise"}).exit_code,
            0);
  std::string crl = *dir_ / "crl.der";
  ASSERT_EQ(Sh({"curl", "-sf", "-o", crl, url_ + "/crl"}).exit_code, 0);
  std::string crl_pem = *dir_ / "crl.pem";
  auto conv = Sh({"openssl", "crl", "-inform", "DER", "-in", crl, "-out", crl_pem, "-text"});
  ASSERT_EQ(conv.exit_code, 0) << conv.out;
  std::string text = ReadAll(crl_pem);
  EXPECT_THAT(text, HasSubstr("Next Update"));
  EXPECT_THAT(text, HasSubstr(bad_serial));
  EXPECT_THAT(text, Not(HasSubstr(good_serial)));

  auto rejected = Sh({"openssl", "verify", "-crl_check", "-CAfile", *dir_ / "chain.pem", "-CRLfile", crl_pem, bad});
  EXPECT_NE(rejected.exit_code, 0);
  EXPECT_THAT(rejected.out, HasSubstr("certificate revoked"));
  auto accepted = Sh({"openssl", "verify", "-crl_check", "-CAfile", *dir_ / "chain.pem", "-CRLfile", crl_pem, good});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.out;
}

TEST_F(OcspCrlTest, OcspGetWorks) {
  std::string serial;
  std::string cert = Enrol("FG-OCSP-GET", &serial);
  std::string req = *dir_ / "get.req";
  ASSERT_EQ(Sh({"openssl", "ocsp", "-issuer", *dir_ / "issuing.pem", "-cert", cert, "-no_nonce", "-reqout", req})
                .exit_code,
            0);
  auto b64 = Sh({"openssl", "base64", "-A", "-in", req});
  ASSERT_EQ(b64.exit_code, 0);
  std::string enc;
  for (char c : b64.out) {
    if (c == '+') enc += "%2B";
    else if (c == '/') enc += "%2F";
    else if (c == '=') enc += "%3D";
    else if (c != '\n') enc += c;
  }
  std::string resp = *dir_ / "get.resp";
  ASSERT_EQ(Sh({"curl", "-sf", "-o", resp, url_ + "/ocsp/" + enc}).exit_code, 0);
  auto text = Sh({"openssl", "ocsp", "-respin", resp, "-issuer", *dir_ / "issuing.pem", "-cert", cert, "-CAfile",
                   *dir_ / "chain.pem"});
  EXPECT_THAT(text.out, HasSubstr(cert + ": good"));
  EXPECT_THAT(text.out, HasSubstr("Response verify OK"));
}

TEST_F(OcspCrlTest, GarbageIsMalformedRequestAndServerKeepsServing) {
  auto token = Fg({"token", "create", "--data", data_, "--role", "operator"});
  ASSERT_EQ(token.exit_code, 0) << token.out;
  const std::string auth = "Authorization: Bearer " + FindApiToken(token.out);
  const std::string ca = *dir_ / "chain.pem";
  EXPECT_EQ(Sh({"curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", tls_url_ + "/metrics"}).out,
            "401")
      << "metrics need a token";
  auto before = Sh({"curl", "-s", "--cacert", ca, "-H", auth, tls_url_ + "/metrics"}).out;
  std::string garbage = *dir_ / "garbage.bin";
  WriteAll(garbage, "this is not DER at all \x01\x02\x03");
  std::string resp = *dir_ / "garbage.resp";
  auto post = Sh({"curl", "-s", "-o", resp, "-w", "%{http_code}", "-H", "Content-Type: application/ocsp-request",
                   "--data-binary", "@" + garbage, url_ + "/ocsp"});
  EXPECT_EQ(post.out, "400");
  auto text = Sh({"openssl", "ocsp", "-respin", resp, "-resp_text", "-noverify"});
  EXPECT_THAT(text.out, HasSubstr("malformedrequest"));
  // Oversized body.
  WriteAll(garbage, std::string(64 * 1024, 'A'));
  auto big = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@" + garbage,
                  url_ + "/ocsp"});
  EXPECT_EQ(big.out, "400");

  auto after = Sh({"curl", "-s", "--cacert", ca, "-H", auth, tls_url_ + "/metrics"}).out;
  std::regex re("femtoguard_ocsp_responses_total\\{status=\"malformedRequest\"\\} (\\d+)");
  std::smatch mb, ma;
  ASSERT_TRUE(std::regex_search(after, ma, re)) << after;
  long b = std::regex_search(before, mb, re) ? std::stol(mb[1]) : 0;
  EXPECT_EQ(std::stol(ma[1]) - b, 2);

  // Still serving, and the store is untouched by garbage.
  std::string serial;
  std::string cert = Enrol("FG-OCSP-AFTER", &serial);
  EXPECT_THAT(Ocsp(cert).out, HasSubstr(cert + ": good"));
}

}  // namespace
}  // namespace fg::testing
