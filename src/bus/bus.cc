#include "bus/bus.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "common/metrics.h"

namespace fg::bus {
namespace {
constexpr auto kLinger = std::chrono::milliseconds(1);
}  // namespace

InProcessBus::InProcessBus(size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

InProcessBus::~InProcessBus() { Stop(); }

Status InProcessBus::Publish(std::string_view subject, std::string payload) {
  static Counter& refused = Metrics::Global().GetCounter(
      "femtoguard_bus_refused_total", {}, "Bus messages refused because the queue was full or stopping");
  static Counter& published = Metrics::Global().GetCounter("femtoguard_bus_published_total", {},
                                                           "Bus messages accepted for delivery");
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !started_) {
      refused.Inc();
      return Status::Unavailable("bus is not running");
    }
    if (queued_bytes_ + payload.size() > max_queued_bytes_ && !queue_.empty()) {
      refused.Inc();
      return Status::Unavailable("bus queue is full; retry later");
    }
    queued_bytes_ += payload.size();
    queue_.push_back(Message{std::string(subject), std::move(payload), ++published_});
    // Wake the dispatcher only when it sleeps: while it works through a
    // batch it takes whatever arrived meanwhile without a wake-up, which
    // under load saves a futex call and a context switch per message.
    wake = dispatcher_idle_;
    dispatcher_idle_ = false;
  }
  published.Inc();
  if (wake) cv_.notify_one();
  return Status::Ok();
}

void InProcessBus::Subscribe(std::string subject_prefix, Handler handler) {
  subscribers_.emplace_back(std::move(subject_prefix), std::move(handler));
}

Status InProcessBus::Start() {
  std::lock_guard lock(mutex_);
  if (started_) return Status::FailedPrecondition("bus already started");
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void InProcessBus::Run() {
  std::deque<Message> batch;
  bool linger = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      while (!stopping_ && queue_.empty()) {
        if (linger) {
          // Just delivered something: more is likely on its way. Collect it
          // for a moment without asking publishers to wake us, so that a
          // stream of single events (one per admitted session) costs one
          // wake-up per millisecond instead of one per event.
          linger = false;
          cv_.wait_for(lock, kLinger);
          continue;
        }
        dispatcher_idle_ = true;
        cv_.wait(lock);
      }
      dispatcher_idle_ = false;
      if (queue_.empty()) return;  // stopping and drained
      // Everything queued so far, in one go. Its bytes stay counted against
      // the bound until delivered, so the bound holds what is in memory.
      batch.swap(queue_);
    }
    size_t bytes = 0;
    for (Message& m : batch) {
      bytes += m.payload.size();
      for (auto& [prefix, handler] : subscribers_) {
        if (m.subject.compare(0, prefix.size(), prefix) != 0) continue;
        try {
          handler(m.subject, m.payload);
        } catch (const std::exception& e) {
          // A handler must not take the bus down; the message is lost to it.
          spdlog::error("bus: handler for '{}' failed: {}", prefix, e.what());
          Metrics::Global().GetCounter("femtoguard_bus_handler_errors_total").Inc();
        }
      }
    }
    {
      std::lock_guard lock(mutex_);
      queued_bytes_ -= bytes;
      delivered_ = batch.back().seq;
    }
    batch.clear();
    linger = true;
    done_cv_.notify_all();
  }
}

void InProcessBus::Drain() {
  std::unique_lock lock(mutex_);
  const uint64_t target = published_;
  done_cv_.wait(lock, [&] { return delivered_ >= target || !started_ || (stopping_ && queue_.empty() && delivered_ >= target); });
}

void InProcessBus::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_ || stopping_) {
      stopping_ = true;
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  done_cv_.notify_all();
}

}  // namespace fg::bus
