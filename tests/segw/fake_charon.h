#pragma once

// A fake charon speaking vici on a unix socket, for unit tests of the client
// and of ViciSegw's logic (the real daemon is exercised in
// charon_segw_test.cc and tests/integration/strongswan_test.cc).
//
// It answers version, event (un)registration, list-sas (streaming list-sa),
// list-certs (streaming list-cert), terminate (removing the IKE_SA and
// raising ike-updown down, as charon does) and flush-certs; anything else
// is CMD_UNKNOWN.
// Tests raise ike-updown / child-updown, drop the connection, restart, or
// make it go silent or send garbage.
//
// Thread-safety: all methods may be called from the test thread while the
// server threads run.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "segw/vici_wire.h"

namespace fg::segw::testing {

struct FakeSa {
  std::string conn = "segw";
  std::string uniqueid;
  std::string remote_id;
  std::string remote_host;
  std::string local_host = "192.0.2.1";
  std::string local_port = "4500";
  std::string spi_i;
  std::string spi_r;
  std::string state = "ESTABLISHED";

  vici::Section ToMessage(bool with_up_key, bool up) const {
    vici::Section m;
    if (with_up_key && up) m.Set("up", "yes");
    vici::Section& s = m.AddSection(conn);
    s.Set("uniqueid", uniqueid).Set("version", "2").Set("state", up ? state : std::string("DELETING"));
    s.Set("local-host", local_host).Set("local-port", local_port).Set("local-id", "CN=segw");
    s.Set("remote-host", remote_host).Set("remote-port", "4500").Set("remote-id", remote_id);
    s.Set("initiator", "no").Set("initiator-spi", spi_i).Set("responder-spi", spi_r);
    return m;
  }
};

class FakeCharon {
 public:
  explicit FakeCharon(std::string path) : path_(std::move(path)) { Listen(); }
  ~FakeCharon() { Shutdown(); }

  const std::string& path() const { return path_; }

  // ---- what the fake knows ----
  void AddSa(const FakeSa& sa) {
    std::lock_guard lock(mutex_);
    sas_[sa.uniqueid] = sa;
  }
  // Adds the SA and raises ike-updown up (and child-updown up if asked).
  void BringUp(const FakeSa& sa, bool child_too = false) {
    AddSa(sa);
    Broadcast("ike-updown", sa.ToMessage(true, true));
    if (child_too) Broadcast("child-updown", sa.ToMessage(true, true));
  }
  void BringDown(const std::string& uniqueid) {
    FakeSa sa;
    {
      std::lock_guard lock(mutex_);
      auto it = sas_.find(uniqueid);
      if (it == sas_.end()) return;
      sa = it->second;
      sas_.erase(it);
    }
    Broadcast("ike-updown", sa.ToMessage(true, false));
  }
  bool HasSa(const std::string& uniqueid) {
    std::lock_guard lock(mutex_);
    return sas_.count(uniqueid) > 0;
  }
  // A DER certificate list-certs returns for `subject`.
  void AddCert(const std::string& subject, const std::string& der) {
    std::lock_guard lock(mutex_);
    certs_.emplace_back(subject, der);
  }

  // ---- behaviour ----
  void SetSilent(bool silent) { silent_ = silent; }           // never answer commands
  void SetTerminateRaisesDown(bool v) { terminate_down_ = v; }
  // Sends raw bytes on every connection (to test a broken peer).
  void SendRaw(const std::string& bytes) {
    std::lock_guard lock(mutex_);
    for (auto& c : conns_) {
      if (!c->dead) WriteLocked(*c, bytes);
    }
  }
  void Broadcast(const std::string& event, const vici::Section& msg) {
    auto bytes = vici::EncodePacket({vici::PacketType::kEvent, event, msg});
    std::lock_guard lock(mutex_);
    for (auto& c : conns_) {
      if (!c->dead && c->events.count(event)) WriteLocked(*c, *bytes);
    }
  }
  // Closes the client connections (charon still running).
  void DropConnections() {
    std::lock_guard lock(mutex_);
    for (auto& c : conns_) {
      c->dead = true;
      shutdown(c->fd, SHUT_RDWR);
    }
  }
  // charon stopped: socket gone, SAs gone.
  void Shutdown() {
    stop_ = true;
    if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    // After the acceptor is gone: a connection it accepted while we were
    // stopping would otherwise keep its reader blocked in read() for good
    // (seen as a hung PeerGoingAwayIsReportedAndLaterCallsFail).
    DropConnections();
    std::vector<std::thread> readers;
    {
      std::lock_guard lock(mutex_);
      readers.swap(readers_);
    }
    for (auto& t : readers) t.join();
    {
      std::lock_guard lock(mutex_);
      for (auto& c : conns_) close(c->fd);
      conns_.clear();
      sas_.clear();
    }
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    unlink(path_.c_str());
  }
  // charon started again (empty, unique ids count from 1 again).
  void Restart() {
    Shutdown();
    stop_ = false;
    Listen();
  }

  // ---- what the client did ----
  std::vector<std::string> Commands() {
    std::lock_guard lock(mutex_);
    return commands_;
  }
  std::vector<std::string> Terminated() {
    std::lock_guard lock(mutex_);
    return terminated_;
  }
  std::vector<vici::Section> TerminateArgs() {
    std::lock_guard lock(mutex_);
    return terminate_args_;
  }
  std::vector<std::string> Flushed() {
    std::lock_guard lock(mutex_);
    return flushed_;
  }
  int accepted() const { return accepted_.load(); }
  // True once some connection registered for `event`.
  bool Registered(const std::string& event) {
    std::lock_guard lock(mutex_);
    for (auto& c : conns_) {
      if (!c->dead && c->events.count(event)) return true;
    }
    return false;
  }

 private:
  struct Conn {
    int fd = -1;
    bool dead = false;  // guarded by mutex_
    std::set<std::string> events;
  };

  void Listen() {
    unlink(path_.c_str());
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 8) != 0) {
      throw std::runtime_error("fake charon: cannot listen on " + path_);
    }
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  void AcceptLoop() {
    while (!stop_) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_) return;
        if (errno == EINTR) continue;
        return;
      }
      ++accepted_;
      auto conn = std::make_shared<Conn>();
      conn->fd = fd;
      std::lock_guard lock(mutex_);
      conns_.push_back(conn);
      readers_.emplace_back([this, conn] { ReadLoop(conn); });
    }
  }

  void WriteLocked(Conn& c, const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(c.fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void Reply(Conn& c, vici::PacketType type, const vici::Section& msg = {}) {
    auto bytes = vici::EncodePacket({type, "", msg});
    std::lock_guard lock(mutex_);
    WriteLocked(c, *bytes);
  }
  void Stream(Conn& c, const std::string& event, const vici::Section& msg) {
    auto bytes = vici::EncodePacket({vici::PacketType::kEvent, event, msg});
    std::lock_guard lock(mutex_);
    if (c.events.count(event)) WriteLocked(c, *bytes);
  }

  bool ReadExact(int fd, char* out, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = read(fd, out + got, n - got);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return false;
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }

  void ReadLoop(std::shared_ptr<Conn> conn) {
    ReadPackets(*conn);
    std::lock_guard lock(mutex_);
    conn->dead = true;
  }
  void ReadPackets(Conn& conn_ref) {
    Conn* conn = &conn_ref;
    for (;;) {
      unsigned char head[4];
      if (!ReadExact(conn->fd, reinterpret_cast<char*>(head), 4)) return;
      auto len = vici::DecodeLength(head);
      if (!len.ok()) return;
      std::string body(*len, '\0');
      if (!ReadExact(conn->fd, body.data(), body.size())) return;
      auto p = vici::DecodePacket(body);
      if (!p.ok()) return;
      Handle(*conn, *p);
    }
  }

  void Handle(Conn& c, const vici::Packet& p) {
    using vici::PacketType;
    static const std::set<std::string> kEvents = {"ike-updown", "child-updown", "list-sa", "list-cert",
                                                  "control-log", "log"};
    if (p.type == PacketType::kEventRegister || p.type == PacketType::kEventUnregister) {
      if (!kEvents.count(p.name)) return Reply(c, PacketType::kEventUnknown);
      {
        std::lock_guard lock(mutex_);
        if (p.type == PacketType::kEventRegister) {
          c.events.insert(p.name);
        } else {
          c.events.erase(p.name);
        }
      }
      return Reply(c, PacketType::kEventConfirm);
    }
    if (p.type != PacketType::kCmdRequest) return;
    {
      std::lock_guard lock(mutex_);
      commands_.push_back(p.name);
    }
    if (silent_) return;
    if (p.name == "version") {
      vici::Section v;
      v.Set("daemon", "charon").Set("version", "5.9.8-fake").Set("sysname", "Linux");
      return Reply(c, PacketType::kCmdResponse, v);
    }
    if (p.name == "list-sas") {
      std::vector<FakeSa> sas;
      {
        std::lock_guard lock(mutex_);
        for (auto& [id, sa] : sas_) sas.push_back(sa);
      }
      for (auto& sa : sas) Stream(c, "list-sa", sa.ToMessage(false, true));
      return Reply(c, PacketType::kCmdResponse);
    }
    if (p.name == "list-certs") {
      std::string subject = p.message.Get("subject");
      std::vector<std::string> ders;
      {
        std::lock_guard lock(mutex_);
        for (auto& [s, der] : certs_) {
          if (subject.empty() || s == subject) ders.push_back(der);
        }
      }
      for (auto& der : ders) {
        vici::Section m;
        m.Set("type", "X509").Set("flag", "NONE").Set("data", der);
        Stream(c, "list-cert", m);
      }
      return Reply(c, PacketType::kCmdResponse);
    }
    if (p.name == "terminate") {
      std::string id = p.message.Get("ike-id");
      bool known;
      {
        std::lock_guard lock(mutex_);
        terminated_.push_back(id);
        terminate_args_.push_back(p.message);
        known = sas_.count(id) > 0;
      }
      vici::Section r;
      if (!known) {
        r.Set("success", "no").Set("errmsg", "no matching SAs to terminate found");
        return Reply(c, PacketType::kCmdResponse, r);
      }
      if (terminate_down_) BringDown(id);
      r.Set("success", "yes").Set("matches", "1").Set("terminated", "1");
      return Reply(c, PacketType::kCmdResponse, r);
    }
    if (p.name == "flush-certs") {
      vici::Section r;
      std::string type = p.message.Get("type", "ANY");
      {
        std::lock_guard lock(mutex_);
        flushed_.push_back(type);
      }
      static const std::set<std::string> kTypes = {"ANY", "X509", "X509_AC", "X509_CRL", "OCSP_RESPONSE", "PUBKEY"};
      if (kTypes.count(type)) {
        r.Set("success", "yes");
      } else {
        r.Set("success", "no").Set("errmsg", "invalid certificate type '" + type + "'");
      }
      return Reply(c, PacketType::kCmdResponse, r);
    }
    Reply(c, PacketType::kCmdUnknown);
  }

  const std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::atomic<bool> terminate_down_{true};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;

  std::mutex mutex_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> readers_;
  std::map<std::string, FakeSa> sas_;
  std::vector<std::pair<std::string, std::string>> certs_;
  std::vector<std::string> commands_;
  std::vector<std::string> terminated_;
  std::vector<vici::Section> terminate_args_;
  std::vector<std::string> flushed_;
};

// Polls `pred` every 5 ms for up to `ms`.
template <typename Pred>
bool WaitFor(Pred pred, int ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace fg::segw::testing
