#pragma once

// The admission decision log: one JSON object per line (DIR/log/admission.jsonl):
//   {"ts":"...","device":"FG-1","session":"7","src_ip":"198.51.100.7",
//    "endpoint":"segw1:4500","segw":"segw-a","decision":"deny",
//    "reasons":["cert.clone"],"evidence":{"clone.session":"3",...}}
// Appends are buffered and written by a background thread at least every
// 100 ms (and on Flush / destruction), so a decision costs no system call.
//
// Rotation by size (logrotate's naming): before a write would take the file
// past `max_bytes`, admission.jsonl becomes admission.jsonl.1, .1 becomes .2,
// and so on; at most `keep` rotated files are kept, the oldest is deleted.
// A line is never split across files. config.yaml: log.admission_max_mb,
// log.admission_keep (docs/operations.md).
//
// Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "admission/admission.h"
#include "common/status.h"

namespace fg::admission {

struct DecisionLogRotation {
  uint64_t max_bytes = 64ULL << 20;  // 0: never rotate
  int keep = 5;                       // rotated files kept (0: the old lines are dropped)
};

class DecisionLog {
 public:
  // Creates the parent directory; appends to an existing file.
  static Result<std::unique_ptr<DecisionLog>> Open(const std::string& path, DecisionLogRotation rotation = {});
  ~DecisionLog();

  void Append(const AdmissionRequest& request, UnixMillis ts, const Decision& decision);
  // Writes everything appended so far.
  Status Flush();

  // The JSON line (without newline) for one decision.
  static std::string Format(const AdmissionRequest& request, UnixMillis ts, const Decision& decision);

 private:
  DecisionLog(std::string path, DecisionLogRotation rotation, int fd, uint64_t size);
  void Run();
  Status WriteLocked(std::unique_lock<std::mutex>& lock);
  Status RotateLocked();  // write_mu_ held

  // Constant after construction.
  const std::string path_;
  const DecisionLogRotation rotation_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;   // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::mutex write_mu_;  // serialises writes to fd_
  int fd_;               // guarded by write_mu_
  uint64_t size_;        // guarded by write_mu_: bytes in the current file
  std::thread flusher_;
};

}  // namespace fg::admission
