#pragma once

// The admission decision log: one JSON object per line (DIR/log/admission.jsonl):
//   {"ts":"...","device":"FG-1","session":"7","src_ip":"198.51.100.7",
//    "endpoint":"segw1:4500","segw":"segw-a","decision":"deny",
//    "reasons":["cert.clone"],"evidence":{"clone.session":"3",...}}
// Appends are buffered and written by a background thread at least every
// 100 ms (and on Flush / destruction), so a decision costs no system call.
// Thread-safe.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "admission/admission.h"
#include "common/status.h"

namespace fg::admission {

class DecisionLog {
 public:
  // Creates the parent directory; appends to an existing file.
  static Result<std::unique_ptr<DecisionLog>> Open(const std::string& path);
  ~DecisionLog();

  void Append(const AdmissionRequest& request, UnixMillis ts, const Decision& decision);
  // Writes everything appended so far.
  Status Flush();

  // The JSON line (without newline) for one decision.
  static std::string Format(const AdmissionRequest& request, UnixMillis ts, const Decision& decision);

 private:
  explicit DecisionLog(int fd);
  void Run();
  Status WriteLocked(std::unique_lock<std::mutex>& lock);

  const int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;   // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::mutex write_mu_;  // serialises writes to fd_
  std::thread flusher_;
};

}  // namespace fg::admission
