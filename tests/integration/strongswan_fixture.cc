#include "integration/strongswan_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

namespace fg::testing {
namespace {

namespace fs = std::filesystem;

// Plugins charon needs here, and nothing else (no stroke, no TPM): crypto,
// X.509 with OCSP over curl, libipsec for ESP in userland (this kernel has no
// XFRM) with netlink for addresses and routes, the UDP socket and vici.
constexpr const char* kCharonPlugins =
    "random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey curl sha1 sha2 hmac aes gcm kdf "
    "kernel-libipsec kernel-netlink socket-default vici";
constexpr const char* kSwanctlPlugins = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey";

// The Debian 12 package of each plugin above (`dpkg -S libstrongswan-NAME.so`).
// libstrongswan only Recommends libstrongswan-standard-plugins, so an install
// with --no-install-recommends has no openssl plugin: charon then loads, but
// cannot parse an ECDSA certificate. Hence the check before charon starts.
struct PluginPackage {
  const char* plugin;
  const char* package;
};
constexpr PluginPackage kPluginPackages[] = {
    {"random", "libstrongswan"},
    {"nonce", "libstrongswan"},
    {"openssl", "libstrongswan-standard-plugins"},
    {"pem", "libstrongswan"},
    {"pkcs1", "libstrongswan"},
    {"pkcs8", "libstrongswan"},
    {"x509", "libstrongswan"},
    {"revocation", "libstrongswan"},
    {"constraints", "libstrongswan"},
    {"pubkey", "libstrongswan"},
    {"curl", "libstrongswan-extra-plugins"},
    {"sha1", "libstrongswan"},
    {"sha2", "libstrongswan"},
    {"hmac", "libstrongswan"},
    {"aes", "libstrongswan"},
    {"gcm", "libstrongswan-standard-plugins"},
    {"kdf", "libstrongswan"},
    {"kernel-libipsec", "libcharon-extra-plugins"},
    {"kernel-netlink", "libstrongswan"},
    {"socket-default", "strongswan-libcharon"},
    {"vici", "strongswan-swanctl"},
};

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string PackageOf(const std::string& plugin) {
  for (const auto& p : kPluginPackages) {
    if (plugin == p.plugin) return p.package;
  }
  return "the strongSwan package that ships it";
}

// "plugin 'openssl' failed to load: ..." in charon's output (a plugin file
// that is there but cannot load, e.g. a library it links is missing) -> the
// plugin's name; "" if there is none. charon runs on without such a plugin.
std::string PluginThatFailed(const std::string& log) {
  for (const char* marker : {"plugin '"}) {
    size_t at = log.find(marker);
    while (at != std::string::npos) {
      size_t start = at + std::strlen(marker), end = log.find('\'', start);
      if (end == std::string::npos) break;
      size_t line_end = log.find('\n', end);
      std::string rest = log.substr(end, line_end == std::string::npos ? std::string::npos : line_end - end);
      if (rest.find("fail") != std::string::npos) return log.substr(start, end - start);
      at = log.find(marker, end);
    }
  }
  return {};
}

std::string Tail(const std::string& text, size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::string Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = Run(argv, {}, 20);
  if (r.exit_code == 0) return {};
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  std::string out = cmd + "-> " + r.out;
  // `ip -n` / `ip netns exec` remount / as a slave: that fails when / is not
  // a mount point, e.g. a chroot into a plain directory (seen in a fresh
  // Debian root made by ../shared/tools/fresh-machine; the cure is
  // `mount --bind ROOT ROOT` before the chroot).
  if (r.out.find("mount --make-rslave /") != std::string::npos) {
    out += " [/ is not a mount point here (a chroot into a plain directory?): ip netns cannot switch namespaces;"
           " bind-mount the root onto itself before chroot]";
  }
  return out;
}

}  // namespace

std::string CharonBinary() {
  for (const char* p : {"/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return {};
}

std::string StrongswanMissingPieces(const std::string& plugin_dir) {
  std::string charon = CharonBinary();
  if (charon.empty()) return "no charon binary: install strongswan-charon (scripts/setup)";
  if (Run({"sh", "-c", "command -v swanctl"}, {}, 10).exit_code != 0) {
    return "no swanctl binary: install strongswan-swanctl (scripts/setup)";
  }
  std::string dir = plugin_dir.empty() ? fs::path(charon).parent_path().string() + "/plugins" : plugin_dir;
  std::vector<std::string> missing;
  for (const auto* list : {kCharonPlugins, kSwanctlPlugins}) {
    for (const auto& plugin : Words(list)) {
      if (access((dir + "/libstrongswan-" + plugin + ".so").c_str(), R_OK) == 0) continue;
      std::string line = "charon could not load plugin " + plugin + ": install " + PackageOf(plugin);
      if (std::find(missing.begin(), missing.end(), line) == missing.end()) missing.push_back(line);
    }
  }
  std::string out;
  for (const auto& m : missing) out += (out.empty() ? "" : "; ") + m;
  if (!out.empty()) out += " (scripts/setup installs it; plugins looked up in " + dir + ")";
  return out;
}

std::string StrongswanLabUnavailable() {
  static const std::string reason = [] {
    if (geteuid() != 0) return std::string("needs root (network namespaces, /dev/net/tun)");
    if (access("/dev/net/tun", R_OK | W_OK) != 0) return std::string("no usable /dev/net/tun (kernel-libipsec)");
    std::string probe = "fgt-" + std::to_string(getpid()) + "-probe";
    auto add = Run({"ip", "netns", "add", probe}, {}, 10);
    if (add.exit_code != 0) return "cannot create network namespaces: " + add.out;
    Run({"ip", "netns", "del", probe}, {}, 10);
    return std::string();
  }();
  return reason;
}

// ---- NetLab ----

NetLab::NetLab(const std::string& tag) : prefix_("fgt-" + std::to_string(getpid()) + "-" + tag) {
  // A run that was killed (SIGKILL, Ctrl-C) could not clean up: remove the
  // namespaces of labs with this tag whose test process is gone. Nothing is
  // killed here; only empty leftovers of this very lab are deleted.
  auto list = Run({"ip", "netns", "list"}, {}, 10);
  std::istringstream in(list.out);
  for (std::string line; std::getline(in, line);) {
    std::string name = line.substr(0, line.find(' '));
    if (name.rfind("fgt-", 0) != 0) continue;
    size_t dash = name.find('-', 4);
    if (dash == std::string::npos || name.compare(dash + 1, tag.size() + 1, tag + "-") != 0) continue;
    std::string pid = name.substr(4, dash - 4);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (kill(std::stoi(pid), 0) == 0 || errno != ESRCH) continue;  // its test still runs
    auto pids = Run({"ip", "netns", "pids", name}, {}, 10);
    if (pids.out.find_first_of("0123456789") != std::string::npos) continue;  // not empty: leave it
    Run({"ip", "netns", "del", name}, {}, 10);
  }
}

NetLab::~NetLab() {
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    // Safety net: anything still running in a namespace this lab made was
    // started by this test (charon, serve); stop it by PID before deleting.
    auto pids = Run({"ip", "netns", "pids", *it}, {}, 10);
    std::istringstream in(pids.out);
    for (std::string pid; in >> pid;) {
      if (pid.find_first_not_of("0123456789") == std::string::npos) kill(std::stoi(pid), SIGKILL);
    }
    Run({"ip", "netns", "del", *it}, {}, 10);
  }
}

std::string NetLab::AddNamespace(const std::string& name) {
  std::string ns = Ns(name);
  if (auto e = Ip({"netns", "add", ns}); !e.empty()) return e;
  namespaces_.push_back(ns);
  return Ip({"-n", ns, "link", "set", "lo", "up"});
}

std::string NetLab::Link(const std::string& a, const std::string& dev_a, const std::string& cidr_a,
                         const std::string& b, const std::string& dev_b, const std::string& cidr_b) {
  if (auto e = Ip({"-n", Ns(a), "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", Ns(b)});
      !e.empty()) {
    return e;
  }
  for (auto [ns, dev, cidr] : {std::tuple{a, dev_a, cidr_a}, std::tuple{b, dev_b, cidr_b}}) {
    if (auto e = Ip({"-n", Ns(ns), "addr", "add", cidr, "dev", dev}); !e.empty()) return e;
    if (auto e = Ip({"-n", Ns(ns), "link", "set", dev, "up"}); !e.empty()) return e;
  }
  return {};
}

std::string NetLab::AddAddress(const std::string& ns, const std::string& cidr, const std::string& dev) {
  return Ip({"-n", Ns(ns), "addr", "add", cidr, "dev", dev});
}

RunResult NetLab::Exec(const std::string& ns, const std::vector<std::string>& argv, int timeout_s) {
  std::vector<std::string> full = {"ip", "netns", "exec", Ns(ns)};
  full.insert(full.end(), argv.begin(), argv.end());
  return Run(full, {}, timeout_s);
}

// ---- Charon ----

Charon::Charon(NetLab& lab, const std::string& ns_name, const std::string& dir)
    : lab_(lab), ns_(lab.Ns(ns_name)), dir_(dir) {
  for (const char* sub : {"run", "swanctl/x509", "swanctl/x509ca", "swanctl/x509ocsp", "swanctl/x509aa",
                          "swanctl/x509ac", "swanctl/x509crl", "swanctl/pubkey", "swanctl/private", "swanctl/rsa",
                          "swanctl/ecdsa", "swanctl/bliss", "swanctl/pkcs8", "swanctl/pkcs12"}) {
    fs::create_directories(dir_ + "/" + sub);
  }
}

Charon::~Charon() { Stop(); }

void Charon::PutFile(const std::string& rel, const std::string& contents) {
  WriteAll(dir_ + "/swanctl/" + rel, contents);
}

void Charon::CopyFile(const std::string& rel, const std::string& from) { PutFile(rel, ReadAll(from)); }

std::string Charon::Log() const { return ReadAll(log_path()); }

std::string Charon::Start() {
  if (auto missing = StrongswanMissingPieces(); !missing.empty()) return missing;
  std::string conf = dir_ + "/strongswan.conf";
  WriteAll(conf, "charon {\n"
                 "  load = " + std::string(kCharonPlugins) + "\n"
                 "  install_virtual_ip = no\n"
                 "  retransmit_timeout = 1.0\n"
                 "  retransmit_tries = 3\n"
                 "  plugins {\n"
                 "    vici {\n      socket = unix://" + vici_path() + "\n    }\n"
                 "  }\n"
                 "  filelog {\n"
                 "    charon {\n"
                 "      path = " + log_path() + "\n"
                 "      time_format = %T\n"
                 "      default = 1\n"
                 "      cfg = 2\n"
                 "      ike = 1\n"
                 "      flush_line = yes\n"
                 "    }\n"
                 "  }\n"
                 "}\n"
                 "swanctl {\n"
                 "  load = " + std::string(kSwanctlPlugins) + "\n"
                 "  socket = unix://" + vici_path() + "\n"
                 "}\n");
  unlink(vici_path().c_str());
  // charon writes /var/run/charon.pid: give it a /run of its own in a mount
  // namespace of its own. The shell only mounts and execs (same PID).
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"ip", "netns", "exec", ns_, "unshare", "-m", "--propagation", "private", "sh", "-c",
                               "mount --bind \"$0\" /run && exec \"$1\"", dir_ + "/run", CharonBinary()},
      dir_ + "/stdout.log", std::vector<std::string>{"STRONGSWAN_CONF=" + conf});
  if (process_->pid() <= 0) return "cannot spawn charon";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    if (!process_->Running()) {
      std::string out = ReadAll(dir_ + "/stdout.log") + Log();
      std::string plugin = PluginThatFailed(out);
      std::string why = plugin.empty() ? "" : "charon could not load plugin " + plugin + ": install " +
                                                  PackageOf(plugin) + " (or a library it needs); ";
      return why + "charon exited at start: " + Tail(out);
    }
    if (fs::exists(vici_path()) && Swanctl({"--stats"}, 5).exit_code == 0) break;
    if (std::chrono::steady_clock::now() > deadline) return "charon did not open its vici socket: " + Tail(Log());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (std::string plugin = PluginThatFailed(Log()); !plugin.empty()) {
    return "charon could not load plugin " + plugin + ": install " + PackageOf(plugin) + " (or a library it needs): " +
           Tail(Log());
  }
  auto load = Load();
  if (load.exit_code != 0) return "swanctl --load-all failed: " + load.out;
  return {};
}

void Charon::Stop() {
  if (process_) process_->Stop();
  process_.reset();
}

bool Charon::Running() { return process_ && process_->Running(); }

RunResult Charon::Swanctl(const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> argv = {"swanctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {}, timeout_s, {"STRONGSWAN_CONF=" + dir_ + "/strongswan.conf", "SWANCTL_DIR=" + dir_ + "/swanctl"});
}

void Charon::TerminateAll(const std::string& conn, int wait_ms) {
  Swanctl({"--terminate", "--ike", conn, "--force", "--timeout", "2"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (std::chrono::steady_clock::now() < deadline && ListSas().find(", ESTABLISHED,") != std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

RunResult Charon::Load() { return Swanctl({"--load-all", "--noprompt"}); }

RunResult Charon::Initiate(const std::string& child, int timeout_s) {
  return Swanctl({"--initiate", "--child", child, "--timeout", std::to_string(timeout_s)}, timeout_s + 5);
}

std::string Charon::ListSas() { return Swanctl({"--list-sas"}).out; }

// ---- certificates made with the openssl CLI ----

TestCa MakeTestCa(const std::string& dir, const std::string& name, const std::string& cn) {
  TestCa ca{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  auto r = Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                ca.key, "-out", ca.cert, "-subj", "/CN=" + cn, "-days", "2", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  if (r.exit_code != 0) throw std::runtime_error("openssl req -x509: " + r.out);
  return ca;
}

std::pair<std::string, std::string> IssueFromTestCa(const TestCa& ca, const std::string& dir,
                                                    const std::string& name, const std::string& cn) {
  std::string key = dir + "/" + name + ".key", csr = dir + "/" + name + ".csr", cert = dir + "/" + name + ".pem";
  auto r = Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                key, "-out", csr, "-subj", "/CN=" + cn});
  if (r.exit_code != 0) throw std::runtime_error("openssl req: " + r.out);
  std::random_device rd;
  char serial[32];
  std::snprintf(serial, sizeof serial, "0x%08x%08x", rd(), rd());
  r = Run({"openssl", "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", serial, "-days",
           "1", "-out", cert});
  if (r.exit_code != 0) throw std::runtime_error("openssl x509 -req: " + r.out);
  return {cert, key};
}

// ---- traffic ----

std::string UdpEcho(const std::string& from_ns, const std::string& from_ip, const std::string& to_ns,
                    const std::string& to_ip, int timeout_ms) {
  std::string result;
  // setns() for the network namespace applies to the calling thread only,
  // and a socket stays in the namespace it was made in.
  std::thread worker([&] {
    auto fail = [&](const std::string& what) { result = what + ": " + std::strerror(errno); };
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int to = open(("/run/netns/" + to_ns).c_str(), O_RDONLY | O_CLOEXEC);
    int from = open(("/run/netns/" + from_ns).c_str(), O_RDONLY | O_CLOEXEC);
    int srv = -1, cli = -1;
    auto cleanup = [&] {
      for (int fd : {srv, cli, to, from}) {
        if (fd >= 0) close(fd);
      }
      if (self >= 0) {
        setns(self, CLONE_NEWNET);
        close(self);
      }
    };
    auto addr = [](const std::string& ip, uint16_t port) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
      return a;
    };
    if (self < 0 || to < 0 || from < 0) {
      fail("open namespace");
      return cleanup();
    }
    if (setns(to, CLONE_NEWNET) != 0) {
      fail("setns " + to_ns);
      return cleanup();
    }
    srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in srv_addr = addr(to_ip, 0);
    if (srv < 0 || bind(srv, reinterpret_cast<sockaddr*>(&srv_addr), sizeof srv_addr) != 0) {
      fail("bind " + to_ip);
      return cleanup();
    }
    socklen_t len = sizeof srv_addr;
    getsockname(srv, reinterpret_cast<sockaddr*>(&srv_addr), &len);
    if (setns(from, CLONE_NEWNET) != 0) {
      fail("setns " + from_ns);
      return cleanup();
    }
    cli = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in cli_addr = addr(from_ip, 0);
    if (cli < 0 || bind(cli, reinterpret_cast<sockaddr*>(&cli_addr), sizeof cli_addr) != 0) {
      fail("bind " + from_ip);
      return cleanup();
    }
    std::string ping = "femtoguard-echo-" + std::to_string(std::random_device()());
    if (sendto(cli, ping.data(), ping.size(), 0, reinterpret_cast<sockaddr*>(&srv_addr), sizeof srv_addr) < 0) {
      fail("sendto");
      return cleanup();
    }
    char buf[256];
    pollfd p{srv, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) {
      result = "nothing arrived at " + to_ip + " within " + std::to_string(timeout_ms) + " ms";
      return cleanup();
    }
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(srv, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    char peer_ip[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, peer_ip, sizeof peer_ip);
    if (n != static_cast<ssize_t>(ping.size()) || std::string(buf, static_cast<size_t>(n)) != ping ||
        from_ip != peer_ip) {
      result = std::string("unexpected datagram from ") + peer_ip;
      return cleanup();
    }
    sendto(srv, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), plen);
    pollfd q{cli, POLLIN, 0};
    if (poll(&q, 1, timeout_ms) != 1) {
      result = "the echo did not come back to " + from_ip;
      return cleanup();
    }
    n = recv(cli, buf, sizeof buf, 0);
    if (n != static_cast<ssize_t>(ping.size()) || std::string(buf, static_cast<size_t>(n)) != ping) {
      result = "echo corrupted";
    }
    cleanup();
  });
  worker.join();
  return result;
}

// ---- swanctl --list-sas parsing ----

namespace {
std::vector<std::string> SaBlocks(const std::string& list_sas) {
  std::vector<std::string> blocks;
  std::istringstream in(list_sas);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] != ' ') {
      blocks.push_back(line + "\n");
    } else if (!blocks.empty()) {
      blocks.back() += line + "\n";
    }
  }
  return blocks;
}
}  // namespace

std::vector<std::string> EstablishedSas(const std::string& list_sas, const std::string& remote_id) {
  std::vector<std::string> out;
  for (const auto& b : SaBlocks(list_sas)) {
    if (b.substr(0, b.find('\n')).find(", ESTABLISHED,") == std::string::npos) continue;
    if (b.find("  remote '" + remote_id + "' @") != std::string::npos) out.push_back(b);
  }
  return out;
}

std::vector<std::string> EstablishedSasFrom(const std::string& list_sas, const std::string& remote_host) {
  std::vector<std::string> out;
  for (const auto& b : SaBlocks(list_sas)) {
    if (b.substr(0, b.find('\n')).find(", ESTABLISHED,") == std::string::npos) continue;
    size_t r = b.find("  remote '");
    if (r == std::string::npos) continue;
    size_t at = b.find("' @ ", r);
    size_t end = b.find('[', at);
    if (at != std::string::npos && end != std::string::npos && b.substr(at + 4, end - at - 4) == remote_host) {
      out.push_back(b);
    }
  }
  return out;
}

std::string SegwSwanctlConf(const std::string& segw_id, const std::string& cacert, const std::string& local_ts,
                            const std::string& revocation, const std::string& extra) {
  std::string conf =
      "connections {\n"
      "  femtocells {\n"
      "    version = 2\n"
      "    encap = yes\n"
      "    unique = never\n"
      "    local {\n"
      "      auth = pubkey\n"
      "      certs = segw.pem\n"
      "      id = \"" + segw_id + "\"\n"
      "    }\n"
      "    remote {\n"
      "      auth = pubkey\n"
      "      cacerts = " + cacert + "\n";
  if (!revocation.empty()) conf += "      revocation = " + revocation + "\n";
  conf +=
      "    }\n"
      "    children {\n"
      "      core {\n"
      "        local_ts = " + local_ts + "\n"
      "        remote_ts = 10.99.0.0/16\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n";
  return conf + extra;
}

}  // namespace fg::testing
