// ViciSegw's logic against a fake charon: what it asks the gate, what it
// terminates, what it tells the sink, how it catches up after a reconnect.
// (charon_segw_test.cc runs the same adapter against a real charon.)

#include "segw/vici_segw.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "common/metrics.h"
#include "segw/fake_charon.h"
#include "segw/test_gate.h"
#include "testing/harness.h"

namespace fg::segw {
namespace {

using testing::FakeCharon;
using testing::FakeSa;
using testing::RuleGate;
using testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A self-signed certificate for CN=`cn` with serial `serial`, DER.
std::string MakeCertDer(const std::string& cn, long serial) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  X509_sign(x, key, EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509(x, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

std::string Sha256Fp(const std::string& der) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
  std::string out = "sha256:";
  char buf[3];
  for (unsigned char c : md) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

FakeSa Sa(const std::string& id, const std::string& remote_id, const std::string& host,
          const std::string& spi = "") {
  FakeSa sa;
  sa.uniqueid = id;
  sa.remote_id = remote_id;
  sa.remote_host = host;
  sa.spi_i = spi.empty() ? "i" + id : spi;
  sa.spi_r = "r" + id;
  return sa;
}

class ViciSegwTest : public ::testing::Test {
 protected:
  ViciSegwTest() : charon_(dir_ / "charon.vici") {}
  ~ViciSegwTest() override {
    if (segw_) segw_->Stop();
  }

  void Start(const std::string& segw_id = "segw-a") {
    ViciOptions o;
    o.socket_path = charon_.path();
    o.segw_id = segw_id;
    o.reconnect_ms = 50;
    segw_ = std::make_unique<ViciSegw>(o, gate_, [this](const SessionEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    });
    segw_->Start();
    ASSERT_TRUE(WaitFor([&] { return segw_->connected() && charon_.Registered("ike-updown"); }));
  }
  // Returns once everything raised so far has been handled: the worker
  // handles events in order, so a sentinel session's decision comes last.
  void Drain() {
    size_t n = gate_.requests().size();
    charon_.BringUp(Sa(std::to_string(9000 + n), "CN=FG-DRAIN", "10.255.255.1"));
    ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == n + 1; }));
  }
  std::vector<SessionEvent> Events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<std::string> EventLines() {
    std::vector<std::string> out;
    for (const auto& e : Events()) out.push_back(std::string(e.up ? "up " : "down ") + e.device + " " + e.session);
    return out;
  }

  fg::testing::TempDir dir_;
  FakeCharon charon_;
  RuleGate gate_;
  std::unique_ptr<ViciSegw> segw_;
  std::mutex mutex_;
  std::vector<SessionEvent> events_;
};

TEST_F(ViciSegwTest, AdmitsANewSessionWithWhatCharonSaw) {
  std::string der = MakeCertDer("FG-0000001", 0x1234ab);
  charon_.AddCert("C=KR, O=Operator, CN=FG-0000001", der);
  Start();
  auto sa = Sa("3", "C=KR, O=Operator, CN=FG-0000001", "203.0.113.9");
  sa.local_host = "192.0.2.1";
  sa.local_port = "4500";
  charon_.BringUp(sa);
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 1; }));
  auto r = gate_.requests()[0];
  EXPECT_EQ(r.device, "FG-0000001");
  EXPECT_EQ(r.session, "segw-a/3");
  EXPECT_EQ(r.src_ip, "203.0.113.9");
  EXPECT_EQ(r.endpoint, "192.0.2.1");  // 4500 is IKE's own port (NAT-T)
  EXPECT_EQ(r.segw, "segw-a");
  EXPECT_EQ(r.cert_fp, Sha256Fp(der));
  EXPECT_EQ(r.serial, "1234ab");
  ASSERT_TRUE(WaitFor([&] { return Events().size() == 1; }));
  auto e = Events()[0];
  EXPECT_TRUE(e.up);
  EXPECT_EQ(e.device, "FG-0000001");
  EXPECT_EQ(e.session, "segw-a/3");
  EXPECT_EQ(e.src_ip, "203.0.113.9");
  EXPECT_EQ(e.endpoint, "192.0.2.1");
  EXPECT_EQ(e.segw, "segw-a");
  EXPECT_GT(e.ts_ms, 0);
  // Allowed: nothing terminated, the session is still there.
  Drain();
  EXPECT_THAT(charon_.Commands(), ::testing::UnorderedElementsAre("version", "list-sas", "list-certs", "list-certs"));
  EXPECT_THAT(charon_.Terminated(), IsEmpty());
  EXPECT_TRUE(charon_.HasSa("3"));
}

TEST_F(ViciSegwTest, DeniedSessionIsTerminatedAtOnceAndNeverCountsAsLive) {
  uint64_t before = Metrics::Global().Value("femtoguard_vici_terminations_total", "cause=\"admission\"");
  gate_.DenyDevice("FG-BAD", "device.inactive");
  Start();
  charon_.BringUp(Sa("5", "CN=FG-BAD", "198.51.100.7"));
  ASSERT_TRUE(WaitFor([&] { return !charon_.Terminated().empty(); }));
  EXPECT_THAT(charon_.Terminated(), ElementsAre("5"));
  auto args = charon_.TerminateArgs()[0];
  EXPECT_EQ(args.Get("ike-id"), "5");
  EXPECT_EQ(args.Get("force"), "yes");
  EXPECT_FALSE(args.Get("timeout").empty());
  EXPECT_FALSE(charon_.HasSa("5"));
  // charon raised ike-updown down: the sink sees the session end; the gate
  // never recorded a denied session, so it is not told.
  ASSERT_TRUE(WaitFor([&] { return Events().size() == 2; }));
  EXPECT_THAT(EventLines(), ElementsAre("up FG-BAD segw-a/5", "down FG-BAD segw-a/5"));
  EXPECT_THAT(gate_.downs(), IsEmpty());
  EXPECT_EQ(Metrics::Global().Value("femtoguard_vici_terminations_total", "cause=\"admission\""), before + 1);
}

TEST_F(ViciSegwTest, DownOfAnAdmittedSessionTellsTheGateAndTheSink) {
  Start();
  charon_.BringUp(Sa("1", "CN=FG-1", "10.1.1.1"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; }));
  charon_.BringDown("1");
  ASSERT_TRUE(WaitFor([&] { return gate_.downs().size() == 1; }));
  EXPECT_THAT(gate_.downs(), ElementsAre("FG-1 segw-a/1"));
  EXPECT_EQ(gate_.live(), 0u);
  EXPECT_THAT(EventLines(), ElementsAre("up FG-1 segw-a/1", "down FG-1 segw-a/1"));
}

TEST_F(ViciSegwTest, ChildUpdownOfAKnownIkeSaAdmitsNothingMore) {
  Start();
  charon_.BringUp(Sa("2", "CN=FG-2", "10.1.1.2"), /*child_too=*/true);
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 1; }));
  // The same IKE_SA again through child-updown: wait until it was processed.
  charon_.Broadcast("child-updown", Sa("2", "CN=FG-2", "10.1.1.2").ToMessage(true, true));
  charon_.BringUp(Sa("3", "CN=FG-3", "10.1.1.3"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2; }));
  EXPECT_EQ(gate_.requests()[1].device, "FG-3");
  EXPECT_THAT(EventLines(), ElementsAre("up FG-2 segw-a/2", "up FG-3 segw-a/3"));
}

TEST_F(ViciSegwTest, CloneIsTerminatedAndTheOriginalStays) {
  gate_.DenyClones(true);
  Start();
  charon_.BringUp(Sa("1", "CN=FG-C", "10.1.1.1"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; }));
  charon_.BringUp(Sa("2", "CN=FG-C", "10.9.9.9"));
  ASSERT_TRUE(WaitFor([&] { return !charon_.Terminated().empty(); }));
  EXPECT_THAT(charon_.Terminated(), ElementsAre("2"));
  EXPECT_TRUE(charon_.HasSa("1"));
  EXPECT_FALSE(charon_.HasSa("2"));
  EXPECT_EQ(gate_.live(), 1u);
}

TEST_F(ViciSegwTest, TerminateDeviceEndsEverySessionOfThatDeviceOnly) {
  Start();
  charon_.BringUp(Sa("1", "CN=FG-1", "10.1.1.1"));
  charon_.BringUp(Sa("2", "CN=FG-1", "10.1.1.2"));
  charon_.BringUp(Sa("3", "CN=FG-2", "10.1.1.3"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 3; }));
  EXPECT_EQ(segw_->TerminateDevice("FG-1", "certificate revoked"), 2);
  auto t = charon_.Terminated();
  std::sort(t.begin(), t.end());
  EXPECT_THAT(t, ElementsAre("1", "2"));
  EXPECT_TRUE(charon_.HasSa("3"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; }));
  EXPECT_EQ(segw_->TerminateDevice("FG-1", "again"), 0);
  EXPECT_EQ(segw_->TerminateDevice("FG-unknown", "x"), 0);

  EXPECT_FALSE(segw_->TerminateSession("segw-b/3", "other SeGW"));
  EXPECT_FALSE(segw_->TerminateSession("segw-a/99", "not live"));
  EXPECT_TRUE(segw_->TerminateSession("segw-a/3", "blocked"));
  EXPECT_FALSE(charon_.HasSa("3"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 0; }));
}

TEST_F(ViciSegwTest, SessionsAlreadyUpAreAdmittedOnConnect) {
  gate_.DenyDevice("FG-OLD-BAD", "device.inactive");
  charon_.AddSa(Sa("1", "CN=FG-OLD", "10.2.2.1"));
  charon_.AddSa(Sa("2", "CN=FG-OLD-BAD", "10.2.2.2"));
  auto half = Sa("3", "CN=FG-HALF", "10.2.2.3");
  half.state = "CONNECTING";
  charon_.AddSa(half);
  Start();
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2 && !charon_.Terminated().empty(); }));
  EXPECT_THAT(charon_.Terminated(), ElementsAre("2"));
  EXPECT_TRUE(charon_.HasSa("1"));
  std::vector<std::string> asked;
  for (const auto& r : gate_.requests()) asked.push_back(r.device);
  std::sort(asked.begin(), asked.end());
  EXPECT_THAT(asked, ElementsAre("FG-OLD", "FG-OLD-BAD"));  // not the half-open one
}

TEST_F(ViciSegwTest, ReconnectsAfterCharonRestartsAndForgetsItsOldSessions) {
  uint64_t connects = Metrics::Global().Value("femtoguard_vici_connected_total");
  Start();
  charon_.BringUp(Sa("1", "CN=FG-1", "10.3.3.1", "aaaa"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; }));
  charon_.Restart();  // every SA is gone; unique ids start again at 1
  ASSERT_TRUE(WaitFor([&] { return charon_.accepted() == 2 && charon_.Registered("ike-updown"); }, 5000));
  ASSERT_TRUE(WaitFor([&] { return gate_.downs().size() == 1; }));
  EXPECT_THAT(gate_.downs(), ElementsAre("FG-1 segw-a/1"));
  EXPECT_TRUE(segw_->connected());
  EXPECT_GE(Metrics::Global().Value("femtoguard_vici_connected_total"), connects + 2);
  // A new IKE_SA with the recycled id 1 is a new session.
  charon_.BringUp(Sa("1", "CN=FG-2", "10.3.3.2", "bbbb"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2; }));
  EXPECT_EQ(gate_.requests()[1].device, "FG-2");
  EXPECT_THAT(EventLines(), ElementsAre("up FG-1 segw-a/1", "down FG-1 segw-a/1", "up FG-2 segw-a/1"));
}

TEST_F(ViciSegwTest, SessionThatWentDownWhileAwayIsReleasedAndOneThatCameUpIsAdmitted) {
  Start();
  charon_.BringUp(Sa("1", "CN=FG-1", "10.4.4.1"));
  charon_.BringUp(Sa("2", "CN=FG-2", "10.4.4.2"));
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 2; }));
  // Connection drops (charon keeps running); meanwhile 1 ends and 3 starts.
  charon_.DropConnections();
  charon_.BringDown("1");
  charon_.AddSa(Sa("3", "CN=FG-3", "10.4.4.3"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 3 && gate_.downs().size() == 1; }));
  EXPECT_THAT(gate_.downs(), ElementsAre("FG-1 segw-a/1"));
  EXPECT_EQ(gate_.requests()[2].device, "FG-3");
  EXPECT_EQ(gate_.live(), 2u);
  EXPECT_GE(charon_.accepted(), 2);
}

TEST_F(ViciSegwTest, UnclearCertificateLeavesTheFingerprintEmpty) {
  charon_.AddCert("CN=FG-TWO", MakeCertDer("FG-TWO", 1));
  charon_.AddCert("CN=FG-TWO", MakeCertDer("FG-TWO", 2));
  charon_.AddCert("CN=FG-JUNK", "not a certificate");
  Start();
  charon_.BringUp(Sa("1", "CN=FG-TWO", "10.5.5.1"));
  charon_.BringUp(Sa("2", "CN=FG-JUNK", "10.5.5.2"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2; }));
  EXPECT_EQ(gate_.requests()[0].cert_fp, "");
  EXPECT_EQ(gate_.requests()[0].serial, "");
  EXPECT_EQ(gate_.requests()[1].cert_fp, "");
}

TEST_F(ViciSegwTest, EndpointCarriesAPortOnlyWhenItIsNotAnIkePort) {
  Start();
  auto a = Sa("1", "CN=FG-1", "10.6.6.1");
  a.local_host = "192.0.2.10";
  a.local_port = "500";
  auto b = Sa("2", "CN=FG-2", "10.6.6.2");
  b.local_host = "192.0.2.11";
  b.local_port = "4501";
  auto c = Sa("3", "CN=FG-3", "2001:db8::3");
  c.local_host = "2001:db8::1";
  c.local_port = "14500";
  charon_.BringUp(a);
  charon_.BringUp(b);
  charon_.BringUp(c);
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 3; }));
  EXPECT_EQ(gate_.requests()[0].endpoint, "192.0.2.10");
  EXPECT_EQ(gate_.requests()[1].endpoint, "192.0.2.11:4501");
  EXPECT_EQ(gate_.requests()[2].endpoint, "[2001:db8::1]:14500");
  EXPECT_EQ(gate_.requests()[2].src_ip, "2001:db8::3");
}

TEST_F(ViciSegwTest, IdentitiesThatAreNotDistinguishedNamesAreTheDeviceId) {
  Start();
  charon_.BringUp(Sa("1", "fg-0000009.femto.example", "10.6.6.1"));
  charon_.BringUp(Sa("2", "CN=FG-A, OU=Femto, O=Op", "10.6.6.2"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2; }));
  EXPECT_EQ(gate_.requests()[0].device, "fg-0000009.femto.example");
  EXPECT_EQ(gate_.requests()[1].device, "FG-A");
}

TEST_F(ViciSegwTest, MalformedEventIsCountedAndChangesNothing) {
  uint64_t before = Metrics::Global().Value("femtoguard_vici_errors_total", "kind=\"event\"");
  Start();
  vici::Section junk;
  junk.Set("up", "yes");  // no IKE_SA section
  charon_.Broadcast("ike-updown", junk);
  vici::Section bad_id;
  bad_id.Set("up", "yes").AddSection("segw").Set("uniqueid", "1; rm -rf /").Set("remote-id", "CN=X");
  charon_.Broadcast("ike-updown", bad_id);
  ASSERT_TRUE(WaitFor(
      [&] { return Metrics::Global().Value("femtoguard_vici_errors_total", "kind=\"event\"") == before + 2; }));
  charon_.BringUp(Sa("4", "CN=FG-4", "10.7.7.4"));
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 1; }));
  EXPECT_EQ(gate_.requests()[0].device, "FG-4");
  Drain();
  EXPECT_TRUE(segw_->connected());
  EXPECT_THAT(charon_.Terminated(), IsEmpty());
}

class ThrowingGate : public admission::Gate {
 public:
  admission::Decision Admit(const admission::AdmissionRequest&) override { throw std::runtime_error("store down"); }
  void SessionDown(std::string_view, std::string_view) override {}
};

TEST_F(ViciSegwTest, FailsClosedWhenTheGateThrows) {
  ThrowingGate gate;
  ViciOptions o;
  o.socket_path = charon_.path();
  ViciSegw segw(o, gate, {});
  segw.Start();
  ASSERT_TRUE(WaitFor([&] { return segw.connected() && charon_.Registered("ike-updown"); }));
  charon_.BringUp(Sa("1", "CN=FG-1", "10.8.8.1"));
  ASSERT_TRUE(WaitFor([&] { return !charon_.Terminated().empty(); }));
  EXPECT_THAT(charon_.Terminated(), ElementsAre("1"));
  segw.Stop();
}

TEST_F(ViciSegwTest, WithoutCharonNothingCanBeTerminatedAndItKeepsTrying) {
  charon_.Shutdown();
  ViciOptions o;
  o.socket_path = charon_.path();
  o.reconnect_ms = 20;
  uint64_t errors = Metrics::Global().Value("femtoguard_vici_errors_total", "kind=\"connect\"");
  ViciSegw segw(o, gate_, {});
  segw.Start();
  ASSERT_TRUE(WaitFor(
      [&] { return Metrics::Global().Value("femtoguard_vici_errors_total", "kind=\"connect\"") >= errors + 3; }));
  EXPECT_FALSE(segw.connected());
  EXPECT_EQ(segw.TerminateDevice("FG-1", "x"), 0);
  charon_.Restart();
  ASSERT_TRUE(WaitFor([&] { return segw.connected(); }));
  segw.Stop();
  EXPECT_FALSE(segw.connected());
}

TEST_F(ViciSegwTest, FlushesCharonsOcspCacheOnRequest) {
  Start();
  Status s = segw_->FlushOcspCache();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_THAT(charon_.Flushed(), ElementsAre("OCSP_RESPONSE"));
  segw_->Stop();
  Status down = segw_->FlushOcspCache();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  EXPECT_THAT(charon_.Flushed(), ElementsAre("OCSP_RESPONSE"));
}

TEST(ParseSegwUri, AcceptsLocalSocketsOnly) {
  auto a = ParseSegwUri("vici:///run/charon.vici");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->socket_path, "/run/charon.vici");
  EXPECT_EQ(a->segw_id, "segw");
  auto b = ParseSegwUri("unix:///var/run/charon.vici?segw=segw-seoul-1&reconnect_ms=250");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->socket_path, "/var/run/charon.vici");
  EXPECT_EQ(b->segw_id, "segw-seoul-1");
  EXPECT_EQ(b->reconnect_ms, 250);
  for (const char* bad : {"", "vici://", "vici://host/run/charon.vici", "tcp://127.0.0.1:4502", "/run/charon.vici",
                          "vici:///run/x?reconnect_ms=abc", "vici:///run/x?reconnect_ms=1", "vici:///run/x?color=red",
                          "vici:///run/x?segw="}) {
    auto r = ParseSegwUri(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_THAT(r.status().message(), HasSubstr("--segw")) << bad;
  }
}

}  // namespace
}  // namespace fg::segw
