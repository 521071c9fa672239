#pragma once

// A small blocking HTTP(S) client, libcurl underneath (the project's library
// for outgoing HTTP), for `femtoguard admit`, `femtoguard feed` and the
// webhook. One request per call; every step shares one deadline; redirects
// are not followed; https checks the server's certificate and name against
// a CA file (or the system's trust store when none is given), TLS 1.2+.

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fg::admission {

struct HttpResponse {
  int status = 0;
  std::string body;
};

struct HostPort {
  std::string host;
  int port = 0;
  bool https = false;
};
// "HOST:PORT" or "[v6]:PORT" (plain HTTP, as always), or
// "http://HOST:PORT" / "https://HOST:PORT" (a trailing "/" is allowed, no
// other path).
Result<HostPort> ParseHostPort(const std::string& text);
// "https://[::1]:8443", without a trailing slash.
std::string BaseUrl(const HostPort& server);

// TLS settings for https. `ca_file`: PEM file of the CA certificate(s) to
// trust (only these); empty = the system's trust store.
struct ClientTls {
  std::string ca_file;
};

// POSTs `body` to server + path. Unavailable on connection errors and
// timeouts (worth a retry), PermissionDenied when the server's certificate is
// not trusted by the CA file or not for this host, InvalidArgument on an
// unreadable CA file or a malformed or oversized (> 1 MiB) response.
Result<HttpResponse> HttpPost(const HostPort& server, const std::string& path, const std::string& content_type,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, int timeout_ms,
                              const ClientTls& tls = {});

// Connects (and for https completes a verified TLS handshake) without
// sending a request: is the server there? Same errors as HttpPost.
Status Connect(const HostPort& server, int timeout_ms, const ClientTls& tls = {});

}  // namespace fg::admission
