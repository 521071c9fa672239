#pragma once

// A strongSwan lab for tests: network namespaces joined by veth pairs, and
// real charon daemons in them, per docs/strongswan.md (the recipe that works
// on a kernel without ESP/XFRM: kernel-libipsec, tunnel addresses on `lo`,
// each charon under `unshare -m` with its own /run, its own strongswan.conf,
// swanctl dir and vici socket).
//
// Everything a lab makes is removed on destruction, also when a test fails:
// charon processes are stopped by PID, namespaces deleted (their veths go
// with them). Namespace names carry the test process id ("fgt-<pid>-<tag>-
// <name>") so concurrent runs never collide; veths are created directly
// inside the namespaces, so the host's own interfaces are never touched.
// Empty namespaces left by a killed run of a lab with the same tag are
// removed when the next lab with that tag starts.
//
// Also used by tests/segw/charon_segw_test.cc (included there, see
// tests/segw/charon_lab.cc).
//
// Thread-safety: one test thread.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "testing/harness.h"

namespace fg::testing {

// Why real charon daemons in namespaces cannot run here ("" if they can):
// not root, no network namespaces, no /dev/net/tun. A missing charon is not
// a reason to skip (scripts/setup installs it): tests fail on it instead.
std::string StrongswanLabUnavailable();

// Where strongSwan's binaries are; empty when not installed.
std::string CharonBinary();

// What of strongSwan the lab needs is not installed ("" if all is): the
// charon and swanctl binaries and every plugin the lab loads (looked up in
// `plugin_dir`, default: the one next to charon), each named with the Debian
// 12 package that ships it, e.g. "charon could not load plugin openssl:
// install libstrongswan-standard-plugins". Charon::Start() returns this
// before it starts anything, so a lab test fails naming the missing piece
// instead of failing later on a certificate charon cannot parse.
std::string StrongswanMissingPieces(const std::string& plugin_dir = "");

class NetLab {
 public:
  explicit NetLab(const std::string& tag);
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  // Creates namespace "<prefix>-<name>" with `lo` up; "" or an error.
  std::string AddNamespace(const std::string& name);
  std::string Ns(const std::string& name) const { return prefix_ + "-" + name; }
  // A veth pair `dev_a` (in a) <-> `dev_b` (in b), addressed and up.
  std::string Link(const std::string& a, const std::string& dev_a, const std::string& cidr_a, const std::string& b,
                   const std::string& dev_b, const std::string& cidr_b);
  std::string AddAddress(const std::string& ns, const std::string& cidr, const std::string& dev = "lo");
  // `ip netns exec <ns> argv...`
  RunResult Exec(const std::string& ns, const std::vector<std::string>& argv, int timeout_s = 30);

 private:
  std::string prefix_;
  std::vector<std::string> namespaces_;
};

// The SeGW's swanctl.conf connection "femtocells" (child "core"): IKEv2
// with UDP encapsulation, the SeGW's certificate segw.pem with identity
// `segw_id`, remote femtocells authenticated against `cacert`, and
// `unique = never` (one identity with several SAs is femtoguard's call,
// cert.clone, not charon's: with the default an INITIAL_CONTACT from a clone
// would evict the original). `revocation` and `extra` (e.g. an authorities
// section) are added when not empty.
std::string SegwSwanctlConf(const std::string& segw_id, const std::string& cacert, const std::string& local_ts,
                            const std::string& revocation = "", const std::string& extra = "");

// One charon daemon in a namespace, with its files under `dir`:
//   strongswan.conf, charon.log, charon.vici, run/ (bind-mounted on /run),
//   swanctl/{swanctl.conf, x509/, x509ca/, private/}
class Charon {
 public:
  Charon(NetLab& lab, const std::string& ns_name, const std::string& dir);
  ~Charon();
  Charon(const Charon&) = delete;
  Charon& operator=(const Charon&) = delete;

  // Files for swanctl: `rel` is relative to the swanctl dir ("x509/a.pem").
  void PutFile(const std::string& rel, const std::string& contents);
  void CopyFile(const std::string& rel, const std::string& from);
  void SetSwanctlConf(const std::string& conf) { PutFile("swanctl.conf", conf); }

  // Writes strongswan.conf, starts charon and waits for its vici socket;
  // then `swanctl --load-all`. "" or an error (with the log's tail).
  std::string Start();
  void Stop();
  bool Running();
  // `swanctl --load-all` again (after changing files).
  RunResult Load();

  // swanctl against this daemon.
  RunResult Swanctl(const std::vector<std::string>& args, int timeout_s = 30);
  // Terminates every IKE_SA of connection `conn` (force) and waits, at most
  // `wait_ms`, until none is ESTABLISHED: a test case leaves the SeGW clean.
  void TerminateAll(const std::string& conn, int wait_ms = 5000);
  RunResult Initiate(const std::string& child, int timeout_s = 15);
  std::string ListSas();  // `swanctl --list-sas` output

  const std::string& dir() const { return dir_; }
  std::string vici_path() const { return dir_ + "/charon.vici"; }
  std::string log_path() const { return dir_ + "/charon.log"; }
  std::string Log() const;
  std::string ns() const { return ns_; }

 private:
  NetLab& lab_;
  std::string ns_;
  std::string dir_;
  std::unique_ptr<Process> process_;
};

// A small CA made with the openssl CLI (for the SeGW's own certificate and
// for a CA femtoguard does not know).
struct TestCa {
  std::string cert;  // PEM path
  std::string key;
};
TestCa MakeTestCa(const std::string& dir, const std::string& name, const std::string& cn);
// A P-256 key and a certificate for CN=`cn` from `ca`; returns {cert, key}.
std::pair<std::string, std::string> IssueFromTestCa(const TestCa& ca, const std::string& dir,
                                                    const std::string& name, const std::string& cn);

// Sends a UDP datagram from `from_ip` in namespace `from_ns` to `to_ip` in
// `to_ns` and has it echoed back (sockets opened inside the namespaces by a
// thread that enters them). "" when the echo came back, else what failed.
std::string UdpEcho(const std::string& from_ns, const std::string& from_ip, const std::string& to_ns,
                    const std::string& to_ip, int timeout_ms = 3000);

// IKE_SAs in `swanctl --list-sas` output that are ESTABLISHED with this
// remote identity (e.g. "CN=FG-0000001"); each entry is the SA's block.
std::vector<std::string> EstablishedSas(const std::string& list_sas, const std::string& remote_id);
// Same, any remote identity, whose remote address is `remote_host`.
std::vector<std::string> EstablishedSasFrom(const std::string& list_sas, const std::string& remote_host);

}  // namespace fg::testing
