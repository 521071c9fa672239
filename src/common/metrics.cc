#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fg {
namespace {
std::string Key(std::string_view name, std::string_view labels) {
  std::string k(name);
  if (!labels.empty()) k.append("{").append(labels).append("}");
  return k;
}

// A bucket bound as Prometheus writes it ("0.005", "1", "+Inf").
std::string Le(size_t i) {
  if (i >= Histogram::kBuckets) return "+Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", Histogram::kBounds[i]);
  return buf;
}
}  // namespace

void Histogram::Observe(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN and clock steps count as zero, never as a bogus bucket
  const double* end = kBounds + kBuckets;
  size_t i = static_cast<size_t>(std::lower_bound(kBounds, end, seconds) - kBounds);
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t n = 0;
  for (size_t b = 0; b <= std::min(i, kBuckets); ++b) n += buckets_[b].load(std::memory_order_relaxed);
  return n;
}

Metrics& Metrics::Global() {
  static Metrics* m = new Metrics();
  return *m;
}

Counter& Metrics::GetCounter(std::string_view name, std::string_view labels, std::string_view help) {
  std::lock_guard lock(mutex_);
  std::string key = Key(name, labels);
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    it = counters_.emplace(key, std::make_unique<Counter>()).first;
  }
  if (!help.empty()) help_.emplace(std::string(name), std::string(help));
  return *it->second;
}

Gauge& Metrics::GetGauge(std::string_view name, std::string_view labels, std::string_view help) {
  std::lock_guard lock(mutex_);
  std::string key = Key(name, labels);
  auto it = gauges_.find(key);
  if (it == gauges_.end()) it = gauges_.emplace(key, std::make_unique<Gauge>()).first;
  if (!help.empty()) help_.emplace(std::string(name), std::string(help));
  return *it->second;
}

Histogram& Metrics::GetHistogram(std::string_view name, std::string_view labels, std::string_view help) {
  std::lock_guard lock(mutex_);
  std::string key = Key(name, labels);
  auto it = histograms_.find(key);
  if (it == histograms_.end()) it = histograms_.emplace(key, std::make_unique<Histogram>()).first;
  if (!help.empty()) help_.emplace(std::string(name), std::string(help));
  return *it->second;
}

uint64_t Metrics::Value(std::string_view name, std::string_view labels) {
  std::lock_guard lock(mutex_);
  auto it = counters_.find(Key(name, labels));
  return it == counters_.end() ? 0 : it->second->Value();
}

std::string Metrics::RenderPrometheus() {
  std::lock_guard lock(mutex_);
  std::string out;
  std::string last_name;
  for (const auto& [key, counter] : counters_) {
    std::string name = key.substr(0, key.find('{'));
    if (name != last_name) {
      auto h = help_.find(name);
      if (h != help_.end()) out += "# HELP " + name + " " + h->second + "\n";
      out += "# TYPE " + name + " counter\n";
      last_name = name;
    }
    out += key + " " + std::to_string(counter->Value()) + "\n";
  }
  last_name.clear();
  for (const auto& [key, gauge] : gauges_) {
    std::string name = key.substr(0, key.find('{'));
    if (name != last_name) {
      auto h = help_.find(name);
      if (h != help_.end()) out += "# HELP " + name + " " + h->second + "\n";
      out += "# TYPE " + name + " gauge\n";
      last_name = name;
    }
    out += key + " " + std::to_string(gauge->Value()) + "\n";
  }
  last_name.clear();
  for (const auto& [key, histogram] : histograms_) {
    const size_t brace = key.find('{');
    std::string name = key.substr(0, brace);
    // The series' own labels, to which each bucket adds le.
    std::string labels = brace == std::string::npos ? "" : key.substr(brace + 1, key.size() - brace - 2);
    if (name != last_name) {
      auto h = help_.find(name);
      if (h != help_.end()) out += "# HELP " + name + " " + h->second + "\n";
      out += "# TYPE " + name + " histogram\n";
      last_name = name;
    }
    const std::string sep = labels.empty() ? "" : ",";
    for (size_t i = 0; i <= Histogram::kBuckets; ++i) {
      out += name + "_bucket{" + labels + sep + "le=\"" + Le(i) + "\"} " +
             std::to_string(histogram->CumulativeCount(i)) + "\n";
    }
    char sum[40];
    std::snprintf(sum, sizeof sum, "%.9g", histogram->Sum());
    const std::string suffix = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + suffix + " " + sum + "\n";
    // From the buckets, so that _count always equals the +Inf bucket.
    out += name + "_count" + suffix + " " + std::to_string(histogram->CumulativeCount(Histogram::kBuckets)) + "\n";
  }
  return out;
}

}  // namespace fg
