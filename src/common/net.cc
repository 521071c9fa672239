#include "common/net.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace fg {
namespace {

// Parses into 16 bytes; IPv4 (and v4-mapped v6) as the last 4 with family 4.
bool ParseIp(std::string_view text, unsigned char out[16], int* family) {
  std::string s(text);
  if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) s = s.substr(7);
  if (s.find(':') == std::string::npos) {
    *family = 4;
    return inet_pton(AF_INET, s.c_str(), out) == 1;
  }
  *family = 6;
  return inet_pton(AF_INET6, s.c_str(), out) == 1;
}

}  // namespace

bool IsValidIp(std::string_view ip) {
  unsigned char buf[16];
  int family;
  return ParseIp(ip, buf, &family);
}

bool IpInPrefix(std::string_view ip, std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return false;
  unsigned char a[16], n[16];
  int fa, fn;
  if (!ParseIp(ip, a, &fa) || !ParseIp(cidr.substr(0, slash), n, &fn) || fa != fn) return false;
  int len = -1;
  std::string_view len_text = cidr.substr(slash + 1);
  auto [p, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  int bits = fa == 4 ? 32 : 128;
  if (ec != std::errc() || len < 0 || len > bits) return false;
  for (int i = 0; i < len / 8; ++i) {
    if (a[i] != n[i]) return false;
  }
  if (len % 8) {
    unsigned char mask = static_cast<unsigned char>(0xFF00 >> (len % 8));
    if ((a[len / 8] & mask) != (n[len / 8] & mask)) return false;
  }
  return true;
}

bool IpInAnyPrefix(std::string_view ip, const std::vector<std::string>& cidrs) {
  for (const auto& c : cidrs) {
    if (IpInPrefix(ip, c)) return true;
  }
  return false;
}

}  // namespace fg
