#pragma once

// A Gate for tests of the SeGW adapter: denies by simple rules, records
// every request and every SessionDown. Stands in for the admission engine
// (src/admission/), which these tests must not depend on.

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "admission/admission.h"

namespace fg::segw::testing {

class RuleGate : public admission::Gate {
 public:
  // Requests for these devices are denied with `reason`.
  void DenyDevice(const std::string& device, const std::string& reason) {
    std::lock_guard lock(mutex_);
    deny_[device] = reason;
  }
  // A second live session of one device is denied as "cert.clone".
  void DenyClones(bool v) {
    std::lock_guard lock(mutex_);
    clones_ = v;
  }

  admission::Decision Admit(const admission::AdmissionRequest& r) override {
    std::lock_guard lock(mutex_);
    requests_.push_back(r);
    admission::Decision d;
    d.verdict = admission::Verdict::kAllow;
    if (auto it = deny_.find(r.device); it != deny_.end()) {
      d.verdict = admission::Verdict::kDeny;
      d.reasons = {it->second};
    } else if (clones_ && std::any_of(live_.begin(), live_.end(),
                                      [&](const auto& l) { return l.first == r.device; })) {
      d.verdict = admission::Verdict::kDeny;
      d.reasons = {"cert.clone"};
    }
    if (d.verdict == admission::Verdict::kAllow) live_.insert({r.device, r.session});
    return d;
  }
  void SessionDown(std::string_view device, std::string_view session) override {
    std::lock_guard lock(mutex_);
    downs_.push_back(std::string(device) + " " + std::string(session));
    live_.erase({std::string(device), std::string(session)});
  }

  std::vector<admission::AdmissionRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<std::string> downs() {
    std::lock_guard lock(mutex_);
    return downs_;
  }
  size_t live() {
    std::lock_guard lock(mutex_);
    return live_.size();
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> deny_;
  bool clones_ = false;
  std::set<std::pair<std::string, std::string>> live_;
  std::vector<admission::AdmissionRequest> requests_;
  std::vector<std::string> downs_;
};

}  // namespace fg::segw::testing
