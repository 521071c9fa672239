#include "response/response.h"

#include <stdlib.h>
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

// The Responder's SIEM export from its Options (queue in a fresh temp dir
// when none is given: tests); null, with an error logged, when it cannot start.
std::unique_ptr<SiemExport> StartSiemOrLog(const Options& o) {
  SiemOptions s;
  s.target = o.siem_target;
  s.ca_file = o.siem_ca_file;
  s.queue_dir = o.siem_queue_dir;
  s.retry_max_ms = o.siem_retry_max_ms;
  s.retry_initial_ms = std::min(s.retry_initial_ms, s.retry_max_ms);
  if (s.queue_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fg-siem-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) {
      s.queue_dir = tmpl;
      s.remove_queue_dir = true;
    }
  }
  auto siem = SiemExport::Start(std::move(s));
  if (!siem.ok()) {
    spdlog::error("SIEM export not started: {}", siem.status().ToString());
    return nullptr;
  }
  return std::move(siem).value();
}

}  // namespace

Responder::Responder(ResponderStore store, Options options) : store_(store), options_(std::move(options)) {
  // Every action's series exists from the start, at 0: a rate or increase
  // over it then sees the first action of an attack, not only the second.
  for (const char* action : {"revoke", "suspend", "terminate", "block", "hold_payments", "notify"}) {
    for (const char* result : {"done", "skipped", "failed"}) {
      Metrics::Global().GetCounter("femtoguard_response_actions_total",
                                   std::string("action=\"") + action + "\",result=\"" + result + "\"",
                                   "Response actions by action and result (done, skipped, failed)");
    }
  }
  if (!options_.webhook_url.empty()) webhook_ = StartWebhookOrLog(options_);
  if (!options_.siem_target.empty()) siem_ = StartSiemOrLog(options_);
  worker_ = std::thread([this] { RunWorker(); });
}

Responder::~Responder() {
  {
    std::lock_guard lock(work_mutex_);
    work_stop_ = true;
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  webhook_.reset();
  siem_.reset();
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
    auto known = store_.responses.GetAlert(alert.id);
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
  FG_RETURN_IF_ERROR(
      Apply(stored, alert.subjects, alert.actions, audit, &work.done, &work.finished, &work.skipped));
  stored.actions_done = work.done;
  stored.actions_skipped = work.skipped;
  // Queued (durably) before the alert row, like the webhook: an alert in the
  // store has been handed to the export. Once per Work, so a store retry
  // does not queue it again.
  if (siem_ && !work.exported) {
    siem_->Enqueue(alert.id, stored.json);
    work.exported = true;
  }
  FG_ASSIGN_OR_RETURN(bool inserted, store_.responses.AddAlert(stored, audit));
  if (inserted) {
    seclog::AlertRaised(alert.id, alert.rule, stored.severity, alert.device);  // once: only the insert logs
    Metrics::Global()
        .GetCounter("femtoguard_alerts_total", "rule=\"" + alert.rule + "\"", "Alerts raised, by rule")
        .Inc();
  }
  return true;
}

void Responder::Submit(detect::Alert alert, uint64_t seq, std::chrono::steady_clock::time_point received) {
  if (received == std::chrono::steady_clock::time_point{}) received = std::chrono::steady_clock::now();
  if (options_.enforce) options_.enforce(alert);
  static Gauge& pending = Metrics::Global().GetGauge(
      "femtoguard_response_pending", {}, "Alerts whose store writes (alert, actions) have not landed yet");
  {
    std::lock_guard lock(work_mutex_);
    work_.push_back(Work{std::move(alert), seq, false, {}, {}, {}, received});
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
      if (*r && !work.alert.actions.empty()) {
        // Event in, actions in the store (and so on the change feed, which
        // the SeGW cut-off and the other nodes follow).
        static Histogram& to_action = Metrics::Global().GetHistogram(
            "femtoguard_event_to_action_seconds", {},
            "From the events reaching the node to the alert's automatic actions stored");
        to_action.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - work.received).count());
      }
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
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.responses.GetAlert(alert_id));
  if (alert.state != AlertState::kPendingApproval) {
    return Status::FailedPrecondition("alert " + alert.id + " is " + std::string(AlertStateName(alert.state)) +
                                      ", not waiting for approval");
  }
  std::vector<std::string> done, finished;
  std::vector<StoredAlert::Skipped> skipped;
  // The alert id leads the reason, so that an undo can tell this alert's
  // changes (a suspension) from later ones.
  const AuditContext approved{audit.actor, "alert " + alert.id + " (" + alert.rule + ") approved" +
                                               (audit.reason.empty() ? "" : ": " + audit.reason)};
  FG_RETURN_IF_ERROR(
      Apply(alert, SubjectsOf(alert.json), alert.actions_pending, approved, &done, &finished, &skipped));
  alert.actions_done.insert(alert.actions_done.end(), done.begin(), done.end());
  alert.actions_skipped.insert(alert.actions_skipped.end(), skipped.begin(), skipped.end());
  alert.actions_pending.clear();
  alert.state = AlertState::kActed;
  return store_.responses.UpdateAlert(alert, audit);
}

Status Responder::Dismiss(std::string_view alert_id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.responses.GetAlert(alert_id));
  if (alert.state == AlertState::kDismissed) return Status::Ok();
  alert.actions_pending.clear();
  alert.state = AlertState::kDismissed;
  return store_.responses.UpdateAlert(alert, audit);
}

Result<UndoReport> Responder::DismissFalsePositive(std::string_view alert_id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(StoredAlert alert, store_.responses.GetAlert(alert_id));
  UndoReport report;
  report.alert_id = alert.id;
  if (alert.false_positive) {
    report.already_undone = true;
    return report;
  }
  // Every store change below carries the alert id and the operator's why.
  const AuditContext undo{audit.actor, "false positive: alert " + alert.id + " (" + alert.rule + ")" +
                                           (audit.reason.empty() ? "" : ": " + audit.reason)};
  auto step = [&](std::string action, std::string outcome, std::string note) {
    CountAction("undo_" + action, outcome);
    report.steps.push_back({std::move(action), std::move(outcome), std::move(note)});
  };
  const std::string marker = "alert " + alert.id + " ";
  // This alert's block, or one whose own alert was undone already while
  // this one still wanted it (it is released with the last of them).
  const auto placed_by_this_alert = [&](const Block& b) {
    if (b.alert_id == alert.id) return true;
    if (b.alert_id.empty()) return false;
    auto owner = store_.responses.GetAlert(b.alert_id);
    return owner.ok() && owner->false_positive;
  };
  // A block is kept by (kind, value) with the alert that placed it; another
  // alert that wanted the same block found it in place and recorded its
  // action as skipped. Such an alert, not itself a false positive, keeps
  // the block alive: the undo names it instead of lifting the block.
  std::vector<StoredAlert> others;
  bool others_loaded = false;
  const auto still_wanted_by = [&](std::string_view action, std::string_view needle) -> Result<std::string> {
    if (!others_loaded) {
      AlertFilter all;
      all.limit = 0;
      FG_ASSIGN_OR_RETURN(others, store_.responses.ListAlerts(all));
      others_loaded = true;
    }
    for (const StoredAlert& o : others) {
      if (o.id == alert.id || o.false_positive) continue;
      if (action == "block" ? o.device != needle : o.json.find(needle) == std::string::npos) continue;
      bool wanted = Contains(o.actions_done, action);
      for (const auto& k : o.actions_skipped) wanted = wanted || k.action == action;
      if (wanted) return o.id;
    }
    return std::string();
  };
  // A block or hold the alert found already in place (skipped) may be its
  // to release too, when the alert that placed it was undone before.
  std::vector<std::string> to_undo = alert.actions_done;
  for (const auto& k : alert.actions_skipped) {
    if ((k.action == "block" || k.action == "hold_payments") && !Contains(to_undo, k.action)) {
      to_undo.push_back(k.action);
    }
  }
  for (const std::string& action : to_undo) {
    if (action == "revoke") {
      FG_ASSIGN_OR_RETURN(auto certs, store_.certs.ListCertificates(alert.device));
      std::string serials;
      for (const Certificate& c : certs) {
        if (c.status == CertStatus::kRevoked && c.reason == RevocationReason::kKeyCompromise) {
          serials += (serials.empty() ? "" : ", ") + c.serial;
        }
      }
      step("revoke", "impossible",
           "a revoked certificate cannot be un-revoked" + (serials.empty() ? "" : " (" + serials + ")") +
               "; re-enrol the device: femtoguard device token --device " + alert.device);
    } else if (action == "suspend") {
      auto device = store_.devices.GetDevice(alert.device);
      if (!device.ok()) {
        if (!device.status().IsNotFound()) return device.status();
        step("suspend", "skipped", "device not registered");
        continue;
      }
      if (device->status != DeviceStatus::kSuspended) {
        step("suspend", "skipped", "device is " + std::string(DeviceStatusName(device->status)) + ", not suspended");
        continue;
      }
      // Re-activate only if the suspension is still this alert's: an
      // operator's later suspension (or another alert's) stands.
      FG_ASSIGN_OR_RETURN(auto entries, store_.audit.ListAudit(AuditFilter{alert.device, 200}));
      const AuditEntry* last = nullptr;
      for (const AuditEntry& e : entries) {  // newest first
        if (e.action == "device.status") {
          last = &e;
          break;
        }
      }
      if (last == nullptr || last->reason.rfind(marker, 0) != 0) {
        step("suspend", "skipped",
             "the device's last status change was not this alert's (" + (last ? last->actor : "unknown") +
                 "); set it with femtoguard device set-status");
        continue;
      }
      FG_ASSIGN_OR_RETURN(auto t, store_.devices.SetDeviceStatus(alert.device, DeviceStatus::kActive, undo));
      step("suspend", "undone",
           "device re-activated; " + std::to_string(t.certs_released.size()) + " certificate(s) released from hold");
    } else if (action == "block") {
      auto b = store_.responses.GetBlock("device", alert.device);
      if (!b.ok()) {
        if (!b.status().IsNotFound()) return b.status();
        step("block", "skipped", "device is not blocked any more");
      } else if (!placed_by_this_alert(*b)) {
        step("block", "skipped",
             "the block is " + (b->alert_id.empty() ? std::string("an operator's") : "alert " + b->alert_id + "'s") +
                 "; remove it with femtoguard block remove --device " + alert.device);
      } else {
        FG_ASSIGN_OR_RETURN(std::string other, still_wanted_by("block", alert.device));
        if (!other.empty()) {
          step("block", "skipped", "alert " + other + " also blocks the device; the block stays");
        } else {
          FG_RETURN_IF_ERROR(store_.responses.RemoveBlock("device", alert.device, undo));
          step("block", "undone", "device unblocked");
        }
      }
    } else if (action == "hold_payments") {
      size_t released = 0;
      std::string kept;
      for (const std::string& subject : SubjectsOf(alert.json)) {
        auto b = store_.responses.GetBlock("payments", subject);
        if (!b.ok()) {
          if (!b.status().IsNotFound()) return b.status();
          continue;
        }
        if (!placed_by_this_alert(*b)) {
          kept += (kept.empty() ? "" : ", ") + subject;
          continue;
        }
        FG_ASSIGN_OR_RETURN(std::string other, still_wanted_by("hold_payments", "\"" + subject + "\""));
        if (!other.empty()) {
          kept += (kept.empty() ? "" : ", ") + subject + " (alert " + other + ")";
          continue;
        }
        FG_RETURN_IF_ERROR(store_.responses.RemoveBlock("payments", subject, undo));
        ++released;
      }
      std::string note = std::to_string(released) + " subscriber(s) released";
      if (!kept.empty()) note += "; still held by another alert or an operator: " + kept;
      step("hold_payments", released > 0 ? "undone" : "skipped", note);
    } else if (action == "terminate") {
      step("terminate", "skipped", "ended sessions stay ended; the device reconnects by itself");
    }
  }
  if (!alert.device.empty()) {
    step("suspicion", "undone", "a serving node clears the device's suspicion when it sees this dismissal");
  }
  json steps = json::array();
  for (const UndoStep& s : report.steps) steps.push_back({{"action", s.action}, {"outcome", s.outcome}, {"note", s.note}});
  AuditEntry entry;
  entry.actor = undo.actor;
  entry.action = "alert.undo";
  entry.subject = alert.id;
  entry.reason = undo.reason;
  entry.detail = json{{"device", alert.device}, {"steps", steps}}.dump();
  FG_RETURN_IF_ERROR(store_.audit.AppendAudit(entry));
  alert.actions_pending.clear();
  alert.state = AlertState::kDismissed;
  alert.false_positive = true;
  FG_RETURN_IF_ERROR(store_.responses.UpdateAlert(alert, undo));  // last: a failure above is retried whole
  return report;
}

Status Responder::Apply(const StoredAlert& alert, const std::vector<std::string>& subjects,
                        const std::vector<std::string>& actions, const AuditContext& audit,
                        std::vector<std::string>* done, std::vector<std::string>* finished,
                        std::vector<StoredAlert::Skipped>* skipped) {
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
      skipped->push_back({action, s.message()});
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
    FG_ASSIGN_OR_RETURN(auto certs, store_.certs.ListCertificates(alert.device));
    int n = 0;
    for (const Certificate& c : certs) {
      if (c.status == CertStatus::kRevoked) continue;
      FG_RETURN_IF_ERROR(store_.certs.RevokeCertificate(c.serial, RevocationReason::kKeyCompromise, now, audit));
      seclog::CertificateRevoked(c.serial, alert.device, RevocationReasonName(RevocationReason::kKeyCompromise), audit.actor);
      ++n;
    }
    if (n == 0) return Status::FailedPrecondition("no certificate to revoke");
    return Status::Ok();
  }
  if (action == "suspend") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    auto t = store_.devices.SetDeviceStatus(alert.device, DeviceStatus::kSuspended, audit);
    if (!t.ok() && t.status().IsNotFound()) return Status::FailedPrecondition("device not registered");
    return t.status();
  }
  if (action == "block") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    auto existing = store_.responses.GetBlock("device", alert.device);
    if (existing.ok()) {
      // Ours (a retry after a crash): done. Anyone else's: nothing to do.
      if (existing->alert_id == alert.id) return Status::Ok();
      return Status::FailedPrecondition(existing->alert_id.empty()
                                            ? "device already blocked by an operator"
                                            : "device already blocked by alert " + existing->alert_id);
    }
    if (!existing.status().IsNotFound()) return existing.status();
    return store_.responses.AddBlock(Block{"device", alert.device, alert.id, alert.rule, now}, audit);
  }
  if (action == "terminate") {
    if (alert.device.empty()) return Status::FailedPrecondition("no device");
    if (terminator_ == nullptr) {
      // The CLI: a serving node terminates when it sees this alert on the
      // change feed. serve without a SeGW: there is nothing to terminate.
      if (options_.terminate_via_node) return Status::Ok();
      return Status::FailedPrecondition("no SeGW connected");
    }
    int n = terminator_->TerminateDevice(alert.device, "alert " + alert.id + " " + alert.rule);
    if (n == 0) return Status::FailedPrecondition("no live session of the device");
    return Status::Ok();
  }
  if (action == "hold_payments") {
    if (subjects.empty()) return Status::FailedPrecondition("no subscriber named");
    size_t held = 0;
    for (const std::string& s : subjects) {
      auto existing = store_.responses.GetBlock("payments", s);
      if (existing.ok()) {
        if (existing->alert_id == alert.id) ++held;  // ours, from an earlier attempt
        continue;
      }
      if (!existing.status().IsNotFound()) return existing.status();
      FG_RETURN_IF_ERROR(store_.responses.AddBlock(Block{"payments", s, alert.id, alert.rule, now}, audit));
      ++held;
    }
    if (held == 0) return Status::FailedPrecondition("every subscriber's payments were already held");
    return Status::Ok();
  }
  if (action == "notify") {
    Notify(alert);  // syslog at least; it is not a channel an operator configured
    // The SIEM export carries every alert, this one included: a channel.
    if (options_.webhook_url.empty() && options_.siem_target.empty()) {
      return Status::FailedPrecondition(
          "no notification channel configured (no --webhook, no --syslog-export); syslog only");
    }
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
  if (webhook_) webhook_->Enqueue(alert.id, alert.json);
}

void Responder::FlushNotifications() {
  // Bounded: undelivered ones stay queued on disk.
  if (webhook_) (void)webhook_->Flush(30000);
  if (siem_) (void)siem_->Flush(30000);
}

}  // namespace fg::response
