#include "sim/out.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fg::sim {

OutFile::~OutFile() {
  if (fd_ >= 0) (void)Close();
}

Status OutFile::Open(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  buf_.reserve(kFlushAt + (64 << 10));
  writer_ = std::thread([this] { WriterLoop(); });
  return Status::Ok();
}

void OutFile::WriterLoop() {
  for (;;) {
    std::string chunk;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      chunk = std::move(queue_.front());
      queue_.pop_front();
      cv_.notify_all();
    }
    size_t off = 0;
    Status err;
    while (off < chunk.size()) {
      ssize_t n = ::write(fd_, chunk.data() + off, chunk.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = Status::Unavailable("cannot write " + path_ + ": " + std::strerror(errno));
        break;
      }
      off += static_cast<size_t>(n);
    }
    chunk.clear();
    std::lock_guard lock(mu_);
    if (!err.ok() && error_.ok()) error_ = err;
    if (spare_.size() < 8) spare_.push_back(std::move(chunk));
  }
}

void OutFile::Flush() {
  if (buf_.empty()) return;
  written_ += buf_.size();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.size() < kMaxQueued; });
  queue_.push_back(std::move(buf_));
  if (!spare_.empty()) {
    buf_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    buf_ = std::string();
    buf_.reserve(kFlushAt + (64 << 10));
  }
  cv_.notify_all();
}

void OutFile::PutOwned(std::string& text) {
  if (text.empty()) return;
  Flush();
  written_ += text.size();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.size() < kMaxQueued; });
  const size_t capacity = text.capacity();
  queue_.push_back(std::move(text));
  text = std::string();
  if (!spare_.empty()) {
    text = std::move(spare_.back());
    spare_.pop_back();
  }
  cv_.notify_all();
  lock.unlock();
  // One allocation of the size the caller needed, not a doubling series.
  if (text.capacity() < capacity) text.reserve(capacity);
}

Status OutFile::Close() {
  if (fd_ < 0) return Status::Internal("close of a file that is not open");
  Flush();
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  writer_.join();
  std::lock_guard lock(mu_);
  if (::close(fd_) != 0 && error_.ok()) {
    error_ = Status::Unavailable("cannot close " + path_ + ": " + std::strerror(errno));
  }
  fd_ = -1;
  return error_;
}

namespace {

// Days since 1970-01-01 -> civil date (H. Hinnant's algorithm).
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yy + (*m <= 2));
}

void Two(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void TextBuf::Ts(UnixMillis t) {
  int64_t day = t >= 0 ? t / kMillisPerDay : (t - kMillisPerDay + 1) / kMillisPerDay;
  int64_t ms_of_day = t - day * kMillisPerDay;
  if (day != cached_day_) {
    int y;
    unsigned m, d;
    CivilFromDays(day, &y, &m, &d);
    unsigned uy = static_cast<unsigned>(y);
    day_text_[0] = static_cast<char>('0' + uy / 1000 % 10);
    day_text_[1] = static_cast<char>('0' + uy / 100 % 10);
    day_text_[2] = static_cast<char>('0' + uy / 10 % 10);
    day_text_[3] = static_cast<char>('0' + uy % 10);
    day_text_[4] = '-';
    Two(day_text_ + 5, m);
    day_text_[7] = '-';
    Two(day_text_ + 8, d);
    cached_day_ = day;
  }
  char out[26];
  std::memcpy(out, "\"", 1);
  std::memcpy(out + 1, day_text_, 10);
  unsigned s = static_cast<unsigned>(ms_of_day / 1000);
  unsigned ms = static_cast<unsigned>(ms_of_day % 1000);
  out[11] = 'T';
  Two(out + 12, s / 3600);
  out[14] = ':';
  Two(out + 15, s / 60 % 60);
  out[17] = ':';
  Two(out + 18, s % 60);
  out[20] = '.';
  out[21] = static_cast<char>('0' + ms / 100);
  out[22] = static_cast<char>('0' + ms / 10 % 10);
  out[23] = static_cast<char>('0' + ms % 10);
  out[24] = 'Z';
  out[25] = '"';
  buf_.append(out, 26);
}

void TextBuf::Str(std::string_view s) {
  buf_.push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      buf_.push_back('\\');
      buf_.push_back(c);
    } else if (u < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      buf_.append("\\u00");
      buf_.push_back(kHex[u >> 4]);
      buf_.push_back(kHex[u & 15]);
    } else {
      buf_.push_back(c);
    }
  }
  buf_.push_back('"');
}

void TextBuf::Hex64(uint64_t v) {
  static const char kHex[] = "0123456789abcdef";
  char tmp[16];
  for (int i = 15; i >= 0; --i) {
    tmp[i] = kHex[v & 15];
    v >>= 4;
  }
  buf_.append(tmp, 16);
}

void TextBuf::Digits(uint64_t v, int width) {
  char tmp[20];
  for (int i = width - 1; i >= 0; --i) {
    tmp[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  buf_.append(tmp, static_cast<size_t>(width));
}

void TextBuf::Ipv4(uint32_t ip) {
  for (int i = 3; i >= 0; --i) {
    Int((ip >> (8 * i)) & 0xff);
    if (i) buf_.push_back('.');
  }
}

}  // namespace fg::sim
