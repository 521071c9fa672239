#include "node/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <spdlog/spdlog.h>

namespace fg {

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("listen must be HOST:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return Status::InvalidArgument("bad port in '" + listen + "'");
  }
  if (port < 0 || port > 65535) return Status::InvalidArgument("bad port in '" + listen + "'");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

std::string UrlHost(const std::string& url) {
  size_t scheme = url.find("://");
  std::string authority = url.substr(scheme == std::string::npos ? 0 : scheme + 3);
  authority = authority.substr(0, authority.find('/'));
  if (!authority.empty() && authority.front() == '[') return authority.substr(0, authority.find(']') + 1);
  return authority.substr(0, authority.rfind(':'));
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Status CheckPlainApi(const Config& config, const std::string& plain_host, const std::string& tls_listen) {
  if (config.api.plain_http) {
    if (!IsLoopbackHost(plain_host)) {
      return Status::InvalidArgument("config: api.plain_http is allowed only with the plain listener on loopback "
                                     "(127.0.0.0/8, ::1), not on '" + plain_host +
                                     "': serve the API over TLS (tls_listen) instead");
    }
    spdlog::warn("api.plain_http: the bearer-token API is also served on plain HTTP on {} (loopback)", plain_host);
  } else if (tls_listen == "off") {
    spdlog::warn("the TLS listener is off: the bearer-token API (/v1/*, /metrics) is not served");
  }
  return Status::Ok();
}

}  // namespace fg
