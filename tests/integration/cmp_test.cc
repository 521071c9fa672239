// CMPv2 enrolment with the real `openssl cmp` client against `femtoguard
// serve`: what must work, and what must be refused with a CMP error the
// client prints while the store stays unchanged.

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CmpTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  // Enrols `device` with a fresh bootstrap token; returns {cert, key}.
  static std::pair<std::string, std::string> EnrolWithToken(const std::string& device) {
    AddDevice(device);
    auto [ref, secret] = Token(device);
    std::string key = NewKey(device + ".key"), cert = P(device + ".pem");
    auto r = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject",
                  "/CN=" + device, "-certout", cert});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return {cert, key};
  }

  // A vendor (manufacturer) CA and a device certificate from it whose
  // subject carries the unit serial, as TS 33.310 vendor certificates do.
  static void MakeVendorCa() {
    if (!ReadAll(P("vendor-ca.pem")).empty()) return;
    auto r = Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", P("vendor-ca.key"), "-out", P("vendor-ca.pem"), "-subj", "/O=FemtoVendor/CN=FemtoVendor CA",
                 "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                 "keyUsage=critical,keyCertSign,cRLSign"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto add = Fg({"vendor-ca", "add", "--data", data_, "--cert", P("vendor-ca.pem")});
    ASSERT_EQ(add.exit_code, 0) << add.out;
  }
  static std::pair<std::string, std::string> VendorCert(const std::string& device, const std::string& ca = "vendor-ca") {
    std::string key = NewKey(device + ".vendor.key"), csr = P(device + ".vendor.csr"),
                cert = P(device + ".vendor.pem"), ext = P(device + ".ext");
    WriteAll(ext, "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n");
    EXPECT_EQ(Sh({"openssl", "req", "-new", "-key", key, "-out", csr, "-subj",
                  "/O=FemtoVendor/CN=FemtoVendor HNB/serialNumber=" + device})
                  .exit_code,
              0);
    auto r = Sh({"openssl", "x509", "-req", "-in", csr, "-CA", P(ca + ".pem"), "-CAkey", P(ca + ".key"),
                 "-CAcreateserial", "-days", "3650", "-extfile", ext, "-out", cert});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return {cert, key};
  }
};

TEST_F(CmpTest, IrWithBootstrapTokenIssuesUniqueCertificate) {
  auto [cert, key] = EnrolWithToken("FG-CMP-T1");
  EXPECT_THAT(Subject(cert), HasSubstr("CN=FG-CMP-T1"));
  auto verify = Sh({"openssl", "verify", "-CAfile", P("chain.pem"), cert});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_EQ(CertCount("FG-CMP-T1"), 1u);
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "active"}).out, HasSubstr("FG-CMP-T1"));
  EXPECT_THAT(OcspStatus(cert), HasSubstr(": good"));
}

TEST_F(CmpTest, ReusedTokenAndWrongSecretAreRefusedAndChangeNothing) {
  AddDevice("FG-CMP-T2");
  auto [ref, secret] = Token("FG-CMP-T2");
  std::string key = NewKey("t2.key");
  // Wrong secret: the MAC does not verify.
  auto wrong = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:0000" + secret.substr(4), "-newkey", key,
                    "-subject", "/CN=FG-CMP-T2", "-certout", P("t2.pem"), "-unprotected_errors"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.out, HasSubstr("error"));
  EXPECT_EQ(CertCount("FG-CMP-T2"), 0u);
  // The token was not consumed by the failed attempt.
  auto ok = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject",
                 "/CN=FG-CMP-T2", "-certout", P("t2.pem")});
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  // Reuse: refused, the client prints our reason, nothing new is issued.
  std::string key2 = NewKey("t2b.key");
  auto reuse = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key2, "-subject",
                    "/CN=FG-CMP-T2", "-certout", P("t2b.pem"), "-unprotected_errors"});
  EXPECT_NE(reuse.exit_code, 0);
  EXPECT_THAT(reuse.out, HasSubstr("bootstrap token already used"));
  EXPECT_EQ(CertCount("FG-CMP-T2"), 1u);
}

TEST_F(CmpTest, TokenForAnotherDeviceCannotNameThisOne) {
  AddDevice("FG-CMP-T3");
  AddDevice("FG-CMP-T4");
  auto [ref, secret] = Token("FG-CMP-T3");
  auto r = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", NewKey("t3.key"), "-subject",
                "/CN=FG-CMP-T4", "-certout", P("t3.pem"), "-unprotected_errors"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("does not match"));
  EXPECT_EQ(CertCount("FG-CMP-T4"), 0u);
  EXPECT_EQ(CertCount("FG-CMP-T3"), 0u);
}

TEST_F(CmpTest, IrWithVendorCertificateOnceOnly) {
  MakeVendorCa();
  AddDevice("FG-CMP-V1");
  auto [vcert, vkey] = VendorCert("FG-CMP-V1");
  auto r = Cmp({"-cmd", "ir", "-cert", vcert, "-key", vkey, "-newkey", NewKey("v1.key"), "-subject",
                "/CN=FG-CMP-V1", "-trusted", P("root.pem"), "-certout", P("v1.pem")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(Subject(P("v1.pem")), HasSubstr("CN=FG-CMP-V1"));
  // The same vendor certificate again (a cloned box): refused and alerted.
  auto again = Cmp({"-cmd", "ir", "-cert", vcert, "-key", vkey, "-newkey", NewKey("v1b.key"), "-subject",
                    "/CN=FG-CMP-V1", "-trusted", P("root.pem"), "-certout", P("v1b.pem"), "-unprotected_errors"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.out, HasSubstr("already used"));
  EXPECT_EQ(CertCount("FG-CMP-V1"), 1u);
  auto audit = Fg({"audit", "list", "--data", data_, "--subject", "FG-CMP-V1"}).out;
  EXPECT_THAT(audit, HasSubstr("cert.clone"));
}

TEST_F(CmpTest, VendorCertificateOfUnregisteredDeviceOrUntrustedVendorIsRefused) {
  MakeVendorCa();
  auto [vcert, vkey] = VendorCert("FG-CMP-NOBODY");
  auto r = Cmp({"-cmd", "ir", "-cert", vcert, "-key", vkey, "-newkey", NewKey("nb.key"), "-subject",
                "/CN=FG-CMP-NOBODY", "-trusted", P("root.pem"), "-certout", P("nb.pem"), "-unprotected_errors"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("not pre-registered"));

  // A vendor CA nobody trusted.
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", P("rogue-ca.key"), "-out", P("rogue-ca.pem"), "-subj", "/CN=Rogue CA", "-days", "30",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"})
                .exit_code,
            0);
  AddDevice("FG-CMP-R1");
  auto [rcert, rkey] = VendorCert("FG-CMP-R1", "rogue-ca");
  auto rogue = Cmp({"-cmd", "ir", "-cert", rcert, "-key", rkey, "-newkey", NewKey("r1.key"), "-subject",
                    "/CN=FG-CMP-R1", "-trusted", P("root.pem"), "-certout", P("r1.pem"), "-unprotected_errors"});
  EXPECT_NE(rogue.exit_code, 0);
  EXPECT_EQ(CertCount("FG-CMP-R1"), 0u);
}

TEST_F(CmpTest, KurRenewsWithNewKeyAndRefusesOldKeyAndRevokedCertificate) {
  auto [cert, key] = EnrolWithToken("FG-CMP-K1");
  // Old key again: refused (one key, one certificate).
  auto same_key = Cmp({"-cmd", "kur", "-cert", cert, "-key", key, "-newkey", key, "-trusted", P("root.pem"),
                       "-certout", P("k1-same.pem"), "-unprotected_errors"});
  EXPECT_NE(same_key.exit_code, 0);
  EXPECT_THAT(same_key.out, HasSubstr("new key"));
  EXPECT_EQ(CertCount("FG-CMP-K1"), 1u);

  std::string key2 = NewKey("k1b.key"), cert2 = P("k1b.pem");
  auto kur = Cmp({"-cmd", "kur", "-cert", cert, "-key", key, "-newkey", key2, "-trusted", P("root.pem"),
                  "-certout", cert2});
  ASSERT_EQ(kur.exit_code, 0) << kur.out;
  EXPECT_THAT(Subject(cert2), HasSubstr("CN=FG-CMP-K1"));
  EXPECT_EQ(CertCount("FG-CMP-K1"), 2u);
  // The old certificate is superseded right away.
  EXPECT_THAT(OcspStatus(cert), HasSubstr(": revoked"));
  EXPECT_THAT(OcspStatus(cert2), HasSubstr(": good"));

  // kur signed with the superseded (revoked) certificate: refused.
  auto revoked = Cmp({"-cmd", "kur", "-cert", cert, "-key", key, "-newkey", NewKey("k1c.key"), "-trusted",
                      P("root.pem"), "-certout", P("k1c.pem"), "-unprotected_errors"});
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_THAT(revoked.out, HasSubstr("revoked"));
  EXPECT_EQ(CertCount("FG-CMP-K1"), 2u);
}

TEST_F(CmpTest, RrRevokesOwnCertificateWithReason) {
  auto [cert, key] = EnrolWithToken("FG-CMP-RR");
  auto rr = Cmp({"-cmd", "rr", "-cert", cert, "-key", key, "-oldcert", cert, "-revreason", "1", "-trusted",
                 P("root.pem")});
  EXPECT_EQ(rr.exit_code, 0) << rr.out;
  auto status = OcspStatus(cert);
  EXPECT_THAT(status, HasSubstr(": revoked"));
  EXPECT_THAT(status, HasSubstr("keyCompromise"));
}

TEST_F(CmpTest, GenmReturnsCaCertificates) {
  auto [cert, key] = EnrolWithToken("FG-CMP-G1");
  auto genm = Cmp({"-cmd", "genm", "-cert", cert, "-key", key, "-trusted", P("root.pem")});
  EXPECT_EQ(genm.exit_code, 0) << genm.out;
  EXPECT_THAT(genm.out, HasSubstr("genp"));
}

TEST_F(CmpTest, P10crWithKeyBoundToAnotherDeviceIsRefused) {
  auto [cert, key] = EnrolWithToken("FG-CMP-P1");
  AddDevice("FG-CMP-P2");
  auto [ref, secret] = Token("FG-CMP-P2");
  // A CSR for P2 made with P1's key: the shared-key failure.
  ASSERT_EQ(Sh({"openssl", "req", "-new", "-key", key, "-subj", "/CN=FG-CMP-P2", "-out", P("p2.csr")}).exit_code, 0);
  auto r = Cmp({"-cmd", "p10cr", "-ref", ref, "-secret", "pass:" + secret, "-csr", P("p2.csr"), "-certout",
                P("p2.pem"), "-unprotected_errors"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("bound to another device"));
  EXPECT_EQ(CertCount("FG-CMP-P2"), 0u);
}

TEST_F(CmpTest, TamperedMessageIsRefused) {
  AddDevice("FG-CMP-X1");
  auto [ref, secret] = Token("FG-CMP-X1");
  std::string key = NewKey("x1.key");
  // Let the client build a genuine ir, then flip one byte inside its body.
  auto make = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject",
                   "/CN=FG-CMP-X1", "-reqout", P("x1.req"), "-certout", P("x1-unused.pem"), "-server", "127.0.0.1:1",
                   "-msg_timeout", "1", "-total_timeout", "2"});
  std::string req = ReadAll(P("x1.req"));
  ASSERT_GT(req.size(), 200u) << make.out;
  req[req.size() / 2] ^= 0x01;
  WriteAll(P("x1-tampered.req"), req);
  auto r = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key, "-subject",
                "/CN=FG-CMP-X1", "-reqin", P("x1-tampered.req"), "-certout", P("x1.pem"), "-unprotected_errors"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CertCount("FG-CMP-X1"), 0u);
  // And garbage over HTTP: 400, server keeps serving.
  auto garbage = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                     "Content-Type: application/pkixcmp", "--data-binary", "not a PKIMessage", url_ + "/pkix/"});
  EXPECT_EQ(garbage.out, "400");
  EXPECT_TRUE(WaitForHttp(url_ + "/healthz", 2000));
}

}  // namespace
}  // namespace fg::testing
