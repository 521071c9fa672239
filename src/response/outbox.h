#pragma once

// A durable, file-backed queue of alert messages and the thread that sends
// them: what the SIEM export (siem.h) and the webhook (webhook.h) share.
// What differs between them - how a batch is delivered, what a message
// looks like, the log prefix, the metrics - is passed in.
//
//   - One file per message in `dir`, "<seq, 16 digits>-<hex of the alert
//     id><suffix>", written atomically with mode 0600 before Enqueue
//     returns, removed once it was delivered. At open, what an earlier run
//     left is loaded back in sequence order (an upgrade finds its old queue:
//     the layout is the one both senders always had).
//   - An alert id still pending is queued once (at least once, not twice).
//   - A message that cannot be written to disk (full disk) is kept in memory
//     and sent from there: not durable, but not dropped.
//   - The sender hands the oldest `max_batch` messages to `deliver`; on an
//     error they stay queued and are retried after a backoff that doubles
//     from retry_initial_ms up to retry_max_ms. The first failure of an
//     outage is logged as a warning, the recovery as info.
//
// Thread-safety: thread-safe. One sender thread per Outbox, started by
// StartSending and stopped by the destructor.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace fg::response {

struct OutboxOptions {
  std::filesystem::path dir;
  std::string suffix;       // of the queue files: ".msg", ".json"
  std::string log_prefix;   // "SIEM export": "SIEM export: cannot queue ..."
  std::string queue_name;   // "SIEM queue": "SIEM queue DIR is not a directory"
  size_t max_batch = 1;     // messages per delivery
  int retry_initial_ms = 500;
  int retry_max_ms = 60000;
  Gauge* pending_gauge = nullptr;  // set to the queue's length
  bool remove_dir = false;         // a temp queue (tests): removed with the Outbox
};

class Outbox {
 public:
  struct Message {
    std::string id;       // the alert's id
    std::string payload;  // what was queued, byte for byte
  };
  // Delivers a batch (oldest first), all or nothing: an error keeps them
  // all queued. Its message completes "<prefix>: <message>; N alert(s)
  // queued, retrying with backoff". Called on the sender thread only.
  using Deliver = std::function<Status(const std::vector<Message>& batch)>;

  // Creates the directory (0700) and loads what an earlier run left.
  static Result<std::unique_ptr<Outbox>> Open(OutboxOptions options);
  // Starts the sender. `recovered` is logged (after the prefix) when a
  // delivery succeeds after a failure.
  void StartSending(Deliver deliver, std::string recovered);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues one message (on disk before this returns) unless `alert_id` is
  // still pending.
  void Enqueue(std::string_view alert_id, std::string payload);
  // Waits until the queue is empty, at most `timeout_ms` (<0: for ever).
  bool Flush(int timeout_ms = -1);
  size_t pending() const;

 private:
  explicit Outbox(OutboxOptions options) : options_(std::move(options)) {}
  void Run();
  void SetPendingGauge();  // mutex_ held

  struct Item {
    std::string id;
    std::filesystem::path path;
  };

  // Constant after StartSending.
  const OutboxOptions options_;
  Deliver deliver_;
  std::string recovered_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;            // oldest first; guarded by mutex_
  std::set<std::string> queued_ids_;  // ids in queue_; guarded by mutex_
  // Payloads that could not be written to disk, by id; guarded by mutex_.
  std::unordered_map<std::string, std::string> in_memory_;
  uint64_t next_seq_ = 1;  // guarded by mutex_
  size_t in_flight_ = 0;   // items at the front being sent; guarded by mutex_
  bool stop_ = false;      // guarded by mutex_
  std::thread sender_;
};

}  // namespace fg::response
