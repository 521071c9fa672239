#pragma once

// The Store: femtoguard's system of record for devices, certificates, the
// audit log and the change feed. Backend-neutral: callers never name a
// backend; `Store::Open` picks one from the URL ("sqlite:/path/store.db";
// PostgreSQL comes later behind the same interface).
//
// Every mutation takes an AuditContext and writes its audit entry and its
// change-feed entry in the same transaction as the change itself: there is
// no state change without an audit record, and no audit record for a change
// that did not happen.
//
// Thread-safety: implementations are thread-safe (internally serialised).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/device.h"
#include "common/status.h"
#include "common/time.h"

namespace fg {

// Who asks for a change, and why. Both end up in the audit log.
struct AuditContext {
  std::string actor;   // "cli:root", "serve", "cmp:FG-1", ...
  std::string reason;  // free text from the operator or the component
};

// CRLReason codes (RFC 5280 §5.3.1); same numbers as OpenSSL's OCSP_REVOKED_STATUS_*.
enum class RevocationReason : int {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kCertificateHold = 6,
  kPrivilegeWithdrawn = 9,
  kAaCompromise = 10,
};
std::string_view RevocationReasonName(RevocationReason r);
// Accepts the RFC 5280 names in camelCase ("keyCompromise") or
// kebab/snake case ("key-compromise", "key_compromise").
Result<RevocationReason> ParseRevocationReason(std::string_view s);

// kHold is reversible (device suspended); kRevoked is terminal.
enum class CertStatus { kValid, kHold, kRevoked };
std::string_view CertStatusName(CertStatus s);

struct Certificate {
  std::string serial;   // upper-case hex, no leading zeros (ossl::SerialToHex)
  std::string device;   // device id it was issued to
  std::string key_fp;   // "sha256:<hex>" of the SubjectPublicKeyInfo DER
  std::string cert_fp;  // "sha256:<hex>" of the certificate DER
  UnixMillis not_before_ms = 0;
  UnixMillis not_after_ms = 0;
  UnixMillis issued_ms = 0;
  CertStatus status = CertStatus::kValid;
  RevocationReason reason = RevocationReason::kUnspecified;  // meaningful unless kValid
  UnixMillis revoked_ms = 0;                                 // 0 unless kHold/kRevoked
  std::string der;                                           // the certificate, DER
};

struct AuditEntry {
  int64_t seq = 0;  // assigned by the store, increasing
  UnixMillis ts_ms = 0;
  std::string actor;
  std::string action;   // "device.add", "device.status", "cert.issue", "cert.revoke", ...
  std::string subject;  // device id, serial, ...
  std::string reason;   // the why from AuditContext
  std::string detail;   // JSON object text with specifics, may be empty
};

// One entry of the change feed: "something about `key` changed". Readers
// (the OCSP cache, the CRL builder, later admission) poll ChangesSince and
// re-read what they care about.
enum class ChangeKind { kDevice, kCertificate, kEndpoint, kBlock, kAlert, kNode };
struct Change {
  int64_t seq = 0;
  ChangeKind kind = ChangeKind::kDevice;
  std::string key;  // device id, certificate serial, endpoint address, "<kind>:<value>" of a block, alert id
};

// How an issuance was authorised. One-time credentials are consumed in the
// same transaction that records the certificate, so a refused issuance
// leaves them unused and a credential can never be used twice, even by two
// concurrent requests.
enum class EnrolmentKind {
  kOperator,        // `femtoguard cert issue`: the operator vouches
  kBootstrapToken,  // CMP PBM / EST basic auth with a one-time token
  kVendorCertificate,  // manufacturer certificate (TS 33.310 initial enrolment)
  kLegacyCredential,   // the shared legacy certificate, once per device, before its cutoff
  kRenewal,            // kur / simplereenroll with the device's current certificate
};
std::string_view EnrolmentKindName(EnrolmentKind k);

struct EnrolmentAuthorization {
  EnrolmentKind kind = EnrolmentKind::kOperator;
  // kBootstrapToken: the token reference; kVendorCertificate and
  // kLegacyCredential: "sha256:<hex>" of the presented certificate;
  // kRenewal: the serial of the certificate that authenticated the request.
  std::string credential;
  std::string source_ip;  // for the audit log; may be empty
};

// A one-time enrolment token (`femtoguard device token`). The secret is not
// stored: it is derived from the reference with a data-dir key.
struct BootstrapToken {
  std::string ref;
  std::string device;
  UnixMillis created_ms = 0;
  UnixMillis expires_ms = 0;
  UnixMillis used_ms = 0;  // 0 = unused
  UnixMillis revoked_ms = 0;  // 0 = not revoked (schema v4)
};

// A manufacturer CA trusted for initial enrolment.
struct VendorCa {
  std::string fp;  // "sha256:<hex>" of the certificate DER
  std::string subject;
  std::string pem;
  UnixMillis added_ms = 0;
};

// A credential that a whole fleet shares (the seed's failure), accepted only
// to migrate each device once to its own certificate, until the cutoff.
struct LegacyCredential {
  std::string fp;  // "sha256:<hex>" of the certificate DER
  std::string subject;
  std::string pem;
  UnixMillis cutoff_ms = 0;
  UnixMillis added_ms = 0;
};

// SeGW / authentication endpoint (the regulator's rotation order).
enum class EndpointStatus { kActive, kDraining, kRetired };
std::string_view EndpointStatusName(EndpointStatus s);
Result<EndpointStatus> ParseEndpointStatus(std::string_view s);

struct Endpoint {
  std::string address;  // "host:port" or URL as devices use it
  EndpointStatus status = EndpointStatus::kActive;
  UnixMillis created_ms = 0;
  UnixMillis updated_ms = 0;
};

// API bearer token (DESIGN.md §5). Only a hash of the secret is stored.
// kViewer (schema v8): reads what the console shows, changes nothing.
enum class ApiRole { kAdmin, kOperator, kSegw, kIngest, kPayments, kViewer };
std::string_view ApiRoleName(ApiRole r);
Result<ApiRole> ParseApiRole(std::string_view s);
struct ApiToken {
  std::string id;    // public id, e.g. "tk_<hex>"; the secret is never stored
  ApiRole role = ApiRole::kOperator;
  std::string hash;  // hex SHA-256 of the full token string
  std::string label;
  UnixMillis created_ms = 0;
  UnixMillis revoked_ms = 0;  // 0 = live
};

// A block placed by the response engine or an operator. kinds:
//   "device"   value = device id            -> denied at admission
//   "line"     value = IP or CIDR            -> denied at admission
//   "payments" value = subscriber pseudonym  -> carrier-billed payments refused
struct Block {
  std::string kind;
  std::string value;
  std::string alert_id;  // the alert that caused it; empty when by hand
  std::string reason;
  UnixMillis created_ms = 0;
};

// An alert (DESIGN.md §3.5) as kept by serve, with its handling state.
enum class AlertState { kOpen, kPendingApproval, kActed, kDismissed };
std::string_view AlertStateName(AlertState s);
struct StoredAlert {
  std::string id;    // stable id (same evidence -> same id), the idempotency key
  UnixMillis ts_ms = 0;
  std::string rule;
  std::string severity;
  std::string device;  // may be empty
  std::string json;    // the alert's JSON Lines object, as published
  AlertState state = AlertState::kOpen;
  std::vector<std::string> actions_done;     // actions applied, in order
  std::vector<std::string> actions_pending;  // waiting for `alert approve`
  UnixMillis updated_ms = 0;
  // Schema v5 (issue 14, the alert workflow):
  // actions that had nothing to act on, with why (never counted as done).
  struct Skipped {
    std::string action;
    std::string reason;
  };
  std::vector<Skipped> actions_skipped;
  bool false_positive = false;  // dismissed with --false-positive: its actions were undone
  int64_t seq = 0;              // assigned by the store at insert, increasing: the SIEM cursor
};
struct AlertFilter {
  std::string rule;    // empty = any
  std::string device;  // empty = any
  std::optional<AlertState> state;
  size_t limit = 100;  // newest first
  std::string severity;  // empty = any
};

struct DeviceFilter {
  std::optional<DeviceStatus> status;
  size_t limit = 0;  // 0 = no limit
};

struct AuditFilter {
  std::string subject;  // empty = any
  size_t limit = 0;     // 0 = no limit; newest first when set
};

// The result of a lifecycle transition: what changed with it.
struct DeviceTransition {
  DeviceStatus from = DeviceStatus::kProvisioned;
  DeviceStatus to = DeviceStatus::kProvisioned;
  std::vector<std::string> certs_held;      // put on hold (suspend)
  std::vector<std::string> certs_released;  // hold lifted (reactivate)
  std::vector<std::string> certs_revoked;   // revoked (decommission)
};

// One device's part of a registry import (`femtoguard device import`).
struct DeviceImport {
  Device device;       // the whole row as it should be after the import
  bool is_new = false;  // AddDevice (device.status is its first status)
  bool attributes = false;                   // UpdateDeviceAttributes
  std::optional<DeviceStatus> status;        // then SetDeviceStatus, with its certificate effects
};

// A node of the cluster (issue 15). One row per serving node.
struct NodeInfo {
  std::string id;          // "node-<hex>", chosen at init / node join
  std::string public_url;  // the base URL devices reach it at (OCSP, CRL, CMP, EST)
  int url_order = 0;       // position in the AIA / CDP lists of new certificates
  UnixMillis joined_ms = 0;
  UnixMillis heartbeat_ms = 0;  // 0 = never
  std::string health;           // JSON object text from the last heartbeat; may be empty
};

// What Store::Health reports.
struct StoreHealth {
  bool writable = true;  // false: the primary is unreachable (failover under way)
  std::string detail;    // why, for /healthz; empty when writable
};

// Role: the registry of femtocells and their lifecycle.
class DeviceRegistry {
 public:
  virtual ~DeviceRegistry() = default;

  // ---- devices ----
  // AlreadyExists when the id is taken.
  virtual Status AddDevice(const Device& device, const AuditContext& audit) = 0;
  // Replaces the registry attributes (owner, mode, site, prefixes, csg,
  // cert_fp, max_ues) of an existing device. Never changes status.
  virtual Status UpdateDeviceAttributes(const Device& device, const AuditContext& audit) = 0;
  virtual Result<Device> GetDevice(std::string_view id) = 0;
  virtual Result<std::vector<Device>> ListDevices(const DeviceFilter& filter) = 0;
  // Moves a device through its lifecycle, atomically with its certificates:
  //   -> suspended:      every kValid certificate becomes kHold (reason certificateHold)
  //   suspended->active: every kHold certificate becomes kValid again
  //   -> decommissioned: every kValid/kHold certificate becomes kRevoked
  //                      (reason cessationOfOperation)
  // FailedPrecondition for a transition IsAllowedTransition() refuses
  // (including to the same status); NotFound for an unknown device.
  virtual Result<DeviceTransition> SetDeviceStatus(std::string_view id, DeviceStatus to,
                                                   const AuditContext& audit) = 0;
  // Applies every step of `plan` in order, in one transaction: all of them,
  // with their audit and change rows, or (on any error) none.
  virtual Status ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) = 0;
  // Records that the device was seen (enrolment, renewal, session). No audit.
  virtual Status TouchDevice(std::string_view id, UnixMillis when) = 0;
  // The same for many devices in one transaction (admission's periodic
  // flush after a reconnect storm); unknown ids are skipped. Returns how
  // many rows were found.
  virtual Result<size_t> TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) = 0;
};

// Role: issued certificates, their revocation, and the CRL number counter.
class CertificateLedger {
 public:
  virtual ~CertificateLedger() = default;

  // ---- certificates ----
  // Device id the key is (or was) bound to, if any. The binding is permanent:
  // revoking a certificate does not free its key.
  virtual Result<std::optional<std::string>> FindKeyOwner(std::string_view key_fp) = 0;
  // Records a newly signed certificate, atomically re-checking the issuance
  // invariants against concurrent writers:
  //   - the device exists and is provisioned or active (else FailedPrecondition);
  //   - cert.key_fp was never bound before (else AlreadyExists);
  //   - the serial is new (else AlreadyExists).
  // And, by `auth.kind`, in the same transaction:
  //   - kBootstrapToken: the token exists, belongs to cert.device, is unused
  //     and unexpired (else PermissionDenied); it is marked used.
  //   - kVendorCertificate: the device never had a certificate (else
  //     FailedPrecondition "already enrolled") and this vendor certificate
  //     was never used before (else AlreadyExists); the use is recorded.
  //   - kLegacyCredential: the credential is registered and its cutoff is
  //     in the future (else PermissionDenied), and this device never used it
  //     before (else AlreadyExists); the use is recorded.
  //   - kRenewal: the named certificate belongs to cert.device, is kValid and
  //     unexpired (else PermissionDenied).
  // Then: a provisioned device becomes active; earlier kValid certificates
  // of the device are revoked with reason superseded; the device is touched.
  // The audit detail names the authorization kind and credential.
  // Returns the serials it superseded.
  virtual Result<std::vector<std::string>> RecordIssuedCertificate(
      const Certificate& cert, const AuditContext& audit, const EnrolmentAuthorization& auth) = 0;
  Result<std::vector<std::string>> RecordIssuedCertificate(const Certificate& cert, const AuditContext& audit) {
    return RecordIssuedCertificate(cert, audit, EnrolmentAuthorization{});
  }
  virtual Result<Certificate> GetCertificate(std::string_view serial) = 0;
  // All certificates, or those of one device, oldest first.
  virtual Result<std::vector<Certificate>> ListCertificates(std::optional<std::string_view> device) = 0;
  // Revokes (terminal) or, with reason kCertificateHold, holds. Revoking a
  // kHold certificate makes it kRevoked with the new reason. FailedPrecondition
  // when already kRevoked; NotFound for an unknown serial.
  virtual Status RevokeCertificate(std::string_view serial, RevocationReason reason, UnixMillis when,
                                   const AuditContext& audit) = 0;
  // Every kHold or kRevoked certificate that has not yet expired at `now`
  // (expired ones may leave the CRL, RFC 5280 §3.3).
  virtual Result<std::vector<Certificate>> ListRevokedCertificates(UnixMillis now) = 0;

  // ---- counters ----
  // Atomically increments and returns a named counter (CRL numbers).
  virtual Result<int64_t> NextCounter(std::string_view name) = 0;
};

// Role: what authorises a first enrolment: one-time tokens, vendor CAs, the
// legacy shared credential being migrated off.
class EnrolmentCredentials {
 public:
  virtual ~EnrolmentCredentials() = default;

  // ---- enrolment credentials ----
  // AlreadyExists for a duplicate ref; NotFound for an unknown device.
  virtual Status AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) = 0;
  virtual Result<BootstrapToken> GetBootstrapToken(std::string_view ref) = 0;
  // Whether a vendor certificate (by fp) was already used to enrol.
  virtual Result<std::optional<std::string>> FindVendorCertificateUse(std::string_view vendor_cert_fp) = 0;

  virtual Status AddVendorCa(const VendorCa& ca, const AuditContext& audit) = 0;  // AlreadyExists
  virtual Status RemoveVendorCa(std::string_view fp, const AuditContext& audit) = 0;  // NotFound
  virtual Result<std::vector<VendorCa>> ListVendorCas() = 0;

  virtual Status AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) = 0;
  virtual Result<std::vector<LegacyCredential>> ListLegacyCredentials() = 0;
  // Whether `device` already used the legacy credential `fp`.
  virtual Result<bool> LegacyCredentialUsed(std::string_view fp, std::string_view device) = 0;
  // ---- bootstrap token custody (issue 14, schema v4) ----
  // Bootstrap tokens, of one device or all, oldest first. Never a secret:
  // the store has none.
  virtual Result<std::vector<BootstrapToken>> ListBootstrapTokens(std::optional<std::string_view> device) {
    (void)device;
    return Status::FailedPrecondition("this store cannot list bootstrap tokens");
  }
  // Revokes an unused, unrevoked token: from then on CMP and EST refuse it
  // (RecordIssuedCertificate re-checks in its transaction). Audited as
  // "token.revoke" on the device. NotFound for an unknown ref;
  // FailedPrecondition when already used or revoked.
  virtual Status RevokeBootstrapToken(std::string_view ref, const AuditContext& audit) {
    (void)ref;
    (void)audit;
    return Status::FailedPrecondition("this store cannot revoke bootstrap tokens");
  }
};

// Role: the SeGW / authentication endpoints and their rotation.
class EndpointRegistry {
 public:
  virtual ~EndpointRegistry() = default;

  // ---- authentication endpoints ----
  // Each change writes a kEndpoint change-feed row (the endpoint.status event).
  virtual Status AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) = 0;  // AlreadyExists
  // active -> draining -> retired, active -> retired; retired is terminal
  // (FailedPrecondition otherwise); NotFound for an unknown address.
  virtual Status SetEndpointStatus(std::string_view address, EndpointStatus status,
                                   const AuditContext& audit) = 0;
  virtual Result<std::vector<Endpoint>> ListEndpoints() = 0;
};

// Role: bearer tokens of the API.
class ApiTokenStore {
 public:
  virtual ~ApiTokenStore() = default;

  // ---- API tokens (schema v3) ----
  virtual Status AddApiToken(const ApiToken& token, const AuditContext& audit) = 0;  // AlreadyExists
  // The live (unrevoked) token with this hash, if any.
  virtual Result<std::optional<ApiToken>> FindApiTokenByHash(std::string_view hash) = 0;
  virtual Result<std::vector<ApiToken>> ListApiTokens() = 0;
  virtual Status RevokeApiToken(std::string_view id, const AuditContext& audit) = 0;  // NotFound
};

// Role: alerts, the actions taken on them, and blocks.
class ResponseLedger {
 public:
  virtual ~ResponseLedger() = default;

  // ---- blocks (schema v3) ----
  // Idempotent: adding an existing (kind, value) changes nothing and is OK.
  // Each real change writes a kBlock change-feed row and an audit row.
  virtual Status AddBlock(const Block& block, const AuditContext& audit) = 0;
  virtual Status RemoveBlock(std::string_view kind, std::string_view value, const AuditContext& audit) = 0;  // NotFound
  virtual Result<std::vector<Block>> ListBlocks() = 0;

  // ---- alerts (schema v3) ----
  // Inserts the alert unless its id exists. Returns true when inserted
  // (false = already known: the caller must not act again).
  virtual Result<bool> AddAlert(const StoredAlert& alert, const AuditContext& audit) = 0;
  virtual Result<StoredAlert> GetAlert(std::string_view id) = 0;  // NotFound
  virtual Result<std::vector<StoredAlert>> ListAlerts(const AlertFilter& filter) = 0;
  // Replaces state and action lists; audited.
  virtual Status UpdateAlert(const StoredAlert& alert, const AuditContext& audit) = 0;

  // ---- the alert workflow (issue 14) ----
  // Alerts with seq > `after_seq`, in seq (insertion) order, at most
  // `limit`: a poller that passes the last seq it saw gets every alert
  // exactly once, including those raised between two polls.
  // (Not pure: test doubles that never hold alerts need not implement it.)
  virtual Result<std::vector<StoredAlert>> ListAlertsSince(int64_t after_seq, size_t limit) {
    (void)after_seq;
    (void)limit;
    return Status::Internal("this store cannot list alerts by cursor");
  }
  // The block on (kind, value); NotFound when there is none.
  virtual Result<Block> GetBlock(std::string_view kind, std::string_view value) {
    FG_ASSIGN_OR_RETURN(std::vector<Block> blocks, ListBlocks());
    for (Block& b : blocks) {
      if (b.kind == kind && b.value == value) return std::move(b);
    }
    return Status::NotFound("no block " + std::string(kind) + ":" + std::string(value));
  }
};

// Role: the append-only audit log.
class AuditLog {
 public:
  virtual ~AuditLog() = default;

  // For events that are not state changes (refusals, detections).
  virtual Status AppendAudit(const AuditEntry& entry) = 0;
  // Aggregated rows (refused enrolments, one per source and minute, whose
  // count grows): entry.seq == 0 appends `entry` and returns its seq;
  // otherwise replaces the reason and detail of row entry.seq, and only if
  // that row has the same action and subject, so no other part of the log
  // can be rewritten through it; NotFound when there is no such row.
  // Backends without it append every time (returning 0).
  virtual Result<int64_t> UpsertAggregateAudit(const AuditEntry& entry) {
    FG_RETURN_IF_ERROR(AppendAudit(entry));
    return int64_t{0};
  }
  virtual Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) = 0;
};

// Role: the change feed. A table in the store, durable, with an increasing
// seq: a reader that remembers the last seq it applied never misses a
// change, whatever happened to it (restart, lost notification). On a store
// shared by several nodes, seqs become visible in order: a reader never sees
// seq N+1 before N is committed.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;

  // Entries with seq > `after`, oldest first, at most `limit`.
  virtual Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) = 0;
  virtual Result<int64_t> LatestChangeSeq() = 0;

  // Waits until a change after `after` may be there, at most `timeout_ms`.
  // Only a hint (a wake-up, like PostgreSQL's LISTEN/NOTIFY): callers then
  // read ChangesSince, and poll anyway. The default sleeps for the timeout.
  virtual void WaitForChange(int64_t after, int timeout_ms);
};

// Role: the nodes of a cluster sharing this store (one row on a single node).
class NodeRegistry {
 public:
  virtual ~NodeRegistry() = default;

  // Registers a node (`init`, `node join`) or updates its URL and order.
  // Audited ("node.join" when new, "node.update" otherwise); writes a
  // kNode change-feed row, so that every node re-reads the URL list.
  virtual Status UpsertNode(const NodeInfo& node, const AuditContext& audit) = 0;
  // The node's periodic "I am alive" with its health as JSON text. No audit,
  // no change row. NotFound for an unknown node.
  virtual Status HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health_json) = 0;
  // Every node, by (url_order, joined_ms).
  virtual Result<std::vector<NodeInfo>> ListNodes() = 0;
  // Audited ("node.remove"), with a kNode change row. NotFound when unknown.
  virtual Status RemoveNode(std::string_view id, const AuditContext& audit) = 0;
};

// The whole store: every role, as one backend implements them. Code that
// opens a store holds this; components take only the roles they use.
class Store : public DeviceRegistry,
              public CertificateLedger,
              public EnrolmentCredentials,
              public EndpointRegistry,
              public ApiTokenStore,
              public ResponseLedger,
              public AuditLog,
              public ChangeFeed,
              public NodeRegistry {
 public:
  ~Store() override = default;

  // Opens (creating if needed) and migrates the store at `url`:
  // "sqlite:/path/store.db", or "postgresql://..." (a libpq connection URI,
  // multi-host with target_session_attrs=read-write for failover).
  static Result<std::unique_ptr<Store>> Open(std::string_view url);

  // The backend's name for logs and `node list`: "sqlite" or "postgresql".
  virtual std::string_view backend() const = 0;

  // Whether the store takes writes now. While the database is unreachable
  // (PostgreSQL failover), reads and writes fail with Unavailable and the
  // node serves from its last state; /healthz and metrics say so.
  virtual StoreHealth Health() { return StoreHealth{}; }
};

}  // namespace fg
