#pragma once

// strongSwan's vici wire format (src/libcharon/plugins/vici/README.md), the
// bytes only: no sockets here.
//
//   transport: u32 big-endian length, then that many bytes (a "packet")
//   packet:    u8 type [u8 name length, name] message
//   message:   a sequence of elements forming a tree of sections holding
//              key/values, lists of values and sub-sections
//
// The decoder is strict: anything the README does not allow (unknown type,
// truncated length, unbalanced section, list item outside a list, duplicate
// key, empty name, nesting deeper or more elements than the limits) is an
// InvalidArgument error, never a crash or a partial tree. Values are blobs;
// charon sends text.
//
// Thread-safety: plain values; no shared state.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg::segw::vici {

enum class PacketType : uint8_t {
  kCmdRequest = 0,       // named, with message
  kCmdResponse = 1,      // message
  kCmdUnknown = 2,       // no such command
  kEventRegister = 3,    // named
  kEventUnregister = 4,  // named
  kEventConfirm = 5,     // (un)registration done
  kEventUnknown = 6,     // no such event
  kEvent = 7,            // named, with message
};
bool IsNamed(PacketType type);

enum class ElementType : uint8_t {
  kSectionStart = 1,
  kSectionEnd = 2,
  kKeyValue = 3,
  kListStart = 4,
  kListItem = 5,
  kListEnd = 6,
};

// Bounds for decoding untrusted bytes. The defaults fit everything charon
// sends (its own segment limit is 512 KiB).
struct Limits {
  size_t max_packet = 512 * 1024;  // bytes after the length prefix
  int max_depth = 16;              // nested sections
  size_t max_elements = 65536;     // elements in one message
};

// One (sub-)section of a message: key/values, lists and sections in the
// order they were added. Copyable (deep copy).
class Section {
 public:
  enum class Kind { kValue, kList, kSection };
  struct Entry {
    Kind kind = Kind::kValue;
    std::string name;
    std::string value;               // kValue
    std::vector<std::string> items;  // kList
    std::unique_ptr<Section> section;  // kSection, never null then
  };

  Section() = default;
  Section(const Section& other);
  Section& operator=(const Section& other);
  Section(Section&&) = default;
  Section& operator=(Section&&) = default;

  // Builders (for requests and tests); return *this, or the new child.
  Section& Set(std::string key, std::string value);
  Section& SetList(std::string key, std::vector<std::string> items);
  Section& AddSection(std::string name);

  // Lookups; the first entry of that name and kind, or null.
  const std::string* Value(std::string_view key) const;
  const std::vector<std::string>* List(std::string_view key) const;
  const Section* Child(std::string_view name) const;
  // The value, or `fallback` when absent.
  std::string Get(std::string_view key, std::string_view fallback = {}) const;

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // A short human-readable rendering, for logs and test failures.
  std::string DebugString(int indent = 0) const;

 private:
  std::vector<Entry> entries_;
};

struct Packet {
  PacketType type = PacketType::kCmdRequest;
  std::string name;  // named types only
  Section message;
};

// The message's element bytes. InvalidArgument when a name is empty or longer
// than 255 bytes, or a value longer than 65535.
Result<std::string> EncodeMessage(const Section& message);
// The whole transport segment: length prefix, type, name, message.
Result<std::string> EncodePacket(const Packet& packet, const Limits& limits = {});

Result<Section> DecodeMessage(std::string_view bytes, const Limits& limits = {});
// `payload` is one segment without its length prefix.
Result<Packet> DecodePacket(std::string_view payload, const Limits& limits = {});

// Reads the 4-byte big-endian length prefix; InvalidArgument above
// limits.max_packet or when it is zero (a packet has at least its type).
Result<size_t> DecodeLength(const unsigned char prefix[4], const Limits& limits = {});

}  // namespace fg::segw::vici
