// ViciSegw against a real charon (strongSwan 5.9, kernel-libipsec) in a
// network namespace, with femtocell charons in namespaces of their own and a
// rule-based test Gate (the admission engine is tested on its own; the
// end-to-end test with `femtoguard serve --segw` is in tests/integration/).
//
//   ns segw: to-f1 10.214.1.1/24, to-f2 10.214.2.1/24, lo 10.98.0.1
//   ns f1:   eth0 10.214.1.2/24, lo 10.99.1.2
//   ns f2:   eth0 10.214.2.2/24, lo 10.99.2.2

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/metrics.h"
#include "integration/strongswan_fixture.h"
#include "segw/fake_charon.h"  // WaitFor
#include "segw/test_gate.h"
#include "segw/vici_segw.h"

namespace fg::segw {
namespace {

using Clock = std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::RuleGate;
using testing::WaitFor;

constexpr const char* kSegwId = "CN=segw.lab.test";

struct Cred {
  std::string id, cert, key;
};

// "sha256:<hex>" of a PEM certificate's DER, and its serial in hex.
std::pair<std::string, std::string> FingerprintAndSerial(const std::string& pem_path) {
  std::string pem = fg::testing::ReadAll(pem_path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!x) return {};
  unsigned char* der = nullptr;
  int n = i2d_X509(x, &der);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(n), md);
  OPENSSL_free(der);
  char hex[3];
  std::string fp = "sha256:";
  for (unsigned char c : md) {
    std::snprintf(hex, sizeof hex, "%02x", c);
    fp += hex;
  }
  const ASN1_INTEGER* s = X509_get0_serialNumber(x);
  std::string serial;
  for (int i = 0; i < s->length; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", s->data[i]);
    serial += hex;
  }
  X509_free(x);
  return {fp, serial};
}

struct Lab {
  fg::testing::TempDir dir;
  fg::testing::NetLab net{"vs"};
  fg::testing::TestCa ca;
  std::unique_ptr<fg::testing::Charon> segw;
  int femtos = 0;
};
Lab* lab = nullptr;
std::string skip_reason;
std::string setup_error;

class CharonSegwTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason = fg::testing::StrongswanLabUnavailable();
    if (!skip_reason.empty()) return;
    lab = new Lab();
    try {
      setup_error = Build();
    } catch (const std::exception& e) {
      setup_error = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete lab;
    lab = nullptr;
  }
  static std::string Build() {
    auto& l = *lab;
    for (const char* ns : {"segw", "f1", "f2"}) {
      if (auto e = l.net.AddNamespace(ns); !e.empty()) return e;
    }
    if (auto e = l.net.Link("segw", "to-f1", "10.214.1.1/24", "f1", "eth0", "10.214.1.2/24"); !e.empty()) return e;
    if (auto e = l.net.Link("segw", "to-f2", "10.214.2.1/24", "f2", "eth0", "10.214.2.2/24"); !e.empty()) return e;
    for (auto [ns, ip] : {std::pair{"segw", "10.98.0.1/32"}, {"f1", "10.99.1.2/32"}, {"f2", "10.99.2.2/32"}}) {
      if (auto e = l.net.AddAddress(ns, ip); !e.empty()) return e;
    }
    std::string d = l.dir.path().string();
    l.ca = fg::testing::MakeTestCa(d, "lab-ca", "Lab CA");
    auto [cert, key] = fg::testing::IssueFromTestCa(l.ca, d, "segw", "segw.lab.test");
    std::filesystem::create_directories(d + "/segw");
    l.segw = std::make_unique<fg::testing::Charon>(l.net, "segw", d + "/segw");
    l.segw->CopyFile("x509/segw.pem", cert);
    l.segw->CopyFile("private/segw.key", key);
    l.segw->CopyFile("x509ca/lab-ca.pem", l.ca.cert);
    l.segw->SetSwanctlConf(fg::testing::SegwSwanctlConf(kSegwId, "lab-ca.pem", "10.98.0.1/32"));
    return l.segw->Start();
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << "strongSwan lab unavailable: " << skip_reason;
    ASSERT_TRUE(setup_error.empty()) << setup_error;
    ASSERT_TRUE(lab->segw->Running()) << lab->segw->Log();
    ViciOptions o;
    o.socket_path = lab->segw->vici_path();
    o.segw_id = "segw-lab";
    o.reconnect_ms = 100;
    adapter_ = std::make_unique<ViciSegw>(o, gate_, [this](const SessionEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    });
    adapter_->Start();
    ASSERT_TRUE(WaitFor([&] { return adapter_->connected(); })) << lab->segw->Log();
  }
  void TearDown() override {
    femtos_.clear();
    if (adapter_) adapter_->Stop();
    if (lab && lab->segw && lab->segw->Running()) {
      lab->segw->Swanctl({"--terminate", "--ike", "femtocells", "--force", "--timeout", "2"});
    }
  }

  static Cred NewDevice(const std::string& id) {
    auto [cert, key] = fg::testing::IssueFromTestCa(lab->ca, lab->dir.path().string(), id, id);
    return {id, cert, key};
  }
  fg::testing::Charon& Femto(const std::string& ns, const Cred& cred) {
    std::string subnet = ns == "f1" ? "1" : "2";
    std::string dir = lab->dir / ("femto-" + std::to_string(++lab->femtos));
    std::filesystem::create_directories(dir);
    auto c = std::make_unique<fg::testing::Charon>(lab->net, ns, dir);
    c->CopyFile("x509/device.pem", cred.cert);
    c->CopyFile("private/device.key", cred.key);
    c->CopyFile("x509ca/lab-ca.pem", lab->ca.cert);
    c->SetSwanctlConf("connections {\n"
                      "  segw {\n"
                      "    version = 2\n"
                      "    encap = yes\n"
                      "    remote_addrs = 10.214." + subnet + ".1\n"
                      "    local {\n"
                      "      auth = pubkey\n"
                      "      certs = device.pem\n"
                      "    }\n"
                      "    remote {\n"
                      "      auth = pubkey\n"
                      "      id = \"" + std::string(kSegwId) + "\"\n"
                      "    }\n"
                      "    children {\n"
                      "      core {\n"
                      "        local_ts = 10.99." + subnet + ".2/32\n"
                      "        remote_ts = 10.98.0.1/32\n"
                      "      }\n"
                      "    }\n"
                      "  }\n"
                      "}\n");
    std::string err = c->Start();
    EXPECT_TRUE(err.empty()) << err;
    femtos_.push_back(std::move(c));
    return *femtos_.back();
  }
  static size_t SegwSasFrom(const std::string& host) {
    return fg::testing::EstablishedSasFrom(lab->segw->ListSas(), host).size();
  }
  static size_t FemtoSas(fg::testing::Charon& femto) {
    return fg::testing::EstablishedSas(femto.ListSas(), kSegwId).size();
  }
  std::vector<std::string> EventLines() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : events_) out.push_back(std::string(e.up ? "up " : "down ") + e.device + " " + e.src_ip);
    return out;
  }

  RuleGate gate_;
  std::unique_ptr<ViciSegw> adapter_;
  std::vector<std::unique_ptr<fg::testing::Charon>> femtos_;
  std::mutex mutex_;
  std::vector<SessionEvent> events_;
};

TEST_F(CharonSegwTest, AllowedSessionStaysAndTheGateSawWhatCharonSaw) {
  Cred dev = NewDevice("FG-LAB-A");
  auto& femto = Femto("f1", dev);
  auto init = femto.Initiate("core");
  ASSERT_EQ(init.exit_code, 0) << init.out;
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 1; })) << lab->segw->Log();
  auto r = gate_.requests()[0];
  auto [fp, serial] = FingerprintAndSerial(dev.cert);
  EXPECT_EQ(r.device, "FG-LAB-A");
  EXPECT_THAT(r.session, ::testing::MatchesRegex("segw-lab/[0-9]+"));
  EXPECT_EQ(r.src_ip, "10.214.1.2");
  EXPECT_EQ(r.endpoint, "10.214.1.1");
  EXPECT_EQ(r.segw, "segw-lab");
  EXPECT_EQ(r.cert_fp, fp);  // from charon's certificate cache (list-certs)
  EXPECT_EQ(r.serial, serial);
  // Allowed: the SA is up on both sides and stays up.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(SegwSasFrom("10.214.1.2"), 1u) << lab->segw->ListSas();
  EXPECT_EQ(FemtoSas(femto), 1u) << femto.ListSas();
  EXPECT_EQ(gate_.live(), 1u);
  EXPECT_THAT(EventLines(), ElementsAre("up FG-LAB-A 10.214.1.2"));
  // Traffic passes.
  EXPECT_EQ(fg::testing::UdpEcho(lab->net.Ns("f1"), "10.99.1.2", lab->net.Ns("segw"), "10.98.0.1"), "");
}

TEST_F(CharonSegwTest, DeniedSessionIsTerminatedOnBothSides) {
  gate_.DenyDevice("FG-LAB-D", "device.inactive");
  Cred dev = NewDevice("FG-LAB-D");
  auto& femto = Femto("f1", dev);
  femto.Initiate("core");  // may complete before the termination
  auto asked = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 1; })) << lab->segw->Log();
  ASSERT_TRUE(WaitFor([&] { return SegwSasFrom("10.214.1.2") == 0; }, 1000))
      << "still up at the SeGW 1 s after the decision:\n"
      << lab->segw->ListSas();
  auto gone_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked).count();
  ASSERT_TRUE(WaitFor([&] { return FemtoSas(femto) == 0; }, 3000)) << femto.ListSas();
  EXPECT_EQ(gate_.live(), 0u);
  EXPECT_THAT(gate_.downs(), IsEmpty());  // never admitted, never released
  EXPECT_THAT(lab->segw->Log(), HasSubstr("vici client"));
  EXPECT_THAT(EventLines(), ElementsAre("up FG-LAB-D 10.214.1.2", "down FG-LAB-D 10.214.1.2"));
  RecordProperty("terminated_after_ms", static_cast<int>(gone_ms));
}

TEST_F(CharonSegwTest, CloneFromASecondFemtocellIsTerminatedAndTheOriginalStays) {
  gate_.DenyClones(true);
  Cred dev = NewDevice("FG-LAB-C");
  auto& original = Femto("f1", dev);
  ASSERT_EQ(original.Initiate("core").exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; })) << lab->segw->Log();
  auto& clone = Femto("f2", dev);  // the same certificate and key
  clone.Initiate("core");
  ASSERT_TRUE(WaitFor([&] { return gate_.requests().size() == 2; }));
  EXPECT_TRUE(WaitFor([&] { return SegwSasFrom("10.214.2.2") == 0; }, 1000)) << lab->segw->ListSas();
  EXPECT_TRUE(WaitFor([&] { return FemtoSas(clone) == 0; }, 3000)) << clone.ListSas();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(SegwSasFrom("10.214.1.2"), 1u) << lab->segw->ListSas();
  EXPECT_EQ(FemtoSas(original), 1u) << original.ListSas();
  EXPECT_EQ(gate_.live(), 1u);
}

TEST_F(CharonSegwTest, TerminateDeviceEndsItsLiveSessionAndFlushWorks) {
  Cred dev = NewDevice("FG-LAB-T");
  auto& femto = Femto("f1", dev);
  ASSERT_EQ(femto.Initiate("core").exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; })) << lab->segw->Log();
  EXPECT_EQ(adapter_->TerminateDevice("FG-LAB-T", "certificate revoked"), 1);
  EXPECT_EQ(SegwSasFrom("10.214.1.2"), 0u) << lab->segw->ListSas();
  EXPECT_TRUE(WaitFor([&] { return FemtoSas(femto) == 0; }, 3000)) << femto.ListSas();
  EXPECT_TRUE(WaitFor([&] { return gate_.live() == 0; }));
  EXPECT_THAT(gate_.downs(), ::testing::SizeIs(1));
  Status flush = adapter_->FlushOcspCache();
  EXPECT_TRUE(flush.ok()) << flush.ToString();
}

// Last: restarts the SeGW's charon.
TEST_F(CharonSegwTest, ReconnectsWhenCharonRestartsAndReleasesItsSessions) {
  Cred dev = NewDevice("FG-LAB-R");
  auto& femto = Femto("f1", dev);
  ASSERT_EQ(femto.Initiate("core").exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1; })) << lab->segw->Log();
  lab->segw->Stop();
  ASSERT_TRUE(WaitFor([&] { return !adapter_->connected(); }));
  ASSERT_EQ(lab->segw->Start(), "");
  ASSERT_TRUE(WaitFor([&] { return adapter_->connected(); }, 10000));
  // The old IKE_SA died with charon: released, even if no down event came.
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 0; }));
  femto.Swanctl({"--terminate", "--ike", "segw", "--force"});
  ASSERT_EQ(femto.Initiate("core").exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return gate_.live() == 1 && gate_.requests().size() == 2; })) << lab->segw->Log();
}

}  // namespace
}  // namespace fg::segw
