#pragma once

// One NATS connection with a JetStream context, as every cluster-mode piece
// opens it (the producer, the partition leases, stream detection, replay's
// clean-up): every server of the list, reconnecting forever, 100 ms apart.

#include <nats/nats.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace fg::bus {

struct NatsLinkOptions {
  std::string name = "femtoguard";
  int connect_timeout_ms = 2000;
  int js_wait_ms = 0;  // JetStream API wait; 0: cnats' default
  // Start even when no server answers yet (connects in the background).
  bool retry_on_failed_connect = false;
  // While disconnected, publishes fail at once instead of waiting in the
  // client's buffer unacknowledged.
  bool no_reconnect_buffer = false;
};

struct NatsLink {
  natsOptions* opts = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;

  NatsLink() = default;
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;
  ~NatsLink();

  // Unavailable when no server answers (and !retry_on_failed_connect);
  // `*pending` (optional) is set when the connection is still being made
  // in the background.
  Status Connect(const std::vector<std::string>& servers, const NatsLinkOptions& options,
                 bool* pending = nullptr);
};

// natsStatus_GetText plus cnats' last error text.
std::string NatsText(natsStatus s);

}  // namespace fg::bus
