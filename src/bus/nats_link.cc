#include "bus/nats_link.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "common/metrics.h"

namespace fg::bus {
namespace {
// With a "connected" callback cnats connects in the background; without one
// natsConnection_Connect would block, retrying, until the first server
// answers.
void Connected(natsConnection*, void*) {}

// What cnats reports only here: above all a slow consumer, a subscription
// whose messages it dropped past the pending limit. The readers notice the
// loss and read again; this names it in the log (at most every 10 s) and
// counts it.
void AsyncError(natsConnection*, natsSubscription* sub, natsStatus err, void*) {
  const bool slow = err == NATS_SLOW_CONSUMER;
  static Counter& slow_n = Metrics::Global().GetCounter(
      "femtoguard_bus_client_errors_total", "error=\"slow_consumer\"",
      "Errors the NATS client reported asynchronously (slow_consumer: it dropped deliveries)");
  static Counter& other_n = Metrics::Global().GetCounter("femtoguard_bus_client_errors_total", "error=\"other\"");
  (slow ? slow_n : other_n).Inc();
  static std::atomic<int64_t> last_ms{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  int64_t last = last_ms.load();
  if (now - last < 10000 || !last_ms.compare_exchange_strong(last, now)) return;
  spdlog::warn("bus: NATS client: {}{}{}", natsStatus_GetText(err), sub ? " on " : "",
               sub ? natsSubscription_GetSubject(sub) : "");
}
}  // namespace

std::string NatsText(natsStatus s) {
  std::string m = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last) m += std::string(": ") + last;
  return m;
}

NatsLink::~NatsLink() {
  if (js) jsCtx_Destroy(js);
  if (conn) {
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
  }
  if (opts) natsOptions_Destroy(opts);
}

Status NatsLink::Connect(const std::vector<std::string>& servers, const NatsLinkOptions& o, bool* pending) {
  if (servers.empty()) return Status::InvalidArgument("bus: no NATS server");
  std::vector<const char*> urls;
  for (const auto& s : servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // forever: the cluster comes back
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 100);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, AsyncError, nullptr);
  if (s == NATS_OK && o.no_reconnect_buffer) s = natsOptions_SetReconnectBufSize(opts, 0);
  if (s == NATS_OK && o.retry_on_failed_connect) s = natsOptions_SetRetryOnFailedConnect(opts, true, Connected, nullptr);
  if (s != NATS_OK) return Status::Internal("NATS options: " + NatsText(s));
  s = natsConnection_Connect(&conn, opts);
  if (pending) *pending = s == NATS_NOT_YET_CONNECTED;
  if (s != NATS_OK && !(s == NATS_NOT_YET_CONNECTED && o.retry_on_failed_connect))
    return Status::Unavailable("NATS connect: " + NatsText(s));
  jsOptions jo;
  jsOptions_Init(&jo);
  if (o.js_wait_ms > 0) jo.Wait = o.js_wait_ms;
  s = natsConnection_JetStream(&js, conn, &jo);
  if (s != NATS_OK) return Status::Internal("JetStream context: " + NatsText(s));
  return Status::Ok();
}

}  // namespace fg::bus
