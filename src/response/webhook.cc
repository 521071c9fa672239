#include "response/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdlib.h>

#include <algorithm>
#include <charconv>
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

std::string Hex(std::string_view s) {
  return ossl::HexLower(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

Result<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2) return Status::InvalidArgument("odd hex");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return Status::InvalidArgument("bad hex");
    out.push_back(static_cast<char>(v));
  }
  return out;
}

long long NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Queue file names: "<seq, 16 digits>-<hex of the alert id>.json".
constexpr size_t kSeqDigits = 16;

std::string SeqName(uint64_t seq, std::string_view alert_id) {
  std::string digits = std::to_string(seq);
  return std::string(kSeqDigits - std::min(kSeqDigits, digits.size()), '0') + digits + "-" + Hex(alert_id) + ".json";
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
    : options_(std::move(options)), target_(std::move(target)) {}

Result<std::unique_ptr<Webhook>> Webhook::Start(WebhookOptions options) {
  FG_ASSIGN_OR_RETURN(WebhookTarget target, ParseWebhookUrl(options.url));
  if (target.server.https && !options.ca_file.empty()) {
    if (!ReadFile(options.ca_file).ok()) {
      return Status::InvalidArgument("webhook CA file " + options.ca_file + " cannot be read");
    }
  }
  if (options.secret.empty()) return Status::InvalidArgument("webhook: no signing secret");
  if (options.queue_dir.empty()) return Status::InvalidArgument("webhook: no queue directory");
  std::error_code ec;
  fs::create_directories(options.queue_dir, ec);
  fs::permissions(options.queue_dir, fs::perms::owner_all, ec);
  if (!fs::is_directory(options.queue_dir)) {
    return Status::Internal("webhook queue " + options.queue_dir.string() + " is not a directory");
  }
  std::unique_ptr<Webhook> hook(new Webhook(std::move(options), std::move(target)));
  // What an earlier run left behind, oldest first.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(hook->options_.queue_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > kSeqDigits + 6 && name[kSeqDigits] == '-' && name.ends_with(".json")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    auto id = Unhex(std::string_view(name).substr(kSeqDigits + 1, name.size() - kSeqDigits - 6));
    if (!id.ok()) continue;
    uint64_t seq = 0;
    std::from_chars(name.data(), name.data() + kSeqDigits, seq);
    hook->next_seq_ = std::max(hook->next_seq_, seq + 1);
    hook->queue_.push_back({*id, hook->options_.queue_dir / name});
  }
  PendingGauge().Set(static_cast<int64_t>(hook->queue_.size()));
  if (!hook->queue_.empty()) {
    spdlog::info("webhook: {} alert(s) left undelivered by an earlier run, resending", hook->queue_.size());
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
  hook->sender_ = std::thread([raw = hook.get()] { raw->Run(); });
  return hook;
}

Webhook::~Webhook() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  if (options_.remove_queue_dir) {
    std::error_code ec;
    fs::remove_all(options_.queue_dir, ec);
  }
}

void Webhook::Enqueue(std::string_view alert_id, std::string_view alert_json) {
  std::lock_guard lock(mutex_);
  for (const Item& item : queue_) {
    if (item.id == alert_id) return;  // still pending: sent once
  }
  fs::path path = options_.queue_dir / SeqName(next_seq_++, alert_id);
  if (Status s = WriteFileAtomic(path, alert_json, 0600); !s.ok()) {
    // Not durable, but not dropped: it is still sent from memory.
    spdlog::error("webhook: cannot queue alert {} on disk: {}", alert_id, s.ToString());
    memory_bodies_.emplace(std::string(alert_id), std::string(alert_json));
  }
  queue_.push_back({std::string(alert_id), path});
  PendingGauge().Set(static_cast<int64_t>(queue_.size()));
  cv_.notify_all();
}

bool Webhook::Flush(int timeout_ms) {
  std::unique_lock lock(mutex_);
  auto done = [this] { return stop_ || (queue_.empty() && !in_flight_); };
  if (timeout_ms < 0) {
    cv_.wait(lock, done);
    return queue_.empty();
  }
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done) && queue_.empty();
}

size_t Webhook::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Webhook::Run() {
  int backoff_ms = options_.retry_initial_ms;
  bool failing = false;
  const admission::ClientTls tls{options_.ca_file};
  const std::string where = admission::BaseUrl(target_.server) + target_.path;
  for (;;) {
    Item item;
    std::string body;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = queue_.front();
      in_flight_ = true;
      if (auto m = memory_bodies_.find(item.id); m != memory_bodies_.end()) body = m->second;
    }
    if (body.empty()) {
      auto text = ReadFile(item.path);
      if (!text.ok()) {
        spdlog::error("webhook: queued alert {} unreadable ({}); skipped", item.id, text.status().ToString());
        std::lock_guard lock(mutex_);
        queue_.pop_front();
        in_flight_ = false;
        PendingGauge().Set(static_cast<int64_t>(queue_.size()));
        cv_.notify_all();
        continue;
      }
      body = std::move(*text);
    }
    std::vector<std::pair<std::string, std::string>> headers = {
        {"X-Femtoguard-Signature", WebhookSignature(options_.secret, NowSeconds(), body)},
        {"X-Femtoguard-Alert-Id", item.id}};
    auto r = admission::HttpPost(target_.server, target_.path, "application/json", body, headers, options_.timeout_ms,
                                 tls);
    const bool ok = r.ok() && r->status >= 200 && r->status < 300;
    Posts(ok).Inc();
    UpGauge().Set(r.ok() ? 1 : 0);
    std::unique_lock lock(mutex_);
    in_flight_ = false;
    if (ok) {
      std::error_code ec;
      fs::remove(item.path, ec);
      memory_bodies_.erase(item.id);
      queue_.pop_front();
      PendingGauge().Set(static_cast<int64_t>(queue_.size()));
      if (failing) spdlog::info("webhook: {} accepts alerts again", where);
      failing = false;
      backoff_ms = options_.retry_initial_ms;
      cv_.notify_all();
      continue;
    }
    if (!failing) {
      spdlog::warn("webhook: POST to {} failed ({}); {} alert(s) queued, retrying with backoff", where,
                   r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message(), queue_.size());
    }
    failing = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stop_; });
    if (stop_) return;
    backoff_ms = std::min(options_.retry_max_ms, backoff_ms * 2);
  }
}

}  // namespace fg::response
