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
//   notify         syslog, and a webhook POST of the alert JSON when configured
//
// Thread-safety: thread-safe (calls are serialised internally).

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admission/admission.h"
#include "common/status.h"
#include "detect/engine.h"
#include "store/store.h"

namespace fg::response {

struct Options {
  std::string webhook_url;  // "http://host:port/path"; empty = no webhook
  int webhook_timeout_ms = 2000;
  bool syslog = true;
};

class Responder {
 public:
  Responder(Store& store, Options options);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // May be null; set once the SeGW adapter exists.
  void SetTerminator(admission::SessionTerminator* terminator);

  // Stores the alert (once) and runs its automatic actions. Returns false
  // when the alert id was already known (nothing was done again).
  Result<bool> Handle(const detect::Alert& alert);

  // Runs the pending actions of an alert (state pending_approval -> acted).
  Status Approve(std::string_view alert_id, const AuditContext& audit);
  // Drops the pending actions (-> dismissed); nothing is done.
  Status Dismiss(std::string_view alert_id, const AuditContext& audit);

  // Waits until queued webhook posts are sent (tests, shutdown).
  void FlushNotifications();

 private:
  // Applies `actions` for the alert; returns those that took effect.
  std::vector<std::string> Apply(const StoredAlert& alert, const std::vector<std::string>& subjects,
                                 const std::vector<std::string>& actions, const AuditContext& audit);
  Status ApplyOne(const StoredAlert& alert, const std::vector<std::string>& subjects, std::string_view action,
                  const AuditContext& audit);
  void Notify(const StoredAlert& alert);
  void RunNotifier();

  Store& store_;
  const Options options_;
  std::mutex mutex_;  // serialises Handle/Approve/Dismiss
  admission::SessionTerminator* terminator_ = nullptr;  // guarded by mutex_

  std::mutex notify_mutex_;
  std::condition_variable notify_cv_;
  std::deque<std::string> webhook_queue_;  // guarded by notify_mutex_
  size_t webhook_in_flight_ = 0;           // guarded by notify_mutex_
  bool notify_stop_ = false;               // guarded by notify_mutex_
  std::thread notifier_;
};

}  // namespace fg::response
