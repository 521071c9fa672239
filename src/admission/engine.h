#pragma once

// admission::Engine: the decision engine behind the Gate contract
// (admission.h). Keeps an in-memory snapshot of the store (devices,
// certificates, endpoints, blocks) so that a decision touches no database:
// loaded at construction, then kept current by Apply() for every change-feed
// row. Runs the policy's chain of checks (check.h, checks/), combines their
// answers, records live sessions, appends the decision log and counts every
// decision and reason in Metrics::Global():
//   femtoguard_admission_decisions_total{decision="allow|deny|quarantine"}
//   femtoguard_admission_reasons_total{reason="..."}
//   femtoguard_admission_internal_total{cause="store|check|exception|budget"}
//
// Fail closed: while the snapshot cannot be loaded (store down), for a key
// whose re-read failed, when a check returns an error or throws, or when a
// decision exceeds policy time_budget_ms, the decision is deny "internal"
// (counted and logged). An engine whose first load failed retries the load
// at most once a second from Admit, and on Reload().
//
// Thread-safe. Decisions for one device are serialised (so that two
// simultaneous sessions of one identity cannot both pass the clone check);
// decisions for different devices run in parallel.

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "admission/admission.h"
#include "admission/check.h"
#include "admission/decision_log.h"
#include "admission/policy.h"
#include "admission/snapshot.h"
#include "common/celldb.h"
#include "common/config.h"
#include "common/metrics.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg::admission {

struct EngineOptions {
  std::shared_ptr<const CellDb> cells;  // nullptr: the rem check abstains
  std::string decision_log_path;        // empty: no decision log
  DecisionLogRotation decision_log_rotation;
  // Checks beyond the built-in ones, found by name when the chain names
  // them (tests use this to inject failing checks; ForTest in spirit).
  std::vector<CheckRegistration> extra_checks;
};

class Engine final : public Gate, public ChangeSubscriber {
 public:
  // Fails only on a chain naming an unknown check or a decision log that
  // cannot be opened; a store that cannot be read makes an engine that
  // denies "internal" until it can.
  static Result<std::unique_ptr<Engine>> Create(SnapshotSources store, AdmissionPolicy policy, EngineOptions options = {});
  // The node's engine: AdmissionPolicy::LoadForDataDir, the cell database
  // named by the policy, and the decision log at DIR/log/admission.jsonl.
  static Result<std::unique_ptr<Engine>> CreateForDataDir(SnapshotSources store, const DataDir& dir, const Config& config);

  ~Engine() override;

  Decision Admit(const AdmissionRequest& request) override;
  void SessionDown(std::string_view device, std::string_view session) override;

  // Re-reads the key a change-feed row names (kDevice, kCertificate,
  // kEndpoint, kBlock; kAlert is ignored). On a store error the key stays
  // stale - decisions depending on it deny "internal" - until a later Apply
  // or Reload succeeds.
  Status Apply(const Change& change);
  // ChangeSubscriber: Apply for each change of the page, except that the
  // whole block list is reloaded once for the page, not once per block
  // change (a mass block was quadratic: 25,000 blocks took serve's follower
  // tens of minutes). Returns the first error; the rest is still applied.
  std::string_view name() const override { return "admission"; }
  Status OnChanges(std::span<const Change> changes) override;
  // Re-reads everything (e.g. after a gap in the change feed).
  Status Reload();
  // OK once a snapshot is loaded.
  Status LoadStatus() const;

  // A response decided to cut `device` off (block, revoke or suspend) and
  // its store write has not landed yet: deny it "blocked" now, in memory.
  // BlockLanded() marks the write done; PruneLandedBlocks() then forgets
  // marks made before the change feed was last read in full (from then on
  // the stored block or revocation decides).
  void EnforceBlock(std::string_view device, std::string_view alert_id, std::string_view rule);
  void BlockLanded(std::string_view device, std::string_view alert_id);
  void PruneLandedBlocks(UnixMillis landed_before_ms);
  size_t pending_blocks() const;

  // Live sessions of a device (for terminating them on revocation).
  std::vector<LiveSession> LiveSessions(std::string_view device) const;

  // Writes last-seen times of admitted devices to the store (TouchDevice)
  // where the store's copy lags by more than `min_advance_ms`, so that the
  // dormancy sweep sees sessions without a write per decision. Returns how
  // many devices were touched.
  Result<size_t> FlushLastSeen(UnixMillis min_advance_ms = kMillisPerDay);
  // Writes the buffered decision log lines now.
  Status FlushLog();

  // Not safe against a concurrent ReplacePolicy().
  const AdmissionPolicy& policy() const { return policy_; }

  // SIGHUP: a new policy and cell database. The chain is built first; on an
  // error nothing changes. Decisions in flight finish with the old policy.
  // Live sessions, the snapshot and pending blocks are kept.
  Status ReplacePolicy(AdmissionPolicy policy, std::shared_ptr<const CellDb> cells);
  // DIR/admission.yaml and the cells it names, loaded as CreateForDataDir
  // does, then ReplacePolicy. OK carries a one-line summary.
  Result<std::string> ReloadForDataDir(const DataDir& dir, const Config& config);

 private:
  struct NamedCheck {
    std::string name;
    std::unique_ptr<Check> check;
  };
  struct SessionStripe {
    std::mutex mu;
    StringMap<std::vector<LiveSession>> by_device;  // guarded by mu
  };
  static constexpr size_t kStripes = 64;

  Engine(SnapshotSources store, AdmissionPolicy policy, EngineOptions options);
  static Result<std::vector<NamedCheck>> BuildChain(const AdmissionPolicy& policy,
                                                    const std::vector<CheckRegistration>& extra_checks);
  Decision Decide(const AdmissionRequest& request, UnixMillis now, SessionStripe& stripe);
  Decision Internal(std::string_view cause, std::string_view where, std::string_view message);
  void Count(const Decision& d);
  void RecordLive(const AdmissionRequest& r, UnixMillis now, std::vector<LiveSession>& live);
  SessionStripe& StripeFor(std::string_view device) const;
  Status TryLoad();

  // Constant after construction.
  const SnapshotSources store_;
  std::vector<CheckRegistration> extra_checks_;
  // Replaced as a whole by ReplacePolicy; read by decisions under a shared lock.
  mutable std::shared_mutex policy_mu_;
  AdmissionPolicy policy_;
  std::shared_ptr<const CellDb> cells_;
  std::vector<NamedCheck> chain_;
  std::unique_ptr<DecisionLog> log_;
  Counter* decisions_[3];  // allow, deny, quarantine
  Counter* internal_[4];   // store, check, exception, budget

  mutable std::shared_mutex snapshot_mu_;
  std::unique_ptr<Snapshot> snapshot_;  // guarded by snapshot_mu_; nullptr until loaded
  Status load_status_;                  // guarded by snapshot_mu_
  std::atomic<UnixMillis> next_load_attempt_ms_{0};
  struct PendingBlock {
    BlockView view;
    UnixMillis landed_ms = 0;  // 0: not stored yet
  };
  StringMap<PendingBlock> pending_blocks_;  // guarded by snapshot_mu_
  void PublishPendingBlocks();              // snapshot_mu_ held exclusively

  mutable std::array<SessionStripe, kStripes> sessions_;

  std::mutex reason_counters_mu_;
  StringMap<Counter*> reason_counters_;  // guarded by reason_counters_mu_

  std::atomic<UnixMillis> last_error_log_ms_{0};
};

}  // namespace fg::admission
