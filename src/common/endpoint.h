#pragma once

// An authentication endpoint (the SeGW address a femtocell connects to),
// the one type admission, detection and ingest compare endpoints with
// (docs/configuration.md, "Endpoints").
//
// Normal form: host lower-cased, IPv6 brackets removed, a URL's scheme,
// user info and path dropped; port 0 when none is named. Accepted:
// "host", "host:port", "[v6]:port", a bare IPv6 address, "scheme://host[:port]/...".
//
// The matching rule: two endpoints are the same when their hosts are equal
// and their ports are equal or either names none. So an endpoint given
// without a port (in the store, an endpoint.status event or a request)
// stands for every port of its host: with "segw-old.example:500" retired, a
// SeGW reporting "segw-old.example" is on a retired endpoint. When several
// known endpoints match one reported endpoint, the one that decides is an
// active one, else a draining one, else a retired one (a host whose port 500
// is retired and port 4500 active: a report without a port is on a usable
// endpoint).

#include <cstdint>
#include <string>
#include <string_view>

namespace fg {

struct EndpointKey {
  std::string host;  // empty when nothing (or only a port) was given
  int port = 0;      // 1..65535; 0 = none named (or not a valid port)
  bool operator==(const EndpointKey&) const = default;
};

EndpointKey ParseEndpointKey(std::string_view address);
// Same host, and same port when both name one.
bool SameEndpoint(const EndpointKey& a, const EndpointKey& b);
// "host" or "host:port" ("[v6]:port"), for logs and evidence.
std::string EndpointText(const EndpointKey& k);

enum class EndpointUse : uint8_t { kActive, kDraining, kRetired, kOther };
// "active", "draining", "retired"; anything else is kOther.
EndpointUse ParseEndpointUse(std::string_view status);

// Of the known endpoints [begin, end) that match `query`, the one that
// decides (active before draining before retired), or `end`. `key(e)` gives
// an element's EndpointKey, `use(e)` its EndpointUse.
template <typename It, typename KeyFn, typename UseFn>
It DecidingEndpoint(It begin, It end, const EndpointKey& query, KeyFn key, UseFn use) {
  It best = end;
  int best_rank = 4;
  if (query.host.empty()) return end;
  for (It it = begin; it != end; ++it) {
    if (!SameEndpoint(key(*it), query)) continue;
    int rank = static_cast<int>(use(*it));
    if (rank < best_rank) {
      best = it;
      best_rank = rank;
    }
  }
  return best;
}

}  // namespace fg
