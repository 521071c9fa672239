// strongSwan's vici wire format (segw/vici_wire.h) as charon (or anyone on
// the socket) sends it: length prefix, packet, message tree. A decoded
// packet must encode and decode back to the same tree.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "segw/vici_wire.h"

namespace vici = fg::segw::vici;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vici::Limits limits;
  limits.max_packet = 64 * 1024;
  limits.max_depth = 8;
  limits.max_elements = 4096;
  if (size >= 4) (void)vici::DecodeLength(data, limits);
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto message = vici::DecodeMessage(bytes, limits);
  (void)message;
  auto packet = vici::DecodePacket(bytes, limits);
  if (!packet.ok()) return 0;
  auto encoded = vici::EncodePacket(*packet, limits);
  if (!encoded.ok()) __builtin_trap();  // what decodes must encode
  if (encoded->size() < 4) __builtin_trap();
  auto back = vici::DecodePacket(std::string_view(*encoded).substr(4), limits);
  if (!back.ok()) __builtin_trap();
  if (back->type != packet->type || back->name != packet->name ||
      back->message.DebugString() != packet->message.DebugString()) {
    __builtin_trap();
  }
  return 0;
}
