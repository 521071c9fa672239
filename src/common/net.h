#pragma once

// IP addresses and prefixes (IPv4 and IPv6), for registered lines.

#include <string_view>
#include <vector>
#include <string>

#include "common/status.h"

namespace fg {

// True when `ip` (text) lies inside `cidr` ("a.b.c.d/n" or IPv6). False for
// unparsable input or a family mismatch. IPv4-mapped IPv6 ("::ffff:a.b.c.d")
// counts as IPv4.
bool IpInPrefix(std::string_view ip, std::string_view cidr);
bool IpInAnyPrefix(std::string_view ip, const std::vector<std::string>& cidrs);
bool IsValidIp(std::string_view ip);

}  // namespace fg
