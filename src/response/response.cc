#include "response/response.h"

#include <syslog.h>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "admission/http_client.h"
#include "common/metrics.h"
#include "common/time.h"

namespace fg::response {
namespace {

using nlohmann::json;

void CountAction(std::string_view action, std::string_view result) {
  Metrics::Global()
      .GetCounter("femtoguard_response_actions_total",
                  "action=\"" + std::string(action) + "\",result=\"" + std::string(result) + "\"",
                  "Response actions by action and result (done, skipped, failed)")
      .Inc();
}

bool Contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<std::string> SubjectsOf(const std::string& alert_json) {
  json j = json::parse(alert_json, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (j.is_object() && j.contains("subjects") && j["subjects"].is_array()) {
    for (const auto& s : j["subjects"]) {
      if (s.is_string()) out.push_back(s.get<std::string>());
    }
  }
  return out;
}

// "http://host:port/path" -> (host:port, /path).
bool SplitUrl(const std::string& url, admission::HostPort* hp, std::string* path) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  *path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto parsed = admission::ParseHostPort(rest.substr(0, slash));
  if (!parsed.ok()) return false;
  *hp = *parsed;
  return true;
}

}  // namespace

Responder::Responder(Store& store, Options options) : store_(store), options_(std::move(options)) {
  if (!options_.webhook_url.empty()) notifier_ = std::thread([this] { RunNotifier(); });
}

Responder::~Responder() {
  {
    std::lock_guard lock(notify_mutex_);
    notify_stop_ = true;
  }
  notify_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
}

void Responder::SetTerminator(admission::SessionTerminator* terminator) {
  std::lock_guard lock(mutex_);
  terminator_ = terminator;
}

Result<bool> Responder::Handle(const detect::Alert& alert) {
  std::lock_guard lock(mutex_);
  StoredAlert stored;
  stored.id = alert.id;
  stored.ts_ms = alert.ts_ms;
  stored.rule = alert.rule;
  stored.severity = std::string(detect::SeverityName(alert.severity));
  stored.device = alert.device;
  stored.json = alert.ToJson();
  stored.actions_pending = alert.approve;
  stored.state = alert.approve.empty() ? (alert.actions.empty() ? AlertState::kOpen : AlertState::kActed)
                                       : AlertState::kPendingApproval;
  const AuditContext audit{"serve:response", "alert " + alert.id + " (" + alert.rule + ")"};
  FG_ASSIGN_OR_RETURN(bool inserted, store_.AddAlert(stored, audit));
  if (!inserted) {
    Metrics::Global().GetCounter("femtoguard_alerts_duplicate_total", {}, "Alerts already known by id").Inc();
    return false;
  }
  Metrics::Global()
      .GetCounter("femtoguard_alerts_total", "rule=\"" + alert.rule + "\"", "Alerts raised, by rule")
      .Inc();
  stored.actions_done = Apply(stored, alert.subjects, alert.actions, audit);
  if (!stored.actions_done.empty()) FG_RETURN_IF_ERROR(store_.UpdateAlert(stored, audit));
  return true;
}

Status Responder::Approve(std::string_view alert_id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.GetAlert(alert_id));
  if (alert.state != AlertState::kPendingApproval) {
    return Status::FailedPrecondition("alert " + alert.id + " is " + std::string(AlertStateName(alert.state)) +
                                      ", not waiting for approval");
  }
  std::vector<std::string> done = Apply(alert, SubjectsOf(alert.json), alert.actions_pending, audit);
  alert.actions_done.insert(alert.actions_done.end(), done.begin(), done.end());
  alert.actions_pending.clear();
  alert.state = AlertState::kActed;
  return store_.UpdateAlert(alert, audit);
}

Status Responder::Dismiss(std::string_view alert_id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.GetAlert(alert_id));
  if (alert.state == AlertState::kDismissed) return Status::Ok();
  alert.actions_pending.clear();
  alert.state = AlertState::kDismissed;
  return store_.UpdateAlert(alert, audit);
}

std::vector<std::string> Responder::Apply(const StoredAlert& alert, const std::vector<std::string>& subjects,
                                          const std::vector<std::string>& actions, const AuditContext& audit) {
  std::vector<std::string> done;
  // Order matters: cut the identity off (revoke/suspend/block) before the
  // sessions are terminated, so that a reconnect is refused.
  static const char* kOrder[] = {"revoke", "suspend", "block", "terminate", "hold_payments", "notify"};
  for (const char* action : kOrder) {
    if (!Contains(actions, action)) continue;
    Status s = ApplyOne(alert, subjects, action, audit);
    if (s.ok()) {
      done.push_back(action);
      CountAction(action, "done");
    } else if (s.code() == StatusCode::kFailedPrecondition) {
      CountAction(action, "skipped");  // nothing to do (already revoked, unknown device, ...)
      spdlog::info("alert {}: {} skipped: {}", alert.id, action, s.message());
    } else {
      CountAction(action, "failed");
      spdlog::error("alert {}: {} failed: {}", alert.id, action, s.ToString());
    }
  }
  return done;
}

Status Responder::ApplyOne(const StoredAlert& alert, const std::vector<std::string>& subjects,
                           std::string_view action, const AuditContext& audit) {
  const UnixMillis now = NowMillis();
  if (action == "revoke") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    FG_ASSIGN_OR_RETURN(auto certs, store_.ListCertificates(alert.device));
    int n = 0;
    for (const Certificate& c : certs) {
      if (c.status == CertStatus::kRevoked) continue;
      FG_RETURN_IF_ERROR(store_.RevokeCertificate(c.serial, RevocationReason::kKeyCompromise, now, audit));
      ++n;
    }
    if (n == 0) return Status::FailedPrecondition("no certificate to revoke");
    return Status::Ok();
  }
  if (action == "suspend") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    auto t = store_.SetDeviceStatus(alert.device, DeviceStatus::kSuspended, audit);
    if (!t.ok() && t.status().IsNotFound()) return Status::FailedPrecondition("device not registered");
    return t.status();
  }
  if (action == "block") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    return store_.AddBlock(Block{"device", alert.device, alert.id, alert.rule, now}, audit);
  }
  if (action == "terminate") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    if (terminator_ == nullptr) {
      // The node terminates when it sees this alert on the change feed.
      return Status::Ok();
    }
    terminator_->TerminateDevice(alert.device, "alert " + alert.id + " " + alert.rule);
    return Status::Ok();
  }
  if (action == "hold_payments") {
    if (subjects.empty()) return Status::FailedPrecondition("no subscriber named");
    for (const std::string& s : subjects) {
      FG_RETURN_IF_ERROR(store_.AddBlock(Block{"payments", s, alert.id, alert.rule, now}, audit));
    }
    return Status::Ok();
  }
  if (action == "notify") {
    Notify(alert);
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown action '" + std::string(action) + "'");
}

void Responder::Notify(const StoredAlert& alert) {
  if (options_.syslog) {
    // Alerts carry pseudonyms only; the device id is not a subscriber identity.
    ::syslog(LOG_AUTHPRIV | LOG_WARNING, "femtoguard alert %s rule=%s severity=%s device=%s", alert.id.c_str(),
             alert.rule.c_str(), alert.severity.c_str(), alert.device.c_str());
  }
  if (options_.webhook_url.empty()) return;
  std::lock_guard lock(notify_mutex_);
  if (webhook_queue_.size() >= 10000) {
    Metrics::Global().GetCounter("femtoguard_webhook_dropped_total", {}, "Webhook posts dropped (queue full)").Inc();
    return;
  }
  webhook_queue_.push_back(alert.json);
  notify_cv_.notify_one();
}

void Responder::RunNotifier() {
  admission::HostPort hp;
  std::string path;
  const bool valid = SplitUrl(options_.webhook_url, &hp, &path);
  if (!valid) spdlog::error("webhook URL '{}' is not http://host:port/path; notifications are dropped", options_.webhook_url);
  for (;;) {
    std::string body;
    {
      std::unique_lock lock(notify_mutex_);
      notify_cv_.wait(lock, [this] { return notify_stop_ || !webhook_queue_.empty(); });
      if (webhook_queue_.empty()) return;
      body = std::move(webhook_queue_.front());
      webhook_queue_.pop_front();
      ++webhook_in_flight_;
    }
    bool ok = false;
    if (valid) {
      auto r = admission::HttpPost(hp, path, "application/json", body, {}, options_.webhook_timeout_ms);
      ok = r.ok() && r->status >= 200 && r->status < 300;
      if (!ok) spdlog::warn("webhook: {}", r.ok() ? "HTTP " + std::to_string(r->status) : r.status().ToString());
    }
    Metrics::Global()
        .GetCounter("femtoguard_webhook_posts_total", ok ? "result=\"ok\"" : "result=\"failed\"",
                    "Alert webhook posts")
        .Inc();
    {
      std::lock_guard lock(notify_mutex_);
      --webhook_in_flight_;
    }
    notify_cv_.notify_all();
  }
}

void Responder::FlushNotifications() {
  if (options_.webhook_url.empty()) return;
  std::unique_lock lock(notify_mutex_);
  notify_cv_.wait(lock, [this] { return notify_stop_ || (webhook_queue_.empty() && webhook_in_flight_ == 0); });
}

}  // namespace fg::response
