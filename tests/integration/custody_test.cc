// CA custody (issue 14): bootstrap tokens listed and revoked (refused by
// the real `openssl cmp` and curl-driven EST at once), the CA passphrase in
// a file of its own, and the issuing CA key in a SoftHSM2 token (per-test
// SOFTHSM2_CONF and token dir, never the system's) with certificates checked
// by OpenSSL and GnuTLS.

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- device token list | revoke ----

class TokenCustodyTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  static std::string TokenLine(const std::string& ref) {
    auto list = Fg({"device", "token", "list", "--data", data_});
    EXPECT_EQ(list.exit_code, 0) << list.out;
    std::istringstream in(list.out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(ref, 0) == 0) return line;
    }
    return {};
  }
};

TEST_F(TokenCustodyTest, ListShowsTokensButNeverTheSecret) {
  AddDevice("FG-TOK-L1");
  auto [ref, secret] = Token("FG-TOK-L1");
  ASSERT_FALSE(ref.empty());
  auto list = Fg({"device", "token", "list", "--data", data_});
  ASSERT_EQ(list.exit_code, 0) << list.out;
  EXPECT_THAT(list.out, HasSubstr("REF"));
  EXPECT_THAT(list.out, Not(HasSubstr(secret)));
  std::string line = TokenLine(ref);
  EXPECT_THAT(line, HasSubstr("FG-TOK-L1"));
  EXPECT_THAT(line, HasSubstr("live"));
  // Filter by device: another device's tokens are not shown.
  AddDevice("FG-TOK-L2");
  auto [ref2, secret2] = Token("FG-TOK-L2");
  auto only = Fg({"device", "token", "list", "--data", data_, "--device", "FG-TOK-L2"});
  ASSERT_EQ(only.exit_code, 0) << only.out;
  EXPECT_THAT(only.out, HasSubstr(ref2));
  EXPECT_THAT(only.out, Not(HasSubstr(ref)));
  EXPECT_THAT(only.out, Not(HasSubstr(secret2)));
  // Making a token still needs --device (a usage error, exit 2).
  EXPECT_EQ(Fg({"device", "token", "--data", data_}).exit_code, 2);
}

TEST_F(TokenCustodyTest, RevokedTokenIsRefusedByCmpAndEstAndAudited) {
  AddDevice("FG-TOK-R1");
  auto [ref, secret] = Token("FG-TOK-R1");
  auto revoke = Fg({"device", "token", "revoke", "--data", data_, ref, "--reason", "handed to the wrong installer"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  EXPECT_THAT(TokenLine(ref), HasSubstr("revoked"));

  // CMP: the serve that is already running refuses it.
  std::string key = NewKey("r1.key");
  auto cmp = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject", "/CN=FG-TOK-R1",
                  "-certout", P("r1.pem"), "-unprotected_errors"});
  EXPECT_NE(cmp.exit_code, 0) << cmp.out;
  EXPECT_THAT(cmp.out, HasSubstr("bootstrap token revoked"));
  // EST: the same token over HTTP Basic.
  auto est = EstPost("simpleenroll", EstCsr(key, "FG-TOK-R1"), {"-u", ref + ":" + secret});
  EXPECT_EQ(est.status, 403) << est.curl_out << est.Body();
  EXPECT_THAT(est.Body(), HasSubstr("bootstrap token revoked"));
  // Nothing was issued, the device is still only provisioned.
  EXPECT_EQ(CertCount("FG-TOK-R1"), 0u);
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "provisioned"}).out, HasSubstr("FG-TOK-R1"));
  // Audited once, with who and why, never with the secret.
  auto audit = Fg({"audit", "list", "--data", data_, "--subject", "FG-TOK-R1"});
  EXPECT_THAT(audit.out, HasSubstr("token.revoke"));
  EXPECT_THAT(audit.out, HasSubstr("handed to the wrong installer"));
  EXPECT_THAT(audit.out, Not(HasSubstr(secret)));
  // The refusals are counted under their own reason.
  auto metrics = Sh({"curl", "-sS", url_ + "/metrics"}).out;
  if (metrics.find("femtoguard_enrolment_refused_total") != std::string::npos) {
    EXPECT_THAT(metrics, HasSubstr("token_revoked"));
  }
  // A second revocation is refused (exit 4) and changes nothing.
  EXPECT_EQ(Fg({"device", "token", "revoke", "--data", data_, ref}).exit_code, 4);
}

TEST_F(TokenCustodyTest, RevokingOneTokenLeavesOthersWorking) {
  AddDevice("FG-TOK-R2");
  auto [bad_ref, bad_secret] = Token("FG-TOK-R2");
  auto [good_ref, good_secret] = Token("FG-TOK-R2");
  ASSERT_EQ(Fg({"device", "token", "revoke", "--data", data_, bad_ref}).exit_code, 0);
  auto cmp = Cmp({"-cmd", "ir", "-ref", good_ref, "-secret", "pass:" + good_secret, "-newkey", NewKey("r2.key"),
                  "-subject", "/CN=FG-TOK-R2", "-certout", P("r2.pem")});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.out;
  EXPECT_EQ(CertCount("FG-TOK-R2"), 1u);
  EXPECT_THAT(TokenLine(good_ref), HasSubstr("used"));
  // A used token cannot be revoked (its certificate is what to revoke).
  auto used = Fg({"device", "token", "revoke", "--data", data_, good_ref});
  EXPECT_EQ(used.exit_code, 4) << used.out;
  EXPECT_THAT(used.out, HasSubstr("already used"));
  EXPECT_THAT(TokenLine(good_ref), HasSubstr("used"));
}

TEST_F(TokenCustodyTest, UnknownOrMalformedReferenceChangesNothing) {
  auto revocations = [] {
    std::string out = Fg({"audit", "list", "--data", data_, "--limit", "0"}).out;
    size_t n = 0;
    for (size_t at = out.find("token.revoke"); at != std::string::npos; at = out.find("token.revoke", at + 1)) ++n;
    return n;
  };
  size_t before = revocations();
  auto unknown = Fg({"device", "token", "revoke", "--data", data_, "tok-00000000000000000000000000000000"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out;
  auto bad = Fg({"device", "token", "revoke", "--data", data_, "tok-\x1b[31m;DROP"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_EQ(revocations(), before);
}

// ---- passphrase file ----

class PassphraseFileTest : public ::testing::Test {
 protected:
  static RunResult Fg(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args, {}, 120, env);
  }
  TempDir dir_;
};

TEST_F(PassphraseFileTest, InitAndCertIssueUseTheFileAndNothingLandsInTheDataDir) {
  std::string pass = dir_ / "ca.pass";
  WriteAll(pass, "correct horse battery staple\n");
  ASSERT_EQ(chmod(pass.c_str(), 0600), 0);
  std::string data = dir_ / "data";
  auto init = Fg({"init", "--data", data, "--passphrase-file", pass});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  EXPECT_FALSE(fs::exists(data + "/secrets/ca.passphrase"));
  EXPECT_THAT(ReadAll(data + "/config.yaml"), HasSubstr("passphrase_file: " + pass));
  // The keys are encrypted under the file's passphrase (newline dropped).
  auto pkey = fg::testing::Run({"openssl", "pkey", "-in", data + "/ca/issuing.key", "-passin",
                   "pass:correct horse battery staple", "-noout"});
  EXPECT_EQ(pkey.exit_code, 0) << pkey.out;
  // A command that needs the CA key finds it through the config.
  ASSERT_EQ(Fg({"device", "add", "--data", data, "--device", "FG-PF-1"}).exit_code, 0);
  auto key = fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                  dir_ / "d.key"});
  ASSERT_EQ(key.exit_code, 0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-key", dir_ / "d.key", "-subj", "/CN=FG-PF-1", "-out", dir_ / "d.csr"})
                .exit_code,
            0);
  auto issued = Fg({"cert", "issue", "--data", data, "--device", "FG-PF-1", "--csr", dir_ / "d.csr"});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  // Opened to the group, the file is refused and nothing is issued.
  ASSERT_EQ(chmod(pass.c_str(), 0640), 0);
  auto refused = Fg({"cert", "issue", "--data", data, "--device", "FG-PF-1", "--csr", dir_ / "d.csr"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.out, HasSubstr("group or other"));
  auto serve = Fg({"serve", "--data", data, "--passphrase-file", pass, "--listen", "127.0.0.1:1"});
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_THAT(serve.out, HasSubstr("group or other"));
}

TEST_F(PassphraseFileTest, InitRefusesAWorldReadableOrMissingFileBeforeWritingAnything) {
  std::string pass = dir_ / "open.pass";
  WriteAll(pass, "secret\n");
  ASSERT_EQ(chmod(pass.c_str(), 0644), 0);
  std::string data = dir_ / "data";
  auto init = Fg({"init", "--data", data, "--passphrase-file", pass});
  EXPECT_EQ(init.exit_code, 4) << init.out;
  EXPECT_THAT(init.out, HasSubstr("0644"));
  EXPECT_FALSE(fs::exists(data));
  auto missing = Fg({"init", "--data", data, "--passphrase-file", dir_ / "nope"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_FALSE(fs::exists(data));
  std::string empty = dir_ / "empty.pass";
  WriteAll(empty, "\n");
  ASSERT_EQ(chmod(empty.c_str(), 0600), 0);
  EXPECT_EQ(Fg({"init", "--data", data, "--passphrase-file", empty}).exit_code, 2);
  EXPECT_FALSE(fs::exists(data));
}

TEST_F(PassphraseFileTest, ServeTakesThePassphraseFileFlag) {
  // init with the environment variable, serve with a file holding the same.
  std::string data = dir_ / "data";
  auto init = Fg({"init", "--data", data}, {"FEMTOGUARD_CA_PASSPHRASE=from the environment"});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  std::string pass = dir_ / "ca.pass";
  WriteAll(pass, "from the environment");
  ASSERT_EQ(chmod(pass.c_str(), 0600), 0);
  int port = FreePort(), tls_port = FreePort();
  Process serve({Femtoguard(), "serve", "--data", data, "--passphrase-file", pass, "--listen",
                 "127.0.0.1:" + std::to_string(port), "--tls-listen", "127.0.0.1:" + std::to_string(tls_port)},
                dir_ / "serve.log");
  EXPECT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port) + "/healthz")) << ReadAll(dir_ / "serve.log");
  serve.Stop();
  // A wrong passphrase in the file: serve does not start.
  WriteAll(pass, "not it");
  ASSERT_EQ(chmod(pass.c_str(), 0600), 0);
  auto wrong = Fg({"serve", "--data", data, "--passphrase-file", pass, "--listen",
                   "127.0.0.1:" + std::to_string(port), "--tls-listen", "127.0.0.1:" + std::to_string(tls_port)});
  EXPECT_NE(wrong.exit_code, 0) << wrong.out;
}

// ---- the issuing CA key in SoftHSM2 ----

constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

class HsmCustodyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kSoftHsmModule)) GTEST_SKIP() << "softhsm2 not installed";
    fs::create_directories(dir_ / "tokens");
    conf_ = dir_ / "softhsm2.conf";
    WriteAll(conf_, "directories.tokendir = " + (dir_ / "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n");
    env_ = {"SOFTHSM2_CONF=" + conf_, "FEMTOGUARD_CA_PASSPHRASE=hsm test passphrase"};
    auto init = fg::testing::Run({"softhsm2-util", "--init-token", "--free", "--label", "fgtest", "--pin", "1234", "--so-pin",
                     "5678"},
                    {}, 60, env_);
    ASSERT_EQ(init.exit_code, 0) << init.out;
    pin_ = dir_ / "pin";
    WriteAll(pin_, "1234\n");
    ASSERT_EQ(chmod(pin_.c_str(), 0600), 0);
    data_ = dir_ / "data";
  }
  RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args, {}, 120, env_);
  }
  RunResult InitHsm(const std::string& uri = "pkcs11:token=fgtest;object=fg-issuing") {
    return Fg({"init", "--data", data_, "--hsm-uri", uri, "--hsm-module", kSoftHsmModule, "--hsm-pin-file", pin_});
  }
  std::string Pub(const std::vector<std::string>& argv) { return fg::testing::Run(argv, {}, 60, env_).out; }

  TempDir dir_;
  std::string conf_, pin_, data_;
  std::vector<std::string> env_;
};

TEST_F(HsmCustodyTest, IssuingKeyLivesInTheTokenAndNeverTouchesDisk) {
  auto init = InitHsm();
  ASSERT_EQ(init.exit_code, 0) << init.out;
  EXPECT_FALSE(fs::exists(data_ + "/ca/issuing.key"));
  EXPECT_THAT(ReadAll(data_ + "/config.yaml"), HasSubstr("pkcs11:token=fgtest;object=fg-issuing"));
  // The token holds the key: sensitive and never extractable.
  auto objects = fg::testing::Run({"pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "fgtest", "--login", "--pin", "1234",
                      "--list-objects", "--type", "privkey"},
                     {}, 60, env_);
  ASSERT_EQ(objects.exit_code, 0) << objects.out;
  EXPECT_THAT(objects.out, HasSubstr("fg-issuing"));
  EXPECT_THAT(objects.out, HasSubstr("never extractable"));
  // No key file in the data dir is the issuing key: every *.key there is
  // decrypted (root under the passphrase, service keys under their secret)
  // and its public half compared with the issuing certificate's.
  std::string issuing_pub =
      Pub({"openssl", "x509", "-in", data_ + "/ca/issuing.crt", "-noout", "-pubkey"});
  ASSERT_THAT(issuing_pub, HasSubstr("PUBLIC KEY"));
  std::string service_secret = ReadAll(data_ + "/secrets/service-keys.secret");
  ASSERT_FALSE(service_secret.empty());
  int keys = 0;
  // Every file of the data dir that holds a PEM private key of any kind.
  for (const auto& e : fs::recursive_directory_iterator(data_)) {
    if (!e.is_regular_file() || ReadAll(e.path().string()).find("PRIVATE KEY-----") == std::string::npos) continue;
    bool root = e.path().filename() == "root.key";
    auto pub = fg::testing::Run({"openssl", "pkey", "-in", e.path().string(), "-passin",
                    root ? "pass:hsm test passphrase" : "pass:" + service_secret, "-pubout"});
    ASSERT_EQ(pub.exit_code, 0) << e.path() << pub.out;
    EXPECT_NE(pub.out, issuing_pub) << e.path();
    ++keys;
  }
  EXPECT_EQ(keys, 4);  // root, ocsp, cmp, tls
}

TEST_F(HsmCustodyTest, CertificatesCrlAndOcspSignedInTheTokenVerifyWithOpenSslAndGnuTls) {
  ASSERT_EQ(InitHsm().exit_code, 0);
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-HSM-1"}).exit_code, 0);
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                 dir_ / "d.key"})
                .exit_code,
            0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-key", dir_ / "d.key", "-subj", "/CN=FG-HSM-1", "-out", dir_ / "d.csr"})
                .exit_code,
            0);
  auto issued = Fg({"cert", "issue", "--data", data_, "--device", "FG-HSM-1", "--csr", dir_ / "d.csr"});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  size_t begin = issued.out.find("-----BEGIN CERTIFICATE-----");
  size_t end = issued.out.find("-----END CERTIFICATE-----");
  ASSERT_NE(begin, std::string::npos) << issued.out;
  ASSERT_NE(end, std::string::npos) << issued.out;
  WriteAll(dir_ / "d.pem", issued.out.substr(begin, end + 26 - begin) + "\n");
  WriteAll(dir_ / "root.pem", Fg({"ca", "cert", "--data", data_, "--root"}).out);
  WriteAll(dir_ / "issuing.pem", Fg({"ca", "cert", "--data", data_}).out);
  WriteAll(dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
  auto verify = fg::testing::Run({"openssl", "verify", "-CAfile", dir_ / "root.pem", "-untrusted", dir_ / "issuing.pem",
                     dir_ / "d.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  WriteAll(dir_ / "leaf-chain.pem", ReadAll(dir_ / "d.pem") + ReadAll(dir_ / "issuing.pem"));
  auto certtool = fg::testing::Run({"certtool", "--verify", "--load-ca-certificate", dir_ / "root.pem", "--infile",
                       dir_ / "leaf-chain.pem"});
  EXPECT_EQ(certtool.exit_code, 0) << certtool.out;
  EXPECT_THAT(certtool.out, HasSubstr("Chain verification output: Verified"));
  // A certificate that the token did not sign does not verify (the check can fail).
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-x509", "-key", dir_ / "d.key", "-subj", "/CN=FG-HSM-1", "-out",
                 dir_ / "self.pem", "-days", "1"})
                .exit_code,
            0);
  EXPECT_NE(fg::testing::Run({"openssl", "verify", "-CAfile", dir_ / "root.pem", "-untrusted", dir_ / "issuing.pem",
                 dir_ / "self.pem"})
                .exit_code,
            0);

  // serve: CMP issuance, the CRL and OCSP, all with the key in the token.
  int port = FreePort(), tls_port = FreePort();
  Process serve({Femtoguard(), "serve", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port),
                 "--tls-listen", "127.0.0.1:" + std::to_string(tls_port)},
                dir_ / "serve.log", env_);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(dir_ / "serve.log");
  ASSERT_EQ(Fg({"device", "add", "--data", data_, "--device", "FG-HSM-2"}).exit_code, 0);
  auto tok = Fg({"device", "token", "--data", data_, "--device", "FG-HSM-2"});
  ASSERT_EQ(tok.exit_code, 0) << tok.out;
  std::smatch m;
  std::regex re("(tok-[0-9a-f]+) ([0-9a-f]+)");
  ASSERT_TRUE(std::regex_search(tok.out, m, re)) << tok.out;
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                 dir_ / "c.key"})
                .exit_code,
            0);
  auto cmp = fg::testing::Run({"openssl", "cmp", "-server", "127.0.0.1:" + std::to_string(port), "-path", "pkix/", "-cmd", "ir",
                  "-ref", m[1], "-secret", "pass:" + std::string(m[2]), "-newkey", dir_ / "c.key", "-subject",
                  "/CN=FG-HSM-2", "-certout", dir_ / "c.pem", "-msg_timeout", "20", "-total_timeout", "30"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.out << ReadAll(dir_ / "serve.log");
  EXPECT_EQ(fg::testing::Run({"openssl", "verify", "-CAfile", dir_ / "root.pem", "-untrusted", dir_ / "issuing.pem",
                 dir_ / "c.pem"})
                .exit_code,
            0);
  auto ocsp = fg::testing::Run({"openssl", "ocsp", "-url", url + "/ocsp", "-issuer", dir_ / "issuing.pem", "-cert", dir_ / "c.pem",
                   "-CAfile", dir_ / "chain.pem", "-no_nonce"});
  EXPECT_THAT(ocsp.out, HasSubstr(": good")) << ocsp.out;
  EXPECT_THAT(ocsp.out, HasSubstr("Response verify OK"));
  // The CRL, signed by the token, verifies against the issuing CA.
  auto crl = fg::testing::Run({"curl", "-sS", "-o", dir_ / "crl.der", url + "/crl"});
  ASSERT_EQ(crl.exit_code, 0) << crl.out;
  auto crl_ok = fg::testing::Run({"openssl", "crl", "-inform", "DER", "-in", dir_ / "crl.der", "-CAfile", dir_ / "chain.pem",
                     "-noout"});
  EXPECT_EQ(crl_ok.exit_code, 0) << crl_ok.out;
  EXPECT_THAT(crl_ok.out, HasSubstr("verify OK"));
  serve.Stop();
}

TEST_F(HsmCustodyTest, WrongPinUnknownTokenOrOpenPinFileIsRefusedBeforeAnythingIsWritten) {
  WriteAll(pin_, "9999");
  ASSERT_EQ(chmod(pin_.c_str(), 0600), 0);
  auto wrong = InitHsm();
  EXPECT_NE(wrong.exit_code, 0) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("PIN"));
  WriteAll(pin_, "1234");
  ASSERT_EQ(chmod(pin_.c_str(), 0600), 0);
  fs::remove_all(data_);
  auto unknown = InitHsm("pkcs11:token=nosuch;object=fg-issuing");
  EXPECT_NE(unknown.exit_code, 0) << unknown.out;
  EXPECT_THAT(unknown.out, HasSubstr("nosuch"));
  fs::remove_all(data_);
  ASSERT_EQ(chmod(pin_.c_str(), 0644), 0);
  auto open = InitHsm();
  EXPECT_EQ(open.exit_code, 4) << open.out;
  EXPECT_FALSE(fs::exists(data_));
  ASSERT_EQ(chmod(pin_.c_str(), 0600), 0);
  auto bad_uri = InitHsm("token=fgtest");
  EXPECT_NE(bad_uri.exit_code, 0);
  // Not one key pair was left in the token by the refused attempts.
  auto objects = fg::testing::Run({"pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "fgtest", "--login", "--pin", "1234",
                      "--list-objects", "--type", "privkey"},
                     {}, 60, env_);
  EXPECT_THAT(objects.out, Not(HasSubstr("fg-issuing")));
}

// ---- offline root ----

class OfflineRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pass_ = dir_ / "root.pass";
    WriteAll(pass_, "root ceremony passphrase\n");
    ASSERT_EQ(chmod(pass_.c_str(), 0600), 0);
    root_ = dir_ / "root";
    node_ = dir_ / "node";
  }
  static RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args, {}, 120);
  }
  std::string PubOf(const std::vector<std::string>& argv) { return fg::testing::Run(argv).out; }
  // init-root, node init with a request, sign, install: the whole ceremony.
  void Ceremony(const std::string& node) {
    auto root = Fg({"ca", "init-root", "--data", root_, "--passphrase-file", pass_});
    ASSERT_EQ(root.exit_code, 0) << root.out;
    auto init = Fg({"init", "--data", node, "--issuing-csr-out", node + ".csr"});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    auto sign = Fg({"ca", "sign-issuing", "--data", root_, "--csr", node + ".csr", "--out", node + ".issuing.pem",
                    "--passphrase-file", pass_});
    ASSERT_EQ(sign.exit_code, 0) << sign.out;
    WriteAll(dir_ / "root.pem", Fg({"ca", "cert", "--data", root_, "--root"}).out);
    auto install = Fg({"ca", "install-issuing", "--data", node, "--cert", node + ".issuing.pem", "--root",
                       dir_ / "root.pem"});
    ASSERT_EQ(install.exit_code, 0) << install.out;
  }
  TempDir dir_;
  std::string pass_, root_, node_;
};

TEST_F(OfflineRootTest, NodeMadeFromAnOfflineRootHasNoRootKeyAndIssuesVerifiableCertificates) {
  Ceremony(node_);
  // The node: no root key, only its issuing and service keys.
  std::vector<std::string> keys;
  for (const auto& e : fs::recursive_directory_iterator(node_)) {
    if (e.is_regular_file() && ReadAll(e.path().string()).find("PRIVATE KEY-----") != std::string::npos) {
      keys.push_back(e.path().filename().string());
    }
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"cmp.key", "issuing.key", "ocsp.key", "tls.key"}));
  std::string node_pass = ReadAll(node_ + "/secrets/ca.passphrase");
  std::string issuing_key_pub =
      PubOf({"openssl", "pkey", "-in", node_ + "/ca/issuing.key", "-passin", "pass:" + node_pass, "-pubout"});
  EXPECT_EQ(issuing_key_pub, PubOf({"openssl", "x509", "-in", node_ + "/ca/issuing.crt", "-noout", "-pubkey"}));
  EXPECT_NE(issuing_key_pub, PubOf({"openssl", "x509", "-in", dir_ / "root.pem", "-noout", "-pubkey"}));
  // The root dir: the root and nothing of a node (no store, no issuing key).
  EXPECT_TRUE(fs::exists(root_ + "/ca/root.key"));
  EXPECT_FALSE(fs::exists(root_ + "/ca/issuing.key"));
  EXPECT_FALSE(fs::exists(root_ + "/store.db"));

  // The node issues; OpenSSL and GnuTLS verify the chain to the root.
  ASSERT_EQ(Fg({"device", "add", "--data", node_, "--device", "FG-OR-1"}).exit_code, 0);
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                 dir_ / "d.key"})
                .exit_code,
            0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-key", dir_ / "d.key", "-subj", "/CN=FG-OR-1", "-out", dir_ / "d.csr"})
                .exit_code,
            0);
  auto issued = Fg({"cert", "issue", "--data", node_, "--device", "FG-OR-1", "--csr", dir_ / "d.csr"});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  size_t begin = issued.out.find("-----BEGIN CERTIFICATE-----");
  size_t end = issued.out.find("-----END CERTIFICATE-----");
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos) << issued.out;
  WriteAll(dir_ / "d.pem", issued.out.substr(begin, end + 26 - begin) + "\n");
  auto verify = fg::testing::Run({"openssl", "verify", "-CAfile", dir_ / "root.pem", "-untrusted", node_ + "/ca/issuing.crt",
                     dir_ / "d.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  WriteAll(dir_ / "leaf-chain.pem", ReadAll(dir_ / "d.pem") + ReadAll(node_ + "/ca/issuing.crt"));
  auto certtool = fg::testing::Run({"certtool", "--verify", "--load-ca-certificate", dir_ / "root.pem", "--infile",
                       dir_ / "leaf-chain.pem"});
  EXPECT_EQ(certtool.exit_code, 0) << certtool.out;

  // The root CRL, signed offline, verifies under the root and lists what it is told.
  std::string serial = PubOf({"openssl", "x509", "-in", node_ + "/ca/issuing.crt", "-noout", "-serial"});
  serial = serial.substr(serial.find('=') + 1);
  serial.erase(serial.find_last_not_of("\n") + 1);
  auto crl = Fg({"ca", "root-crl", "--data", root_, "--out", dir_ / "root.crl", "--passphrase-file", pass_});
  ASSERT_EQ(crl.exit_code, 0) << crl.out;
  auto crl_ok = fg::testing::Run({"openssl", "crl", "-inform", "DER", "-in", dir_ / "root.crl", "-CAfile", dir_ / "root.pem",
                     "-noout", "-text"});
  EXPECT_EQ(crl_ok.exit_code, 0) << crl_ok.out;
  EXPECT_THAT(crl_ok.out, HasSubstr("verify OK"));
  EXPECT_THAT(crl_ok.out, HasSubstr("No Revoked Certificates"));
  auto crl2 = Fg({"ca", "root-crl", "--data", root_, "--out", dir_ / "root2.crl", "--passphrase-file", pass_,
                  "--revoked-serial", serial});
  ASSERT_EQ(crl2.exit_code, 0) << crl2.out;
  auto text2 = fg::testing::Run({"openssl", "crl", "-inform", "DER", "-in", dir_ / "root2.crl", "-noout", "-text"}).out;
  EXPECT_THAT(text2, HasSubstr(serial));
  EXPECT_THAT(text2, HasSubstr("X509v3 CRL Number: \n                2"));
}

TEST_F(OfflineRootTest, WrongCertificatesAndMissingRootKeyAreRefusedAndChangeNothing) {
  Ceremony(node_);
  // A second node whose request was never signed: a certificate made for
  // the first node's key is not installed on it.
  std::string other = dir_ / "other";
  ASSERT_EQ(Fg({"init", "--data", other, "--issuing-csr-out", other + ".csr"}).exit_code, 0);
  auto wrong_key = Fg({"ca", "install-issuing", "--data", other, "--cert", node_ + ".issuing.pem", "--root",
                       dir_ / "root.pem"});
  EXPECT_EQ(wrong_key.exit_code, 2) << wrong_key.out;
  EXPECT_THAT(wrong_key.out, HasSubstr("not for this node's issuing key"));
  EXPECT_FALSE(fs::exists(other + "/ca/issuing.crt"));
  EXPECT_FALSE(fs::exists(other + "/ca/ocsp.key"));
  // A root that did not sign it.
  std::string root2 = dir_ / "root2";
  ASSERT_EQ(Fg({"ca", "init-root", "--data", root2, "--passphrase-file", pass_}).exit_code, 0);
  WriteAll(dir_ / "root2.pem", Fg({"ca", "cert", "--data", root2, "--root"}).out);
  ASSERT_EQ(Fg({"ca", "sign-issuing", "--data", root_, "--csr", other + ".csr", "--out", other + ".issuing.pem",
                "--passphrase-file", pass_})
                .exit_code,
            0);
  auto wrong_root = Fg({"ca", "install-issuing", "--data", other, "--cert", other + ".issuing.pem", "--root",
                        dir_ / "root2.pem"});
  EXPECT_EQ(wrong_root.exit_code, 2) << wrong_root.out;
  EXPECT_FALSE(fs::exists(other + "/ca/issuing.crt"));
  // A node cannot sign an issuing CA: it has no root key.
  auto no_root = Fg({"ca", "sign-issuing", "--data", node_, "--csr", other + ".csr", "--out", dir_ / "x.pem"});
  EXPECT_EQ(no_root.exit_code, 3) << no_root.out;
  EXPECT_FALSE(fs::exists(dir_ / "x.pem"));
  // A wrong root passphrase signs nothing.
  std::string bad = dir_ / "bad.pass";
  WriteAll(bad, "not the ceremony passphrase");
  ASSERT_EQ(chmod(bad.c_str(), 0600), 0);
  auto bad_pass = Fg({"ca", "sign-issuing", "--data", root_, "--csr", other + ".csr", "--out", dir_ / "y.pem",
                      "--passphrase-file", bad});
  EXPECT_NE(bad_pass.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "y.pem"));
  // A root without an operator passphrase is not made.
  auto no_pass = Fg({"ca", "init-root", "--data", dir_ / "root3"});
  EXPECT_EQ(no_pass.exit_code, 2) << no_pass.out;
  EXPECT_FALSE(fs::exists(dir_ / "root3"));
}

}  // namespace
}  // namespace fg::testing
