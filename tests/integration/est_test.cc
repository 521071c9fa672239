// EST (RFC 7030) against `femtoguard serve` with the real clients a device
// or an installer would use: curl with the RFC 7030 media types over TLS
// (server checked against the CA chain, client certificates where EST wants
// them), and openssl for CSRs, base64 and PKCS#7. What must work, and what
// must be refused with the right status while the store stays unchanged.

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class EstTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  // A vendor (manufacturer) CA trusted for initial enrolment, and a unit
  // certificate from it whose subject carries the device id as
  // serialNumber, as TS 33.310 vendor certificates do.
  static void MakeVendorCa() {
    if (!ReadAll(P("vendor-ca.pem")).empty()) return;
    auto r = Sh({"openssl",
                 "req",
                 "-x509",
                 "-newkey",
                 "ec",
                 "-pkeyopt",
                 "ec_paramgen_curve:P-256",
                 "-nodes",
                 "-keyout",
                 P("vendor-ca.key"),
                 "-out",
                 P("vendor-ca.pem"),
                 "-subj",
                 "/O=FemtoVendor/CN=FemtoVendor CA",
                 "-days",
                 "3650",
                 "-addext",
                 "basicConstraints=critical,CA:TRUE",
                 "-addext",
                 "keyUsage=critical,keyCertSign,cRLSign"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto add = Fg({"vendor-ca", "add", "--data", data_, "--cert", P("vendor-ca.pem")});
    ASSERT_EQ(add.exit_code, 0) << add.out;
  }
  static std::pair<std::string, std::string> VendorCert(const std::string& device) {
    std::string key = NewKey(device + ".vendor.key"), csr = P(device + ".vendor.csr"),
                cert = P(device + ".vendor.pem"), ext = P(device + ".vendor.ext");
    WriteAll(ext,
             "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:"
             "FALSE\nextendedKeyUsage=clientAuth\n");
    EXPECT_EQ(Sh({"openssl", "req", "-new", "-key", key, "-out", csr, "-subj",
                  "/O=FemtoVendor/CN=FemtoVendor HNB/serialNumber=" + device})
                  .exit_code,
              0);
    auto r =
        Sh({"openssl", "x509", "-req", "-in", csr, "-CA", P("vendor-ca.pem"), "-CAkey",
            P("vendor-ca.key"), "-CAcreateserial", "-days", "3650", "-extfile", ext, "-out", cert});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return {cert, key};
  }

  static std::vector<std::string> ClientCert(const std::string& cert, const std::string& key) {
    return {"--cert", cert, "--key", key};
  }
};

TEST_F(EstTest, CaCertsIsCertsOnlyPkcs7WithIssuingAndRootCa) {
  auto x = Exchange({Est("cacerts")});
  ASSERT_EQ(x.status, 200) << x.curl_out;
  EXPECT_EQ(x.content_type, "application/pkcs7-mime");
  EXPECT_THAT(x.Headers(), HasSubstr("Content-Transfer-Encoding: base64"));
  auto pem = P7ToPem(x.body_path, P("cacerts.pem"));
  ASSERT_EQ(pem.exit_code, 0) << pem.out;
  std::string certs = ReadAll(P("cacerts.pem"));
  EXPECT_THAT(certs, HasSubstr("Issuing CA"));
  EXPECT_THAT(certs, HasSubstr("Root CA"));
  // The very certificates `ca cert` prints.
  auto split =
      Sh({"openssl", "x509", "-in", P("cacerts.pem"), "-noout", "-fingerprint", "-sha256"});
  auto issuing =
      Sh({"openssl", "x509", "-in", P("issuing.pem"), "-noout", "-fingerprint", "-sha256"});
  EXPECT_EQ(split.out, issuing.out);  // the first one is the issuing CA
}

TEST_F(EstTest, CsrAttrsAsksForEcdsaWithSha256) {
  auto x = Exchange({Est("csrattrs")});
  ASSERT_EQ(x.status, 200) << x.curl_out;
  EXPECT_EQ(x.content_type, "application/csrattrs");
  ASSERT_EQ(
      Sh({"openssl", "base64", "-d", "-A", "-in", x.body_path, "-out", P("csrattrs.der")}).exit_code,
      0);
  auto parsed = Sh({"openssl", "asn1parse", "-inform", "DER", "-in", P("csrattrs.der")});
  ASSERT_EQ(parsed.exit_code, 0) << parsed.out;
  EXPECT_THAT(parsed.out, HasSubstr(":ecdsa-with-SHA256"));
  EXPECT_THAT(parsed.out, HasSubstr(":prime256v1"));
}

TEST_F(EstTest, SimpleEnrollWithBootstrapTokenIssuesTheDeviceItsCertificate) {
  AddDevice("FG-EST-T1");
  auto [ref, secret] = Token("FG-EST-T1");
  std::string key = NewKey("est-t1.key"), cert = P("est-t1.pem");
  auto x = EstPost("simpleenroll", EstCsr(key, "FG-EST-T1"), {"-u", ref + ":" + secret});
  ASSERT_EQ(x.status, 200) << x.curl_out << x.Body();
  EXPECT_EQ(x.content_type, "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_THAT(x.Headers(), HasSubstr("Content-Transfer-Encoding: base64"));
  ASSERT_EQ(P7ToPem(x.body_path, cert).exit_code, 0);
  EXPECT_THAT(Subject(cert), HasSubstr("CN=FG-EST-T1"));
  // Over the key of the CSR.
  EXPECT_EQ(Sh({"openssl", "x509", "-in", cert, "-noout", "-pubkey"}).out,
            Sh({"openssl", "pkey", "-in", key, "-pubout"}).out);
  auto verify = Sh({"openssl", "verify", "-CAfile", P("chain.pem"), cert});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_EQ(CertCount("FG-EST-T1"), 1u);
  EXPECT_THAT(OcspStatus(cert), HasSubstr(": good"));
  EXPECT_THAT(Fg({"device", "list", "--data", data_, "--status", "active"}).out,
              HasSubstr("FG-EST-T1"));
}

TEST_F(EstTest, WrongSecretIs401AndReusedTokenIs403AndNeitherIssues) {
  AddDevice("FG-EST-T2");
  auto [ref, secret] = Token("FG-EST-T2");
  std::string key = NewKey("est-t2.key");
  std::string csr = EstCsr(key, "FG-EST-T2");
  auto wrong = EstPost("simpleenroll", csr, {"-u", ref + ":0000" + secret.substr(4)});
  EXPECT_EQ(wrong.status, 401) << wrong.curl_out;
  EXPECT_THAT(wrong.Headers(), HasSubstr("WWW-Authenticate: Basic realm=\"femtoguard EST\""));
  EXPECT_EQ(CertCount("FG-EST-T2"), 0u);
  // An unknown token reference: the same answer, nothing to tell apart.
  auto unknown = EstPost("simpleenroll", csr, {"-u", "tok-0000000000000000:" + secret});
  EXPECT_EQ(unknown.status, 401);

  // The failed attempts did not consume the token.
  auto ok = EstPost("simpleenroll", csr, {"-u", ref + ":" + secret});
  ASSERT_EQ(ok.status, 200) << ok.Body();
  EXPECT_EQ(CertCount("FG-EST-T2"), 1u);

  // Reuse, even with a new key: refused with the reason.
  auto reuse = EstPost("simpleenroll", EstCsr(NewKey("est-t2b.key"), "FG-EST-T2"),
                       {"-u", ref + ":" + secret});
  EXPECT_EQ(reuse.status, 403);
  EXPECT_THAT(reuse.Body(), HasSubstr("bootstrap token already used"));
  EXPECT_EQ(CertCount("FG-EST-T2"), 1u);
}

TEST_F(EstTest, SimpleEnrollWithoutCredentialAsksForBasicAuth) {
  AddDevice("FG-EST-N1");
  auto x = EstPost("simpleenroll", EstCsr(NewKey("est-n1.key"), "FG-EST-N1"));
  EXPECT_EQ(x.status, 401);
  EXPECT_THAT(x.Headers(), HasSubstr("WWW-Authenticate: Basic realm=\"femtoguard EST\""));
  EXPECT_EQ(CertCount("FG-EST-N1"), 0u);
}

TEST_F(EstTest, TokenOfAnotherDeviceCannotNameThisOne) {
  AddDevice("FG-EST-T3");
  AddDevice("FG-EST-T4");
  auto [ref, secret] = Token("FG-EST-T3");
  auto x = EstPost("simpleenroll", EstCsr(NewKey("est-t3.key"), "FG-EST-T4"),
                   {"-u", ref + ":" + secret});
  EXPECT_EQ(x.status, 403);
  EXPECT_THAT(x.Body(), HasSubstr("does not match"));
  EXPECT_EQ(CertCount("FG-EST-T3"), 0u);
  EXPECT_EQ(CertCount("FG-EST-T4"), 0u);
}

TEST_F(EstTest, MalformedBodiesAre400AndConsumeNothing) {
  AddDevice("FG-EST-M1");
  auto [ref, secret] = Token("FG-EST-M1");
  std::vector<std::string> auth = {"-u", ref + ":" + secret};
  WriteAll(P("not-base64.b64"), "this is *not* base64!\n");
  EXPECT_EQ(EstPost("simpleenroll", P("not-base64.b64"), auth).status, 400);
  WriteAll(P("not-csr.b64"), "aGVsbG8gd29ybGQ=\n");  // "hello world"
  EXPECT_EQ(EstPost("simpleenroll", P("not-csr.b64"), auth).status, 400);
  // A CSR whose signature does not verify: one byte of the signature flipped.
  std::string key = NewKey("est-m1.key");
  std::string csr = EstCsr(key, "FG-EST-M1");
  std::string der = ReadAll(csr.substr(0, csr.size() - 4) + ".der");
  ASSERT_GT(der.size(), 20u);
  der[der.size() - 10] ^= 0x01;
  WriteAll(P("bad-sig.der"), der);
  ASSERT_EQ(Sh({"openssl", "base64", "-in", P("bad-sig.der"), "-out", P("bad-sig.b64")}).exit_code,
            0);
  auto bad_sig = EstPost("simpleenroll", P("bad-sig.b64"), auth);
  EXPECT_EQ(bad_sig.status, 400);
  EXPECT_THAT(bad_sig.Body(), HasSubstr("signature"));
  // Not application/pkcs10.
  auto wrong_type = Exchange({"-H", "Content-Type: application/json", "--data-binary", "@" + csr,
                              "-u", ref + ":" + secret, Est("simpleenroll")});
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_EQ(CertCount("FG-EST-M1"), 0u);
  // The token survived all of it.
  EXPECT_EQ(EstPost("simpleenroll", csr, auth).status, 200);
  EXPECT_EQ(CertCount("FG-EST-M1"), 1u);
}

TEST_F(EstTest, SimpleEnrollWithVendorCertificateWorksOnceOnly) {
  MakeVendorCa();
  AddDevice("FG-EST-V1");
  auto [vcert, vkey] = VendorCert("FG-EST-V1");
  auto x =
      EstPost("simpleenroll", EstCsr(NewKey("est-v1.key"), "FG-EST-V1"), ClientCert(vcert, vkey));
  ASSERT_EQ(x.status, 200) << x.curl_out << x.Body();
  ASSERT_EQ(P7ToPem(x.body_path, P("est-v1.pem")).exit_code, 0);
  EXPECT_THAT(Subject(P("est-v1.pem")), HasSubstr("CN=FG-EST-V1"));
  EXPECT_EQ(CertCount("FG-EST-V1"), 1u);

  // The same vendor certificate again (a cloned box): refused and alerted.
  auto again =
      EstPost("simpleenroll", EstCsr(NewKey("est-v1b.key"), "FG-EST-V1"), ClientCert(vcert, vkey));
  EXPECT_EQ(again.status, 403);
  EXPECT_THAT(again.Body(), HasSubstr("already used"));
  EXPECT_EQ(CertCount("FG-EST-V1"), 1u);
  EXPECT_THAT(Fg({"audit", "list", "--data", data_, "--subject", "FG-EST-V1"}).out,
              HasSubstr("cert.clone"));
}

TEST_F(EstTest, SimpleEnrollWithUntrustedClientCertificateIs401) {
  AddDevice("FG-EST-U1");
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", P("self.key"), "-out", P("self.pem"), "-subj",
                "/serialNumber=FG-EST-U1/CN=self", "-days", "30"})
                .exit_code,
            0);
  auto x = EstPost("simpleenroll", EstCsr(NewKey("est-u1.key"), "FG-EST-U1"),
                   ClientCert(P("self.pem"), P("self.key")));
  EXPECT_EQ(x.status, 401);
  EXPECT_EQ(CertCount("FG-EST-U1"), 0u);
}

TEST_F(EstTest, SimpleReenrollRenewsWithNewKeyAndSupersedesTheOldCertificate) {
  auto [cert, key] = EstEnrolWithToken("FG-EST-R1");
  std::string key2 = NewKey("est-r1b.key"), cert2 = P("est-r1b.pem");
  auto x = EstPost("simplereenroll", EstCsr(key2, "FG-EST-R1"), ClientCert(cert, key));
  ASSERT_EQ(x.status, 200) << x.curl_out << x.Body();
  EXPECT_EQ(x.content_type, "application/pkcs7-mime; smime-type=certs-only");
  ASSERT_EQ(P7ToPem(x.body_path, cert2).exit_code, 0);
  EXPECT_THAT(Subject(cert2), HasSubstr("CN=FG-EST-R1"));
  EXPECT_EQ(CertCount("FG-EST-R1"), 2u);
  // The old certificate is superseded at once, the new one good.
  auto old_status = OcspStatus(cert);
  EXPECT_THAT(old_status, HasSubstr(": revoked"));
  EXPECT_THAT(old_status, HasSubstr("superseded"));
  EXPECT_THAT(OcspStatus(cert2), HasSubstr(": good"));

  // The superseded certificate cannot renew again.
  auto revoked =
      EstPost("simplereenroll", EstCsr(NewKey("est-r1c.key"), "FG-EST-R1"), ClientCert(cert, key));
  EXPECT_EQ(revoked.status, 403);
  EXPECT_THAT(revoked.Body(), HasSubstr("revoked"));
  // The current certificate with its own key again: a new key is required.
  auto same_key = EstPost("simplereenroll", EstCsr(key2, "FG-EST-R1"), ClientCert(cert2, key2));
  EXPECT_EQ(same_key.status, 403);
  EXPECT_THAT(same_key.Body(), HasSubstr("new key"));
  // Without a client certificate.
  auto none = EstPost("simplereenroll", EstCsr(NewKey("est-r1d.key"), "FG-EST-R1"));
  EXPECT_EQ(none.status, 401);
  // A bootstrap token is no credential for re-enrolment.
  AddDevice("FG-EST-R2");
  auto [ref, secret] = Token("FG-EST-R2");
  auto token = EstPost("simplereenroll", EstCsr(NewKey("est-r2.key"), "FG-EST-R2"),
                       {"-u", ref + ":" + secret});
  EXPECT_EQ(token.status, 401);
  // Renewing into another device's name.
  auto other = EstPost("simplereenroll", EstCsr(NewKey("est-r1e.key"), "FG-EST-R2"),
                       ClientCert(cert2, key2));
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(CertCount("FG-EST-R1"), 2u);
  EXPECT_EQ(CertCount("FG-EST-R2"), 0u);
  EXPECT_THAT(OcspStatus(cert2), HasSubstr(": good"));
}

TEST_F(EstTest, SimpleReenrollWithARevokedCertificateIs403) {
  auto [cert, key] = EstEnrolWithToken("FG-EST-R3");
  std::string serial = Sh({"openssl", "x509", "-in", cert, "-noout", "-serial"}).out;
  serial = serial.substr(serial.find('=') + 1);
  serial.erase(serial.find_last_not_of("\r\n") + 1);
  auto revoke =
      Fg({"cert", "revoke", "--data", data_, "--serial", serial, "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  auto x =
      EstPost("simplereenroll", EstCsr(NewKey("est-r3b.key"), "FG-EST-R3"), ClientCert(cert, key));
  EXPECT_EQ(x.status, 403);
  EXPECT_THAT(x.Body(), HasSubstr("revoked"));
  EXPECT_EQ(CertCount("FG-EST-R3"), 1u);
}

TEST_F(EstTest, SimpleReenrollWithAVendorCertificateIsRefused) {
  MakeVendorCa();
  AddDevice("FG-EST-V2");
  auto [vcert, vkey] = VendorCert("FG-EST-V2");
  auto x =
      EstPost("simplereenroll", EstCsr(NewKey("est-v2.key"), "FG-EST-V2"), ClientCert(vcert, vkey));
  EXPECT_EQ(x.status, 403);
  EXPECT_THAT(x.Body(), HasSubstr("simpleenroll"));
  EXPECT_EQ(CertCount("FG-EST-V2"), 0u);
}

TEST_F(EstTest, EstOverPlainHttpIs403AndConsumesNothing) {
  auto get = Sh({"curl", "-sS", "-w", "\n%{http_code}", url_ + "/.well-known/est/cacerts"});
  EXPECT_THAT(get.out, HasSubstr("EST requires TLS"));
  EXPECT_THAT(get.out, HasSubstr("\n403"));
  AddDevice("FG-EST-P1");
  auto [ref, secret] = Token("FG-EST-P1");
  std::string csr = EstCsr(NewKey("est-p1.key"), "FG-EST-P1");
  auto post = Sh({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", ref + ":" + secret,
                  "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr,
                  url_ + "/.well-known/est/simpleenroll"});
  EXPECT_EQ(post.out, "403");
  EXPECT_EQ(CertCount("FG-EST-P1"), 0u);
  // The token was never looked at: it still works over TLS.
  EXPECT_EQ(EstPost("simpleenroll", csr, {"-u", ref + ":" + secret}).status, 200);
}

TEST_F(EstTest, UnknownOperationsAndMethods) {
  EXPECT_EQ(Exchange({Est("serverkeygen")}).status, 404);
  EXPECT_EQ(Exchange({"-X", "POST", Est("cacerts")}).status, 405);
  EXPECT_EQ(Exchange({Est("simpleenroll")}).status, 405);
  // An optional CA label (RFC 7030 §3.2.2) is accepted.
  EXPECT_EQ(Exchange({Est("femtocells/cacerts")}).status, 200);
}

}  // namespace
}  // namespace fg::testing
