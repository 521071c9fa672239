#pragma once

// A NATS JetStream cluster started by a test for itself: N nats-server
// processes (3 by default) on free loopback ports, each with its own file
// store in a temp dir, routed to each other as one cluster. Start() returns
// once the cluster has a JetStream meta leader, so that a stream can be
// created at once. A server can be killed with SIGKILL (kill -9: no clean
// shutdown, no leadership hand-off) and restarted on the same ports and
// store dir, as a crashed machine that comes back.
//
// Every server it started is stopped by its PID on destruction, and the
// temp dir removed. Tests never touch a nats-server they did not start.

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "testing/harness.h"

namespace fg::testing {

class NatsCluster {
 public:
  static constexpr const char* kServerBinary = "/usr/sbin/nats-server";

  static Result<std::unique_ptr<NatsCluster>> Start(int servers = 3);
  ~NatsCluster();  // stops every server it started (by pid), rm -rf
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  int size() const { return static_cast<int>(servers_.size()); }
  // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,...": every server, for a client.
  std::string Urls() const;
  std::string Url(int i) const;
  // The server's name in the cluster ("n0", "n1", ...).
  std::string Name(int i) const { return "n" + std::to_string(i); }
  bool Running(int i) const;

  // Polls until a JetStream meta leader is known to a running server.
  Status WaitForMetaLeader(int timeout_ms = 20000) const;
  // The index of the server that leads `stream` (its RAFT group), as a
  // running server reports it; NotFound while there is none.
  Result<int> StreamLeader(const std::string& stream) const;
  // Polls until `stream` has a leader; returns its index.
  Result<int> WaitForStreamLeader(const std::string& stream, int timeout_ms = 20000) const;

  // SIGKILL server i and reap it.
  Status Kill(int i);
  // SIGSTOP / SIGCONT server i: a server that stalls (starved of CPU,
  // swapped out) without dying; its peers and clients see timeouts.
  Status Pause(int i);
  Status Resume(int i);
  // Kills the current leader of `stream`; returns which server it was.
  Result<int> KillStreamLeader(const std::string& stream);
  // Starts server i again (same ports, same store dir) and waits until it
  // answers its monitoring port.
  Status Restart(int i);

  // The last `bytes` of every server's log, for a failing test's message.
  std::string Logs(size_t bytes = 4000) const;

  // GET on server i's monitoring port (e.g. "/jsz?streams=true"): the body.
  Result<std::string> Monitor(int i, const std::string& path) const;

 private:
  struct Server {
    int client_port = 0;
    int cluster_port = 0;
    int monitor_port = 0;
    std::string config_path;
    std::unique_ptr<Process> process;
  };
  NatsCluster() = default;
  static Result<std::unique_ptr<NatsCluster>> StartOnce(int servers);
  Status Launch(int i);
  // kill(2) of server i's process, if it runs.
  Status Signal(int i, int signal);

  std::unique_ptr<TempDir> dir_;
  std::vector<Server> servers_;
};

}  // namespace fg::testing
