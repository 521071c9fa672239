#pragma once

// A minimal blocking HTTP/1.1 client (one request per connection) for
// `femtoguard admit`, which must stay small and must not pull Beast out of
// src/server/. Plain TCP only: it talks to the local node (loopback or a
// management network). Every step shares one deadline.

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
};
// "HOST:PORT" or "[v6]:PORT".
Result<HostPort> ParseHostPort(const std::string& text);

// POSTs `body` to http://host:port/path. Unavailable on connection errors and
// timeouts, InvalidArgument on a malformed response.
Result<HttpResponse> HttpPost(const HostPort& server, const std::string& path, const std::string& content_type,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, int timeout_ms);

}  // namespace fg::admission
