// Issuing CA rotation (issue 14, docs/pki.md "Issuing CA rotation"):
// `femtoguard ca rotate` with the root key online, then a cross-over in
// which certificates of both issuing CAs verify under the same root and the
// OCSP responder answers for both, each answer signed by a responder the
// certificate's own issuer authorized. Checked with real clients only:
// `openssl ocsp`, GnuTLS `ocsptool` and `certtool`, `openssl verify`,
// `openssl crl`, `openssl cmp` (kur) and curl against the TLS listener.

#include <sys/stat.h>

#include <filesystem>

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class RotateTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    StartNode();
    // Enrolled by the first issuing CA, before the rotation.
    old_a_ = new std::string(Enrol("FG-ROT-A"));
    old_b_ = new std::string(Enrol("FG-ROT-B"));
    old_k_ = new std::string(Enrol("FG-ROT-K"));
    old_e_ = new std::string(Enrol("FG-ROT-E"));
    WriteAll(P("old-issuing.pem"), ReadAll(P("issuing.pem")));
    WriteAll(P("old-chain.pem"), ReadAll(P("issuing.pem")) + ReadAll(P("root.pem")));
    old_serial_ = new std::string(Serial(P("old-issuing.pem")));
    // docs/pki.md: serve picks a rotation up at its next start.
    delete serve_;
    serve_ = nullptr;
    rotate_ = new RunResult(Fg({"ca", "rotate", "--data", data_, "--days", "400"}));
    WriteAll(P("issuing.pem"), Fg({"ca", "cert", "--data", data_}).out);
    WriteAll(P("chain.pem"), Fg({"ca", "cert", "--data", data_, "--chain"}).out);
    new_serial_ = new std::string(Serial(P("issuing.pem")));
    serve_ = new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"}, P("serve-2.log"));
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(P("serve-2.log"));
  }
  static void TearDownTestSuite() { StopNode(); }

  // Enrols `device` over CMP (ir, bootstrap token); returns the certificate path.
  static std::string Enrol(const std::string& device) {
    AddDevice(device);
    auto [ref, secret] = Token(device);
    std::string key = P(device + ".key"), cert = P(device + ".pem");
    NewKey(device + ".key");
    auto r = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject",
                  "/CN=" + device, "-certout", cert});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return cert;
  }
  static std::string Serial(const std::string& cert) {
    std::string out = Sh({"openssl", "x509", "-in", cert, "-noout", "-serial"}).out;
    size_t eq = out.find('=');
    out = eq == std::string::npos ? "" : out.substr(eq + 1);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }
  // `openssl ocsp` for `cert` with `issuer` in the CertID; the response is
  // verified against `trust` (root and the certificate's own issuer).
  static RunResult OpensslOcsp(const std::string& cert, const std::string& issuer, const std::string& trust) {
    return Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", issuer, "-cert", cert, "-CAfile", trust,
               "-no_nonce"});
  }
  // GnuTLS: the response must verify with the issuer as the only trust.
  static RunResult GnutlsOcsp(const std::string& cert, const std::string& issuer) {
    return Sh({"ocsptool", "--ask=" + url_ + "/ocsp", "--load-issuer", issuer, "--load-cert", cert, "--load-trust",
               issuer, "--no-nonce"});
  }
  static RunResult Verify(const std::string& cert, const std::string& intermediate) {
    return Sh({"openssl", "verify", "-CAfile", P("root.pem"), "-untrusted", intermediate, cert});
  }
  // GET `path` on the plain listener into `file`; the HTTP status.
  static std::string Get(const std::string& path, const std::string& file) {
    return Sh({"curl", "-sS", "--max-time", "20", "-o", file, "-w", "%{http_code}", url_ + path}).out;
  }

  static inline RunResult* rotate_ = nullptr;
  static inline std::string* old_a_ = nullptr;  // stays valid
  static inline std::string* old_b_ = nullptr;  // revoked after the rotation
  static inline std::string* old_k_ = nullptr;  // renewed with kur after the rotation
  static inline std::string* old_e_ = nullptr;  // renewed with EST simplereenroll after the rotation
  static inline std::string* old_serial_ = nullptr;
  static inline std::string* new_serial_ = nullptr;
};

TEST_F(RotateTest, RotateMakesANewIssuingCaUnderTheSameRootAndRetiresTheOld) {
  ASSERT_EQ(rotate_->exit_code, 0) << rotate_->out;
  EXPECT_THAT(rotate_->out, HasSubstr("retired " + *old_serial_));
  EXPECT_THAT(rotate_->out, Not(HasSubstr("PRIVATE KEY")));
  ASSERT_FALSE(new_serial_->empty());
  EXPECT_NE(*new_serial_, *old_serial_);
  // Both issuing CAs verify under the one root.
  EXPECT_THAT(Sh({"openssl", "verify", "-CAfile", P("root.pem"), P("issuing.pem")}).out, HasSubstr(": OK"));
  EXPECT_THAT(Sh({"openssl", "verify", "-CAfile", P("root.pem"), P("old-issuing.pem")}).out, HasSubstr(": OK"));
  // The old one is kept, its key as private as before.
  const fs::path retired = fs::path(data_) / "ca" / "retired";
  EXPECT_EQ(ReadAll(retired / ("issuing-" + *old_serial_ + ".crt")), ReadAll(P("old-issuing.pem")));
  struct stat st {};
  ASSERT_EQ(::stat((retired / ("issuing-" + *old_serial_ + ".key")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The service credentials are the new CA's: the TLS listener's chain
  // verifies against the root alone, and the TLS certificate does not
  // verify with the old issuing CA.
  auto tls = fg::testing::Run({"curl", "-sS", "--max-time", "20", "--cacert", P("root.pem"), "-o", "/dev/null", "-w",
                               "%{http_code}", tls_url_ + "/healthz"});
  EXPECT_EQ(tls.out, "200") << tls.out;
  const std::string tls_crt = fs::path(data_) / "ca" / "tls.crt";
  const std::string ocsp_crt = fs::path(data_) / "ca" / "ocsp.crt";
  const std::string cmp_crt = fs::path(data_) / "ca" / "cmp.crt";
  for (const std::string& crt : {tls_crt, ocsp_crt, cmp_crt}) {
    EXPECT_EQ(Verify(crt, P("issuing.pem")).exit_code, 0) << crt;
    EXPECT_NE(Verify(crt, P("old-issuing.pem")).exit_code, 0) << crt;
  }
  // Audited.
  EXPECT_THAT(Fg({"audit", "list", "--data", data_}).out, HasSubstr("ca.rotate"));
}

TEST_F(RotateTest, OldCaCertificateIsGoodOverOcspWithTheOldCaAsIssuer) {
  auto openssl = OpensslOcsp(*old_a_, P("old-issuing.pem"), P("old-chain.pem"));
  EXPECT_THAT(openssl.out, HasSubstr(": good")) << openssl.out;
  EXPECT_THAT(openssl.out, HasSubstr("Response verify OK")) << openssl.out;
  // GnuTLS trusts only the old issuing CA: the responder must be one it issued.
  auto gnutls = GnutlsOcsp(*old_a_, P("old-issuing.pem"));
  EXPECT_EQ(gnutls.exit_code, 0) << gnutls.out;
  EXPECT_THAT(gnutls.out, HasSubstr("Certificate Status: good")) << gnutls.out;
  EXPECT_THAT(gnutls.out, HasSubstr("Verifying OCSP Response: Success")) << gnutls.out;
  // And the old certificate still verifies under the root with its own issuer.
  EXPECT_EQ(Verify(*old_a_, P("old-issuing.pem")).exit_code, 0);
  EXPECT_NE(Verify(*old_a_, P("issuing.pem")).exit_code, 0);
}

TEST_F(RotateTest, OldCaCertificateAskedWithTheNewCaAsIssuerIsNeverGood) {
  // Same subject name, another key: the CertID names a CA that never issued it.
  auto openssl = Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", P("issuing.pem"), "-cert", *old_a_,
                     "-no_nonce", "-noverify"});
  EXPECT_THAT(openssl.out, HasSubstr(*old_a_ + ": revoked")) << openssl.out;
  EXPECT_THAT(openssl.out, Not(HasSubstr(": good"))) << openssl.out;
  auto gnutls = Sh({"ocsptool", "--ask=" + url_ + "/ocsp", "--load-issuer", P("issuing.pem"), "--load-cert",
                    *old_a_, "--load-trust", P("issuing.pem"), "--no-nonce"});
  EXPECT_THAT(gnutls.out, Not(HasSubstr("Certificate Status: good"))) << gnutls.out;
  // The other way round too: a new certificate asked with the old CA.
  std::string fresh = Enrol("FG-ROT-X");
  auto reverse = Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", P("old-issuing.pem"), "-cert", fresh,
                     "-no_nonce", "-noverify"});
  EXPECT_THAT(reverse.out, Not(HasSubstr(": good"))) << reverse.out;
  EXPECT_THAT(OpensslOcsp(fresh, P("issuing.pem"), P("chain.pem")).out, HasSubstr(": good"));
}

TEST_F(RotateTest, OneRequestForBothCasIsAnsweredForTheFirstCaOnly) {
  // One response has one signer: the second CA's CertID cannot be vouched for.
  std::string fresh = Enrol("FG-ROT-M");
  auto both = Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", P("old-issuing.pem"), "-cert", *old_a_,
                  "-issuer", P("issuing.pem"), "-cert", fresh, "-no_nonce", "-noverify"});
  EXPECT_THAT(both.out, HasSubstr(*old_a_ + ": good")) << both.out;
  EXPECT_THAT(both.out, HasSubstr(fresh + ": unknown")) << both.out;
  // Asked alone, each is good.
  EXPECT_THAT(OpensslOcsp(fresh, P("issuing.pem"), P("chain.pem")).out, HasSubstr(": good"));
}

TEST_F(RotateTest, RevokedOldCaCertificateShowsInOcspAndInTheOldCasCrl) {
  const std::string serial = Serial(*old_b_);
  ASSERT_EQ(Fg({"cert", "revoke", "--data", data_, "--serial", serial, "--reason", "keyCompromise"}).exit_code, 0);
  auto openssl = OpensslOcsp(*old_b_, P("old-issuing.pem"), P("old-chain.pem"));
  EXPECT_THAT(openssl.out, HasSubstr(": revoked")) << openssl.out;
  EXPECT_THAT(openssl.out, HasSubstr("Response verify OK")) << openssl.out;
  auto gnutls = GnutlsOcsp(*old_b_, P("old-issuing.pem"));
  EXPECT_THAT(gnutls.out, HasSubstr("Certificate Status: revoked")) << gnutls.out;
  EXPECT_THAT(gnutls.out, HasSubstr("Verifying OCSP Response: Success")) << gnutls.out;

  // The old certificate names /crl; there the old CA's CRL lists it.
  EXPECT_THAT(Sh({"openssl", "x509", "-in", *old_b_, "-noout", "-ext", "crlDistributionPoints"}).out,
              HasSubstr(url_ + "/crl\n"));
  ASSERT_EQ(Get("/crl", P("old.crl")), "200");
  auto old_crl = Sh({"openssl", "crl", "-inform", "DER", "-in", P("old.crl"), "-CAfile", P("old-chain.pem"),
                     "-noout", "-text"});
  EXPECT_THAT(old_crl.out, HasSubstr("verify OK")) << old_crl.out;
  EXPECT_THAT(old_crl.out, HasSubstr("Serial Number: " + serial)) << old_crl.out;
  // The new CA's CRL is signed by the new CA and does not list it.
  ASSERT_EQ(Get("/crl/" + *new_serial_, P("new.crl")), "200");
  auto new_crl = Sh({"openssl", "crl", "-inform", "DER", "-in", P("new.crl"), "-CAfile", P("chain.pem"), "-noout",
                     "-text"});
  EXPECT_THAT(new_crl.out, HasSubstr("verify OK")) << new_crl.out;
  EXPECT_THAT(new_crl.out, Not(HasSubstr(serial)));
  // certtool checks the old certificate against its CRL: revoked.
  WriteAll(P("old-b-chain.pem"), ReadAll(*old_b_) + ReadAll(P("old-issuing.pem")));
  Sh({"openssl", "crl", "-inform", "DER", "-in", P("old.crl"), "-out", P("old-crl.pem")});
  auto certtool = Sh({"certtool", "--verify", "--load-ca-certificate", P("root.pem"), "--load-crl", P("old-crl.pem"),
                      "--infile", P("old-b-chain.pem")});
  EXPECT_NE(certtool.exit_code, 0) << certtool.out;
  EXPECT_THAT(certtool.out, HasSubstr("revoked")) << certtool.out;
}

TEST_F(RotateTest, NewEnrolmentIsIssuedByTheNewCa) {
  std::string cert = Enrol("FG-ROT-N");
  EXPECT_THAT(Verify(cert, P("issuing.pem")).out, HasSubstr(": OK"));
  EXPECT_NE(Verify(cert, P("old-issuing.pem")).exit_code, 0);
  WriteAll(P("n-chain.pem"), ReadAll(cert) + ReadAll(P("issuing.pem")));
  auto certtool = Sh({"certtool", "--verify", "--load-ca-certificate", P("root.pem"), "--infile", P("n-chain.pem")});
  EXPECT_EQ(certtool.exit_code, 0) << certtool.out;
  EXPECT_THAT(certtool.out, HasSubstr("Chain verification output: Verified"));
  // It names the new CA's own CRL and certificate, both served.
  auto ext = Sh({"openssl", "x509", "-in", cert, "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess"}).out;
  EXPECT_THAT(ext, HasSubstr(url_ + "/crl/" + *new_serial_));
  EXPECT_THAT(ext, HasSubstr(url_ + "/ca/issuing-" + *new_serial_ + ".crt"));
  ASSERT_EQ(Get("/ca/issuing-" + *new_serial_ + ".crt", P("new-ca.der")), "200");
  auto served = Sh({"openssl", "x509", "-inform", "DER", "-in", P("new-ca.der"), "-noout", "-serial"});
  EXPECT_THAT(served.out, HasSubstr(*new_serial_));
  auto gnutls = GnutlsOcsp(cert, P("issuing.pem"));
  EXPECT_THAT(gnutls.out, HasSubstr("Certificate Status: good")) << gnutls.out;
  EXPECT_THAT(gnutls.out, HasSubstr("Verifying OCSP Response: Success")) << gnutls.out;
}

TEST_F(RotateTest, KurWithAnOldCaCertificateGetsANewCaCertificate) {
  std::string key2 = NewKey("k-renewed.key"), renewed = P("k-renewed.pem");
  auto kur = Cmp({"-cmd", "kur", "-cert", *old_k_, "-key", P("FG-ROT-K.key"), "-newkey", key2, "-trusted",
                  P("root.pem"), "-certout", renewed});
  ASSERT_EQ(kur.exit_code, 0) << kur.out;
  EXPECT_THAT(Subject(renewed), HasSubstr("CN=FG-ROT-K"));
  EXPECT_EQ(Verify(renewed, P("issuing.pem")).exit_code, 0);
  EXPECT_NE(Verify(renewed, P("old-issuing.pem")).exit_code, 0);
  // The old-CA certificate is superseded (revoked), the renewed one good.
  EXPECT_THAT(OpensslOcsp(*old_k_, P("old-issuing.pem"), P("old-chain.pem")).out, HasSubstr(": revoked"));
  EXPECT_THAT(OpensslOcsp(renewed, P("issuing.pem"), P("chain.pem")).out, HasSubstr(": good"));
}

TEST_F(RotateTest, EstSimplereenrollWithAnOldCaCertificateGetsANewCaCertificate) {
  // TLS client authentication with the old-CA certificate (the server's
  // chain is the new CA's: curl trusts the root).
  std::string key2 = NewKey("e-renewed.key"), renewed = P("e-renewed.pem");
  auto x = EstPost("simplereenroll", EstCsr(key2, "FG-ROT-E"), {"--cert", *old_e_, "--key", P("FG-ROT-E.key")});
  ASSERT_EQ(x.status, 200) << x.curl_out << x.Body();
  ASSERT_EQ(P7ToPem(x.body_path, renewed).exit_code, 0);
  EXPECT_THAT(Subject(renewed), HasSubstr("CN=FG-ROT-E"));
  EXPECT_EQ(Verify(renewed, P("issuing.pem")).exit_code, 0);
  EXPECT_NE(Verify(renewed, P("old-issuing.pem")).exit_code, 0);
  EXPECT_THAT(OpensslOcsp(*old_e_, P("old-issuing.pem"), P("old-chain.pem")).out, HasSubstr(": revoked"));
}

TEST(RotateRefusal, WithoutTheRootKeyRotateRefusesAndChangesNothing) {
  TempDir dir;
  const std::string data = dir / "data";
  auto init = fg::testing::Run({Femtoguard(), "init", "--data", data});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  fs::rename(fs::path(data) / "ca" / "root.key", dir / "root.key.elsewhere");
  const std::string before = ReadAll(fs::path(data) / "ca" / "issuing.crt");
  auto rotate = fg::testing::Run({Femtoguard(), "ca", "rotate", "--data", data});
  EXPECT_NE(rotate.exit_code, 0) << rotate.out;
  EXPECT_THAT(rotate.out, HasSubstr("needs the root key online")) << rotate.out;
  EXPECT_EQ(ReadAll(fs::path(data) / "ca" / "issuing.crt"), before);
  EXPECT_FALSE(fs::exists(fs::path(data) / "ca" / "retired"));
  EXPECT_FALSE(fs::exists(fs::path(data) / "ca" / "crl-legacy"));
}

// `ca rotate` under a running serve: serve keeps its CA until restarted
// (docs/pki.md) and says so in its log at once.
class RotateWhileServingTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }
};

TEST_F(RotateWhileServingTest, ServeLogsThatItNeedsARestart) {
  const std::string log = P("serve.log");
  ASSERT_EQ(Fg({"cert", "list", "--data", data_}).exit_code, 0);
  EXPECT_THAT(ReadAll(log), Not(HasSubstr("restart serve to issue with it")));
  auto rotate = Fg({"ca", "rotate", "--data", data_});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.out;
  EXPECT_THAT(ReadAll(log), HasSubstr("restart serve to issue with it")) << ReadAll(log);
}

// The root kept elsewhere: `ca rotate --csr-out`, `ca sign-issuing` in the
// root data dir, `ca rotate --install`.
TEST(RotateOffline, RequestSignedByTheOfflineRootIsInstalledAndTheOldCaRetired) {
  TempDir dir;
  auto fg = [](std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args, {}, 120);
  };
  auto serial_of = [](const std::string& pem_path) {
    std::string out = fg::testing::Run({"openssl", "x509", "-in", pem_path, "-noout", "-serial"}).out;
    out = out.substr(out.find('=') + 1);
    out.erase(out.find_last_not_of('\n') + 1);
    return out;
  };
  const std::string pass = dir / "root.pass", root = dir / "root", node = dir / "node";
  WriteAll(pass, "root ceremony passphrase\n");
  ASSERT_EQ(chmod(pass.c_str(), 0600), 0);
  ASSERT_EQ(fg({"ca", "init-root", "--data", root, "--passphrase-file", pass}).exit_code, 0);
  ASSERT_EQ(fg({"init", "--data", node, "--issuing-csr-out", dir / "node.csr"}).exit_code, 0);
  ASSERT_EQ(fg({"ca", "sign-issuing", "--data", root, "--csr", dir / "node.csr", "--out", dir / "first.pem",
                "--passphrase-file", pass})
                .exit_code,
            0);
  WriteAll(dir / "root.pem", fg({"ca", "cert", "--data", root, "--root"}).out);
  ASSERT_EQ(fg({"ca", "install-issuing", "--data", node, "--cert", dir / "first.pem", "--root", dir / "root.pem"})
                .exit_code,
            0);
  const std::string first = ReadAll(node + "/ca/issuing.crt");
  const std::string first_serial = serial_of(node + "/ca/issuing.crt");

  // No root key on the node: the one-step rotate refuses and says what to do.
  auto online = fg({"ca", "rotate", "--data", node});
  EXPECT_NE(online.exit_code, 0);
  EXPECT_THAT(online.out, HasSubstr("--csr-out"));
  EXPECT_FALSE(fs::exists(node + "/ca/retired"));

  // Step 1: a request; nothing else changes, and a second request is refused.
  auto req = fg({"ca", "rotate", "--data", node, "--csr-out", dir / "next.csr"});
  ASSERT_EQ(req.exit_code, 0) << req.out;
  EXPECT_TRUE(fs::exists(node + "/ca/issuing.next.key"));
  EXPECT_EQ(ReadAll(node + "/ca/issuing.crt"), first);
  EXPECT_NE(fg({"ca", "rotate", "--data", node, "--csr-out", dir / "again.csr"}).exit_code, 0);

  // Must not: a certificate for another key (the current CA's, re-signed) is refused.
  ASSERT_EQ(fg({"ca", "sign-issuing", "--data", root, "--csr", dir / "node.csr", "--out", dir / "wrong.pem",
                "--passphrase-file", pass})
                .exit_code,
            0);
  auto wrong = fg({"ca", "rotate", "--data", node, "--install", dir / "wrong.pem"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.out, HasSubstr("not for the key of the pending rotation")) << wrong.out;
  EXPECT_EQ(ReadAll(node + "/ca/issuing.crt"), first);
  EXPECT_FALSE(fs::exists(node + "/ca/retired"));

  // Step 2: signed where the root is, installed on the node.
  ASSERT_EQ(fg({"ca", "sign-issuing", "--data", root, "--csr", dir / "next.csr", "--out", dir / "next.pem",
                "--passphrase-file", pass, "--crl-url", "http://127.0.0.1:8440/crl/root"})
                .exit_code,
            0);
  auto install = fg({"ca", "rotate", "--data", node, "--install", dir / "next.pem"});
  ASSERT_EQ(install.exit_code, 0) << install.out;
  const std::string next_serial = serial_of(dir / "next.pem");
  EXPECT_EQ(serial_of(node + "/ca/issuing.crt"), next_serial);
  EXPECT_NE(next_serial, first_serial);
  EXPECT_EQ(ReadAll(node + "/ca/retired/issuing-" + first_serial + ".crt"), first);
  EXPECT_FALSE(fs::exists(node + "/ca/issuing.next.key"));
  EXPECT_FALSE(fs::exists(node + "/ca/root.key"));
  // The node issues with the new CA; the chain verifies to the root.
  ASSERT_EQ(fg({"device", "add", "--data", node, "--device", "FG-ROT-OFF"}).exit_code, 0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                              "-nodes", "-keyout", dir / "d.key", "-subj", "/CN=FG-ROT-OFF", "-out", dir / "d.csr"})
                .exit_code,
            0);
  auto issued = fg({"cert", "issue", "--data", node, "--device", "FG-ROT-OFF", "--csr", dir / "d.csr"});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  size_t begin = issued.out.find("-----BEGIN CERTIFICATE-----");
  size_t end = issued.out.find("-----END CERTIFICATE-----");
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos) << issued.out;
  WriteAll(dir / "d.pem", issued.out.substr(begin, end + 26 - begin) + "\n");
  auto verify = fg::testing::Run(
      {"openssl", "verify", "-CAfile", dir / "root.pem", "-untrusted", node + "/ca/issuing.crt", dir / "d.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  auto old_verify = fg::testing::Run(
      {"openssl", "verify", "-CAfile", dir / "root.pem", "-untrusted", dir / "first.pem", dir / "d.pem"});
  EXPECT_NE(old_verify.exit_code, 0) << old_verify.out;
}

}  // namespace
}  // namespace fg::testing
