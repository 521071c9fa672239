#pragma once

// IP addresses and prefixes, the one parser of the project (admission,
// detection, ingest, config): binary, parsed once and compared without text
// handling. IPv4-mapped IPv6 ("::ffff:a.b.c.d") is IPv4. A prefix is
// "a.b.c.d/n" or "v6/n" with n within the family's bits, nothing after it;
// a bare address is a host prefix (/32 or /128). common/net.h's text
// helpers are thin wrappers over these.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fg {

struct IpAddr {
  uint8_t family = 0;  // 4 or 6; 0 = none
  std::array<uint8_t, 16> bytes{};  // IPv4 in bytes[0..3]
};

// False for anything that is not a plain IPv4/IPv6 address.
bool ParseIpAddr(std::string_view text, IpAddr* out);

struct IpPrefix {
  IpAddr net;
  int len = 0;
  bool Contains(const IpAddr& ip) const;
};

// "a.b.c.d/n", "v6/n", or a bare address (a host prefix). nullopt when malformed.
std::optional<IpPrefix> ParseIpPrefix(std::string_view text);

}  // namespace fg
