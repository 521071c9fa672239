// Backup and restore as docs/backup.md tells an operator to do it: an online
// SQLite backup of a serving node, a revocation made after the backup, a
// restore (which, as documented, has lost that revocation: the device's OCSP
// answer is good again), and `cert revoke --from-crl` with the CRL published
// after the backup, which closes the door again. A CRL some other CA signed
// is refused and changes nothing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "testing/harness.h"

namespace fg::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return fg::testing::Run(args, {}, 60);
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    do tls_port_ = FreePort(); while (tls_port_ == port_);
    data_ = dir_ / "data";
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_), "--tls-listen",
                    "127.0.0.1:" + std::to_string(tls_port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(dir_ / "issuing.pem", Fg({"ca", "cert", "--data", data_}).out);
    WriteAll(dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
  }
  void Serve(const std::string& data) {
    serve_ = std::make_unique<Process>(std::vector<std::string>{Femtoguard(), "serve", "--data", data},
                                       dir_ / "serve.log");
    ASSERT_TRUE(WaitForHttp(Url("/healthz"))) << ReadAll(dir_ / "serve.log");
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  // Issues a certificate to a new active device; returns its PEM file.
  std::string Issue(const std::string& device) {
    EXPECT_EQ(Fg({"device", "add", "--data", data_, "--device", device, "--status", "active"}).exit_code, 0);
    std::string key = dir_ / (device + ".key"), csr = dir_ / (device + ".csr"), pem = dir_ / (device + ".pem");
    auto req = fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=" + device});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto issued = fg::testing::Run({Femtoguard(), "cert", "issue", "--data", data_, "--device", device, "--csr", csr});
    EXPECT_EQ(issued.exit_code, 0) << issued.out;
    const std::string end = "-----END CERTIFICATE-----\n";
    size_t from = issued.out.find("-----BEGIN CERTIFICATE-----"), to = issued.out.find(end);
    EXPECT_NE(to, std::string::npos) << issued.out;
    if (from != std::string::npos && to != std::string::npos) WriteAll(pem, issued.out.substr(from, to + end.size() - from));
    return pem;
  }
  std::string Serial(const std::string& pem) {
    auto r = fg::testing::Run({"openssl", "x509", "-in", pem, "-noout", "-serial"});
    std::string s = r.out.substr(r.out.find('=') + 1);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  // "good", "revoked" or what openssl said.
  std::string Ocsp(const std::string& pem) {
    auto r = fg::testing::Run({"openssl", "ocsp", "-url", Url("/ocsp"), "-issuer", dir_ / "issuing.pem", "-CAfile",
                  dir_ / "chain.pem", "-cert", pem});
    if (r.out.find(": good") != std::string::npos) return "good";
    if (r.out.find(": revoked") != std::string::npos) return "revoked";
    return r.out;
  }

  TempDir dir_;
  std::string data_;
  int port_ = 0, tls_port_ = 0;
  std::unique_ptr<Process> serve_;
};

TEST_F(BackupTest, RestoreLosesLaterRevocationsAndTheSavedCrlBringsThemBack) {
  std::string a = Issue("FG-A"), b = Issue("FG-B");
  Serve(data_);
  ASSERT_EQ(Ocsp(a), "good");

  // The backup, online, exactly as docs/backup.md says.
  const std::string backup = dir_ / "backup";
  fs::create_directories(backup);
  auto snap = fg::testing::Run({"sqlite3", data_ + "/store.db", ".backup '" + backup + "/store.db'"});
  ASSERT_EQ(snap.exit_code, 0) << snap.out;
  EXPECT_EQ(fg::testing::Run({"sqlite3", backup + "/store.db", "PRAGMA integrity_check"}).out, "ok\n");
  for (const char* part : {"config.yaml", "ca", "secrets"}) {
    fs::copy(fs::path(data_) / part, fs::path(backup) / part, fs::copy_options::recursive);
  }

  // After the backup: FG-A is revoked, and the CRL says so.
  auto revoke = Fg({"cert", "revoke", "--data", data_, "--serial", Serial(a), "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  ASSERT_EQ(Ocsp(a), "revoked");
  const std::string crl = dir_ / "after.crl";
  ASSERT_EQ(fg::testing::Run({"curl", "-s", "-o", crl, Url("/crl")}).exit_code, 0);

  // Restore: the node runs from the backup.
  serve_.reset();
  Serve(backup);
  EXPECT_EQ(Ocsp(a), "good") << "the restore lost the revocation, as documented";
  EXPECT_EQ(Ocsp(b), "good");

  // A CRL from another CA (a throwaway one, with the same name as ours)
  // listing FG-B is refused and changes nothing.
  const std::string ca_key = dir_ / "other.key", ca_crt = dir_ / "other.crt";
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", ca_key, "-out", ca_crt, "-subj", "/O=femtoguard/CN=femtoguard Issuing CA", "-days", "2",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"})
                .exit_code,
            0);
  WriteAll(dir_ / "index.txt", "R\t300101000000Z\t261201000000Z,keyCompromise\t" + Serial(b) + "\tunknown\t/CN=FG-B\n");
  WriteAll(dir_ / "ca.cnf", "[ca]\ndefault_ca=d\n[d]\ndatabase=" + dir_ / "index.txt" +
                                "\ndefault_md=sha256\ndefault_crl_days=1\ncrlnumber=" + dir_ / "crlnumber\n");
  WriteAll(dir_ / "crlnumber", "01\n");
  auto gen = fg::testing::Run({"openssl", "ca", "-gencrl", "-config", dir_ / "ca.cnf", "-keyfile", ca_key, "-cert", ca_crt, "-out",
                  dir_ / "other.crl"});
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  auto refused = Fg({"cert", "revoke", "--data", backup, "--from-crl", dir_ / "other.crl"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("is not signed by a CA of this data dir"));
  EXPECT_EQ(Ocsp(b), "good");

  // The CRL published after the backup brings the revocation back, at once
  // on the running node; re-applying it changes nothing more.
  auto reapply = Fg({"cert", "revoke", "--data", backup, "--from-crl", crl});
  ASSERT_EQ(reapply.exit_code, 0) << reapply.out;
  EXPECT_THAT(reapply.out, HasSubstr("1 revoked, 0 already revoked, 0 not in this store"));
  EXPECT_EQ(Ocsp(a), "revoked");
  EXPECT_EQ(Ocsp(b), "good");
  auto again = Fg({"cert", "revoke", "--data", backup, "--from-crl", crl});
  EXPECT_THAT(again.out, HasSubstr("0 revoked, 1 already revoked"));
  auto audit = Fg({"audit", "list", "--data", backup, "--subject", Serial(a)});
  EXPECT_THAT(audit.out, HasSubstr("--from-crl"));
}

}  // namespace
}  // namespace fg::testing
