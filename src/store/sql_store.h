#pragma once

// The store's logic, written once against the SQL driver (sql_driver.h) and
// run by both backends (internal to src/store). One file per role:
// sql_devices.cc, sql_certificates.cc, sql_credentials.cc, sql_endpoints.cc,
// sql_tokens.cc, sql_response.cc, sql_audit_feed.cc, sql_nodes.cc; the
// helpers they share are in sql_common.cc.
//
// Behaviour beyond the Store contract (both backends):
//   - UpdateDeviceAttributes that changes nothing writes no audit or change
//     row (re-importing the same registry is a no-op).
//   - TouchDevice writes no change-feed row either: last_seen moves on every
//     session, and no change-feed reader decides anything from it.
//   - ChangesSince with limit 0 means no limit, as in the filters.
//   - RecordIssuedCertificate judges token expiry, legacy cutoffs and the
//     renewing certificate's notAfter against the wall clock (NowMillis),
//     never against cert.issued_ms, which the caller supplies. It checks the
//     credential first (PermissionDenied), then the device state, then the
//     one-time uses, then the key and serial, so a caller without a valid
//     credential learns nothing about other devices' keys. Every consumed
//     one-time credential (token, vendor certificate, legacy credential) is
//     recorded in credential_uses with the serial it paid for.
//   - AddBootstrapToken fills a zero created_ms with now and refuses a token
//     that does not expire after it was created (InvalidArgument).
//   - Endpoints may also go draining -> active (un-drain); adding and every
//     status change write an audit entry and a kEndpoint change row. Vendor
//     CAs, legacy credentials and tokens are audited but have no change-feed
//     kind of their own, so they write no change row.
//   - Blocks and alerts are idempotent: adding an existing one writes
//     nothing (AddAlert returns false), so a replayed alert never acts twice.
//
// Every write is one driver write transaction, which the driver serialises
// against every other writer of the database (also in other processes), so
// the invariants checked inside it still hold when it commits.
//
// Thread-safety: thread-safe; each call leases a connection from the pool.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/registry_file.h"
#include "store/sql_driver.h"
#include "store/store.h"

namespace fg {

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<sql::Pool> pool) : pool_(std::move(pool)) {}

  Status AddDevice(const Device& device, const AuditContext& audit) override;
  Status UpdateDeviceAttributes(const Device& device, const AuditContext& audit) override;
  Status ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) override;
  Result<Device> GetDevice(std::string_view id) override;
  Result<std::vector<Device>> ListDevices(const DeviceFilter& filter) override;
  Result<DeviceTransition> SetDeviceStatus(std::string_view id, DeviceStatus to,
                                           const AuditContext& audit) override;
  Status TouchDevice(std::string_view id, UnixMillis when) override;
  Result<size_t> TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) override;

  Result<std::optional<std::string>> FindKeyOwner(std::string_view key_fp) override;
  // The two-argument form (kOperator) of the base class stays callable here.
  using CertificateLedger::RecordIssuedCertificate;
  Result<std::vector<std::string>> RecordIssuedCertificate(
      const Certificate& cert, const AuditContext& audit,
      const EnrolmentAuthorization& auth) override;
  Result<Certificate> GetCertificate(std::string_view serial) override;
  Result<std::vector<Certificate>> ListCertificates(
      std::optional<std::string_view> device) override;
  Status RevokeCertificate(std::string_view serial, RevocationReason reason, UnixMillis when,
                           const AuditContext& audit) override;
  Result<std::vector<Certificate>> ListRevokedCertificates(UnixMillis now) override;

  Status AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) override;
  Result<BootstrapToken> GetBootstrapToken(std::string_view ref) override;
  Result<std::optional<std::string>> FindVendorCertificateUse(
      std::string_view vendor_cert_fp) override;

  Status AddVendorCa(const VendorCa& ca, const AuditContext& audit) override;
  Status RemoveVendorCa(std::string_view fp, const AuditContext& audit) override;
  Result<std::vector<VendorCa>> ListVendorCas() override;

  Status AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) override;
  Result<std::vector<LegacyCredential>> ListLegacyCredentials() override;
  Result<bool> LegacyCredentialUsed(std::string_view fp, std::string_view device) override;

  Status AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) override;
  Status SetEndpointStatus(std::string_view address, EndpointStatus status,
                           const AuditContext& audit) override;
  Result<std::vector<Endpoint>> ListEndpoints() override;

  Status AddApiToken(const ApiToken& token, const AuditContext& audit) override;
  Result<std::optional<ApiToken>> FindApiTokenByHash(std::string_view hash) override;
  Result<std::vector<ApiToken>> ListApiTokens() override;
  Status RevokeApiToken(std::string_view id, const AuditContext& audit) override;
  Result<std::vector<BootstrapToken>> ListBootstrapTokens(
      std::optional<std::string_view> device) override;
  Status RevokeBootstrapToken(std::string_view ref, const AuditContext& audit) override;

  Status AddBlock(const Block& block, const AuditContext& audit) override;
  Status RemoveBlock(std::string_view kind, std::string_view value,
                     const AuditContext& audit) override;
  Result<std::vector<Block>> ListBlocks() override;

  Result<bool> AddAlert(const StoredAlert& alert, const AuditContext& audit) override;
  Result<StoredAlert> GetAlert(std::string_view id) override;
  Result<std::vector<StoredAlert>> ListAlerts(const AlertFilter& filter) override;
  Status UpdateAlert(const StoredAlert& alert, const AuditContext& audit) override;
  Result<std::vector<StoredAlert>> ListAlertsSince(int64_t after_seq, size_t limit) override;
  Result<Block> GetBlock(std::string_view kind, std::string_view value) override;

  Status AppendAudit(const AuditEntry& entry) override;
  Result<int64_t> UpsertAggregateAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override;
  Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) override;
  Result<int64_t> LatestChangeSeq() override;

  Result<int64_t> NextCounter(std::string_view name) override;

  Status UpsertNode(const NodeInfo& node, const AuditContext& audit) override;
  Status HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health_json) override;
  Result<std::vector<NodeInfo>> ListNodes() override;
  Status RemoveNode(std::string_view id, const AuditContext& audit) override;

  std::string_view backend() const override { return pool_->backend(); }
  StoreHealth Health() override { return pool_->Health(); }
  void WaitForChange(int64_t after, int timeout_ms) override {
    pool_->WaitForChange(after, timeout_ms);
  }

 private:
  // One issuance waiting for the group commit (sql_certificates.cc).
  struct IssueRequest {
    std::function<Result<std::vector<std::string>>(sql::Connection&)> body;
    std::optional<Result<std::vector<std::string>>>
        result;  // set by the leader, under issue_mutex_
  };
  Result<std::vector<std::string>> GroupCommit(IssueRequest& request);
  std::vector<Result<std::vector<std::string>>> RunIssueBatch(
      const std::vector<IssueRequest*>& batch);

  std::unique_ptr<sql::Pool> pool_;

  std::mutex issue_mutex_;
  std::condition_variable issue_cv_;
  std::vector<IssueRequest*> issue_queue_;  // guarded by issue_mutex_
  bool issue_leader_ = false;               // guarded by issue_mutex_: a batch is running
};

namespace sql {

// Column lists in the order ReadDevice / ReadCertificate expect them.
#define FG_DEVICE_COLUMNS                                                                 \
  " id, status, owner, mode, site_lat, site_lon, site_radius_m, prefixes, csg, cert_fp, " \
  "max_ues, created_ms, updated_ms, last_seen_ms, radio "
#define FG_CERT_COLUMNS                                                                        \
  " serial, device, key_fp, cert_fp, not_before_ms, not_after_ms, issued_ms, status, reason, " \
  "revoked_ms, der "

std::string Dump(const nlohmann::json& j);

// ---- encodings of enums as stored ----
std::string_view ChangeKindName(ChangeKind k);
Result<ChangeKind> ParseChangeKind(std::string_view s);
Result<CertStatus> ParseCertStatus(std::string_view s);
Result<std::vector<std::string>> ParseStringArray(const std::string& text, const char* column);
Result<EndpointStatus> ParseStoredEndpointStatus(std::string_view s);
// The rotation order's lifecycle: active <-> draining -> retired, and
// active -> retired directly; retired is terminal.
bool IsAllowedEndpointTransition(EndpointStatus from, EndpointStatus to);

// ---- devices ----
Result<Device> ReadDevice(const Statement& s);
Result<std::optional<Device>> LoadDevice(Connection& c, std::string_view id);
// Binds the registry attributes at ?2..?10 (the INSERT and the UPDATE).
void BindAttributes(Statement& s, const Device& d);
Status SetDeviceStatusRow(Connection& c, std::string_view id, DeviceStatus to, UnixMillis now);
Status TouchDeviceRow(Connection& c, std::string_view id, UnixMillis when, bool* found);

// ---- certificates ----
Result<Certificate> ReadCertificate(const Statement& s);
Result<std::vector<Certificate>> ReadCertificates(Statement& s);
// Serials of the device's certificates in `status`, oldest first.
Result<std::vector<std::string>> SerialsWithStatus(Connection& c, std::string_view device,
                                                   CertStatus status);
Status SetCertState(Connection& c, std::string_view serial, CertStatus status,
                    RevocationReason reason, UnixMillis revoked_ms);

// ---- audit and change feed (inside the caller's transaction) ----
Status WriteAudit(Connection& c, UnixMillis ts, std::string_view actor, std::string_view action,
                  std::string_view subject, std::string_view reason, std::string_view detail);
Status WriteAudit(Connection& c, UnixMillis ts, const AuditContext& ctx, std::string_view action,
                  std::string_view subject, const nlohmann::json& detail);
Status WriteChange(Connection& c, ChangeKind kind, std::string_view key);
// Moves one certificate to a new state and records it (audit + change).
Status TransitionCertificate(Connection& c, UnixMillis now, const AuditContext& ctx,
                             std::string_view action, std::string_view serial,
                             std::string_view device, CertStatus status, RevocationReason reason,
                             UnixMillis revoked_ms, nlohmann::json detail);

// ---- enrolment credentials ----
std::string_view CredentialLabel(EnrolmentKind k);
Status CheckCredentialValid(Connection& c, std::string_view device,
                            const EnrolmentAuthorization& auth, UnixMillis now);
Status CheckCredentialUnused(Connection& c, std::string_view device,
                             const EnrolmentAuthorization& auth);
Status ConsumeCredential(Connection& c, const Certificate& cert, const EnrolmentAuthorization& auth,
                         UnixMillis now);
Result<BootstrapToken> ReadBootstrapToken(const Statement& s);

}  // namespace sql
}  // namespace fg
