#pragma once

// The control socket of a running serve (DataDir::ControlSocketPath): the
// CLI pokes it after each change ("sync\n" -> "ok\n" | "error <message>\n";
// NotifyServe in node.h is the client), so that a revocation is visible the
// moment `cert revoke` returns.

#include <functional>
#include <memory>
#include <thread>

#include "common/config.h"
#include "common/status.h"

namespace fg {

class ControlSocket {
 public:
  // Binds the socket (0600, in DIR/run, 0700) and answers it on a thread of
  // its own; each "sync" calls `sync`.
  static Result<std::unique_ptr<ControlSocket>> Start(const DataDir& dir, std::function<Status()> sync);
  ~ControlSocket();
  // Ends the thread, closes and removes the socket. Idempotent.
  void Stop();

 private:
  ControlSocket(const DataDir& dir, std::function<Status()> sync) : dir_(dir), sync_(std::move(sync)) {}
  void Serve();

  DataDir dir_;
  std::function<Status()> sync_;
  std::thread thread_;
  int fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
};

}  // namespace fg
