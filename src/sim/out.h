#pragma once

// A buffered output file for the simulator's large writes: one big buffer,
// POSIX write(2), numbers through std::to_chars (locale-free, and the same
// digits on every platform). Not thread-safe.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"

namespace fg::sim {

class OutFile {
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
  // "2025-03-02T15:00:03.120Z": RFC 3339, UTC, always milliseconds.
  void Ts(UnixMillis t);
  // `"text"` with JSON escaping.
  void Str(std::string_view s);
  // 16 zero-padded lower-case hex digits, unquoted.
  void Hex64(uint64_t v);
  void Ipv4(uint32_t ip);

  uint64_t bytes() const { return written_ + buf_.size(); }

 private:
  static constexpr size_t kFlushAt = 4 << 20;
  void Flush();

  int fd_ = -1;
  std::string path_;
  std::string buf_;
  uint64_t written_ = 0;
  Status error_;
  int64_t cached_day_ = INT64_MIN;
  char day_text_[11] = {};
};

}  // namespace fg::sim
