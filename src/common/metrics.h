#pragma once

// Process-wide counters, rendered in the Prometheus text format at /metrics.
// Thread-safe: registration takes a mutex, increments are lock-free.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace fg {

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (open connections and the like).
class Gauge {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void Sub(int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Metrics {
 public:
  static Metrics& Global();

  // `name` is a Prometheus metric name; `labels` is the inside of {...},
  // e.g. `result="good"`, or empty. The returned reference lives forever.
  Counter& GetCounter(std::string_view name, std::string_view labels = {},
                      std::string_view help = {});
  uint64_t Value(std::string_view name, std::string_view labels = {});
  // Like GetCounter, for a gauge.
  Gauge& GetGauge(std::string_view name, std::string_view labels = {}, std::string_view help = {});

  std::string RenderPrometheus();

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> help_;                        // guarded by mutex_
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;  // guarded by mutex_
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;      // guarded by mutex_
};

}  // namespace fg
