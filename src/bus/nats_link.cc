#include "bus/nats_link.h"

namespace fg::bus {
namespace {
// With a "connected" callback cnats connects in the background; without one
// natsConnection_Connect would block, retrying, until the first server
// answers.
void Connected(natsConnection*, void*) {}
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
