// PKI interop with clients nobody on the project wrote (issue 14):
// strongSwan's `pki --est` / `--estca` (EST, RFC 7030 as amended by RFC 8951),
// GnuTLS `ocsptool` and `certtool` (OCSP, the whole chain with both CRLs),
// Python's `cryptography` as a second verifier, `openssl cmp` for the token
// retry, and curl for the HTTP headers (Date, RFC 5019 caching). What must
// work, and what must still be refused.

#include <strings.h>

#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>

#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class InteropTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  // `argv` with stdout into `out_path` (stderr into out_path.err, added to
  // the result's text): pki prints plugin warnings on stderr.
  static RunResult ToFile(const std::vector<std::string>& argv, const std::string& out_path) {
    std::vector<std::string> a = {"sh", "-c", "out=$1; shift; exec \"$@\" >\"$out\" 2>\"$out.err\"",
                                  "sh", out_path};
    a.insert(a.end(), argv.begin(), argv.end());
    RunResult r = Sh(a);
    r.out += ReadAll(out_path + ".err");
    return r;
  }
  // A strongSwan-made P-256 key and PKCS#10 request for CN=`cn`.
  static std::pair<std::string, std::string> PkiKeyAndRequest(const std::string& name,
                                                               const std::string& cn) {
    std::string key = P(name + ".key.pem"), req = P(name + ".req.der");
    auto gen = ToFile({"pki", "--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem"}, key);
    EXPECT_EQ(gen.exit_code, 0) << gen.out;
    auto r = ToFile({"pki", "--req", "--in", key, "--type", "ecdsa", "--dn", "CN=" + cn,
                     "--outform", "der"},
                    req);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return {key, req};
  }
  // `pki --est` against this node's TLS listener; the certificate (PEM) into `out`.
  static RunResult PkiEst(const std::string& req, const std::string& out,
                          const std::vector<std::string>& auth) {
    std::vector<std::string> argv = {"pki",      "--est",           "--url",  tls_url_,
                                     "--in",     req,               "--cacert", P("root.pem"),
                                     "--cacert", P("issuing.pem"), "--outform", "pem"};
    argv.insert(argv.end(), auth.begin(), auth.end());
    return ToFile(argv, out);
  }
  static std::string Fingerprint(const std::string& cert) {
    return Sh({"openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"}).out;
  }
  static std::string Serial(const std::string& cert) {
    std::string s = Sh({"openssl", "x509", "-in", cert, "-noout", "-serial"}).out;
    s = s.substr(s.find('=') + 1);
    s.erase(s.find_last_not_of("\r\n") + 1);
    return s;
  }
  static std::string Audit(const std::string& subject) {
    return Fg({"audit", "list", "--data", data_, "--subject", subject}).out;
  }
  // Audit rows by `actor` (e.g. "est:FG-1") with `action`, over the whole log.
  static size_t AuditRows(const std::string& actor, const std::string& action) {
    std::istringstream in(Fg({"audit", "list", "--data", data_}).out);
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string seq, ts, a, act;
      f >> seq >> ts >> a >> act;
      if (a == actor && act == action) ++n;
    }
    return n;
  }
  static size_t Count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  // Python with `cryptography`; the script's stdout.
  static RunResult Python(const std::string& script, const std::vector<std::string>& args = {}) {
    // -W ignore: deprecation warnings go to stderr, which Run merges.
    std::vector<std::string> argv = {"python3", "-W", "ignore", "-c", script};
    argv.insert(argv.end(), args.begin(), args.end());
    return Sh(argv);
  }
  // Plain-HTTP GET with curl: headers into .headers, body into .body.
  static HttpExchange PlainGet(const std::string& path) {
    std::string base = P("plain-" + std::to_string(++exchanges_));
    HttpExchange x;
    x.body_path = base + ".body";
    x.headers_path = base + ".headers";
    auto r = Sh({"curl", "-sS", "--max-time", "20", "-o", x.body_path, "-D", x.headers_path, "-w",
                 "%{http_code}", url_ + path});
    x.curl_out = r.out;
    if (r.out.size() >= 3) x.status = std::stoi(r.out.substr(r.out.size() - 3));
    return x;
  }
  static std::string HeaderValue(const std::string& headers, const std::string& name) {
    std::istringstream in(headers);
    for (std::string line; std::getline(in, line);) {
      if (line.size() > name.size() + 1 && strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 &&
          line[name.size()] == ':') {
        std::string v = line.substr(name.size() + 1);
        v.erase(0, v.find_first_not_of(' '));
        v.erase(v.find_last_not_of("\r\n ") + 1);
        return v;
      }
    }
    return {};
  }
  // IMF-fixdate -> Unix seconds; -1 when not that format.
  static long ParseHttpDate(const std::string& s) {
    struct tm t {};
    const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &t);
    if (end == nullptr || *end != '\0') return -1;
    return static_cast<long>(timegm(&t));
  }
  // A device enrolled over EST with a token (curl), for status tests.
  static std::pair<std::string, std::string> Enrolled(const std::string& device) {
    return EstEnrolWithToken(device);
  }
};

// ---- 1. EST bodies: RFC 4648 base64, one line ----

TEST_F(InteropTest, EstBodiesAreBase64WithoutLineBreaks) {
  for (const char* op : {"cacerts", "csrattrs"}) {
    auto x = Exchange({Est(op)});
    ASSERT_EQ(x.status, 200) << op << x.curl_out;
    std::string body = x.Body();
    EXPECT_GT(body.size(), 40u) << op;
    EXPECT_EQ(body.find_first_of("\r\n"), std::string::npos) << op << ": " << body;
  }
  AddDevice("FG-IO-B1");
  auto [ref, secret] = Token("FG-IO-B1");
  // The request in one line (what strongSwan sends) is accepted ...
  std::string key = NewKey("io-b1.key");
  std::string wrapped = EstCsr(key, "FG-IO-B1");
  std::string der = wrapped.substr(0, wrapped.size() - 4) + ".der";
  ASSERT_EQ(Sh({"openssl", "base64", "-A", "-in", der, "-out", P("io-b1.oneline.b64")}).exit_code, 0);
  std::string oneline = ReadAll(P("io-b1.oneline.b64"));
  ASSERT_GT(oneline.size(), 200u);
  ASSERT_EQ(oneline.find_first_of("\r\n"), std::string::npos);
  auto x = EstPost("simpleenroll", P("io-b1.oneline.b64"), {"-u", ref + ":" + secret});
  ASSERT_EQ(x.status, 200) << x.Body();
  EXPECT_EQ(x.Body().find_first_of("\r\n"), std::string::npos) << x.Body();
  ASSERT_EQ(P7ToPem(x.body_path, P("io-b1.pem")).exit_code, 0);
  EXPECT_THAT(Subject(P("io-b1.pem")), HasSubstr("CN=FG-IO-B1"));
  // ... and so is one with MIME line breaks (openssl base64 wraps at 64).
  ASSERT_NE(ReadAll(wrapped).find('\n'), ReadAll(wrapped).size() - 1);
  auto [cert2, key2] = EstEnrolWithToken("FG-IO-B2");
  EXPECT_THAT(Subject(cert2), HasSubstr("CN=FG-IO-B2"));
}

// ---- strongSwan's EST client ----

TEST_F(InteropTest, StrongswanPkiEstcaGetsTheIssuingAndRootCa) {
  auto r = ToFile({"pki", "--estca", "--url", tls_url_, "--cacert", P("root.pem"), "--outform", "pem"},
                  P("estca.pem"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::string bundle = ReadAll(P("estca.pem"));
  auto strip = [](std::string s) {
    std::erase_if(s, [](char c) { return c == '\n' || c == '\r'; });
    return s;
  };
  EXPECT_THAT(strip(bundle), HasSubstr(strip(ReadAll(P("issuing.pem")))));
  EXPECT_THAT(strip(bundle), HasSubstr(strip(ReadAll(P("root.pem")))));
  // Must-not: with a trust anchor that is not ours, the TLS server is refused.
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", P("other-ca.key"), "-out", P("other-ca.pem"), "-subj",
                "/CN=Other CA", "-days", "30"})
                .exit_code,
            0);
  auto other = ToFile({"pki", "--estca", "--url", tls_url_, "--cacert", P("other-ca.pem"),
                       "--outform", "pem"},
                      P("estca-other.pem"));
  EXPECT_NE(other.exit_code, 0) << other.out;
}

TEST_F(InteropTest, StrongswanPkiEstEnrolsAndReenrols) {
  AddDevice("FG-IO-S1");
  auto [ref, secret] = Token("FG-IO-S1");
  auto [key1, req1] = PkiKeyAndRequest("io-s1", "FG-IO-S1");
  auto enrol = PkiEst(req1, P("io-s1.pem"), {"--userpass", ref + ":" + secret});
  ASSERT_EQ(enrol.exit_code, 0) << enrol.out;
  EXPECT_THAT(Subject(P("io-s1.pem")), HasSubstr("CN=FG-IO-S1"));
  auto verify = Sh({"openssl", "verify", "-CAfile", P("chain.pem"), P("io-s1.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_EQ(CertCount("FG-IO-S1"), 1u);
  EXPECT_THAT(OcspStatus(P("io-s1.pem")), HasSubstr(": good"));

  // Re-enrolment: a new key, TLS client authentication with the old one.
  auto [key2, req2] = PkiKeyAndRequest("io-s1b", "FG-IO-S1");
  auto renew = PkiEst(req2, P("io-s1b.pem"), {"--cert", P("io-s1.pem"), "--key", key1});
  ASSERT_EQ(renew.exit_code, 0) << renew.out;
  EXPECT_THAT(Subject(P("io-s1b.pem")), HasSubstr("CN=FG-IO-S1"));
  EXPECT_NE(Serial(P("io-s1b.pem")), Serial(P("io-s1.pem")));
  EXPECT_EQ(CertCount("FG-IO-S1"), 2u);
  EXPECT_THAT(OcspStatus(P("io-s1.pem")), HasSubstr("superseded"));
  EXPECT_THAT(OcspStatus(P("io-s1b.pem")), HasSubstr(": good"));
  // And again from the renewed certificate.
  auto [key3, req3] = PkiKeyAndRequest("io-s1c", "FG-IO-S1");
  auto renew2 = PkiEst(req3, P("io-s1c.pem"), {"--cert", P("io-s1b.pem"), "--key", key2});
  ASSERT_EQ(renew2.exit_code, 0) << renew2.out;
  EXPECT_EQ(CertCount("FG-IO-S1"), 3u);

  // Must-not: the superseded certificate cannot renew; a used token with a
  // new key gets nothing.
  auto [key4, req4] = PkiKeyAndRequest("io-s1d", "FG-IO-S1");
  auto stale = PkiEst(req4, P("io-s1d.pem"), {"--cert", P("io-s1.pem"), "--key", key1});
  EXPECT_NE(stale.exit_code, 0) << stale.out;
  auto reused = PkiEst(req4, P("io-s1e.pem"), {"--userpass", ref + ":" + secret});
  EXPECT_NE(reused.exit_code, 0) << reused.out;
  EXPECT_EQ(CertCount("FG-IO-S1"), 3u);
}

// ---- 2. A lost response does not strand a device ----

TEST_F(InteropTest, TokenRetriedWithTheSameKeyGetsTheSameCertificateOverEst) {
  AddDevice("FG-IO-R1");
  auto [ref, secret] = Token("FG-IO-R1");
  std::string csr = EstCsr(NewKey("io-r1.key"), "FG-IO-R1");
  auto first = EstPost("simpleenroll", csr, {"-u", ref + ":" + secret});
  ASSERT_EQ(first.status, 200) << first.Body();
  ASSERT_EQ(P7ToPem(first.body_path, P("io-r1-a.pem")).exit_code, 0);
  // The answer was "lost": the device asks again with the same token and key.
  auto again = EstPost("simpleenroll", csr, {"-u", ref + ":" + secret});
  ASSERT_EQ(again.status, 200) << again.Body();
  ASSERT_EQ(P7ToPem(again.body_path, P("io-r1-b.pem")).exit_code, 0);
  EXPECT_EQ(Fingerprint(P("io-r1-a.pem")), Fingerprint(P("io-r1-b.pem")));
  EXPECT_EQ(CertCount("FG-IO-R1"), 1u);
  EXPECT_EQ(AuditRows("est:FG-IO-R1", "cert.issue"), 1u);
  EXPECT_EQ(AuditRows("est:FG-IO-R1", "cert.redeliver"), 1u);
  std::string audit = Audit(Serial(P("io-r1-a.pem")));
  EXPECT_THAT(audit, HasSubstr("cert.redeliver"));
  EXPECT_THAT(audit, HasSubstr("tok-"));  // the token that was retried

  // Must-not: a different key with the used token is refused, and changes nothing.
  auto other = EstPost("simpleenroll", EstCsr(NewKey("io-r1c.key"), "FG-IO-R1"),
                       {"-u", ref + ":" + secret});
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.Body(), HasSubstr("bootstrap token already used"));
  EXPECT_EQ(CertCount("FG-IO-R1"), 1u);
  EXPECT_EQ(AuditRows("est:FG-IO-R1", "cert.redeliver"), 1u);
  // Must-not: the right key with a wrong secret gets nothing either.
  auto wrong = EstPost("simpleenroll", csr, {"-u", ref + ":0000" + secret.substr(4)});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_THAT(OcspStatus(P("io-r1-a.pem")), HasSubstr(": good"));
}

TEST_F(InteropTest, TokenRetryAfterRenewalIsRefused) {
  AddDevice("FG-IO-R2");
  auto [ref, secret] = Token("FG-IO-R2");
  std::string key = NewKey("io-r2.key");
  std::string csr = EstCsr(key, "FG-IO-R2");
  auto first = EstPost("simpleenroll", csr, {"-u", ref + ":" + secret});
  ASSERT_EQ(first.status, 200) << first.Body();
  ASSERT_EQ(P7ToPem(first.body_path, P("io-r2.pem")).exit_code, 0);
  auto renew = EstPost("simplereenroll", EstCsr(NewKey("io-r2b.key"), "FG-IO-R2"),
                       {"--cert", P("io-r2.pem"), "--key", key});
  ASSERT_EQ(renew.status, 200) << renew.Body();
  // The token's certificate is superseded: re-delivering it would hand out
  // a revoked certificate, so the retry is refused.
  auto again = EstPost("simpleenroll", csr, {"-u", ref + ":" + secret});
  EXPECT_EQ(again.status, 403) << again.Body();
  EXPECT_EQ(CertCount("FG-IO-R2"), 2u);
  EXPECT_EQ(AuditRows("est:FG-IO-R2", "cert.redeliver"), 0u);
}

TEST_F(InteropTest, StrongswanPkiEstRetryGetsTheSameCertificate) {
  AddDevice("FG-IO-R3");
  auto [ref, secret] = Token("FG-IO-R3");
  auto [key, req] = PkiKeyAndRequest("io-r3", "FG-IO-R3");
  ASSERT_EQ(PkiEst(req, P("io-r3-a.pem"), {"--userpass", ref + ":" + secret}).exit_code, 0);
  auto again = PkiEst(req, P("io-r3-b.pem"), {"--userpass", ref + ":" + secret});
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Fingerprint(P("io-r3-a.pem")), Fingerprint(P("io-r3-b.pem")));
  EXPECT_EQ(CertCount("FG-IO-R3"), 1u);
}

TEST_F(InteropTest, TokenRetriedWithTheSameKeyGetsTheSameCertificateOverCmp) {
  AddDevice("FG-IO-C1");
  // Not a structured binding: clang 14 (the sanitizer builds) cannot capture one in a lambda.
  const auto token = Token("FG-IO-C1");
  const std::string ref = token.first, secret = token.second;
  std::string key = NewKey("io-c1.key");
  auto ir = [&](const std::string& k, const std::string& out) {
    return Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", k, "-subject",
                "/CN=FG-IO-C1", "-certout", out});
  };
  auto first = ir(key, P("io-c1-a.pem"));
  ASSERT_EQ(first.exit_code, 0) << first.out;
  auto again = ir(key, P("io-c1-b.pem"));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Fingerprint(P("io-c1-a.pem")), Fingerprint(P("io-c1-b.pem")));
  EXPECT_EQ(CertCount("FG-IO-C1"), 1u);
  EXPECT_EQ(AuditRows("cmp:FG-IO-C1", "cert.issue"), 1u);
  EXPECT_EQ(AuditRows("cmp:FG-IO-C1", "cert.redeliver"), 1u);
  // Must-not: another key with the used token.
  auto other = ir(NewKey("io-c1c.key"), P("io-c1-c.pem"));
  EXPECT_NE(other.exit_code, 0) << other.out;
  EXPECT_EQ(CertCount("FG-IO-C1"), 1u);
  EXPECT_THAT(OcspStatus(P("io-c1-a.pem")), HasSubstr(": good"));
}

// ---- 3. The root CRL and the whole chain ----

TEST_F(InteropTest, RootCrlIsSignedByTheRootAndNamedByTheIssuingCa) {
  auto root_crl = PlainGet("/crl/root");
  ASSERT_EQ(root_crl.status, 200) << root_crl.curl_out;
  EXPECT_EQ(HeaderValue(root_crl.Headers(), "Content-Type"), "application/pkix-crl");
  auto check = Sh({"openssl", "crl", "-inform", "DER", "-in", root_crl.body_path, "-CAfile",
                   P("root.pem"), "-noout", "-issuer"});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_THAT(check.out, HasSubstr("verify OK"));
  EXPECT_THAT(check.out, HasSubstr("Root CA"));
  // The issuing CRL stays at /crl, signed by the issuing CA.
  auto crl = PlainGet("/crl");
  ASSERT_EQ(crl.status, 200);
  EXPECT_THAT(Sh({"openssl", "crl", "-inform", "DER", "-in", crl.body_path, "-noout", "-issuer"}).out,
              HasSubstr("Issuing CA"));
  // Must-not: the root CRL does not verify under the issuing CA.
  auto wrong = Sh({"openssl", "crl", "-inform", "DER", "-in", root_crl.body_path, "-CAfile",
                   P("issuing.pem"), "-noout"});
  EXPECT_THAT(wrong.out, Not(HasSubstr("verify OK")));

  // A second verifier: Python's cryptography.
  const char* script = R"(
import sys, datetime
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], 'rb').read())
root = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[3], 'rb').read())
assert crl.is_signature_valid(root.public_key()), 'root CRL signature'
assert not crl.is_signature_valid(issuing.public_key()), 'signed by the wrong key'
assert crl.issuer == root.subject
assert crl.next_update > datetime.datetime.utcnow()
assert len(list(crl)) == 0, 'the issuing CA is not revoked'
cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
print('CDP', cdp[0].full_name[0].value)
print('number', crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
)";
  auto py = Python(script, {root_crl.body_path, P("root.pem"), P("issuing.pem")});
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_THAT(py.out, HasSubstr("CDP " + url_ + "/crl/root"));
}

TEST_F(InteropTest, GnutlsCerttoolVerifiesTheWholeChainWithBothCrls) {
  auto [good, good_key] = Enrolled("FG-IO-V1");
  auto [bad, bad_key] = Enrolled("FG-IO-V2");
  ASSERT_EQ(Fg({"cert", "revoke", "--data", data_, "--serial", Serial(bad), "--reason",
                "keyCompromise"})
                .exit_code,
            0);
  auto issuing_crl = PlainGet("/crl");
  auto root_crl = PlainGet("/crl/root");
  ASSERT_EQ(issuing_crl.status, 200);
  ASSERT_EQ(root_crl.status, 200);
  std::string crls = P("crls.pem");
  auto a = Sh({"openssl", "crl", "-inform", "DER", "-in", issuing_crl.body_path, "-out", P("i.crl.pem")});
  auto b = Sh({"openssl", "crl", "-inform", "DER", "-in", root_crl.body_path, "-out", P("r.crl.pem")});
  ASSERT_EQ(a.exit_code + b.exit_code, 0) << a.out << b.out;
  WriteAll(crls, ReadAll(P("i.crl.pem")) + ReadAll(P("r.crl.pem")));
  auto verify = [&](const std::string& leaf) {
    WriteAll(leaf + ".chain", ReadAll(leaf) + ReadAll(P("issuing.pem")));
    return Sh({"certtool", "--verify", "--load-ca-certificate", P("root.pem"), "--load-crl", crls,
               "--infile", leaf + ".chain"});
  };
  auto ok = verify(good);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("Chain verification output: Verified."));
  auto revoked = verify(bad);
  EXPECT_THAT(revoked.out, HasSubstr("Not verified"));
  EXPECT_THAT(revoked.out, HasSubstr("revoked"));
  // Must-not: without the root CRL the chain's status is incomplete, but
  // certtool does not require it; the issuing CRL alone still catches the
  // revoked device (so the good result above is not vacuous).
  WriteAll(P("issuing-only.pem"), ReadAll(P("i.crl.pem")));
  auto issuing_only = Sh({"certtool", "--verify", "--load-ca-certificate", P("root.pem"),
                          "--load-crl", P("issuing-only.pem"), "--infile", bad + ".chain"});
  EXPECT_THAT(issuing_only.out, HasSubstr("revoked"));
  // NSS would do; Python's cryptography checks the issuing CRL lists it.
  const char* script = R"(
import sys
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], 'rb').read())
issuing = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
good = x509.load_pem_x509_certificate(open(sys.argv[3], 'rb').read())
bad = x509.load_pem_x509_certificate(open(sys.argv[4], 'rb').read())
assert crl.is_signature_valid(issuing.public_key())
assert crl.get_revoked_certificate_by_serial_number(bad.serial_number) is not None
assert crl.get_revoked_certificate_by_serial_number(good.serial_number) is None
print('ok')
)";
  auto py = Python(script, {issuing_crl.body_path, P("issuing.pem"), good, bad});
  EXPECT_EQ(py.exit_code, 0) << py.out;
}

// ---- OCSP with GnuTLS ----

TEST_F(InteropTest, GnutlsOcsptoolAsksGoodAndRevoked) {
  auto [good, good_key] = Enrolled("FG-IO-O1");
  auto [bad, bad_key] = Enrolled("FG-IO-O2");
  ASSERT_EQ(Fg({"cert", "revoke", "--data", data_, "--serial", Serial(bad), "--reason",
                "keyCompromise"})
                .exit_code,
            0);
  auto ask = [&](const std::string& cert) {
    return Sh({"ocsptool", "--ask=" + url_ + "/ocsp", "--load-issuer", P("issuing.pem"),
               "--load-cert", cert, "--load-trust", P("issuing.pem"), "--no-nonce"});
  };
  auto ok = ask(good);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("Certificate Status: good")) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("Verifying OCSP Response: Success")) << ok.out;
  auto revoked = ask(bad);
  EXPECT_THAT(revoked.out, HasSubstr("Certificate Status: revoked")) << revoked.out;
  EXPECT_THAT(revoked.out, Not(HasSubstr("Certificate Status: good")));
  EXPECT_THAT(revoked.out, HasSubstr("Verifying OCSP Response: Success")) << revoked.out;
}

// ---- 4. HTTP headers ----

TEST_F(InteropTest, EveryResponseCarriesADateHeader) {
  const long now = static_cast<long>(std::time(nullptr));
  for (const char* path : {"/healthz", "/crl", "/crl/root", "/no/such/path", "/ca/issuing.crt"}) {
    auto x = PlainGet(path);
    std::string date = HeaderValue(x.Headers(), "Date");
    long t = ParseHttpDate(date);
    EXPECT_GE(t, now - 5) << path << ": '" << date << "'";
    EXPECT_LE(t, now + 30) << path << ": '" << date << "'";
    EXPECT_EQ(Count(x.Headers(), "\nDate:"), 1u) << path;
  }
  // The TLS listener too (EST), and an error answer.
  auto est = Exchange({Est("cacerts")});
  EXPECT_GE(ParseHttpDate(HeaderValue(est.Headers(), "Date")), now - 5);
  auto err = Exchange({Est("serverkeygen")});
  EXPECT_EQ(err.status, 404);
  EXPECT_GE(ParseHttpDate(HeaderValue(err.Headers(), "Date")), now - 5);
}

TEST_F(InteropTest, OcspGetAnswersCarryRfc5019CachingHeaders) {
  auto [cert, key] = Enrolled("FG-IO-H1");
  ASSERT_EQ(Sh({"openssl", "ocsp", "-issuer", P("issuing.pem"), "-cert", cert, "-no_nonce",
                "-reqout", P("h1.req")})
                .exit_code,
            0);
  std::string b64 = Sh({"openssl", "base64", "-A", "-in", P("h1.req")}).out;
  b64.erase(b64.find_last_not_of("\r\n") + 1);
  std::string escaped;
  for (char c : b64) {
    if (c == '+') escaped += "%2B";
    else if (c == '/') escaped += "%2F";
    else if (c == '=') escaped += "%3D";
    else escaped += c;
  }
  auto x = PlainGet("/ocsp/" + escaped);
  ASSERT_EQ(x.status, 200) << x.curl_out;
  std::string h = x.Headers();
  long date = ParseHttpDate(HeaderValue(h, "Date"));
  long last_modified = ParseHttpDate(HeaderValue(h, "Last-Modified"));
  long expires = ParseHttpDate(HeaderValue(h, "Expires"));
  std::string cache = HeaderValue(h, "Cache-Control");
  std::string etag = HeaderValue(h, "ETag");
  ASSERT_GT(date, 0) << h;
  ASSERT_GT(last_modified, 0) << h;
  ASSERT_GT(expires, 0) << h;
  EXPECT_THAT(cache, HasSubstr("public"));
  EXPECT_THAT(cache, HasSubstr("no-transform"));
  EXPECT_THAT(cache, HasSubstr("must-revalidate"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(cache, m, std::regex("max-age=([0-9]+)"))) << cache;
  long max_age = std::stol(m[1]);
  // Consistent with the response itself (Python's cryptography reads it).
  const char* script = R"(
import sys, hashlib, calendar
from cryptography.x509 import ocsp
der = open(sys.argv[1], 'rb').read()
r = ocsp.load_der_ocsp_response(der)
print(calendar.timegm(r.this_update.utctimetuple()), calendar.timegm(r.next_update.utctimetuple()),
      hashlib.sha1(der).hexdigest(), r.certificate_status.name)
)";
  auto py = Python(script, {x.body_path});
  ASSERT_EQ(py.exit_code, 0) << py.out;
  std::istringstream in(py.out);
  long this_update = 0, next_update = 0;
  std::string sha1, status;
  in >> this_update >> next_update >> sha1 >> status;
  EXPECT_EQ(status, "GOOD");
  EXPECT_EQ(last_modified, this_update);
  EXPECT_EQ(expires, next_update);
  EXPECT_EQ(etag, "\"" + sha1 + "\"");
  EXPECT_LE(max_age, next_update - date + 1);  // never beyond nextUpdate
  EXPECT_GE(max_age, next_update - date - 5);
  EXPECT_GT(max_age, 0);

  // Must-not: a malformed GET is not cacheable; POST answers carry no max-age.
  auto bad = PlainGet("/ocsp/not-an-ocsp-request");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(HeaderValue(bad.Headers(), "Cache-Control"), Not(HasSubstr("max-age")));
  auto post = Sh({"curl", "-sS", "-D", "-", "-o", "/dev/null", "-H",
                  "Content-Type: application/ocsp-request", "--data-binary", "@" + P("h1.req"),
                  url_ + "/ocsp"});
  EXPECT_THAT(post.out, Not(HasSubstr("max-age")));
  EXPECT_THAT(post.out, HasSubstr("Date: "));
}

TEST_F(InteropTest, OcspSignerIsANocheckCertificateLivingDaysNotAYear) {
  auto [cert, key] = Enrolled("FG-IO-N1");
  ASSERT_EQ(Sh({"openssl", "ocsp", "-issuer", P("issuing.pem"), "-cert", cert, "-no_nonce",
                "-reqout", P("n1.req")})
                .exit_code,
            0);
  auto post = Sh({"curl", "-sS", "-o", P("n1.resp"), "-H", "Content-Type: application/ocsp-request",
                  "--data-binary", "@" + P("n1.req"), url_ + "/ocsp"});
  ASSERT_EQ(post.exit_code, 0) << post.out;
  const char* script = R"(
import sys
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
r = ocsp.load_der_ocsp_response(open(sys.argv[1], 'rb').read())
signer = r.certificates[0]
life = (signer.not_valid_after - signer.not_valid_before).total_seconds()
eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
assert r.next_update <= signer.not_valid_after
print(int(life))
)";
  auto py = Python(script, {P("n1.resp")});
  ASSERT_EQ(py.exit_code, 0) << py.out;
  long life = std::stol(py.out);
  EXPECT_GE(life, 7 * 86400);
  EXPECT_LE(life, 7 * 86400 + 600);  // 7 days (the default) plus the back-dating
}

// serve renews its OCSP signer before it expires: a node whose signer
// lives 60 s answers with a new one after half of that.
TEST(OcspSignerRenewalTest, ServeRenewsTheSignerBeforeItExpires) {
  TempDir dir;
  int port = FreePort();
  std::string data = dir / "data";
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto init = fg::testing::Run({Femtoguard(), "init", "--data", data, "--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  std::string config = ReadAll(data + "/config.yaml");
  size_t ocsp = config.find("\nocsp:\n");
  ASSERT_NE(ocsp, std::string::npos) << config;
  config.insert(ocsp + 7, "  signer_validity_s: 60\n");
  WriteAll(data + "/config.yaml", config);
  Process serve({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off"},
                dir / "serve.log");
  ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(dir / "serve.log");
  WriteAll(dir / "issuing.pem", fg::testing::Run({Femtoguard(), "ca", "cert", "--data", data}).out);
  ASSERT_EQ(fg::testing::Run({Femtoguard(), "device", "add", "--data", data, "--device", "FG-IO-RN1"}).exit_code, 0);
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", dir / "rn1.key", "-out", dir / "rn1.csr", "-subj", "/CN=FG-IO-RN1"})
                .exit_code,
            0);
  auto issued = fg::testing::Run({Femtoguard(), "cert", "issue", "--data", data, "--device", "FG-IO-RN1", "--csr",
                     dir / "rn1.csr"});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  WriteAll(dir / "rn1.pem", issued.out.substr(issued.out.find("-----BEGIN CERTIFICATE-----")));
  ASSERT_EQ(fg::testing::Run({"openssl", "ocsp", "-issuer", dir / "issuing.pem", "-cert", dir / "rn1.pem", "-no_nonce",
                 "-reqout", dir / "rn1.req"})
                .exit_code,
            0);
  const char* script = R"(
import sys, calendar
from cryptography.x509 import ocsp
r = ocsp.load_der_ocsp_response(open(sys.argv[1], 'rb').read())
s = r.certificates[0]
print(s.serial_number, int((s.not_valid_after - s.not_valid_before).total_seconds()),
      int((s.not_valid_after - r.next_update).total_seconds()), r.certificate_status.name)
)";
  auto signer = [&](const std::string& name) {
    auto post = fg::testing::Run({"curl", "-sS", "-o", dir / name, "-H", "Content-Type: application/ocsp-request",
                     "--data-binary", "@" + (dir / "rn1.req"), url + "/ocsp"});
    EXPECT_EQ(post.exit_code, 0) << post.out;
    auto py = fg::testing::Run({"python3", "-W", "ignore", "-c", script, dir / name});
    EXPECT_EQ(py.exit_code, 0) << py.out;
    return py.out;
  };
  std::string first = signer("a.resp");
  std::istringstream in(first);
  std::string serial, status;
  long life = 0, margin = -1;
  in >> serial >> life >> margin >> status;
  EXPECT_EQ(status, "GOOD");
  EXPECT_EQ(life, 60 + 300);  // 60 s, plus the 5 min back-dating
  EXPECT_GE(margin, 0) << "a response must not outlive its signer";
  // Renewed at half of its lifetime (30 s after it was made), well before
  // it expires.
  std::string second;
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    second = signer("b.resp");
    if (second.substr(0, second.find(' ')) != serial) break;
  }
  EXPECT_NE(second.substr(0, second.find(' ')), serial) << first << second << ReadAll(dir / "serve.log");
  EXPECT_THAT(ReadAll(dir / "serve.log"), HasSubstr("responder certificate renewed"));

  // Must-not: a signer lifetime out of range is refused at start.
  config.replace(config.find("signer_validity_s: 60"), 21, "signer_validity_s: 5");
  WriteAll(data + "/config.yaml", config);
  serve.Stop();
  auto refused = fg::testing::Run({Femtoguard(), "serve", "--data", data, "--tls-listen", "off"}, {}, 20);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.out, HasSubstr("ocsp.signer_validity_s"));
}

}  // namespace
}  // namespace fg::testing

namespace fg::testing {
namespace {

// The root CRL file: serve signs one when it is missing and the root key is
// online (a data dir made before issue 14); with the root key offline it
// serves only a file that verifies under the root, never anything else.
TEST(RootCrlFileTest, MissingIsSignedByServeAndForeignIsNeverServed) {
  TempDir dir;
  int port = FreePort();
  std::string data = dir / "data";
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto init = fg::testing::Run(
      {Femtoguard(), "init", "--data", data, "--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  WriteAll(dir / "root.pem", fg::testing::Run({Femtoguard(), "ca", "cert", "--data", data, "--root"}).out);
  const std::string crl_file = data + "/ca/root.crl";
  const std::string first = ReadAll(crl_file);
  ASSERT_FALSE(first.empty());
  std::filesystem::remove(crl_file);
  auto fetch = [&](const std::string& out) {
    return fg::testing::Run({"curl", "-sS", "-o", out, "-w", "%{http_code}", url + "/crl/root"}).out;
  };
  {
    Process serve({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off"},
                  dir / "serve1.log");
    ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(dir / "serve1.log");
    EXPECT_EQ(fetch(dir / "a.crl"), "200");
    auto ok = fg::testing::Run({"openssl", "crl", "-inform", "DER", "-in", dir / "a.crl", "-CAfile",
                                dir / "root.pem", "-noout"});
    EXPECT_THAT(ok.out, HasSubstr("verify OK"));
    EXPECT_EQ(ReadAll(crl_file), ReadAll(dir / "a.crl"));  // written back to the data dir
  }
  // Root key offline, and a CRL signed by someone else in its place.
  std::filesystem::rename(data + "/ca/root.key", dir / "root.key.offline");
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir / "rogue.key", "-out",
                              dir / "rogue.pem", "-subj", "/O=femtoguard/CN=femtoguard Root CA", "-days",
                              "30"})
                .exit_code,
            0);
  WriteAll(dir / "rogue.cnf",
           "[ca]\ndefault_ca=r\n[r]\ndatabase=" + (dir / "index.txt") +
               "\ncrlnumber=" + (dir / "crlnumber") + "\ndefault_md=sha256\ndefault_crl_days=30\n");
  WriteAll(dir / "index.txt", "");
  WriteAll(dir / "crlnumber", "01\n");
  auto rogue = fg::testing::Run({"openssl", "ca", "-gencrl", "-config", dir / "rogue.cnf", "-keyfile",
                                 dir / "rogue.key", "-cert", dir / "rogue.pem", "-out", dir / "rogue.crl.pem"});
  ASSERT_EQ(rogue.exit_code, 0) << rogue.out;
  ASSERT_EQ(fg::testing::Run({"openssl", "crl", "-in", dir / "rogue.crl.pem", "-outform", "DER", "-out",
                              crl_file})
                .exit_code,
            0);
  const std::string rogue_der = ReadAll(crl_file);
  {
    Process serve({Femtoguard(), "serve", "--data", data, "--threads", "1", "--tls-listen", "off"},
                  dir / "serve2.log");
    ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(dir / "serve2.log");
    EXPECT_EQ(fetch(dir / "b.crl"), "503");
    EXPECT_NE(ReadAll(dir / "b.crl"), rogue_der);
    EXPECT_THAT(ReadAll(dir / "serve2.log"), HasSubstr("not a CRL signed by the root"));
    // The issuing CA's CRL is unaffected.
    EXPECT_EQ(fg::testing::Run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url + "/crl"}).out,
              "200");
  }
  EXPECT_EQ(ReadAll(crl_file), rogue_der);  // nothing signed over it without the root key
}

}  // namespace
}  // namespace fg::testing
