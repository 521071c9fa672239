#pragma once

// Decoding of network events (DESIGN.md §3.4, one JSON object per line) into
// detect::Event, with simdjson. Subscriber identities (imsi, imei, msisdn,
// and a phone-number SMS sender) are pseudonymized here with the data dir's
// key and never stored raw: the Event holds only the 12 pseudonym bytes, the
// parser's copy of each identity is wiped, and Decode() overwrites the input
// line once it is decoded. Error messages name fields, never their values.
//
// Outcomes:
//   kOk          the Event is filled;
//   kUnknownType a well-formed object with a "type" this build does not know
//                (counted and skipped: newer producers may send more);
//   kMalformed   not JSON, not an object, a required field missing, a field
//                of the wrong type, out of range, or oversized; error() says
//                which (the caller adds the line number).
// Unknown fields are ignored.
//
// Not thread-safe: one decoder per thread (it owns a simdjson parser and
// scratch buffers, reused from line to line: no allocation per event once
// warm).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/pseudonym.h"
#include "detect/event.h"

namespace fg::ingest {

enum class DecodeResult { kOk, kUnknownType, kMalformed };

struct DecodeLimits {
  size_t max_line_bytes = 64 * 1024;
  size_t max_list = 256;   // rem.scan cells[], meas.report neighbors[]
  size_t max_device = 64;  // device id
  size_t max_text = 256;   // any other string field
};

class EventDecoder {
 public:
  // simdjson reads up to this many bytes past the end of a line.
  static constexpr size_t kPadding = 64;

  // `pseudonymizer` must outlive the decoder.
  explicit EventDecoder(const Pseudonymizer& pseudonymizer, DecodeLimits limits = {});
  ~EventDecoder();
  EventDecoder(const EventDecoder&) = delete;
  EventDecoder& operator=(const EventDecoder&) = delete;

  // Decodes `size` bytes at `line`; kPadding readable bytes must follow them
  // (JsonLinesReader guarantees it). The line's bytes are overwritten with
  // spaces afterwards, whatever the outcome: they may hold raw identities.
  // `out` is cleared first and reused (its strings keep their capacity).
  DecodeResult Decode(char* line, size_t size, detect::Event* out);
  // For input the caller cannot pad or overwrite: copied into a padded
  // scratch buffer, which is wiped afterwards.
  DecodeResult DecodeCopy(std::string_view line, detect::Event* out);

  // Why the last Decode was kMalformed; the type name for kUnknownType is
  // not kept (it is untrusted text).
  const std::string& error() const { return error_; }
  const DecodeLimits& limits() const { return limits_; }

  // Secondary identities: imei, msisdn and a phone-number SMS sender. On
  // (the default) they are pseudonymized like imsi; off, they are checked
  // exactly as before (a bad one still makes the line malformed) and wiped,
  // and the Event's SubjectId stays empty. Replay turns them off when no
  // running detector reads them (Engine::ReadsSecondaryIds).
  void set_secondary_ids(bool pseudonymize) { secondary_ids_ = pseudonymize; }

  struct Impl;  // opaque: the simdjson parser and scratch state (decoder.cc)

 private:
  std::unique_ptr<Impl> impl_;
  DecodeLimits limits_;
  bool secondary_ids_ = true;
  std::string error_;
};

}  // namespace fg::ingest
