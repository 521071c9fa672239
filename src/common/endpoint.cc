#include "common/endpoint.h"

#include <cctype>
#include <charconv>

namespace fg {

EndpointKey ParseEndpointKey(std::string_view address) {
  EndpointKey k;
  std::string_view s = address;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (size_t scheme = s.find("://"); scheme != std::string_view::npos) {
    s.remove_prefix(scheme + 3);
    s = s.substr(0, s.find_first_of("/?#"));
    if (size_t at = s.rfind('@'); at != std::string_view::npos) s.remove_prefix(at + 1);
  }
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close != std::string_view::npos) {
      host = s.substr(1, close - 1);
      if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
    }
  } else if (size_t colon = s.find(':');
             colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }  // else: a bare name, IPv4 or IPv6 address without a port
  k.host.reserve(host.size());
  for (char c : host)
    k.host.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (!port.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec == std::errc() && ptr == port.data() + port.size() && p > 0 && p < 65536) k.port = p;
  }
  return k;
}

bool SameEndpoint(const EndpointKey& a, const EndpointKey& b) {
  return a.host == b.host && (a.port == 0 || b.port == 0 || a.port == b.port);
}

std::string EndpointText(const EndpointKey& k) {
  if (k.port == 0) return k.host;
  bool v6 = k.host.find(':') != std::string::npos;
  return (v6 ? "[" + k.host + "]" : k.host) + ":" + std::to_string(k.port);
}

EndpointUse ParseEndpointUse(std::string_view status) {
  if (status == "active") return EndpointUse::kActive;
  if (status == "draining") return EndpointUse::kDraining;
  if (status == "retired") return EndpointUse::kRetired;
  return EndpointUse::kOther;
}

}  // namespace fg
