#include "testing/nats_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

namespace fg::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A plain HTTP/1.0 GET on 127.0.0.1:port; the body. The monitoring port is
// polled many times a second while a cluster settles: a socket, not a curl
// process per poll.
Result<std::string> HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::Internal("socket failed");
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return Status::Unavailable("port " + std::to_string(port) + " refuses connections");
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return Status::Unavailable("send failed");
  }
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos)
    return Status::Unavailable("no HTTP answer");
  if (response.compare(9, 3, "200") != 0)
    return Status::Unavailable(response.substr(0, response.find('\r')));
  return response.substr(body + 4);
}

}  // namespace

Result<std::unique_ptr<NatsCluster>> NatsCluster::Start(int servers) {
  Result<std::unique_ptr<NatsCluster>> c = StartOnce(servers);
  // The ports were free when picked, but another test running at the same
  // time may bind one first ("address already in use"): new ports, again.
  for (int attempt = 1; attempt < 3 && !c.ok() && c.status().code() != StatusCode::kFailedPrecondition; ++attempt)
    c = StartOnce(servers);
  return c;
}

Result<std::unique_ptr<NatsCluster>> NatsCluster::StartOnce(int servers) {
  if (access(kServerBinary, X_OK) != 0) {
    return Status::FailedPrecondition(std::string(kServerBinary) +
                                      " is missing: install nats-server (scripts/setup)");
  }
  std::unique_ptr<NatsCluster> c(new NatsCluster());
  c->dir_ = std::make_unique<TempDir>();
  c->servers_.resize(static_cast<size_t>(servers));
  for (Server& s : c->servers_) {
    s.client_port = FreePort();
    s.cluster_port = FreePort();
    s.monitor_port = FreePort();
  }
  for (int i = 0; i < servers; ++i) {
    Server& s = c->servers_[static_cast<size_t>(i)];
    std::string routes;
    for (const Server& peer : c->servers_) {
      if (&peer == &s) continue;
      routes += "    nats-route://127.0.0.1:" + std::to_string(peer.cluster_port) + "\n";
    }
    const std::string store = *c->dir_ / ("store-" + std::to_string(i));
    // Small limits: tests write megabytes, and four engineers share the disk.
    const std::string conf =
        "server_name: " + c->Name(i) + "\n" + "listen: 127.0.0.1:" + std::to_string(s.client_port) +
        "\n" + "http: 127.0.0.1:" + std::to_string(s.monitor_port) + "\n" +
        "jetstream {\n  store_dir: \"" + store +
        "\"\n  max_memory_store: 64MB\n"
        "  max_file_store: 2GB\n}\n"
        "cluster {\n  name: fgtest\n  listen: 127.0.0.1:" +
        std::to_string(s.cluster_port) + "\n  routes: [\n" + routes + "  ]\n}\n";
    s.config_path = *c->dir_ / ("n" + std::to_string(i) + ".conf");
    WriteAll(s.config_path, conf);
  }
  for (int i = 0; i < servers; ++i) FG_RETURN_IF_ERROR(c->Launch(i));
  FG_RETURN_IF_ERROR(c->WaitForMetaLeader());
  return c;
}

NatsCluster::~NatsCluster() {
  for (Server& s : servers_) {
    if (s.process && s.process->pid() > 0) ::kill(s.process->pid(), SIGCONT);  // a paused one, too
    s.process.reset();  // SIGTERM, then SIGKILL, by pid
  }
}

Status NatsCluster::Launch(int i) {
  Server& s = servers_[static_cast<size_t>(i)];
  s.process = std::make_unique<Process>(
      std::vector<std::string>{kServerBinary, "-c", s.config_path}, *dir_ / (Name(i) + ".log"));
  if (s.process->pid() <= 0) return Status::Internal("cannot start " + std::string(kServerBinary));
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    if (Monitor(i, "/varz").ok()) return Status::Ok();
    if (!s.process->Running()) {
      return Status::Internal(Name(i) + " exited: " + ReadAll(*dir_ / (Name(i) + ".log")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Unavailable(Name(i) + " does not answer on its monitoring port");
}

std::string NatsCluster::Url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(servers_[static_cast<size_t>(i)].client_port);
}

std::string NatsCluster::Urls() const {
  std::string out;
  for (int i = 0; i < size(); ++i) out += (out.empty() ? "" : ",") + Url(i);
  return out;
}

bool NatsCluster::Running(int i) const {
  const Server& s = servers_[static_cast<size_t>(i)];
  return s.process && s.process->pid() > 0;
}

Result<std::string> NatsCluster::Monitor(int i, const std::string& path) const {
  return HttpGet(servers_[static_cast<size_t>(i)].monitor_port, path);
}

std::string NatsCluster::Logs(size_t bytes) const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    std::string log = ReadAll(*dir_ / (Name(i) + ".log"));
    if (log.size() > bytes) log = log.substr(log.size() - bytes);
    out += "--- " + Name(i) + " ---\n" + log;
  }
  return out;
}

Status NatsCluster::WaitForMetaLeader(int timeout_ms) const {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    for (int i = 0; i < size(); ++i) {
      if (!Running(i)) continue;
      auto body = Monitor(i, "/jsz");
      if (!body.ok()) continue;
      auto j = nlohmann::json::parse(*body, nullptr, false);
      if (j.is_object() && j.contains("meta_cluster") &&
          j["meta_cluster"].value("leader", "") != "") {
        return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Unavailable("the NATS cluster has no JetStream meta leader");
}

Result<int> NatsCluster::StreamLeader(const std::string& stream) const {
  for (int i = 0; i < size(); ++i) {
    if (!Running(i)) continue;
    auto body = Monitor(i, "/jsz?streams=true");
    if (!body.ok()) continue;
    auto j = nlohmann::json::parse(*body, nullptr, false);
    if (!j.is_object() || !j.contains("account_details")) continue;
    for (const auto& account : j["account_details"]) {
      if (!account.contains("stream_detail")) continue;
      for (const auto& sd : account["stream_detail"]) {
        if (sd.value("name", "") != stream || !sd.contains("cluster")) continue;
        const std::string leader = sd["cluster"].value("leader", "");
        for (int k = 0; k < size(); ++k) {
          if (Name(k) == leader && Running(k)) return k;
        }
      }
    }
  }
  return Status::NotFound("stream " + stream + " has no leader now");
}

Result<int> NatsCluster::WaitForStreamLeader(const std::string& stream, int timeout_ms) const {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto leader = StreamLeader(stream);
    if (leader.ok() || Clock::now() >= deadline) return leader;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status NatsCluster::Kill(int i) {
  Server& s = servers_[static_cast<size_t>(i)];
  if (!s.process || s.process->pid() <= 0)
    return Status::FailedPrecondition(Name(i) + " is not running");
  ::kill(s.process->pid(), SIGKILL);
  s.process->Stop();  // reaps it (already dead: no SIGTERM grace to wait out)
  s.process.reset();
  return Status::Ok();
}

Status NatsCluster::Signal(int i, int signal) {
  Server& s = servers_[static_cast<size_t>(i)];
  if (!s.process || s.process->pid() <= 0) return Status::FailedPrecondition(Name(i) + " is not running");
  ::kill(s.process->pid(), signal);
  return Status::Ok();
}

Status NatsCluster::Pause(int i) { return Signal(i, SIGSTOP); }
Status NatsCluster::Resume(int i) { return Signal(i, SIGCONT); }

Result<int> NatsCluster::KillStreamLeader(const std::string& stream) {
  FG_ASSIGN_OR_RETURN(int leader, WaitForStreamLeader(stream));
  FG_RETURN_IF_ERROR(Kill(leader));
  return leader;
}

Status NatsCluster::Restart(int i) {
  if (Running(i)) return Status::FailedPrecondition(Name(i) + " is running");
  return Launch(i);
}

}  // namespace fg::testing
