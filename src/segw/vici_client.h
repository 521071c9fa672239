#pragma once

// One connection to charon's vici unix socket: commands (request/response,
// optionally streaming events of one name while the command runs), event
// (un)registration, and a reader thread that hands every other event to a
// handler.
//
// vici has no sequence numbers, so one command runs at a time per
// connection; callers on several threads are serialised here. Every call
// takes a timeout; a timed-out or broken connection is closed for good
// (the caller reconnects with a new ViciClient), because a late response
// would otherwise be taken for the answer to the next command.
//
// Thread-safety: all methods may be called from any thread. The event
// handler runs on the reader thread: it must return quickly and must not
// call back into this client (hand work to another thread).

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "segw/vici_wire.h"

namespace fg::segw::vici {

class Client {
 public:
  using EventHandler = std::function<void(const std::string& name, const Section& message)>;
  // Called once, on the reader thread, when the connection ends (by the peer,
  // an error or Close()); `why` says which.
  using CloseHandler = std::function<void(const Status& why)>;

  // Connects to the unix socket at `path` within `timeout_ms`.
  static Result<std::unique_ptr<Client>> Connect(const std::string& path, int timeout_ms, EventHandler on_event,
                                                 CloseHandler on_close = {}, Limits limits = {});
  ~Client();  // Close()s
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A command and its response message. Unavailable when the connection is
  // or becomes closed or the response does not come within `timeout_ms`;
  // NotFound when charon does not know the command (CMD_UNKNOWN).
  Result<Section> Request(std::string_view command, const Section& args, int timeout_ms);

  // A streaming command (e.g. list-sas streams list-sa): registers for
  // `stream_event`, sends the command, gathers the streamed events until the
  // response, unregisters. All within `timeout_ms`.
  struct Streamed {
    std::vector<Section> events;
    Section response;
  };
  Result<Streamed> StreamRequest(std::string_view command, const Section& args, std::string_view stream_event,
                                 int timeout_ms);

  // Asks charon to send events of this name (to the handler).
  // NotFound when charon has no such event (EVENT_UNKNOWN).
  Status Register(std::string_view event, int timeout_ms);
  Status Unregister(std::string_view event, int timeout_ms);

  bool open() const;
  // Shuts the socket down and joins the reader. Idempotent. Must not be
  // called from the handlers.
  void Close();

 private:
  Client(int fd, EventHandler on_event, CloseHandler on_close, Limits limits);
  void ReadLoop();
  // Sends one packet and waits for the next reply packet (anything but an
  // EVENT). Holds command_mutex_ for the whole exchange via the caller.
  Result<Packet> Exchange(const Packet& packet, int timeout_ms);
  void Fail(const Status& why);  // marks closed, wakes waiters; no join

  // Constant after construction.
  const Limits limits_;
  const EventHandler on_event_;
  const CloseHandler on_close_;
  int fd_ = -1;
  std::thread reader_;

  std::mutex command_mutex_;  // one command at a time

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool closed_ = false;               // guarded by mutex_
  Status close_reason_;               // guarded by mutex_
  std::deque<Packet> replies_;        // guarded by mutex_; non-EVENT packets
  std::string stream_event_;          // guarded by mutex_; event name being gathered
  std::vector<Section> stream_;       // guarded by mutex_
  std::mutex close_mutex_;            // serialises Close()
  bool joined_ = false;               // guarded by close_mutex_
};

}  // namespace fg::segw::vici
