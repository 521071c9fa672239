#include "bus/bus.h"

#include <spdlog/spdlog.h>

#include "common/metrics.h"

namespace fg::bus {

InProcessBus::InProcessBus(size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

InProcessBus::~InProcessBus() { Stop(); }

Status InProcessBus::Publish(std::string_view subject, std::string payload) {
  static Counter& refused = Metrics::Global().GetCounter(
      "femtoguard_bus_refused_total", {}, "Bus messages refused because the queue was full or stopping");
  static Counter& published = Metrics::Global().GetCounter("femtoguard_bus_published_total", {},
                                                           "Bus messages accepted for delivery");
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
  }
  published.Inc();
  cv_.notify_one();
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
  for (;;) {
    Message m;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      m = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= m.payload.size();
    }
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
    {
      std::lock_guard lock(mutex_);
      delivered_ = m.seq;
    }
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
