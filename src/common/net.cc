#include "common/net.h"

#include "common/ip.h"

namespace fg {

// Text wrappers over common/ip.h, the one IP parser: the same addresses and
// prefixes are accepted here as by admission (a bare address is a host
// prefix; "10.0.0.0/8x" or "/33" are not prefixes).

bool IsValidIp(std::string_view ip) {
  IpAddr a;
  return ParseIpAddr(ip, &a);
}

bool IpInPrefix(std::string_view ip, std::string_view cidr) {
  IpAddr a;
  if (!ParseIpAddr(ip, &a)) return false;
  auto p = ParseIpPrefix(cidr);
  return p && p->Contains(a);
}

bool IpInAnyPrefix(std::string_view ip, const std::vector<std::string>& cidrs) {
  IpAddr a;
  if (cidrs.empty() || !ParseIpAddr(ip, &a)) return false;
  for (const auto& c : cidrs) {
    if (auto p = ParseIpPrefix(c); p && p->Contains(a)) return true;
  }
  return false;
}

}  // namespace fg
