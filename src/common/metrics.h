#pragma once

// Process-wide counters, gauges and histograms, rendered in the Prometheus text format at /metrics.
// Thread-safe: registration takes a mutex, increments are lock-free.

#include <atomic>
#include <chrono>
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

// Latency in seconds, in fixed cumulative buckets (Prometheus histogram:
// NAME_bucket{le="..."}, NAME_sum, NAME_count). Observe is lock-free.
class Histogram {
 public:
  // Upper bounds in seconds, ascending; +Inf is implicit. Sized for what a
  // node measures: a cached OCSP answer (sub-millisecond) up to an action
  // that waited out a store retry (seconds).
  static constexpr double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  static constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);

  void Observe(double seconds);
  // Cumulative count of observations <= kBounds[i] (i == kBuckets: all).
  uint64_t CumulativeCount(size_t i) const;
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9; }

 private:
  std::atomic<uint64_t> buckets_[kBuckets + 1] = {};  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Observes the time from construction to destruction into `h`.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    h_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& h_;
  std::chrono::steady_clock::time_point start_;
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
  // Like GetCounter, for a latency histogram (seconds; `name` without the
  // _bucket/_sum/_count suffixes, by convention ending in _seconds).
  Histogram& GetHistogram(std::string_view name, std::string_view labels = {}, std::string_view help = {});

  std::string RenderPrometheus();

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> help_;                        // guarded by mutex_
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;  // guarded by mutex_
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;      // guarded by mutex_
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_;  // guarded by mutex_
};

}  // namespace fg
