#pragma once

// JSON Lines input for replay: big-buffer reads of a file (or stdin), one
// line at a time as a view into the buffer, with the padding simdjson needs
// after it. No allocation per line. A line longer than `max_line` is not
// buffered whole: it is skipped to its end and reported as oversized, with
// its number, so one broken producer cannot make the reader grow.
//
// Bytes the reader discards (a moved partial line's old copy, a skipped
// oversized line) are overwritten, so raw subscriber identities do not
// linger in the buffer; EventDecoder::Decode overwrites the lines it decodes.
//
// Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace fg::ingest {

class JsonLinesReader {
 public:
  static constexpr size_t kPadding = 64;  // >= EventDecoder::kPadding

  struct Line {
    uint64_t number = 0;  // 1-based
    char* data = nullptr;  // valid until the next Next(); kPadding readable bytes follow
    size_t size = 0;       // without the '\n' (and a '\r' before it)
    bool oversized = false;  // longer than max_line: data/size are not the line
  };

  // `path` "-" reads stdin. NotFound / Internal when it cannot be opened.
  static Result<std::unique_ptr<JsonLinesReader>> Open(const std::string& path, size_t max_line = 64 * 1024);
  // Reads `fd`; closes it on destruction when `owns_fd`.
  JsonLinesReader(int fd, bool owns_fd, size_t max_line);
  ~JsonLinesReader();
  JsonLinesReader(const JsonLinesReader&) = delete;
  JsonLinesReader& operator=(const JsonLinesReader&) = delete;

  // The next line; false at the end of input or on a read error (status()).
  bool Next(Line* line);
  const Status& status() const { return status_; }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  bool Fill();  // reads more after end_; false at EOF or error
  void Compact();

  int fd_;
  bool owns_fd_;
  size_t max_line_;
  size_t capacity_;
  std::unique_ptr<char[]> buf_;  // capacity_ + kPadding
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last byte read
  bool eof_ = false;
  uint64_t line_no_ = 0;
  uint64_t bytes_read_ = 0;
  Status status_;
};

}  // namespace fg::ingest
