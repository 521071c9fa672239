#pragma once

// The node's listen addresses: parsing, and the rule that keeps bearer
// tokens off plain HTTP except on loopback.

#include <cstdint>
#include <string>
#include <utility>

#include "common/config.h"
#include "common/status.h"

namespace fg {

// "HOST:PORT" (IPv6 literals in brackets) -> host without brackets, port.
Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& listen);
// The host part of a URL's authority, IPv6 literals kept in brackets.
std::string UrlHost(const std::string& url);
// 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(const std::string& host);
// api.plain_http keeps bearer tokens on plain HTTP: loopback only
// (InvalidArgument otherwise). Warns when the API is served nowhere.
Status CheckPlainApi(const Config& config, const std::string& plain_host, const std::string& tls_listen);

}  // namespace fg
