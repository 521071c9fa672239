// One JSON Lines event through ingest::EventDecoder (POST /v1/events, replay,
// NATS): simdjson parsing, every event type's fields, limits and
// pseudonymization. Decode() gets the padded, writable form the reader gives
// it; DecodeCopy() the unpadded one.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/pseudonym.h"
#include "ingest/decoder.h"

namespace {
fg::Pseudonymizer* g_pseudo = nullptr;
fg::ingest::EventDecoder* g_decoder = nullptr;
fg::ingest::EventDecoder* g_no_secondary = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_pseudo = new fg::Pseudonymizer(std::string(32, 'k'));
  g_decoder = new fg::ingest::EventDecoder(*g_pseudo);
  g_no_secondary = new fg::ingest::EventDecoder(*g_pseudo);
  g_no_secondary->set_secondary_ids(false);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 2 * 64 * 1024) return -1;
  // Exactly kPadding readable bytes after the line, no more: ASan sees a
  // read past them.
  std::vector<char> line(size + fg::ingest::EventDecoder::kPadding);
  std::memcpy(line.data(), data, size);
  fg::detect::Event ev;
  auto r1 = g_decoder->Decode(line.data(), size, &ev);
  for (size_t i = 0; i < size; ++i) {
    if (line[i] != ' ') __builtin_trap();  // the line must be wiped
  }
  auto r2 = g_no_secondary->DecodeCopy(std::string_view(reinterpret_cast<const char*>(data), size), &ev);
  // Pseudonymizing the secondary ids or not must not change whether a line
  // is valid.
  if (r1 != r2) __builtin_trap();
  return 0;
}
