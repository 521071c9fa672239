#pragma once

// Response: what femtoguard does about an alert (DESIGN.md §2, §3.5).
// An alert is stored once by its stable id (a replayed or re-delivered alert
// never acts twice); its automatic actions run at once; actions the rules
// file marks `approve` wait for `femtoguard alert approve ID`. Every action
// is audited with the alert id as the reason.
//
// Actions:
//   revoke         every valid or held certificate of the device, keyCompromise
//   suspend        the device becomes suspended (certificates on hold)
//   terminate      live SeGW sessions of the device end (needs a terminator;
//                  without one, e.g. in the CLI, the node does it when it sees
//                  the alert change on the change feed)
//   block          the device identity is denied at admission (store block)
//   hold_payments  the alert's subscribers' carrier-billed payments are
//                  refused until released (store block kind "payments")
//   notify         syslog, and a signed webhook POST of the alert JSON when
//                  configured (response/webhook.h: durable queue, retried)
//
// With a SIEM target (Options::siem_target), every alert is also exported
// as it is first stored, whatever its actions (response/siem.h).
//
// An action that has nothing to act on (a block of a device already
// blocked, terminate with no SeGW connected or no live session, notify with
// no webhook configured, hold_payments for subscribers already held) is
// recorded in the alert as skipped, with the reason, never as done.
//
// Undo (`alert dismiss --false-positive`, DismissFalsePositive): every
// action the alert did is rolled back where it can be, each step audited:
// its block and payment holds are removed (only those this alert placed),
// a device it suspended is re-activated (only if its last status change was
// this alert's), and serve clears the device's suspicion when it sees the
// alert change on the change feed. A revoked certificate stays revoked: the
// device must be re-enrolled.
//
// A response is never dropped. Submit() puts the decision into effect in
// memory at once (Options::enforce: admission denies the device, the payment
// check holds the subscribers) and hands the store writes to the
// responder's own thread, which retries them until they land: one log line
// when the store starts refusing, one when it is back, and the gauge
// femtoguard_response_pending. The alert row is written last, after its
// actions, so an alert in the store means its actions are done; a crash
// before that replays the journal, regenerates the alert (same id) and
// runs the idempotent actions again. The journal's checkpoint stays behind
// the oldest response still pending (LowestPendingSeq).
//
// Thread-safety: thread-safe (store work is serialised internally).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admission/admission.h"
#include "common/status.h"
#include "detect/engine.h"
#include "response/siem.h"
#include "response/webhook.h"
#include "store/store.h"

namespace fg::response {

struct Options {
  std::string webhook_url;  // "https://host:port/path"; empty = no webhook (response/webhook.h)
  int webhook_timeout_ms = 2000;
  std::string webhook_ca_file;                // empty: the system's trust store
  std::string webhook_secret;                 // HMAC key; empty: made for this Responder only
  std::string webhook_queue_dir;              // durable queue; empty: a temp dir (tests)
  int webhook_retry_initial_ms = 500;
  int webhook_retry_max_ms = 60000;
  bool syslog = true;
  // SIEM export (response/siem.h): every stored alert as RFC 5424 syslog
  // over tcp:// or tls://; empty = none.
  std::string siem_target;
  std::string siem_ca_file;    // tls: CA(s) the collector must chain to; empty = system store
  std::string siem_queue_dir;  // durable queue; empty: a temp dir (tests)
  int siem_retry_max_ms = 60000;
  // Called by Submit() before anything is written: the decision in memory.
  std::function<void(const detect::Alert&)> enforce;
  // Called once the alert's store writes have landed (its actions are then
  // visible through the store and the change feed).
  std::function<void(const detect::Alert&)> landed;
  int retry_initial_ms = 100;
  int retry_max_ms = 2000;
  // The CLI has no SeGW: `terminate` is done by a serving node when it sees
  // the alert on the change feed (counted as done). Without it and without a
  // terminator (serve without --segw), terminate is skipped.
  bool terminate_via_node = false;
};

// One step of an undo: what was rolled back, or why not.
struct UndoStep {
  std::string action;   // the alert's action ("block", "hold_payments", ...) or "suspicion"
  std::string outcome;  // "undone", "skipped" (nothing to undo / not ours), "impossible"
  std::string note;
};
struct UndoReport {
  std::string alert_id;
  bool already_undone = false;  // a second dismissal: nothing was changed
  std::vector<UndoStep> steps;
};

// The store roles a responder acts through: alerts and blocks, the audit
// trail (an undo reads and writes it), devices (suspend) and certificates
// (revoke). A node passes its Store, which has them all.
struct ResponderStore {
  ResponseLedger& responses;
  AuditLog& audit;
  DeviceRegistry& devices;
  CertificateLedger& certs;

  ResponderStore(ResponseLedger& r, AuditLog& a, DeviceRegistry& d, CertificateLedger& c)
      : responses(r), audit(a), devices(d), certs(c) {}
  ResponderStore(Store& store)  // NOLINT(google-explicit-constructor): every role of one store
      : ResponderStore(store, store, store, store) {}
};

class Responder {
 public:
  Responder(ResponderStore store, Options options);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // May be null; set once the SeGW adapter exists.
  void SetTerminator(admission::SessionTerminator* terminator);

  // Stores the alert (once) and runs its automatic actions, now, on the
  // caller's thread. Returns false when the alert id was already known
  // (nothing was done again); a store error is returned, nothing retried.
  Result<bool> Handle(const detect::Alert& alert);

  // Enforces the alert in memory now and queues its store writes, retried
  // until they land. Never blocks on the store. `seq` is the journal record
  // the alert came from (0: none); `received` is when the node got the
  // events that raised it (default: now), the start of
  // femtoguard_event_to_action_seconds, observed when the actions landed.
  void Submit(detect::Alert alert, uint64_t seq, std::chrono::steady_clock::time_point received = {});
  // The lowest journal seq whose response has not landed, or UINT64_MAX.
  uint64_t LowestPendingSeq() const;
  size_t pending() const;
  // Waits until every submitted response has landed (tests, shutdown), at
  // most `timeout_ms`; returns whether all landed.
  bool WaitIdle(int timeout_ms);

  // Runs the pending actions of an alert (state pending_approval -> acted).
  Status Approve(std::string_view alert_id, const AuditContext& audit);
  // Drops the pending actions (-> dismissed); nothing is done.
  Status Dismiss(std::string_view alert_id, const AuditContext& audit);
  // Dismisses as a false positive and rolls back what the alert did (see
  // above). Idempotent: the second call changes nothing and says so.
  // NotFound for an unknown alert.
  Result<UndoReport> DismissFalsePositive(std::string_view alert_id, const AuditContext& audit);

  // Waits until queued webhook posts and SIEM messages are sent (tests,
  // shutdown).
  void FlushNotifications();

 private:
  // Applies `actions` not yet in `finished`; those that took effect go to
  // `done`, those done or skipped to `finished`. A store error stops it
  // (returned: retry later with the same vectors).
  Status Apply(const StoredAlert& alert, const std::vector<std::string>& subjects,
               const std::vector<std::string>& actions, const AuditContext& audit, std::vector<std::string>* done,
               std::vector<std::string>* finished, std::vector<StoredAlert::Skipped>* skipped);
  Status ApplyOne(const StoredAlert& alert, const std::vector<std::string>& subjects, std::string_view action,
                  const AuditContext& audit);
  void Notify(const StoredAlert& alert);

  // Progress of one alert through its store writes (kept across retries).
  struct Work {
    detect::Alert alert;
    uint64_t seq = 0;
    bool checked = false;               // not a duplicate
    std::vector<std::string> done;      // actions that took effect
    std::vector<std::string> finished;  // done or skipped: not to run again
    std::vector<StoredAlert::Skipped> skipped;  // nothing to act on, and why
    std::chrono::steady_clock::time_point received{};  // the events reached the node
    bool exported = false;                              // queued for the SIEM export
  };
  // One attempt (mutex_ held): true when stored now, false for a duplicate,
  // an error to retry.
  Result<bool> Attempt(Work& work);
  void RunWorker();
  const ResponderStore store_;
  const Options options_;
  std::mutex mutex_;  // serialises Handle/Approve/Dismiss
  admission::SessionTerminator* terminator_ = nullptr;  // guarded by mutex_

  mutable std::mutex work_mutex_;
  std::condition_variable work_cv_;
  std::deque<Work> work_;                // guarded by work_mutex_; front is being attempted
  bool work_stop_ = false;               // guarded by work_mutex_
  std::thread worker_;

  std::unique_ptr<Webhook> webhook_;  // null without a webhook URL
  std::unique_ptr<SiemExport> siem_;  // null without a SIEM target
};

}  // namespace fg::response
