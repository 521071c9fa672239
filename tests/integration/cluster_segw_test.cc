// A real strongSwan SeGW failing over between two femtoguard nodes of one
// cluster on PostgreSQL (issue 15: "kill -9 node A during a reconnect storm
// of femtocells through real charon: every legitimate femtocell is admitted
// through B, no revoked one is").
//
// The SeGW's swanctl.conf pins no OCSP URI (no `authorities` section): charon
// takes the URIs from each femtocell certificate's AIA, which names both
// nodes, A first, and with `revocation = strict` it tries them in order and
// uses the first that answers. Every case is judged from `swanctl
// --list-sas` on both sides and from what the SeGW's charon log says it
// fetched and concluded.
//
//   ns segw: charon (SeGW), lo 10.98.0.1 (the core side of the tunnel)
//            femtoguard serve, node A, on 127.0.0.1:8440
//            femtoguard serve, node B, on 127.0.0.1:8441 (both follow the
//              SeGW over vici, --segw)
//            to-fN 10.213.N.1/24
//   ns fN:   eth0 10.213.N.2/24, lo 10.99.N.2 (femtocell N, one charon)
//   host:    PostgreSQL 15 started by the test; both nodes reach it over its
//            unix socket (a serve inside ns segw cannot reach the host's
//            127.0.0.1), and so does the CLI.
//
// Both nodes follow the SeGW over vici (--segw). With two followers each
// node sees every session of the one SeGW and logs its own decision: in case
// 1 both log the same allow for the same session (no clone is inferred from
// the second node's view, the SA stays up). After A is killed B alone
// decides, and case 2 checks its decision log: one allow per legitimate
// femtocell, nothing for the refused ones (IKE never got that far).
//
// Scale: seven femtocells through real charon (one namespace and one charon
// daemon each, initiating at once), not 2,000: 2,000 charons (or strongSwan's
// load-tester) are out of reach on the 2-core test machine within a test's
// minute. The 2,000-femtocell storm with kill -9 of node A runs over the HTTP
// admission API in cluster_test.cc; the two together are the evidence.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/strongswan_fixture.h"
#include "testing/harness.h"
#include "testing/pg_server.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Clock = std::chrono::steady_clock;

constexpr const char* kSegwId = "CN=segw.femtoguard.test";
constexpr const char* kSegwInner = "10.98.0.1";
// Inside ns segw only.
constexpr const char* kNodeA = "127.0.0.1:8440";
constexpr const char* kNodeB = "127.0.0.1:8441";
constexpr int kFemtoNamespaces = 7;  // f1..f7: case 2 runs seven at once

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 60);
}

struct Node {
  std::string name;
  std::string listen;
  std::string data;
  std::string log;
  std::unique_ptr<Process> serve;
  std::string url() const { return "http://" + listen; }
};

struct Enrolled {
  std::string id;
  std::string cert;
  std::string key;
  std::string serial;  // hex, as openssl prints it
};

// Shared by the suite: one PostgreSQL, two nodes, one SeGW.
struct Lab {
  TempDir dir;
  NetLab net{"cs"};
  std::unique_ptr<PgServer> pg;
  std::string store;
  Node a{"a", kNodeA, {}, {}, {}};
  Node b{"b", kNodeB, {}, {}, {}};
  std::unique_ptr<Charon> segw;
  TestCa operator_ca;
  int femtos = 0;
};
Lab* lab = nullptr;
std::string skip_reason;

std::string Femto(int n, const char* what) {
  if (std::string(what) == "ns") return "f" + std::to_string(n);
  if (std::string(what) == "outer") return "10.213." + std::to_string(n) + ".2";
  if (std::string(what) == "segw") return "10.213." + std::to_string(n) + ".1";
  return "10.99." + std::to_string(n) + ".2";  // inner
}

// What the SeGW's revocation check of `subject` did, the last time it ran:
// the OCSP URIs it requested, the requests that failed, and its verdict.
// Lines are attributed by charon's thread number, so checks running at once
// in several threads are kept apart.
struct Check {
  std::vector<std::string> requested;
  std::vector<std::string> failed;
  std::string verdict;
  std::string lines;  // the check's log lines, for the test's output
};
Check LastCheck(const std::string& log, const std::string& subject) {
  Check last, cur;
  std::string thread;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    size_t tag = line.find("[CFG]");
    if (tag == std::string::npos) continue;
    size_t sp = line.rfind(' ', tag);
    std::string who = line.substr(sp + 1, tag - sp - 1);
    if (line.find("checking certificate status of \"" + subject + "\"") != std::string::npos) {
      thread = who;
      cur = Check{};
      cur.lines = line + "\n";
      continue;
    }
    if (thread.empty() || who != thread) continue;
    cur.lines += line + "\n";
    std::smatch m;
    if (std::regex_search(line, m, std::regex("requesting ocsp status from '([^']+)'"))) {
      cur.requested.push_back(m[1]);
    } else if (std::regex_search(line, m, std::regex("ocsp request to (\\S+) failed"))) {
      cur.failed.push_back(m[1]);
    } else if (line.find("certificate status is") != std::string::npos ||
               line.find("certificate was revoked") != std::string::npos) {
      cur.verdict = line.substr(tag + 6);
      last = cur;
      thread.clear();
    }
  }
  return last;
}

class ClusterSegwTest : public ::testing::Test {
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
    lab->a.serve.reset();
    lab->b.serve.reset();
    lab->pg.reset();  // stops the postmaster by PID, removes its dir
    delete lab;       // namespaces, temp dir
    lab = nullptr;
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << "strongSwan lab unavailable: " << skip_reason;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }
  void TearDown() override { StopFemtos(); }
  // Stops every femtocell charon of the case and waits until the SeGW has
  // no SA left (the next case, or the next part of this one, starts clean).
  void StopFemtos() {
    if (!lab || !lab->segw) return;
    femtos_.clear();
    lab->segw->TerminateAll("femtocells");
  }

  static std::string BuildLab() {
    auto& l = *lab;
    if (auto e = l.net.AddNamespace("segw"); !e.empty()) return e;
    if (auto e = l.net.AddAddress("segw", std::string(kSegwInner) + "/32"); !e.empty()) return e;
    for (int n = 1; n <= kFemtoNamespaces; ++n) {
      const std::string ns = Femto(n, "ns");
      if (auto e = l.net.AddNamespace(ns); !e.empty()) return e;
      if (auto e = l.net.Link("segw", "to-" + ns, Femto(n, "segw") + "/24", ns, "eth0",
                              Femto(n, "outer") + "/24");
          !e.empty()) {
        return e;
      }
      if (auto e = l.net.AddAddress(ns, Femto(n, "inner") + "/32"); !e.empty()) return e;
    }

    // The cluster: node A by init on PostgreSQL, node B joined to it, its
    // URL second in every certificate's AIA.
    auto pg = PgServer::Start({});
    if (!pg.ok()) return "PostgreSQL: " + pg.status().ToString();
    l.pg = std::move(pg).value();
    auto db = l.pg->CreateDatabase("segw");
    if (!db.ok()) return "CREATE DATABASE: " + db.status().ToString();
    l.store = l.pg->SocketUrl(*db);
    l.a.data = l.dir / "a";
    l.b.data = l.dir / "b";
    auto init = Fg({"init", "--data", l.a.data, "--store", l.store, "--listen", kNodeA,
                    "--public-url", l.a.url()});
    if (init.exit_code != 0) return "femtoguard init: " + init.out;
    auto bundle = Fg({"node", "bundle", "--data", l.a.data, "--out", l.dir / "bundle.fgb"});
    if (bundle.exit_code != 0) return "node bundle: " + bundle.out;
    auto join = Fg({"node", "join", "--data", l.b.data, "--store", l.store, "--bundle",
                    l.dir / "bundle.fgb", "--passphrase-file", l.a.data + "/secrets/ca.passphrase",
                    "--public-url", l.b.url(), "--url-order", "1", "--listen", kNodeB});
    if (join.exit_code != 0) return "node join: " + join.out;
    WriteAll(l.dir / "fg-root.pem", Fg({"ca", "cert", "--data", l.a.data, "--root"}).out);
    WriteAll(l.dir / "fg-issuing.pem", Fg({"ca", "cert", "--data", l.a.data}).out);

    // The SeGW: its own certificate from an operator CA; femtocells from
    // femtoguard's issuing CA, OCSP strict, the URIs from the certificates.
    l.operator_ca = MakeTestCa(l.dir.path().string(), "operator-ca", "Operator SeGW CA");
    auto [segw_cert, segw_key] =
        IssueFromTestCa(l.operator_ca, l.dir.path().string(), "segw", "segw.femtoguard.test");
    std::filesystem::create_directories(l.dir / "segw");
    l.segw = std::make_unique<Charon>(l.net, "segw", l.dir / "segw");
    l.segw->CopyFile("x509/segw.pem", segw_cert);
    l.segw->CopyFile("private/segw.key", segw_key);
    l.segw->CopyFile("x509ca/fg-root.pem", l.dir / "fg-root.pem");
    l.segw->CopyFile("x509ca/fg-issuing.pem", l.dir / "fg-issuing.pem");
    l.segw->SetSwanctlConf(
        SegwSwanctlConf(kSegwId, "fg-issuing.pem", std::string(kSegwInner) + "/32", "strict"));
    if (auto e = l.segw->Start(); !e.empty()) return "SeGW charon: " + e;

    if (auto e = StartServe(l.a, /*follow_segw=*/true); !e.empty()) return e;
    if (auto e = StartServe(l.b, /*follow_segw=*/true); !e.empty()) return e;
    // Both follow the SeGW: wait for their vici connections.
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (const Node* n : {&l.a, &l.b}) {
      while (ReadAll(n->log).find("vici: connected") == std::string::npos) {
        if (Clock::now() > deadline)
          return "node " + n->name +
                 " did not connect to the SeGW's vici socket: " + ReadAll(n->log);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return {};
  }

  static std::string StartServe(Node& n, bool follow_segw) {
    auto& l = *lab;
    n.log = l.dir / (n.name + "-serve.log");
    std::vector<std::string> argv = {
        "ip",   "netns",    "exec",   l.net.Ns("segw"), Femtoguard(), "serve",     "--data",
        n.data, "--listen", n.listen, "--tls-listen",   "off",        "--threads", "2"};
    if (follow_segw) {
      argv.push_back("--segw");
      argv.push_back("vici://" + l.segw->vici_path() + "?segw=segw-test");
    }
    // `ip netns exec` execs: the PID is femtoguard's own (kill -9 below).
    n.serve = std::make_unique<Process>(argv, n.log);
    for (int i = 0; i < 200; ++i) {
      if (l.net
              .Exec("segw",
                    {"curl", "-sf", "-o", "/dev/null", "--max-time", "1", n.url() + "/healthz"})
              .exit_code == 0) {
        return {};
      }
      if (!n.serve->Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "node " + n.name + "'s serve did not answer in ns segw: " + ReadAll(n.log);
  }

  // `openssl ocsp` inside ns segw against `node`: "good", "revoked" or
  // "error: ...".
  static std::string Ocsp(const Node& node, const std::string& cert) {
    auto r = lab->net.Exec("segw", {"openssl", "ocsp", "-url", node.url() + "/ocsp", "-issuer",
                                    lab->dir / "fg-issuing.pem", "-cert", cert, "-CAfile",
                                    lab->dir / "fg-root.pem", "-no_nonce"});
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex(": (good|revoked|unknown)"))) return m[1];
    return "error: " + r.out;
  }

  // ---- femtoguard, through a node's CLI ----
  static void AddDevice(const Node& n, const std::string& id) {
    auto r = Fg({"device", "add", "--data", n.data, "--device", id, "--status", "active"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  // A key and CSR made by openssl, the certificate by `femtoguard cert issue`.
  static Enrolled Enrol(const Node& n, const std::string& id) {
    Enrolled e{id, lab->dir / (id + ".pem"), lab->dir / (id + ".key"), {}};
    std::string csr = lab->dir / (id + ".csr");
    auto req = fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", e.key, "-out", csr,
                                 "-subj", "/CN=" + id});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto issue = Fg({"cert", "issue", "--data", n.data, "--device", id, "--csr", csr});
    EXPECT_EQ(issue.exit_code, 0) << issue.out;
    size_t pem = issue.out.find("-----BEGIN CERTIFICATE-----");
    EXPECT_NE(pem, std::string::npos) << issue.out;
    if (pem != std::string::npos) WriteAll(e.cert, issue.out.substr(pem));
    auto serial = fg::testing::Run({"openssl", "x509", "-in", e.cert, "-noout", "-serial"});
    std::smatch m;
    EXPECT_TRUE(std::regex_search(serial.out, m, std::regex("serial=([0-9A-Fa-f]+)")))
        << serial.out;
    if (!m.empty()) e.serial = m[1];
    return e;
  }

  // ---- femtocells ----
  // A femtocell charon in namespace fN with this certificate and key.
  Charon& StartFemto(int n, const Enrolled& cred) {
    std::string dir = lab->dir / ("femto-" + std::to_string(++lab->femtos) + "-" + Femto(n, "ns"));
    std::filesystem::create_directories(dir);
    auto c = std::make_unique<Charon>(lab->net, Femto(n, "ns"), dir);
    c->CopyFile("x509/device.pem", cred.cert);
    c->CopyFile("private/device.key", cred.key);
    c->CopyFile("x509ca/operator-ca.pem", lab->operator_ca.cert);
    c->SetSwanctlConf(
        "connections {\n"
        "  segw {\n"
        "    version = 2\n"
        "    encap = yes\n"
        "    remote_addrs = " +
        Femto(n, "segw") +
        "\n"
        "    local {\n"
        "      auth = pubkey\n"
        "      certs = device.pem\n"
        "    }\n"
        "    remote {\n"
        "      auth = pubkey\n"
        "      id = \"" +
        std::string(kSegwId) +
        "\"\n"
        "      cacerts = operator-ca.pem\n"
        "    }\n"
        "    children {\n"
        "      core {\n"
        "        local_ts = " +
        Femto(n, "inner") +
        "/32\n"
        "        remote_ts = " +
        std::string(kSegwInner) +
        "/32\n"
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
  static std::string Tail(const std::string& what, const std::string& text) {
    return "\n--- " + what + " (tail) ---\n" +
           (text.size() > 4000 ? text.substr(text.size() - 4000) : text);
  }

  // Established on both sides: one IKE_SA with an installed CHILD_SA.
  void ExpectEstablished(Charon& femto, const Enrolled& cred) {
    auto femto_sas = EstablishedSas(femto.ListSas(), kSegwId);
    ASSERT_EQ(femto_sas.size(), 1u) << cred.id << ":\n" << femto.ListSas();
    EXPECT_THAT(femto_sas[0], HasSubstr("INSTALLED")) << cred.id;
    EXPECT_EQ(EstablishedSas(SegwSas(), "CN=" + cred.id).size(), 1u) << cred.id << ":\n"
                                                                     << SegwSas();
  }
  // Refused: initiate failed, no SA on either side.
  void ExpectRefused(Charon& femto, const Enrolled& cred, const RunResult& initiate) {
    EXPECT_NE(initiate.exit_code, 0) << cred.id << ": " << initiate.out;
    EXPECT_THAT(EstablishedSas(femto.ListSas(), kSegwId), IsEmpty()) << cred.id << ":\n"
                                                                     << femto.ListSas();
    EXPECT_THAT(EstablishedSas(SegwSas(), "CN=" + cred.id), IsEmpty()) << cred.id << ":\n"
                                                                       << SegwSas();
  }

  static inline std::string setup_error_;
  std::vector<std::unique_ptr<Charon>> femtos_;
};

// 1. Both nodes up: a valid certificate gets in (OCSP answered by A, the
// first URI); one revoked on node B's CLI is refused (A answers revoked: it
// follows B's change through the shared store).
TEST_F(ClusterSegwTest, BothNodesUpValidGetsInRevokedOnBIsRefused) {
  AddDevice(lab->a, "FG-0000001");
  AddDevice(lab->a, "FG-0000002");
  auto good = Enrol(lab->a, "FG-0000001");
  auto bad = Enrol(lab->a, "FG-0000002");
  // The AIA names both nodes, A first.
  std::string text = fg::testing::Run({"openssl", "x509", "-in", good.cert, "-noout", "-text"}).out;
  size_t at_a = text.find("OCSP - URI:http://" + std::string(kNodeA) + "/ocsp");
  size_t at_b = text.find("OCSP - URI:http://" + std::string(kNodeB) + "/ocsp");
  ASSERT_NE(at_a, std::string::npos) << text;
  ASSERT_NE(at_b, std::string::npos) << text;
  ASSERT_LT(at_a, at_b) << text;

  auto revoke = Fg({"cert", "revoke", "--data", lab->b.data, "--serial", bad.serial, "--reason",
                    "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  // Node A answers revoked within a second (what charon will ask first).
  auto revoked_at = Clock::now();
  std::string on_a;
  while (Clock::now() - revoked_at < std::chrono::seconds(2) &&
         (on_a = Ocsp(lab->a, bad.cert)) != "revoked") {
  }
  ASSERT_EQ(on_a, "revoked");

  Charon& femto_good = StartFemto(1, good);
  auto init = femto_good.Initiate("core");
  ASSERT_EQ(init.exit_code, 0) << init.out << Tail("SeGW charon.log", lab->segw->Log());
  ExpectEstablished(femto_good, good);
  Check c = LastCheck(lab->segw->Log(), "CN=FG-0000001");
  EXPECT_EQ(c.verdict, "certificate status is good");
  EXPECT_THAT(c.requested, ::testing::ElementsAre("http://" + std::string(kNodeA) + "/ocsp"));
  EXPECT_THAT(c.failed, IsEmpty());
  // Both nodes follow the SeGW over vici and admitted the session.
  auto deadline = Clock::now() + std::chrono::seconds(3);
  for (const Node* n : {&lab->a, &lab->b}) {
    while (Clock::now() < deadline &&
           ReadAll(n->data + "/log/admission.jsonl").find("\"device\":\"FG-0000001\"") ==
               std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string decisions = ReadAll(n->data + "/log/admission.jsonl");
    EXPECT_THAT(decisions, HasSubstr("\"device\":\"FG-0000001\""))
        << Tail("serve log", ReadAll(n->log));
    EXPECT_THAT(decisions, HasSubstr("\"decision\":\"allow\""));
    EXPECT_THAT(decisions, ::testing::Not(HasSubstr("\"decision\":\"deny\"")));
    EXPECT_THAT(decisions, ::testing::Not(HasSubstr("\"device\":\"FG-0000002\"")));
  }
  // Two followers: the session stays up.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(EstablishedSas(SegwSas(), "CN=FG-0000001").size(), 1u) << SegwSas();

  Charon& femto_bad = StartFemto(2, bad);
  auto refused = femto_bad.Initiate("core");
  ExpectRefused(femto_bad, bad, refused);
  EXPECT_THAT(LastCheck(lab->segw->Log(), "CN=FG-0000002").verdict,
              HasSubstr("reason: key compromise"))
      << Tail("SeGW charon.log", lab->segw->Log());
}

// 2. kill -9 node A, then a reconnect storm: five legitimate femtocells,
// one revoked and one suspended (both on node B's CLI after A died) start
// IKE at once. Every legitimate one is established, its OCSP answered by B
// after A's URI failed; the revoked and the suspended one are refused.
TEST_F(ClusterSegwTest, NodeAKilledEveryLegitimateFemtocellGetsInThroughB) {
  std::vector<Enrolled> legit;
  for (int i = 11; i <= 15; ++i) {
    std::string id = "FG-00000" + std::to_string(i);
    AddDevice(lab->a, id);
    legit.push_back(Enrol(lab->a, id));
  }
  AddDevice(lab->a, "FG-0000016");
  AddDevice(lab->a, "FG-0000017");
  Enrolled revoked = Enrol(lab->a, "FG-0000016");
  Enrolled suspended = Enrol(lab->a, "FG-0000017");
  // The SeGW has been running with both nodes up: one femtocell connected
  // then (ctest runs this case in a process of its own, without case 1), so
  // charon holds the root CRL it fetched from A (see the end of this case).
  AddDevice(lab->a, "FG-0000010");
  Enrolled earlier = Enrol(lab->a, "FG-0000010");
  {
    Charon& f = StartFemto(1, earlier);
    auto up = f.Initiate("core");
    ASSERT_EQ(up.exit_code, 0) << up.out << Tail("SeGW charon.log", lab->segw->Log());
    ExpectEstablished(f, earlier);
    StopFemtos();
  }

  ASSERT_TRUE(lab->a.serve);
  ASSERT_EQ(::kill(lab->a.serve->pid(), SIGKILL), 0);
  lab->a.serve->Stop();  // reaps it
  lab->a.serve.reset();
  ASSERT_THAT(Ocsp(lab->a, legit[0].cert), HasSubstr("error: ")) << "node A still answers";

  // Node B's CLI, with A dead.
  auto revoke = Fg({"cert", "revoke", "--data", lab->b.data, "--serial", revoked.serial, "--reason",
                    "keyCompromise"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  auto suspend = Fg({"device", "set-status", "--data", lab->b.data, "--device", suspended.id,
                     "--status", "suspended", "--reason", "test"});
  ASSERT_EQ(suspend.exit_code, 0) << suspend.out;
  EXPECT_EQ(Ocsp(lab->b, revoked.cert), "revoked");
  EXPECT_EQ(Ocsp(lab->b, suspended.cert), "revoked");  // certificateHold

  // One femtocell per namespace; all initiate at once.
  std::vector<const Enrolled*> creds;
  for (const auto& e : legit) creds.push_back(&e);
  creds.push_back(&revoked);
  creds.push_back(&suspended);
  std::vector<Charon*> femtos;
  for (size_t i = 0; i < creds.size(); ++i)
    femtos.push_back(&StartFemto(static_cast<int>(i) + 1, *creds[i]));
  ASSERT_FALSE(HasFailure());
  std::vector<RunResult> results(creds.size());
  {
    std::vector<std::thread> storm;
    for (size_t i = 0; i < creds.size(); ++i) {
      Charon* f = femtos[i];
      RunResult* r = &results[i];
      storm.emplace_back([f, r] { *r = f->Initiate("core", 20); });
    }
    for (auto& t : storm) t.join();
  }

  const std::string log = lab->segw->Log();
  const std::string uri_a = "http://" + std::string(kNodeA) + "/ocsp";
  const std::string uri_b = "http://" + std::string(kNodeB) + "/ocsp";
  for (size_t i = 0; i < legit.size(); ++i) {
    EXPECT_EQ(results[i].exit_code, 0)
        << legit[i].id << ": " << results[i].out << Tail("SeGW charon.log", log);
    ExpectEstablished(*femtos[i], legit[i]);
    Check c = LastCheck(log, "CN=" + legit[i].id);
    EXPECT_EQ(c.verdict, "certificate status is good") << legit[i].id;
    EXPECT_THAT(c.requested, ::testing::ElementsAre(uri_a, uri_b)) << legit[i].id;
    EXPECT_THAT(c.failed, ::testing::ElementsAre(uri_a)) << legit[i].id;
  }
  ExpectRefused(*femtos[5], revoked, results[5]);
  Check cr = LastCheck(log, "CN=FG-0000016");
  EXPECT_THAT(cr.verdict, HasSubstr("reason: key compromise"));
  EXPECT_THAT(cr.requested, ::testing::Contains(uri_b));
  ExpectRefused(*femtos[6], suspended, results[6]);
  Check cs = LastCheck(log, "CN=FG-0000017");
  EXPECT_THAT(cs.verdict, HasSubstr("reason: certificate hold"));
  EXPECT_THAT(cs.requested, ::testing::Contains(uri_b));
  // The issuing CA's own status (strict is for the whole chain): its CRL
  // distribution point names node A alone (the CA was made by A's init,
  // before B joined), so after A's death charon answers it from the root
  // CRL it fetched from A before and keeps until its nextUpdate.
  Check ca = LastCheck(log, "O=femtoguard, CN=femtoguard Issuing CA");
  EXPECT_EQ(ca.verdict, "certificate status is good") << ca.lines;
  EXPECT_THAT(ca.lines, HasSubstr("using cached crl"));
  std::printf("SeGW's check of %s after node A was killed:\n%s", legit[0].id.c_str(),
              LastCheck(log, "CN=" + legit[0].id).lines.c_str());
  std::printf("and of its issuing CA:\n%s", ca.lines.c_str());
  // B follows the SeGW too: it admitted every legitimate session, once, and
  // was never asked about the refused ones (no IKE_SA ever existed).
  auto decisions_of = [](const std::string& id) {
    std::vector<std::string> out;
    std::istringstream in(ReadAll(lab->b.data + "/log/admission.jsonl"));
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"device\":\"" + id + "\"") != std::string::npos) out.push_back(line);
    }
    return out;
  };
  for (const auto& e : legit) {
    auto until = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < until && decisions_of(e.id).empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto lines = decisions_of(e.id);
    ASSERT_EQ(lines.size(), 1u) << e.id << Tail("node B serve log", ReadAll(lab->b.log));
    EXPECT_THAT(lines[0], HasSubstr("\"decision\":\"allow\"")) << lines[0];
  }
  EXPECT_THAT(decisions_of(revoked.id), IsEmpty());
  EXPECT_THAT(decisions_of(suspended.id), IsEmpty());
  // Must-not: nothing terminates the admitted sessions afterwards.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Exactly the five legitimate ones are up at the SeGW, once each.
  std::string sas = SegwSas();
  size_t established = 0;
  for (size_t at = sas.find(", ESTABLISHED,"); at != std::string::npos;
       at = sas.find(", ESTABLISHED,", at + 1)) {
    ++established;
  }
  EXPECT_EQ(established, legit.size()) << sas;
}

}  // namespace
}  // namespace fg::testing
