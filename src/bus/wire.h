#pragma once

// Little-endian fixed-width numbers and length-prefixed strings, as the
// bus's binary formats write them (event_codec.cc: event batches;
// stream_detection.cc: derived records). Reading is bounded: a short or
// oversized field is a failed read, never a read past the end.

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace fg::bus::wire {

template <typename T>
void Put(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

inline void PutStr(std::string* out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  // A length-prefixed string of at most `max` bytes, viewed in place.
  bool GetStr(std::string_view* s, uint32_t max = std::numeric_limits<uint32_t>::max()) {
    uint32_t n;
    if (!Get(&n) || n > max || in_.size() < n) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool GetStr(std::string* s, uint32_t max = std::numeric_limits<uint32_t>::max()) {
    std::string_view v;
    if (!GetStr(&v, max)) return false;
    s->assign(v);
    return true;
  }
  bool GetBytes(void* dst, size_t n) {
    if (in_.size() < n) return false;
    std::memcpy(dst, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool Skip(size_t n) {
    if (in_.size() < n) return false;
    in_.remove_prefix(n);
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace fg::bus::wire
