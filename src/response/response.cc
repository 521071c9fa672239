#include "response/response.h"

#include <syslog.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "admission/http_client.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/security_log.h"
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
  worker_ = std::thread([this] { RunWorker(); });
}

Responder::~Responder() {
  {
    std::lock_guard lock(work_mutex_);
    work_stop_ = true;
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
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
  if (options_.enforce) options_.enforce(alert);
  Work work;
  work.alert = alert;
  Result<bool> r = [&] {
    std::lock_guard lock(mutex_);
    return Attempt(work);
  }();
  if (r.ok() && options_.landed) options_.landed(alert);
  return r;
}

Result<bool> Responder::Attempt(Work& work) {
  const detect::Alert& alert = work.alert;
  if (!work.checked) {
    auto known = store_.GetAlert(alert.id);
    if (known.ok()) {
      Metrics::Global().GetCounter("femtoguard_alerts_duplicate_total", {}, "Alerts already known by id").Inc();
      return false;
    }
    if (!known.status().IsNotFound()) return known.status();
    work.checked = true;
  }
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
  // Actions first, each idempotent; the alert row last, so that a stored
  // alert always means its actions are done.
  FG_RETURN_IF_ERROR(Apply(stored, alert.subjects, alert.actions, audit, &work.done, &work.finished));
  stored.actions_done = work.done;
  FG_ASSIGN_OR_RETURN(bool inserted, store_.AddAlert(stored, audit));
  if (inserted) {
    seclog::AlertRaised(alert.id, alert.rule, stored.severity, alert.device);  // once: only the insert logs
    Metrics::Global()
        .GetCounter("femtoguard_alerts_total", "rule=\"" + alert.rule + "\"", "Alerts raised, by rule")
        .Inc();
  }
  return true;
}

void Responder::Submit(detect::Alert alert, uint64_t seq) {
  if (options_.enforce) options_.enforce(alert);
  static Gauge& pending = Metrics::Global().GetGauge(
      "femtoguard_response_pending", {}, "Alerts whose store writes (alert, actions) have not landed yet");
  {
    std::lock_guard lock(work_mutex_);
    work_.push_back(Work{std::move(alert), seq, false, {}, {}});
    pending.Set(static_cast<int64_t>(work_.size()));
  }
  work_cv_.notify_all();
}

uint64_t Responder::LowestPendingSeq() const {
  std::lock_guard lock(work_mutex_);
  uint64_t lowest = std::numeric_limits<uint64_t>::max();
  for (const Work& w : work_) {
    if (w.seq != 0) lowest = std::min(lowest, w.seq);
  }
  return lowest;
}

size_t Responder::pending() const {
  std::lock_guard lock(work_mutex_);
  return work_.size();
}

bool Responder::WaitIdle(int timeout_ms) {
  std::unique_lock lock(work_mutex_);
  return work_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return work_.empty(); });
}

void Responder::RunWorker() {
  static Gauge& pending = Metrics::Global().GetGauge(
      "femtoguard_response_pending", {}, "Alerts whose store writes (alert, actions) have not landed yet");
  static Counter& retries = Metrics::Global().GetCounter(
      "femtoguard_response_retries_total", {}, "Store writes of responses retried after a store error");
  int backoff_ms = 0;
  std::chrono::steady_clock::time_point failing_since{};
  uint64_t failed_attempts = 0;
  std::unique_lock lock(work_mutex_);
  for (;;) {
    if (backoff_ms > 0) {
      // Stop waits for nothing: what has not landed is replayed from the
      // journal at the next start.
      work_cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return work_stop_; });
    } else {
      work_cv_.wait(lock, [this] { return work_stop_ || !work_.empty(); });
    }
    if (work_stop_ && (work_.empty() || backoff_ms > 0)) {
      if (!work_.empty()) {
        spdlog::warn("response: stopping with {} alert(s) not yet stored; they are enforced again from the journal "
                     "at the next start",
                     work_.size());
      }
      return;
    }
    if (work_.empty()) continue;
    // The front stays queued (and counted by LowestPendingSeq) while it is tried.
    Work& work = work_.front();
    lock.unlock();
    Result<bool> r = [&] {
      std::lock_guard store_lock(mutex_);
      return Attempt(work);
    }();
    lock.lock();
    if (r.ok()) {
      if (failed_attempts > 0) {
        spdlog::info("response: the store takes writes again after {:.1f} s and {} failed attempts; {} alert(s) "
                     "still queued",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - failing_since).count(),
                     failed_attempts, work_.size() - 1);
      }
      failed_attempts = 0;
      backoff_ms = 0;
      detect::Alert landed = std::move(work.alert);
      work_.pop_front();
      pending.Set(static_cast<int64_t>(work_.size()));
      work_cv_.notify_all();
      if (options_.landed) {
        lock.unlock();
        options_.landed(landed);  // after the pop: LowestPendingSeq no longer counts it
        lock.lock();
      }
      continue;
    }
    retries.Inc();
    if (failed_attempts++ == 0) {
      failing_since = std::chrono::steady_clock::now();
      spdlog::error("response: the store refuses writes ({}); alert {} ({}) and {} more are enforced in memory and "
                    "retried until they land",
                    r.status().ToString(), work.alert.id, work.alert.rule, work_.size() - 1);
    }
    backoff_ms = backoff_ms == 0 ? options_.retry_initial_ms : std::min(backoff_ms * 2, options_.retry_max_ms);
  }
}

Status Responder::Approve(std::string_view alert_id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.GetAlert(alert_id));
  if (alert.state != AlertState::kPendingApproval) {
    return Status::FailedPrecondition("alert " + alert.id + " is " + std::string(AlertStateName(alert.state)) +
                                      ", not waiting for approval");
  }
  std::vector<std::string> done, finished;
  FG_RETURN_IF_ERROR(Apply(alert, SubjectsOf(alert.json), alert.actions_pending, audit, &done, &finished));
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

Status Responder::Apply(const StoredAlert& alert, const std::vector<std::string>& subjects,
                        const std::vector<std::string>& actions, const AuditContext& audit,
                        std::vector<std::string>* done, std::vector<std::string>* finished) {
  // Order matters: cut the identity off (revoke/suspend/block) before the
  // sessions are terminated, so that a reconnect is refused.
  static const char* kOrder[] = {"revoke", "suspend", "block", "terminate", "hold_payments", "notify"};
  for (const char* action : kOrder) {
    if (!Contains(actions, action) || Contains(*finished, action)) continue;
    Status s = ApplyOne(alert, subjects, action, audit);
    if (s.ok()) {
      done->push_back(action);
      CountAction(action, "done");
      seclog::AlertAction(alert.id, action, alert.device, "done");
    } else if (s.code() == StatusCode::kFailedPrecondition) {
      CountAction(action, "skipped");  // nothing to do (already revoked, unknown device, ...)
      seclog::AlertAction(alert.id, action, alert.device, "skipped", s.message());
    } else if (s.code() == StatusCode::kInvalidArgument) {
      CountAction(action, "failed");  // cannot succeed by retrying
      seclog::AlertAction(alert.id, action, alert.device, "failed", s.ToString());
    } else {
      CountAction(action, "retry");
      return s;  // the store: retried with what is left
    }
    finished->push_back(action);
  }
  return Status::Ok();
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
      seclog::CertificateRevoked(c.serial, alert.device, RevocationReasonName(RevocationReason::kKeyCompromise), audit.actor);
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
    // Escaped: a value that slipped past the doors must not forge a line.
    ::syslog(LOG_AUTHPRIV | LOG_WARNING, "femtoguard alert %s rule=%s severity=%s device=%s",
             Printable(alert.id).c_str(), Printable(alert.rule).c_str(), Printable(alert.severity).c_str(),
             Printable(alert.device).c_str());
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
