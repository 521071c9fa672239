#include "common/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace fg {

bool ParseIpAddr(std::string_view text, IpAddr* out) {
  char buf[INET6_ADDRSTRLEN + 8];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  if (text.size() > 7 && text.substr(0, 7) == "::ffff:" && text.find('.') != std::string_view::npos) {
    text.remove_prefix(7);
  }
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  *out = IpAddr{};
  if (text.find(':') == std::string_view::npos) {
    out->family = 4;
    return inet_pton(AF_INET, buf, out->bytes.data()) == 1;
  }
  out->family = 6;
  return inet_pton(AF_INET6, buf, out->bytes.data()) == 1;
}

bool IpPrefix::Contains(const IpAddr& ip) const {
  if (ip.family != net.family || ip.family == 0) return false;
  int full = len / 8;
  if (std::memcmp(ip.bytes.data(), net.bytes.data(), full) != 0) return false;
  if (len % 8) {
    uint8_t mask = static_cast<uint8_t>(0xFF00 >> (len % 8));
    if ((ip.bytes[full] & mask) != (net.bytes[full] & mask)) return false;
  }
  return true;
}

std::optional<IpPrefix> ParseIpPrefix(std::string_view text) {
  IpPrefix p;
  size_t slash = text.find('/');
  if (!ParseIpAddr(text.substr(0, slash), &p.net)) return std::nullopt;
  int bits = p.net.family == 4 ? 32 : 128;
  if (slash == std::string_view::npos) {
    p.len = bits;
    return p;
  }
  std::string_view len_text = text.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), p.len);
  if (ec != std::errc() || ptr != len_text.data() + len_text.size() || p.len < 0 || p.len > bits) {
    return std::nullopt;
  }
  return p;
}

}  // namespace fg
