#pragma once

// The embedded Store backend: one SQLite file in the data dir (DESIGN.md §4).
//
// Several processes open the same file (the CLI writes while `femtoguard
// serve` reads), so the file runs in WAL mode and every write is one
// `BEGIN IMMEDIATE` transaction: the write lock is taken before anything is
// read, and the invariants checked inside the transaction (key never bound,
// device active, ...) still hold when it commits. The schema is migrated
// in order on Open, in one transaction.
//
// Behaviour beyond the Store contract:
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
//   - Schema version 2 rebuilds the changes table (its CHECK gains
//     'endpoint'), keeping every seq and the AUTOINCREMENT high-water mark.
//
// Thread-safety: thread-safe. One connection, serialised by `mutex_`.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace fg {

namespace sqlite {
class Connection;  // the sqlite3 handle and its statement cache (sqlite_store.cc)
}  // namespace sqlite

// Benchmarks only: SQLite stores opened after SetSqliteSynchronousNormalForTest(true)
// use synchronous=NORMAL (the setting before issue 13, under which a power loss
// can roll back an acknowledged write) instead of FULL, so that FULL's cost is
// measured against it in the same run. femtoguard itself never calls it.
void SetSqliteSynchronousNormalForTest(bool normal);

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database file at `path` and migrates it.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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
  Result<std::vector<BootstrapToken>> ListBootstrapTokens(std::optional<std::string_view> device) override;
  Status RevokeBootstrapToken(std::string_view ref, const AuditContext& audit) override;

  Status AddBlock(const Block& block, const AuditContext& audit) override;
  Status RemoveBlock(std::string_view kind, std::string_view value, const AuditContext& audit) override;
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

  std::string_view backend() const override { return "sqlite"; }

 private:
  explicit SqliteStore(std::unique_ptr<sqlite::Connection> conn);

  std::mutex mutex_;
  // Guarded by mutex_: the connection and its cached statements are not
  // safe to use from two threads at once.
  std::unique_ptr<sqlite::Connection> conn_;
};

}  // namespace fg
