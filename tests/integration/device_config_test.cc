// The device configuration document (GET /v1/device/config) as a femtocell
// fetches it: curl over mutual TLS with its femtoguard certificate, then
// `openssl cms -verify` against the CA chain it already holds. The endpoint
// list in it is the only way a device learns where to connect.

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/time.h"
#include "fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class DeviceConfigTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() { StartNode(); }
  static void TearDownTestSuite() { StopNode(); }

  static HttpExchange FetchConfig(const std::vector<std::string>& auth) {
    std::vector<std::string> args = auth;
    args.push_back(tls_url_ + "/v1/device/config");
    return Exchange(args);
  }

  // What a device runs on the document, with OpenSSL's default checks.
  static RunResult Verify(const std::string& der, const std::string& out) {
    return Sh({"openssl", "cms", "-verify", "-inform", "DER", "-in", der, "-CAfile", P("chain.pem"), "-out", out});
  }

  static std::string Serial(const std::string& cert) {
    std::string s = Sh({"openssl", "x509", "-in", cert, "-noout", "-serial"}).out;
    s = s.substr(s.find('=') + 1);
    s.erase(s.find_last_not_of("\r\n") + 1);
    return s;
  }

  // notBefore of a certificate, Unix ms.
  static UnixMillis NotBefore(const std::string& cert) {
    // "notBefore=2026-11-29 07:29:50Z"
    std::string s =
        Sh({"openssl", "x509", "-in", cert, "-noout", "-startdate", "-dateopt", "iso_8601"}).out;
    s = s.substr(s.find('=') + 1);
    s.erase(s.find_last_not_of("\r\n") + 1);
    if (s.size() > 10) s[10] = 'T';
    auto t = ParseRfc3339(s);
    EXPECT_TRUE(t.ok()) << s;
    return t.ok() ? *t : 0;
  }

  static UnixMillis LastSeen(const std::string& device) {
    auto show = Fg({"device", "show", "--data", data_, "--device", device});
    auto j = nlohmann::json::parse(show.out, nullptr, false);
    if (j.is_discarded() || !j.contains("last_seen")) return 0;
    auto t = ParseRfc3339(j["last_seen"].get<std::string>());
    return t.ok() ? *t : 0;
  }
};

TEST_F(DeviceConfigTest, DeviceFetchesSignedConfigWithEndpointsOverMutualTls) {
  // Endpoints: a and c active, b draining (rotated to c), d retired.
  bool have_endpoint_cli =
      Fg({"endpoint", "add", "--data", data_, "--address", "segw-a.example.net:500"}).exit_code ==
      0;
  if (have_endpoint_cli) {
    EXPECT_EQ(
        Fg({"endpoint", "add", "--data", data_, "--address", "segw-b.example.net:500"}).exit_code,
        0);
    EXPECT_EQ(Fg({"endpoint", "rotate", "--data", data_, "--from", "segw-b.example.net:500", "--to",
                  "segw-c.example.net:500"})
                  .exit_code,
              0);
    EXPECT_EQ(
        Fg({"endpoint", "add", "--data", data_, "--address", "segw-d.example.net:500"}).exit_code,
        0);
    EXPECT_EQ(Fg({"endpoint", "retire", "--data", data_, "--address", "segw-d.example.net:500"})
                  .exit_code,
              0);
  } else {
    // TODO: `femtoguard endpoint add` is the lead's; without it the endpoint
    // assertions below are skipped.
    std::cerr << "[ SKIPPED  ] endpoint assertions: no `femtoguard endpoint add` in this build\n";
  }

  auto [cert, key] = EstEnrolWithToken("FG-CFG-1");
  UnixMillis seen_before = LastSeen("FG-CFG-1");
  ASSERT_NE(seen_before, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  UnixMillis before = NowMillis();

  auto x = FetchConfig({"--cert", cert, "--key", key});
  ASSERT_EQ(x.status, 200) << x.curl_out << x.Body();
  EXPECT_EQ(x.content_type, "application/pkcs7-mime; smime-type=signed-data");
  auto verify = Verify(x.body_path, P("cfg1.json"));
  ASSERT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_THAT(verify.out, HasSubstr("Verification successful"));

  auto doc = nlohmann::json::parse(ReadAll(P("cfg1.json")), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << ReadAll(P("cfg1.json"));
  EXPECT_EQ(doc["device"], "FG-CFG-1");
  EXPECT_EQ(doc["certificate"]["serial"], Serial(cert));
  EXPECT_EQ(doc["ocsp_url"], url_ + "/ocsp");
  EXPECT_EQ(doc["crl_url"], url_ + "/crl");
  EXPECT_EQ(doc["cmp_url"], url_ + "/pkix/");
  EXPECT_EQ(doc["est_url"], tls_url_ + "/.well-known/est");
  if (have_endpoint_cli) {
    auto endpoints = doc["endpoints"].get<std::vector<std::string>>();
    auto draining = doc["draining"].get<std::vector<std::string>>();
    EXPECT_THAT(endpoints, Contains("segw-a.example.net:500"));
    EXPECT_THAT(endpoints, Contains("segw-c.example.net:500"));
    EXPECT_THAT(endpoints, Not(Contains("segw-b.example.net:500")));
    EXPECT_THAT(endpoints, Not(Contains("segw-d.example.net:500")));
    EXPECT_THAT(draining, Contains("segw-b.example.net:500"));
    EXPECT_THAT(draining, Not(Contains("segw-d.example.net:500")));
  }

  // renew_at: renew_at_percent (67) of the way from notBefore to notAfter.
  auto issued_at = ParseRfc3339(doc["issued_at"].get<std::string>());
  auto not_after = ParseRfc3339(doc["certificate"]["not_after"].get<std::string>());
  auto renew_at = ParseRfc3339(doc["certificate"]["renew_at"].get<std::string>());
  ASSERT_TRUE(issued_at.ok() && not_after.ok() && renew_at.ok()) << doc.dump();
  EXPECT_GE(*issued_at, before - 1000);
  EXPECT_LE(*issued_at, NowMillis() + 1000);
  UnixMillis not_before = NotBefore(cert);
  double fraction =
      static_cast<double>(*renew_at - not_before) / static_cast<double>(*not_after - not_before);
  EXPECT_GT(fraction, 0.6) << doc.dump();
  EXPECT_LT(fraction, 0.75) << doc.dump();

  // The fetch counts as the device being seen.
  EXPECT_GT(LastSeen("FG-CFG-1"), seen_before);
}

TEST_F(DeviceConfigTest, TamperedDocumentFailsVerification) {
  auto [cert, key] = EstEnrolWithToken("FG-CFG-2");
  auto x = FetchConfig({"--cert", cert, "--key", key});
  ASSERT_EQ(x.status, 200) << x.Body();
  ASSERT_EQ(Verify(x.body_path, P("cfg2.json")).exit_code, 0);
  std::string der = x.Body();
  size_t at = der.find("FG-CFG-2");
  ASSERT_NE(at, std::string::npos);
  der[at + 7] = '3';  // FG-CFG-2 -> FG-CFG-3: a document for another device
  WriteAll(P("cfg2-tampered.der"), der);
  auto verify = Verify(P("cfg2-tampered.der"), P("cfg2-tampered.json"));
  EXPECT_NE(verify.exit_code, 0);
  EXPECT_THAT(verify.out, HasSubstr("Verification failure"));
  // Signed by someone else entirely: not trusted either.
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", P("forger.key"), "-out", P("forger.pem"), "-subj",
                "/CN=forger", "-days", "30"})
                .exit_code,
            0);
  ASSERT_EQ(
      Sh({"openssl", "cms", "-sign", "-in", P("cfg2.json"), "-signer", P("forger.pem"), "-inkey",
          P("forger.key"), "-outform", "DER", "-out", P("cfg2-forged.der"), "-nodetach", "-binary"})
          .exit_code,
      0);
  EXPECT_NE(Verify(P("cfg2-forged.der"), P("cfg2-forged.json")).exit_code, 0);
}

TEST_F(DeviceConfigTest, WithoutClientCertificateIs401) {
  auto x = FetchConfig({});
  EXPECT_EQ(x.status, 401);
  // A certificate this CA did not issue.
  ASSERT_EQ(Sh({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", P("stranger.key"), "-out", P("stranger.pem"), "-subj",
                "/CN=FG-CFG-1", "-days", "30"})
                .exit_code,
            0);
  EXPECT_EQ(FetchConfig({"--cert", P("stranger.pem"), "--key", P("stranger.key")}).status, 401);
}

TEST_F(DeviceConfigTest, RevokedOrSuspendedDeviceCertificateIs403) {
  auto [cert, key] = EstEnrolWithToken("FG-CFG-3");
  ASSERT_EQ(FetchConfig({"--cert", cert, "--key", key}).status, 200);
  auto revoke = Fg(
      {"cert", "revoke", "--data", data_, "--serial", Serial(cert), "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  auto revoked = FetchConfig({"--cert", cert, "--key", key});
  EXPECT_EQ(revoked.status, 403);
  EXPECT_THAT(revoked.Body(), HasSubstr("revoked"));

  auto [cert4, key4] = EstEnrolWithToken("FG-CFG-4");
  auto suspend = Fg(
      {"device", "set-status", "--data", data_, "--device", "FG-CFG-4", "--status", "suspended"});
  ASSERT_EQ(suspend.exit_code, 0) << suspend.out;
  auto held = FetchConfig({"--cert", cert4, "--key", key4});
  EXPECT_EQ(held.status, 403);
  EXPECT_THAT(held.Body(), HasSubstr("hold"));
}

TEST_F(DeviceConfigTest, SupersededCertificateIs403AndTheRenewedOneWorks) {
  auto [cert, key] = EstEnrolWithToken("FG-CFG-5");
  std::string key2 = NewKey("cfg5b.key"), cert2 = P("cfg5b.pem");
  auto renew = EstPost("simplereenroll", EstCsr(key2, "FG-CFG-5"), {"--cert", cert, "--key", key});
  ASSERT_EQ(renew.status, 200) << renew.Body();
  ASSERT_EQ(P7ToPem(renew.body_path, cert2).exit_code, 0);
  EXPECT_EQ(FetchConfig({"--cert", cert, "--key", key}).status, 403);
  auto x = FetchConfig({"--cert", cert2, "--key", key2});
  ASSERT_EQ(x.status, 200);
  ASSERT_EQ(Verify(x.body_path, P("cfg5.json")).exit_code, 0);
  auto doc = nlohmann::json::parse(ReadAll(P("cfg5.json")), nullptr, false);
  EXPECT_EQ(doc["certificate"]["serial"], Serial(cert2));
}

TEST_F(DeviceConfigTest, PlainHttpIs403) {
  auto r = Sh({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url_ + "/v1/device/config"});
  EXPECT_EQ(r.out, "403");
}

}  // namespace
}  // namespace fg::testing
