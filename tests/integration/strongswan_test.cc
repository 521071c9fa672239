// End to end with real strongSwan (issue 4): a SeGW charon in a network
// namespace checks femtocell certificates against femtoguard's OCSP
// responder with `revocation = strict` for the whole chain (the issuing CA's
// status from the root CRL its CDP names, the device's from OCSP; fail
// closed, see docs/strongswan.md)
// and is followed over vici by `femtoguard serve --segw`;
// femtocell charons in namespaces of their own connect with certificates
// from femtoguard's CA. Every case is judged from `swanctl --list-sas` on
// both sides and, where femtoguard decides, from its decision log.
//
//   ns segw: charon (SeGW), femtoguard serve on 127.0.0.1:8440 (OCSP there)
//            lo 10.98.0.1 (the core side of the tunnel)
//            to-f1 10.213.1.1/24 and 10.213.1.254/24 (two SeGW endpoints)
//            to-f2 10.213.2.1/24
//   ns f1:   eth0 10.213.1.2/24, lo 10.99.1.2 (femtocell)
//   ns f2:   eth0 10.213.2.2/24, lo 10.99.2.2 (a second femtocell: the clone)
//
// One SeGW, one serve and the namespaces are shared by all cases (charon
// start and IKE take time); each case starts its own femtocell charons and
// leaves the SeGW without SAs.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/strongswan_fixture.h"
#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr const char* kSegwId = "CN=segw.femtoguard.test";
constexpr const char* kServe = "127.0.0.1:8440";  // inside ns segw only

struct FemtoNet {
  std::string ns;         // lab name
  std::string outer;      // its address towards the SeGW
  std::string inner;      // its tunnel address
  std::string segw;       // the SeGW address it reaches by default
};
const FemtoNet kF1{"f1", "10.213.1.2", "10.99.1.2", "10.213.1.1"};
const FemtoNet kF2{"f2", "10.213.2.2", "10.99.2.2", "10.213.2.1"};
constexpr const char* kSegwInner = "10.98.0.1";
constexpr const char* kSegwSecondEndpoint = "10.213.1.254";

struct Enrolled {
  std::string id;
  std::string cert;
  std::string key;
  std::string serial;  // hex, as openssl prints it
};

// Everything shared by the suite; built once in SetUpTestSuite.
struct Lab {
  TempDir dir;
  NetLab net{"ss"};
  std::string data;
  std::unique_ptr<Process> serve;
  std::unique_ptr<Charon> segw;
  TestCa operator_ca;  // signs the SeGW's own certificate
  int femtos = 0;
};
Lab* lab = nullptr;
std::string skip_reason;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args);
}

class StrongswanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason = StrongswanLabUnavailable();
    if (!skip_reason.empty()) return;
    lab = new Lab();
    try {
      setup_error_ = BuildLab();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    if (!lab) return;
    lab->segw.reset();
    lab->serve.reset();
    delete lab;
    lab = nullptr;
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << "strongSwan lab unavailable: " << skip_reason;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }
  void TearDown() override {
    if (!lab || !lab->segw) return;
    femtos_.clear();  // charon stops send DELETE
    // Whatever is left at the SeGW goes; the next case starts clean.
    lab->segw->TerminateAll("femtocells");
  }

  static std::string BuildLab() {
    auto& l = *lab;
    for (const char* ns : {"segw", "f1", "f2"}) {
      if (auto e = l.net.AddNamespace(ns); !e.empty()) return e;
    }
    if (auto e = l.net.Link("segw", "to-f1", "10.213.1.1/24", "f1", "eth0", "10.213.1.2/24"); !e.empty()) return e;
    if (auto e = l.net.Link("segw", "to-f2", "10.213.2.1/24", "f2", "eth0", "10.213.2.2/24"); !e.empty()) return e;
    if (auto e = l.net.AddAddress("segw", std::string(kSegwSecondEndpoint) + "/24", "to-f1"); !e.empty()) return e;
    if (auto e = l.net.AddAddress("segw", std::string(kSegwInner) + "/32"); !e.empty()) return e;
    if (auto e = l.net.AddAddress("f1", kF1.inner + "/32"); !e.empty()) return e;
    if (auto e = l.net.AddAddress("f2", kF2.inner + "/32"); !e.empty()) return e;

    // femtoguard: CA and store; serve inside the SeGW's namespace, where
    // charon asks it for OCSP (the certificates name the same URL).
    l.data = l.dir / "data";
    auto init = Fg({"init", "--data", l.data, "--listen", kServe, "--public-url", std::string("http://") + kServe});
    if (init.exit_code != 0) return "femtoguard init: " + init.out;
    WriteAll(l.dir / "fg-root.pem", Fg({"ca", "cert", "--data", l.data, "--root"}).out);
    WriteAll(l.dir / "fg-issuing.pem", Fg({"ca", "cert", "--data", l.data}).out);
    if (auto e = StartServe(); !e.empty()) return e;

    // The SeGW: its own certificate from an operator CA; femtocells from
    // femtoguard's issuing CA, OCSP strict against femtoguard.
    l.operator_ca = MakeTestCa(l.dir.path().string(), "operator-ca", "Operator SeGW CA");
    auto [segw_cert, segw_key] = IssueFromTestCa(l.operator_ca, l.dir.path().string(), "segw", "segw.femtoguard.test");
    std::filesystem::create_directories(l.dir / "segw");
    l.segw = std::make_unique<Charon>(l.net, "segw", l.dir / "segw");
    l.segw->CopyFile("x509/segw.pem", segw_cert);
    l.segw->CopyFile("private/segw.key", segw_key);
    l.segw->CopyFile("x509ca/fg-root.pem", l.dir / "fg-root.pem");
    l.segw->CopyFile("x509ca/fg-issuing.pem", l.dir / "fg-issuing.pem");
    l.segw->SetSwanctlConf(SegwConf());
    if (auto e = l.segw->Start(); !e.empty()) return "SeGW charon: " + e;
    if (auto e = WaitServeFollowsSegw(0); !e.empty()) return e;
    return {};
  }

  // femtoguard serve inside the SeGW's namespace (OCSP for charon there),
  // following the SeGW over vici (--segw).
  static std::string StartServe() {
    auto& l = *lab;
    std::vector<std::string> serve = {"ip",        "netns",  "exec",       l.net.Ns("segw"), Femtoguard(),
                                      "serve",     "--data", l.data,       "--listen",       kServe,
                                      "--tls-listen", "off", "--threads", "2", "--segw",
                                      "vici://" + (l.dir / "segw/charon.vici") + "?segw=segw-test"};
    l.serve = std::make_unique<Process>(serve, l.dir / "serve.log");
    for (int i = 0; i < 100; ++i) {
      if (l.net.Exec("segw", {"curl", "-sf", "-o", "/dev/null", "--max-time", "1",
                              std::string("http://") + kServe + "/healthz"})
              .exit_code == 0) {
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "femtoguard serve did not answer in ns segw: " + ReadAll(l.dir / "serve.log");
  }
  // Waits until serve's log shows its (n+1)-th vici connection to charon.
  static std::string WaitServeFollowsSegw(size_t n) {
    auto count = [] {
      std::string log = ReadAll(lab->dir / "serve.log");
      size_t c = 0;
      for (size_t at = log.find("vici: connected"); at != std::string::npos; at = log.find("vici: connected", at + 1)) {
        ++c;
      }
      return c;
    };
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && count() <= n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (count() <= n) return "serve --segw did not connect to charon's vici socket: " + ReadAll(lab->dir / "serve.log");
    return {};
  }

  static std::string SegwConf() {
    return SegwSwanctlConf(kSegwId, "fg-issuing.pem", std::string(kSegwInner) + "/32", "strict",
                           std::string("authorities {\n"
                                       "  femtoguard {\n"
                                       "    cacert = fg-issuing.pem\n"
                                       "    ocsp_uris = http://") +
                               kServe +
                               "/ocsp\n"
                               "  }\n"
                               "}\n");
  }

  // ---- femtoguard ----
  static void AddDevice(const std::string& id, const std::string& status = "active") {
    auto r = Fg({"device", "add", "--data", lab->data, "--device", id, "--status", status});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void SetStatus(const std::string& id, const std::string& status) {
    auto r = Fg({"device", "set-status", "--data", lab->data, "--device", id, "--status", status, "--reason", "test"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  // A key and CSR made by openssl, the certificate by `femtoguard cert issue`.
  static Enrolled Enrol(const std::string& id) {
    Enrolled e{id, lab->dir / (id + ".pem"), lab->dir / (id + ".key"), {}};
    std::string csr = lab->dir / (id + ".csr");
    auto req = fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", e.key, "-out", csr, "-subj", "/CN=" + id});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto issue = Fg({"cert", "issue", "--data", lab->data, "--device", id, "--csr", csr});
    EXPECT_EQ(issue.exit_code, 0) << issue.out;
    WriteAll(e.cert, issue.out.substr(issue.out.find("-----BEGIN CERTIFICATE-----")));
    auto serial = fg::testing::Run({"openssl", "x509", "-in", e.cert, "-noout", "-serial"});
    std::smatch m;
    std::regex re("serial=([0-9A-Fa-f]+)");
    EXPECT_TRUE(std::regex_search(serial.out, m, re)) << serial.out;
    if (!m.empty()) e.serial = m[1];
    return e;
  }
  static std::vector<std::string> Decisions(const std::string& device) {
    std::vector<std::string> out;
    std::istringstream in(ReadAll(lab->data + "/log/admission.jsonl"));
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"device\":\"" + device + "\"") != std::string::npos) out.push_back(line);
    }
    return out;
  }
  // Waits (up to `ms`) for the decision log to hold a line for `device`
  // containing `needle` (the log is flushed every 100 ms).
  static std::string WaitDecision(const std::string& device, const std::string& needle, int ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    do {
      for (const auto& l : Decisions(device)) {
        if (l.find(needle) != std::string::npos) return l;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (Clock::now() < deadline);
    return {};
  }

  // ---- femtocells ----
  // A femtocell charon in `net`'s namespace with this certificate and key,
  // configured to reach the SeGW at `segw_addr` (default: its own link).
  Charon& Femto(const FemtoNet& net, const Enrolled& cred, const std::string& segw_addr = {}) {
    std::string dir = lab->dir / ("femto-" + std::to_string(++lab->femtos) + "-" + net.ns);
    std::filesystem::create_directories(dir);
    auto c = std::make_unique<Charon>(lab->net, net.ns, dir);
    c->CopyFile("x509/device.pem", cred.cert);
    c->CopyFile("private/device.key", cred.key);
    c->CopyFile("x509ca/operator-ca.pem", lab->operator_ca.cert);
    c->SetSwanctlConf("connections {\n"
                      "  segw {\n"
                      "    version = 2\n"
                      "    encap = yes\n"
                      "    remote_addrs = " + (segw_addr.empty() ? net.segw : segw_addr) + "\n"
                      "    local {\n"
                      "      auth = pubkey\n"
                      "      certs = device.pem\n"
                      "    }\n"
                      "    remote {\n"
                      "      auth = pubkey\n"
                      "      id = \"" + std::string(kSegwId) + "\"\n"
                      "      cacerts = operator-ca.pem\n"
                      "    }\n"
                      "    children {\n"
                      "      core {\n"
                      "        local_ts = " + net.inner + "/32\n"
                      "        remote_ts = " + std::string(kSegwInner) + "/32\n"
                      "      }\n"
                      "    }\n"
                      "  }\n"
                      "}\n");
    std::string err = c->Start();
    EXPECT_TRUE(err.empty()) << err;
    femtos_.push_back(std::move(c));
    return *femtos_.back();
  }

  static std::string SegwSas() { return lab->segw->ListSas(); }
  // The end of serve's log, for failure messages.
  static std::string ServeLogTail() {
    std::string log = ReadAll(lab->dir / "serve.log");
    return "\n--- femtoguard serve log (tail) ---\n" + (log.size() > 4000 ? log.substr(log.size() - 4000) : log);
  }
  // The end of the SeGW's charon log, for failure messages.
  static std::string SegwLogTail() {
    std::string log = lab->segw->Log();
    return "\n--- SeGW charon.log (tail) ---\n" + (log.size() > 4000 ? log.substr(log.size() - 4000) : log);
  }

  // What the SeGW's revocation check said about `subject` the last time:
  // the "certificate status is ..." / "certificate was revoked ..." line
  // logged by the thread that checked it.
  static std::string RevocationVerdict(const std::string& subject) {
    std::istringstream in(lab->segw->Log());
    std::string verdict, thread;
    for (std::string line; std::getline(in, line);) {
      size_t tag = line.find("[CFG]");
      if (tag == std::string::npos) continue;
      size_t sp = line.rfind(' ', tag);
      std::string who = line.substr(sp + 1, tag - sp - 1);
      if (line.find("checking certificate status of \"" + subject + "\"") != std::string::npos) {
        thread = who;
      } else if (!thread.empty() && who == thread &&
                 (line.find("certificate status is") != std::string::npos ||
                  line.find("certificate was revoked") != std::string::npos)) {
        verdict = line.substr(tag + 6);
        thread.clear();
      }
    }
    return verdict;
  }

  // Polls until no SA from `host` is established at the SeGW; returns how
  // long it took, or -1 after `ms`.
  static long GoneFromSegw(const std::string& host, Clock::time_point since, int ms = 3000) {
    auto deadline = since + std::chrono::milliseconds(ms);
    for (;;) {
      if (EstablishedSasFrom(SegwSas(), host).empty()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
      }
      if (Clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Asserts `femto` could not get in: initiate failed, no SA on either side.
  void ExpectRefused(Charon& femto, const Enrolled& cred, const RunResult& initiate) {
    EXPECT_NE(initiate.exit_code, 0) << initiate.out;
    EXPECT_THAT(EstablishedSas(femto.ListSas(), kSegwId), IsEmpty()) << femto.ListSas();
    EXPECT_THAT(EstablishedSas(SegwSas(), "CN=" + cred.id), IsEmpty()) << SegwSas();
  }

  static inline std::string setup_error_;
  std::vector<std::unique_ptr<Charon>> femtos_;
};

// 1. A registered, active femtocell connects and passes traffic.
TEST_F(StrongswanTest, ActiveDeviceConnectsAndPassesTraffic) {
  AddDevice("FG-0000001");
  auto cred = Enrol("FG-0000001");
  Charon& femto = Femto(kF1, cred);
  auto init = femto.Initiate("core");
  ASSERT_EQ(init.exit_code, 0) << init.out << SegwLogTail();

  auto femto_sas = EstablishedSas(femto.ListSas(), kSegwId);
  ASSERT_EQ(femto_sas.size(), 1u) << femto.ListSas();
  EXPECT_THAT(femto_sas[0], HasSubstr("INSTALLED"));
  auto segw_sas = EstablishedSas(SegwSas(), "CN=FG-0000001");
  ASSERT_EQ(segw_sas.size(), 1u) << SegwSas();
  EXPECT_THAT(segw_sas[0], HasSubstr("@ 10.213.1.2["));
  // OCSP was asked and said good.
  EXPECT_EQ(RevocationVerdict("CN=FG-0000001"), "certificate status is good");
  // Strict for the whole chain: the issuing CA's status came from the root
  // CRL its CRL distribution point names, signed by the root.
  EXPECT_EQ(RevocationVerdict("O=femtoguard, CN=femtoguard Issuing CA"), "certificate status is good")
      << SegwLogTail();
  EXPECT_THAT(lab->segw->Log(), HasSubstr("fetching crl from 'http://127.0.0.1:8440/crl/root'"));

  // Traffic: a datagram from the femtocell's tunnel address to the core
  // side and back, through ESP (the tunnel is the only route).
  std::string echo = UdpEcho(lab->net.Ns("f1"), kF1.inner, lab->net.Ns("segw"), kSegwInner);
  EXPECT_EQ(echo, "");
  std::smatch m;
  std::string after = EstablishedSas(SegwSas(), "CN=FG-0000001").at(0);
  ASSERT_TRUE(std::regex_search(after, m, std::regex(R"(in  [0-9a-f]+, +([0-9]+) bytes, +([0-9]+) packets)")))
      << after;
  EXPECT_GE(std::stoi(m[2]), 1) << "no ESP packet counted in:\n" << after;

  // femtoguard saw the session over vici and admitted it.
  EXPECT_FALSE(WaitDecision("FG-0000001", "\"decision\":\"allow\"").empty()) << Decisions("FG-0000001").size();
  // Must-not: nothing flags this legitimate session afterwards (detection
  // runs behind admission), and it stays up.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_THAT(Fg({"alert", "list", "--data", lab->data}).out, Not(HasSubstr("FG-0000001"))) << ServeLogTail();
  EXPECT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000001").size(), 1u) << SegwSas();
}

// 2. A revoked certificate is refused during IKE (OCSP).
TEST_F(StrongswanTest, RevokedCertificateIsRefusedByOcsp) {
  AddDevice("FG-0000002");
  auto cred = Enrol("FG-0000002");
  auto revoke = Fg({"cert", "revoke", "--data", lab->data, "--serial", cred.serial, "--reason", "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  Charon& femto = Femto(kF1, cred);
  auto init = femto.Initiate("core");
  ExpectRefused(femto, cred, init);
  EXPECT_THAT(RevocationVerdict("CN=FG-0000002"), HasSubstr("reason: key compromise"));
  // Refused before any IKE_SA existed: femtoguard was never asked to admit it.
  EXPECT_THAT(Decisions("FG-0000002"), IsEmpty());
}

// 3. A suspended device is refused; after reactivation it connects.
TEST_F(StrongswanTest, SuspendedDeviceIsRefusedUntilReactivated) {
  AddDevice("FG-0000003");
  auto cred = Enrol("FG-0000003");
  SetStatus("FG-0000003", "suspended");
  Charon& femto = Femto(kF1, cred);
  auto refused = femto.Initiate("core");
  ExpectRefused(femto, cred, refused);
  EXPECT_THAT(RevocationVerdict("CN=FG-0000003"), HasSubstr("reason: certificate hold"));
  EXPECT_THAT(Decisions("FG-0000003"), IsEmpty());

  SetStatus("FG-0000003", "active");
  // charon cached the certificateHold answer (until its nextUpdate, an
  // hour): only femtoguard flushing the SeGW's OCSP cache over vici on the
  // status change lets the device back in now.
  auto init = femto.Initiate("core");
  ASSERT_EQ(init.exit_code, 0) << init.out << "\nthe SeGW's last revocation check said: "
                               << RevocationVerdict("CN=FG-0000003");
  EXPECT_EQ(EstablishedSas(femto.ListSas(), kSegwId).size(), 1u) << femto.ListSas();
  EXPECT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000003").size(), 1u) << SegwSas();
  EXPECT_FALSE(WaitDecision("FG-0000003", "\"decision\":\"allow\"").empty());
}

// 4. A decommissioned device is refused.
TEST_F(StrongswanTest, DecommissionedDeviceIsRefused) {
  AddDevice("FG-0000004");
  auto cred = Enrol("FG-0000004");
  SetStatus("FG-0000004", "decommissioned");
  Charon& femto = Femto(kF1, cred);
  auto init = femto.Initiate("core");
  ExpectRefused(femto, cred, init);
  EXPECT_THAT(RevocationVerdict("CN=FG-0000004"), HasSubstr("certificate was revoked"));
  EXPECT_THAT(Decisions("FG-0000004"), IsEmpty());
}

// 5. A certificate from a CA femtoguard does not know is refused, even for
// a registered, active device id.
TEST_F(StrongswanTest, CertificateFromAnUnknownCaIsRefused) {
  AddDevice("FG-0000005");
  TestCa rogue = MakeTestCa(lab->dir.path().string(), "rogue-ca", "Rogue Femto CA");
  auto [cert, key] = IssueFromTestCa(rogue, lab->dir.path().string(), "rogue-FG-0000005", "FG-0000005");
  Enrolled cred{"FG-0000005", cert, key, {}};
  Charon& femto = Femto(kF1, cred);
  auto init = femto.Initiate("core");
  ExpectRefused(femto, cred, init);
  EXPECT_THAT(lab->segw->Log(), HasSubstr("no trusted"));
  EXPECT_THAT(Decisions("FG-0000005"), IsEmpty());
}

// 6. A clone: the same certificate and key from a second femtocell while the
// first is connected. The newcomer is terminated within 1 s with cert.clone
// in the decision log; the original stays up.
TEST_F(StrongswanTest, CloneIsTerminatedWithinOneSecondAndTheOriginalStays) {
  AddDevice("FG-0000006");
  auto cred = Enrol("FG-0000006");
  Charon& original = Femto(kF1, cred);
  ASSERT_EQ(original.Initiate("core").exit_code, 0) << SegwLogTail();
  ASSERT_FALSE(WaitDecision("FG-0000006", "\"decision\":\"allow\"").empty());

  Charon& clone = Femto(kF2, cred);
  auto start = Clock::now();  // the clock runs from the clone's first IKE packet
  clone.Initiate("core");     // charon may complete IKE before femtoguard decides
  long gone_ms = GoneFromSegw(kF2.outer, start, 1000);
  EXPECT_GE(gone_ms, 0) << "the clone's SA was still up at the SeGW 1 s after it started:\n" << SegwSas();
  RecordProperty("clone_gone_ms", static_cast<int>(gone_ms));
  std::string line = WaitDecision("FG-0000006", "cert.clone");
  ASSERT_FALSE(line.empty()) << ReadAll(lab->data + "/log/admission.jsonl") << ServeLogTail()
                             << Fg({"alert", "list", "--data", lab->data}).out;
  EXPECT_THAT(line, HasSubstr("\"decision\":\"deny\""));
  EXPECT_THAT(line, HasSubstr("\"src_ip\":\"" + kF2.outer + "\""));
  // The clone is out on its own side too; the original is untouched.
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < deadline && !EstablishedSas(clone.ListSas(), kSegwId).empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(EstablishedSas(clone.ListSas(), kSegwId), IsEmpty()) << clone.ListSas();
  EXPECT_EQ(EstablishedSas(original.ListSas(), kSegwId).size(), 1u) << original.ListSas() << ServeLogTail();
  EXPECT_EQ(EstablishedSasFrom(SegwSas(), kF1.outer).size(), 1u) << SegwSas();
  EXPECT_EQ(UdpEcho(lab->net.Ns("f1"), kF1.inner, lab->net.Ns("segw"), kSegwInner), "");
}

// 7. A device connecting from outside its registered prefix is terminated.
TEST_F(StrongswanTest, DeviceOutsideItsRegisteredPrefixIsTerminated) {
  std::string reg = lab->dir / "registry-7.jsonl";
  WriteAll(reg, "{\"device\":\"FG-0000007\",\"status\":\"active\",\"prefixes\":[\"10.213.50.0/24\"]}\n");
  auto import = Fg({"device", "import", "--data", lab->data, "--registry", reg});
  ASSERT_EQ(import.exit_code, 0) << import.out;
  auto cred = Enrol("FG-0000007");
  Charon& femto = Femto(kF1, cred);  // from 10.213.1.2, not in 10.213.50.0/24
  auto start = Clock::now();
  femto.Initiate("core");
  long gone_ms = GoneFromSegw(kF1.outer, start, 1000);
  EXPECT_GE(gone_ms, 0) << SegwSas();
  std::string line = WaitDecision("FG-0000007", "\"decision\":\"deny\"");
  ASSERT_FALSE(line.empty()) << ReadAll(lab->data + "/log/admission.jsonl");
  EXPECT_THAT(line, HasSubstr("location.line"));
  EXPECT_THAT(Decisions("FG-0000007"), Not(::testing::Contains(HasSubstr("\"decision\":\"allow\""))));
}

// 8. A device connecting to a retired endpoint is terminated; the same
// device on the current endpoint stays.
TEST_F(StrongswanTest, RetiredEndpointIsTerminatedAndTheCurrentOneWorks) {
  std::string old_ep = std::string(kSegwSecondEndpoint) + ":500";
  std::string new_ep = kF1.segw + ":500";
  ASSERT_EQ(Fg({"endpoint", "add", "--data", lab->data, "--address", old_ep}).exit_code, 0);
  auto rotate = Fg({"endpoint", "rotate", "--data", lab->data, "--from", old_ep, "--to", new_ep});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.out;
  auto retire = Fg({"endpoint", "retire", "--data", lab->data, "--address", old_ep});
  ASSERT_EQ(retire.exit_code, 0) << retire.out;

  AddDevice("FG-0000008");
  auto cred = Enrol("FG-0000008");
  Charon& stale = Femto(kF1, cred, kSegwSecondEndpoint);
  auto start = Clock::now();
  stale.Initiate("core");
  long gone_ms = GoneFromSegw(kF1.outer, start, 1000);
  EXPECT_GE(gone_ms, 0) << SegwSas();
  std::string line = WaitDecision("FG-0000008", "endpoint.retired");
  ASSERT_FALSE(line.empty()) << ReadAll(lab->data + "/log/admission.jsonl");
  EXPECT_THAT(line, HasSubstr("\"decision\":\"deny\""));
  EXPECT_THAT(line, HasSubstr(kSegwSecondEndpoint));
  femtos_.clear();

  // Must-not: the device itself is fine on the current endpoint.
  Charon& current = Femto(kF1, cred);
  ASSERT_EQ(current.Initiate("core").exit_code, 0) << SegwLogTail();
  ASSERT_FALSE(WaitDecision("FG-0000008", "\"decision\":\"allow\"").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(EstablishedSas(current.ListSas(), kSegwId).size(), 1u) << current.ListSas() << ServeLogTail();
  EXPECT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000008").size(), 1u) << SegwSas() << ServeLogTail();
}

// 9. Revoking a connected device's certificate ends its live SA within 1 s,
// and it does not get back in.
TEST_F(StrongswanTest, RevokingALiveDeviceTerminatesItsSaWithinOneSecond) {
  AddDevice("FG-0000009");
  auto cred = Enrol("FG-0000009");
  Charon& femto = Femto(kF1, cred);
  ASSERT_EQ(femto.Initiate("core").exit_code, 0) << SegwLogTail();
  ASSERT_FALSE(WaitDecision("FG-0000009", "\"decision\":\"allow\"").empty());
  ASSERT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000009").size(), 1u);

  auto revoke = Fg({"cert", "revoke", "--data", lab->data, "--serial", cred.serial, "--reason", "keyCompromise"});
  auto revoked_at = Clock::now();  // the CLI returns once serve confirmed the change
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  long gone_ms = GoneFromSegw(kF1.outer, revoked_at, 1000);
  EXPECT_GE(gone_ms, 0) << "still up 1 s after the revocation:\n" << SegwSas();
  RecordProperty("revoked_gone_ms", static_cast<int>(gone_ms));
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < deadline && !EstablishedSas(femto.ListSas(), kSegwId).empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(EstablishedSas(femto.ListSas(), kSegwId), IsEmpty()) << femto.ListSas();

  // Must-not: trying again does not get it back in (refused by OCSP, or
  // admitted by IKE on a cached answer and terminated by femtoguard).
  femto.Initiate("core");
  EXPECT_GE(GoneFromSegw(kF1.outer, Clock::now(), 1000), 0) << SegwSas();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_THAT(EstablishedSas(SegwSas(), "CN=FG-0000009"), IsEmpty()) << SegwSas();
}

// Fail closed: with femtoguard's responder unreachable, nobody gets in.
// Last: stops and restarts serve.
TEST_F(StrongswanTest, UnreachableResponderMeansNobodyGetsIn) {
  AddDevice("FG-0000010");
  auto cred = Enrol("FG-0000010");
  lab->serve->Stop();
  Charon& femto = Femto(kF1, cred);
  auto init = femto.Initiate("core");
  std::string restart = StartServe();
  ExpectRefused(femto, cred, init);
  EXPECT_THAT(lab->segw->Log(), HasSubstr("ocsp request to http://127.0.0.1:8440/ocsp failed"));
  ASSERT_EQ(restart, "");
  ASSERT_EQ(WaitServeFollowsSegw(1), "");
  // Back up: the same device connects.
  ASSERT_EQ(femto.Initiate("core").exit_code, 0) << SegwLogTail();
  EXPECT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000010").size(), 1u) << SegwSas() << ServeLogTail();
}

}  // namespace
}  // namespace fg::testing
