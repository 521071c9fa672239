#include "ingest/jsonl_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ingest/decoder.h"

namespace fg::ingest {

static_assert(JsonLinesReader::kPadding >= EventDecoder::kPadding);

namespace {
constexpr size_t kMinBuffer = 4 << 20;
}  // namespace

Result<std::unique_ptr<JsonLinesReader>> JsonLinesReader::Open(const std::string& path, size_t max_line) {
  if (path == "-") return std::make_unique<JsonLinesReader>(0, /*owns_fd=*/false, max_line);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot read " + path + ": " + std::strerror(errno));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::make_unique<JsonLinesReader>(fd, /*owns_fd=*/true, max_line);
}

JsonLinesReader::JsonLinesReader(int fd, bool owns_fd, size_t max_line)
    : fd_(fd),
      owns_fd_(owns_fd),
      max_line_(max_line),
      capacity_(std::max(kMinBuffer, 4 * (max_line + 1))),
      buf_(new char[capacity_ + kPadding]) {
  std::memset(buf_.get() + capacity_, ' ', kPadding);
}

JsonLinesReader::~JsonLinesReader() {
  std::memset(buf_.get(), 0, capacity_);
  if (owns_fd_) ::close(fd_);
}

void JsonLinesReader::Compact() {
  size_t tail = end_ - begin_;
  if (begin_ == 0) return;
  std::memmove(buf_.get(), buf_.get() + begin_, tail);
  // The old copy of the moved bytes (beyond the new tail) is wiped.
  size_t wipe_from = std::max(tail, begin_);
  if (end_ > wipe_from) std::memset(buf_.get() + wipe_from, 0, end_ - wipe_from);
  begin_ = 0;
  end_ = tail;
}

bool JsonLinesReader::Fill() {
  if (eof_) return false;
  Compact();
  while (end_ < capacity_) {
    ssize_t n = ::read(fd_, buf_.get() + end_, capacity_ - end_);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      bytes_read_ += static_cast<uint64_t>(n);
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    status_ = Status::Internal(std::string("read error: ") + std::strerror(errno));
    eof_ = true;
    return false;
  }
  return true;  // full buffer (cannot happen: the caller only fills with room)
}

bool JsonLinesReader::Next(Line* line) {
  size_t skipped = 0;  // > 0 while discarding an oversized line
  bool skipping = false;
  for (;;) {
    char* base = buf_.get();
    char* nl = static_cast<char*>(std::memchr(base + begin_, '\n', end_ - begin_));
    if (nl) {
      size_t len = static_cast<size_t>(nl - (base + begin_));
      ++line_no_;
      line->number = line_no_;
      if (skipping || len > max_line_) {
        std::memset(base + begin_, 0, len);
        line->data = base + begin_;
        line->size = skipped + len;
        line->oversized = true;
      } else {
        line->data = base + begin_;
        line->size = (len > 0 && line->data[len - 1] == '\r') ? len - 1 : len;
        line->oversized = false;
      }
      begin_ += len + 1;
      return true;
    }
    size_t pending = end_ - begin_;
    if (skipping || pending > max_line_) {
      // Too long to be a line we accept: drop what we have, keep skipping.
      std::memset(base + begin_, 0, pending);
      skipped += pending;
      skipping = true;
      begin_ = end_ = 0;
    }
    if (!Fill()) {
      if (!status_.ok()) return false;
      if (skipping) {
        ++line_no_;
        *line = Line{line_no_, buf_.get(), skipped, true};
        return true;
      }
      if (end_ > begin_) {  // last line without a newline
        ++line_no_;
        size_t len = end_ - begin_;
        line->number = line_no_;
        line->data = buf_.get() + begin_;
        line->size = (buf_[end_ - 1] == '\r') ? len - 1 : len;
        line->oversized = false;
        begin_ = end_;
        return true;
      }
      return false;
    }
  }
}

}  // namespace fg::ingest
