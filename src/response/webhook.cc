#include "response/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/config.h"
#include "common/metrics.h"
#include "common/ossl.h"
#include "response/response.h"

namespace fg::response {
namespace {

namespace fs = std::filesystem;

Counter& Posts(bool ok) {
  return Metrics::Global().GetCounter("femtoguard_webhook_posts_total", ok ? "result=\"ok\"" : "result=\"failed\"",
                                      "Alert webhook POSTs, by result (failed ones are retried)");
}
Gauge& PendingGauge() {
  return Metrics::Global().GetGauge("femtoguard_webhook_pending", {},
                                    "Alerts queued for the webhook and not yet accepted by the receiver");
}
Gauge& UpGauge() {
  return Metrics::Global().GetGauge("femtoguard_webhook_up", {},
                                    "1 when the last contact with the webhook receiver succeeded, else 0");
}

long long NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<WebhookTarget> ParseWebhookUrl(const std::string& url) {
  const std::string what = "webhook URL '" + url + "'";
  std::string rest;
  bool https = false;
  if (url.rfind("https://", 0) == 0) {
    https = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return Status::InvalidArgument(what + ": must start with https:// (or http://)");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Status::InvalidArgument(what + ": has a space or control character");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  WebhookTarget t;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty()) return Status::InvalidArgument(what + ": no host");
  if (authority.find('@') != std::string::npos) {
    return Status::InvalidArgument(what + ": credentials in the URL are not supported (the body is signed instead)");
  }
  if (t.path.find('#') != std::string::npos) return Status::InvalidArgument(what + ": has a fragment");
  // No port: the scheme's.
  bool has_port = authority.back() != ']' && authority.find(':', authority.front() == '[' ? authority.find(']') : 0) !=
                                                 std::string::npos;
  if (!has_port) authority += https ? ":443" : ":80";
  auto hp = admission::ParseHostPort((https ? "https://" : "http://") + authority);
  if (!hp.ok()) return Status::InvalidArgument(what + ": " + hp.status().message());
  if (hp->host.empty()) return Status::InvalidArgument(what + ": no host");
  t.server = *hp;
  return t;
}

std::string WebhookSignature(std::string_view secret, long long unix_seconds, std::string_view body) {
  std::string t = std::to_string(unix_seconds);
  std::string signed_text = t + "." + std::string(body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), md, &len);
  return "t=" + t + ",v1=" + ossl::HexLower(md, len);
}

Result<std::string> LoadOrCreateWebhookSecret(const fs::path& secrets_dir) {
  const fs::path path = secrets_dir / "webhook.key";
  if (auto key = ReadFile(path); key.ok()) {
    std::string k = *key;
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r' || k.back() == ' ')) k.pop_back();
    if (k.size() < 32) return Status::InvalidArgument(path.string() + ": webhook key too short (want 64 hex characters)");
    return k;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::Internal("RAND_bytes failed");
  std::string key = ossl::HexLower(raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  std::error_code ec;
  fs::create_directories(secrets_dir, ec);
  FG_RETURN_IF_ERROR(WriteFileAtomic(path, key + "\n", 0600));
  return key;
}

Status ValidateWebhook(const std::string& url, const std::string& ca_file) {
  FG_ASSIGN_OR_RETURN(WebhookTarget target, ParseWebhookUrl(url));
  if (!ca_file.empty() && !ReadFile(ca_file).ok()) {
    return Status::InvalidArgument("webhook CA file " + ca_file + " cannot be read");
  }
  (void)target;
  return Status::Ok();
}

std::unique_ptr<Webhook> StartWebhookOrLog(const Options& o) {
  WebhookOptions w;
  w.url = o.webhook_url;
  w.ca_file = o.webhook_ca_file;
  w.secret = o.webhook_secret;
  w.timeout_ms = o.webhook_timeout_ms;
  w.retry_initial_ms = o.webhook_retry_initial_ms;
  w.retry_max_ms = o.webhook_retry_max_ms;
  w.queue_dir = o.webhook_queue_dir;
  if (w.secret.empty()) {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) == 1) w.secret = ossl::HexLower(raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
  }
  if (w.queue_dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "fg-webhook-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) {
      w.queue_dir = tmpl;
      w.remove_queue_dir = true;
    }
  }
  auto hook = Webhook::Start(std::move(w));
  if (!hook.ok()) {
    spdlog::error("webhook not started: {}", hook.status().ToString());
    return nullptr;
  }
  return std::move(hook).value();
}

Webhook::Webhook(WebhookOptions options, WebhookTarget target)
    : options_(std::move(options)),
      target_(std::move(target)),
      where_(admission::BaseUrl(target_.server) + target_.path) {}

Result<std::unique_ptr<Webhook>> Webhook::Start(WebhookOptions options) {
  FG_ASSIGN_OR_RETURN(WebhookTarget target, ParseWebhookUrl(options.url));
  if (target.server.https && !options.ca_file.empty()) {
    if (!ReadFile(options.ca_file).ok()) {
      return Status::InvalidArgument("webhook CA file " + options.ca_file + " cannot be read");
    }
  }
  if (options.secret.empty()) return Status::InvalidArgument("webhook: no signing secret");
  if (options.queue_dir.empty()) return Status::InvalidArgument("webhook: no queue directory");
  OutboxOptions q;
  q.dir = options.queue_dir;
  q.suffix = ".json";
  q.log_prefix = "webhook";
  q.queue_name = "webhook queue";
  q.max_batch = 1;  // a POST per alert: a failure never resends one already accepted
  q.retry_initial_ms = options.retry_initial_ms;
  q.retry_max_ms = options.retry_max_ms;
  q.pending_gauge = &PendingGauge();
  q.remove_dir = options.remove_queue_dir;
  FG_ASSIGN_OR_RETURN(std::unique_ptr<Outbox> outbox, Outbox::Open(std::move(q)));
  std::unique_ptr<Webhook> hook(new Webhook(std::move(options), std::move(target)));
  hook->outbox_ = std::move(outbox);
  if (size_t left = hook->outbox_->pending(); left > 0) {
    spdlog::info("webhook: {} alert(s) left undelivered by an earlier run, resending", left);
  }
  const std::string where = admission::BaseUrl(hook->target_.server);
  admission::ClientTls tls{hook->options_.ca_file};
  if (Status s = admission::Connect(hook->target_.server, std::min(hook->options_.timeout_ms, 3000), tls); !s.ok()) {
    UpGauge().Set(0);
    spdlog::warn("webhook: receiver {} cannot be reached at start ({}); alerts are queued in {} and retried",
                 where, s.message(), hook->options_.queue_dir.string());
  } else {
    UpGauge().Set(1);
    spdlog::info("webhook: alerts go to {}{}", where, hook->target_.path);
  }
  hook->outbox_->StartSending(
      [raw = hook.get()](const std::vector<Outbox::Message>& batch) {
        for (const Outbox::Message& m : batch) FG_RETURN_IF_ERROR(raw->Post(m));
        return Status::Ok();
      },
      hook->where_ + " accepts alerts again");
  return hook;
}

Webhook::~Webhook() = default;

void Webhook::Enqueue(std::string_view alert_id, std::string_view alert_json) {
  outbox_->Enqueue(alert_id, std::string(alert_json));
}

bool Webhook::Flush(int timeout_ms) { return outbox_->Flush(timeout_ms); }

size_t Webhook::pending() const { return outbox_->pending(); }

Status Webhook::Post(const Outbox::Message& message) {
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Femtoguard-Signature", WebhookSignature(options_.secret, NowSeconds(), message.payload)},
      {"X-Femtoguard-Alert-Id", message.id}};
  auto r = admission::HttpPost(target_.server, target_.path, "application/json", message.payload, headers,
                               options_.timeout_ms, admission::ClientTls{options_.ca_file});
  const bool ok = r.ok() && r->status >= 200 && r->status < 300;
  Posts(ok).Inc();
  UpGauge().Set(r.ok() ? 1 : 0);
  if (ok) return Status::Ok();
  return Status::Unavailable("POST to " + where_ + " failed (" +
                             (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message()) + ")");
}

}  // namespace fg::response
