#pragma once

// Text output for the simulator's large files: numbers through std::to_chars
// (locale-free, the same digits on every platform), files written by a
// writer thread.

#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace fg::sim {

// Text being built: JSON and CSV pieces appended to a string. A value type;
// not thread-safe (one per thread).
class TextBuf {
 public:
  void Put(std::string_view s) { buf_.append(s); }
  void Put(char c) { buf_.push_back(c); }
  void Int(int64_t v) {
    char tmp[24];
    auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, r.ptr);
  }
  // Fixed-point with `decimals` digits (correctly rounded, locale-free).
  void Fixed(double v, int decimals) {
    char tmp[48];
    auto r = std::to_chars(tmp, tmp + sizeof tmp, v, std::chars_format::fixed, decimals);
    buf_.append(tmp, r.ptr);
  }
  // `width` decimal digits, zero-padded (the low ones if v is wider).
  void Digits(uint64_t v, int width);
  // "2025-03-02T15:00:03.120Z" with the quotes: RFC 3339, UTC, always milliseconds.
  void Ts(UnixMillis t);
  // `"text"` with JSON escaping.
  void Str(std::string_view s);
  // 16 zero-padded lower-case hex digits, unquoted.
  void Hex64(uint64_t v);
  void Ipv4(uint32_t ip);

  std::string& str() { return buf_; }
  size_t size() const { return buf_.size(); }

 protected:
  std::string buf_;

 private:
  int64_t cached_day_ = INT64_MIN;
  char day_text_[11] = {};
};

// A file written through a writer thread: the caller fills a 4 MB buffer
// while the previous one goes to write(2) (the kernel's copy is a third of
// the simulator's time). Not thread-safe: one caller; the writer thread is
// internal.
class OutFile : public TextBuf {
 public:
  OutFile() = default;
  ~OutFile();
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  Status Open(const std::string& path);
  // Flushes and closes; the first write error, if any.
  Status Close();

  void Put(std::string_view s) {
    buf_.append(s);
    if (buf_.size() >= kFlushAt) Flush();
  }
  void Put(char c) { buf_.push_back(c); }
  // Writes `text` after what is buffered, taking its memory (no copy);
  // leaves `text` empty, possibly with a recycled buffer's capacity.
  void PutOwned(std::string& text);

  uint64_t bytes() const { return written_ + buf_.size(); }

 private:
  static constexpr size_t kFlushAt = 4 << 20;
  static constexpr size_t kMaxQueued = 3;
  // Hands buf_ to the writer thread (blocks while kMaxQueued are waiting).
  void Flush();
  void WriterLoop();

  int fd_ = -1;
  std::string path_;
  uint64_t written_ = 0;  // bytes handed to the writer

  std::thread writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;   // guarded by mu_
  std::vector<std::string> spare_;  // guarded by mu_: empty buffers to reuse
  bool closing_ = false;            // guarded by mu_
  Status error_;                    // guarded by mu_ (first write error)
};

}  // namespace fg::sim
