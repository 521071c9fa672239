#pragma once

// The alert webhook (docs/operations.md, "The alert webhook"): each alert
// whose actions include notify is POSTed, as its JSON, to an operator's URL,
// over HTTPS (libcurl; the server checked against a CA file) or, for a
// receiver on loopback, plain HTTP.
//
//   - Signed: X-Femtoguard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//     over "<t>.<body>", keyed with the contents of DATA/secrets/webhook.key
//     (64 hex characters, used as is); X-Femtoguard-Alert-Id carries the
//     alert id so a receiver de-duplicates.
//   - Durable: an alert is written to DATA/webhook/ (one file per alert id,
//     fsynced) before it is sent, and removed only once the receiver
//     answered 2xx. A restart (even kill -9) resends what was left: delivery
//     is at least once, in order of queueing.
//   - Retried with exponential backoff (retry_initial_ms doubling up to
//     retry_max_ms) while the receiver is down or answers non-2xx.
//   - Observable: femtoguard_webhook_posts_total{result}, the gauges
//     femtoguard_webhook_pending and femtoguard_webhook_up; a receiver that
//     cannot be reached at start is a logged warning.
//
//   The queue and the sender with its backoff are outbox.h's.
//
// Thread-safety: thread-safe. One sender thread per Webhook.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "admission/http_client.h"
#include "common/status.h"
#include "response/outbox.h"

namespace fg::response {

struct WebhookOptions {
  std::string url;                   // https://host:port/path (http:// too)
  std::string ca_file;               // PEM CA(s) for https; empty = system trust store
  std::string secret;                // HMAC key
  std::filesystem::path queue_dir;   // durable queue (DATA/webhook)
  int timeout_ms = 5000;
  int retry_initial_ms = 500;
  int retry_max_ms = 60000;
  bool remove_queue_dir = false;  // a temp queue (tests): removed with the Webhook
};

struct WebhookTarget {
  admission::HostPort server;
  std::string path;  // "/..." (query kept)
};
// http(s)://HOST:PORT/PATH (port optional: 443 / 80). InvalidArgument, naming
// what is wrong, for anything else.
Result<WebhookTarget> ParseWebhookUrl(const std::string& url);

// "t=<unix>,v1=<hex>" for `body` sent at `unix_seconds`.
std::string WebhookSignature(std::string_view secret, long long unix_seconds, std::string_view body);

// DATA/secrets/webhook.key: read, or created (32 random bytes as 64 hex
// characters, mode 0600) when missing.
Result<std::string> LoadOrCreateWebhookSecret(const std::filesystem::path& secrets_dir);

// The URL and the CA file, checked before serve starts (InvalidArgument:
// exit 2).
Status ValidateWebhook(const std::string& url, const std::string& ca_file);

class Webhook {
 public:
  // Validates the URL and the CA file, loads what an earlier run left in the
  // queue and starts the sender. Probes the receiver once (a warning and
  // femtoguard_webhook_up 0 when it cannot be reached; not an error).
  static Result<std::unique_ptr<Webhook>> Start(WebhookOptions options);
  ~Webhook();
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  // Queues one alert (written to disk before this returns). The same id
  // queued again while still pending is sent once.
  void Enqueue(std::string_view alert_id, std::string_view alert_json);
  // Waits until the queue is empty, at most `timeout_ms` (<0: for ever).
  bool Flush(int timeout_ms = -1);
  size_t pending() const;

 private:
  Webhook(WebhookOptions options, WebhookTarget target);
  // One POST; called on the sender thread.
  Status Post(const Outbox::Message& message);

  const WebhookOptions options_;
  const WebhookTarget target_;
  const std::string where_;  // the URL, for the log
  // The queue and its sender; last, so that the sender stops first.
  std::unique_ptr<Outbox> outbox_;
};

struct Options;
// The Responder's webhook from its Options (queue in a fresh temp dir and a
// one-off secret when those are not given: tests); null, with an error
// logged, when it cannot start.
std::unique_ptr<Webhook> StartWebhookOrLog(const Options& options);

}  // namespace fg::response
