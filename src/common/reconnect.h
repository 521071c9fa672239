#pragma once

// The reconnect-versus-clone rule, one place for admission (the clone check,
// the engine's live sessions) and detection (cert.clone):
//
// A new session of an identity that already has a live one is a reconnect
// (the same box, e.g. after a reboot) when it reaches the same endpoint
// (common/endpoint.h matching) from the same line: the same source address
// (compared as addresses, so "::ffff:203.0.113.1" is "203.0.113.1"), or,
// with same_prefix_is_reconnect, two addresses inside one of the device's
// registered prefixes (ISP re-addressing inside the customer's line).
// Anything else is a second box: admission denies "cert.clone", detection
// raises cert.clone if the first session is still up grace_s later.

#include <span>
#include <string_view>

#include "common/endpoint.h"
#include "common/ip.h"

namespace fg {

struct SessionLine {
  EndpointKey endpoint;
  std::string_view src_ip;  // as reported
  const IpAddr* src = nullptr;  // parsed, when the caller has it (nullptr: parsed here)
};

bool IsReconnect(const SessionLine& live, const SessionLine& incoming, std::span<const IpPrefix> registered,
                 bool same_prefix_is_reconnect);

}  // namespace fg
