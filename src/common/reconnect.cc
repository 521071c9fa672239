#include "common/reconnect.h"

namespace fg {

bool IsReconnect(const SessionLine& live, const SessionLine& incoming,
                 std::span<const IpPrefix> registered, bool same_prefix_is_reconnect) {
  if (!SameEndpoint(live.endpoint, incoming.endpoint)) return false;
  if (live.src_ip == incoming.src_ip) return true;
  IpAddr a, b;
  const IpAddr* pa = live.src;
  const IpAddr* pb = incoming.src;
  if (!pa) pa = ParseIpAddr(live.src_ip, &a) ? &a : nullptr;
  if (!pb) pb = ParseIpAddr(incoming.src_ip, &b) ? &b : nullptr;
  if (!pa || !pb) return false;  // text differs and one is not an address: another line
  if (pa->family == pb->family && pa->bytes == pb->bytes) return true;
  if (!same_prefix_is_reconnect) return false;
  for (const IpPrefix& p : registered) {
    if (p.Contains(*pa) && p.Contains(*pb)) return true;
  }
  return false;
}

}  // namespace fg
