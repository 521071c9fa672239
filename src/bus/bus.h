#pragma once

// The event bus between ingest and detection (DESIGN.md §2, §4). A message
// is a subject and a payload; for events the payload is a batch of JSON
// Lines. Subjects are dotted ("events", "alerts"); a subscriber names a
// prefix. The in-process bus below is the embedded default; a NATS
// JetStream bus implements the same interface for scale-out (subjects then
// partitioned by device and subscriber).
//
// Delivery: in publish order, on the bus's own dispatcher thread, at most
// one handler call at a time. Publish never blocks: when the queue is full it
// refuses (Unavailable) so that HTTP ingest can answer 503 and the sender
// retries, instead of the node running out of memory.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace fg::bus {

class Bus {
 public:
  using Handler = std::function<void(std::string_view subject, const std::string& payload)>;

  virtual ~Bus() = default;
  virtual Status Publish(std::string_view subject, std::string payload) = 0;
  // Register before Start().
  virtual void Subscribe(std::string subject_prefix, Handler handler) = 0;
  virtual Status Start() = 0;
  // Delivers what is queued, then stops. Idempotent.
  virtual void Stop() = 0;
  // Blocks until everything published before the call has been handled.
  virtual void Drain() = 0;
};

class InProcessBus final : public Bus {
 public:
  // `max_queued_bytes` bounds the payload bytes waiting for delivery.
  explicit InProcessBus(size_t max_queued_bytes = 64 << 20);
  ~InProcessBus() override;

  Status Publish(std::string_view subject, std::string payload) override;
  void Subscribe(std::string subject_prefix, Handler handler) override;
  Status Start() override;
  void Stop() override;
  void Drain() override;

 private:
  struct Message {
    std::string subject;
    std::string payload;
    uint64_t seq;
  };
  void Run();

  const size_t max_queued_bytes_;
  std::vector<std::pair<std::string, Handler>> subscribers_;  // fixed after Start

  std::mutex mutex_;
  std::condition_variable cv_;       // work arrived or stop
  std::condition_variable done_cv_;  // delivered_ advanced
  std::deque<Message> queue_;        // guarded by mutex_
  size_t queued_bytes_ = 0;          // guarded by mutex_
  uint64_t published_ = 0;           // guarded by mutex_
  uint64_t delivered_ = 0;           // guarded by mutex_
  bool stopping_ = false;            // guarded by mutex_
  bool dispatcher_idle_ = false;     // dispatcher waits on cv_; guarded by mutex_
  bool started_ = false;
  std::thread thread_;
};

}  // namespace fg::bus
