#include "common/metrics.h"

namespace fg {
namespace {
std::string Key(std::string_view name, std::string_view labels) {
  std::string k(name);
  if (!labels.empty()) k.append("{").append(labels).append("}");
  return k;
}
}  // namespace

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
  return out;
}

}  // namespace fg
