#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace fg {
namespace sqlite {
namespace {

using nlohmann::json;

// Schema migrations, applied in order; schema_version records each one.
// Append new versions at the end and never edit a released one: a data dir
// from an older binary is migrated forward from whatever version it holds.
constexpr const char* kMigrations[] = {
    // Version 1.
    R"sql(
CREATE TABLE devices (
  id            TEXT PRIMARY KEY NOT NULL,
  status        TEXT NOT NULL
                CHECK (status IN ('provisioned', 'active', 'suspended', 'decommissioned')),
  owner         TEXT NOT NULL DEFAULT '',
  mode          TEXT NOT NULL CHECK (mode IN ('closed', 'hybrid', 'open')),
  site_lat      REAL,
  site_lon      REAL,
  site_radius_m REAL,
  prefixes      TEXT NOT NULL DEFAULT '[]',
  csg           TEXT NOT NULL DEFAULT '[]',
  cert_fp       TEXT NOT NULL DEFAULT '',
  max_ues       INTEGER NOT NULL DEFAULT 0,
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL DEFAULT 0,
  CHECK ((site_lat IS NULL) = (site_lon IS NULL))
);

CREATE TABLE certificates (
  serial        TEXT PRIMARY KEY NOT NULL,
  device        TEXT NOT NULL REFERENCES devices (id),
  key_fp        TEXT NOT NULL,
  cert_fp       TEXT NOT NULL,
  not_before_ms INTEGER NOT NULL,
  not_after_ms  INTEGER NOT NULL,
  issued_ms     INTEGER NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('valid', 'hold', 'revoked')),
  reason        INTEGER NOT NULL DEFAULT 0,
  revoked_ms    INTEGER NOT NULL DEFAULT 0,
  der           BLOB NOT NULL
);
-- The hard guard of "one key = one device, once": a key appears in at most
-- one certificate, ever, whatever the application layer checked before.
CREATE UNIQUE INDEX certificates_key_fp ON certificates (key_fp);
CREATE INDEX certificates_device ON certificates (device, issued_ms);
CREATE INDEX certificates_status ON certificates (status, not_after_ms);

CREATE TABLE audit (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms   INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT NOT NULL,
  reason  TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit (subject, seq);

CREATE TABLE changes (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('device', 'certificate')),
  key  TEXT NOT NULL
);

CREATE TABLE counters (
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
);
)sql",
    // Version 2: enrolment credentials and authentication endpoints.
    R"sql(
-- The change feed gains 'endpoint'. SQLite cannot alter a CHECK, so the
-- table is rebuilt with every seq kept, and the AUTOINCREMENT high-water
-- mark carried over, so that no seq a reader has seen is ever handed out again.
CREATE TABLE changes_v2 (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('device', 'certificate', 'endpoint')),
  key  TEXT NOT NULL
);
INSERT INTO changes_v2 (seq, kind, key) SELECT seq, kind, key FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_v2';
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'changes_v2', MAX(seq) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'changes'
    UNION ALL SELECT COALESCE(MAX(seq), 0) FROM changes);
DROP TABLE changes;
ALTER TABLE changes_v2 RENAME TO changes;

-- One-time enrolment tokens. Only the reference is stored: the secret is
-- derived from it with a data-dir key.
CREATE TABLE bootstrap_tokens (
  ref        TEXT PRIMARY KEY NOT NULL,
  device     TEXT NOT NULL REFERENCES devices (id),
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bootstrap_tokens_device ON bootstrap_tokens (device);

-- Every consumed one-time credential and the certificate it paid for. The
-- unique indexes are the hard guard of "once": a token or a vendor
-- certificate once at all, a legacy credential once per device.
CREATE TABLE credential_uses (
  kind       TEXT NOT NULL
             CHECK (kind IN ('bootstrap_token', 'vendor_certificate', 'legacy_credential')),
  credential TEXT NOT NULL,
  device     TEXT NOT NULL REFERENCES devices (id),
  serial     TEXT NOT NULL REFERENCES certificates (serial),
  ts_ms      INTEGER NOT NULL,
  source_ip  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX credential_uses_per_device ON credential_uses (kind, credential, device);
CREATE UNIQUE INDEX credential_uses_once ON credential_uses (kind, credential)
  WHERE kind IN ('bootstrap_token', 'vendor_certificate');
CREATE INDEX credential_uses_device ON credential_uses (device);

CREATE TABLE vendor_cas (
  fp       TEXT PRIMARY KEY NOT NULL,
  subject  TEXT NOT NULL DEFAULT '',
  pem      TEXT NOT NULL,
  added_ms INTEGER NOT NULL
);

CREATE TABLE legacy_credentials (
  fp        TEXT PRIMARY KEY NOT NULL,
  subject   TEXT NOT NULL DEFAULT '',
  pem       TEXT NOT NULL,
  cutoff_ms INTEGER NOT NULL,
  added_ms  INTEGER NOT NULL
);

CREATE TABLE endpoints (
  address    TEXT PRIMARY KEY NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('active', 'draining', 'retired')),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
)sql",
    // Version 3: API tokens, blocks and alerts; the change feed gains
    // 'block' and 'alert' (rebuilt as in version 2, every seq kept).
    R"sql(
CREATE TABLE changes_v3 (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('device', 'certificate', 'endpoint', 'block', 'alert')),
  key  TEXT NOT NULL
);
INSERT INTO changes_v3 (seq, kind, key) SELECT seq, kind, key FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_v3';
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'changes_v3', MAX(seq) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'changes'
    UNION ALL SELECT COALESCE(MAX(seq), 0) FROM changes);
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;

-- Bearer tokens: only the SHA-256 of the token string is kept.
CREATE TABLE api_tokens (
  id         TEXT PRIMARY KEY NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'segw', 'ingest', 'payments')),
  hash       TEXT NOT NULL UNIQUE,
  label      TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE blocks (
  kind       TEXT NOT NULL CHECK (kind IN ('device', 'line', 'payments')),
  value      TEXT NOT NULL,
  alert_id   TEXT NOT NULL DEFAULT '',
  reason     TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (kind, value)
);

CREATE TABLE alerts (
  id              TEXT PRIMARY KEY NOT NULL,
  ts_ms           INTEGER NOT NULL,
  rule            TEXT NOT NULL,
  severity        TEXT NOT NULL,
  device          TEXT NOT NULL DEFAULT '',
  json            TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('open', 'pending_approval', 'acted', 'dismissed')),
  actions_done    TEXT NOT NULL DEFAULT '[]',
  actions_pending TEXT NOT NULL DEFAULT '[]',
  updated_ms      INTEGER NOT NULL
);
CREATE INDEX alerts_ts ON alerts (ts_ms);
CREATE INDEX alerts_device ON alerts (device);
)sql",
    // Version 4: a bootstrap token can be revoked (issue 14, CA custody).
    R"sql(
ALTER TABLE bootstrap_tokens ADD COLUMN revoked_ms INTEGER NOT NULL DEFAULT 0;
)sql",
    // Version 5 (issue 14, the alert workflow): a stable insertion sequence
    // for SIEM pollers (rowid is not stable across VACUUM), skipped actions
    // with their reasons, and whether a dismissal undid the alert.
    R"sql(
ALTER TABLE alerts ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE alerts SET seq = o.r
  FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY rowid) AS r FROM alerts) AS o WHERE o.id = alerts.id;
CREATE UNIQUE INDEX alerts_seq ON alerts (seq);
ALTER TABLE alerts ADD COLUMN actions_skipped TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN false_positive INTEGER NOT NULL DEFAULT 0;
)sql",
    // Version 6 (issue 15, the cluster): the nodes serving this store.
    R"sql(
CREATE TABLE nodes (
  id           TEXT PRIMARY KEY,
  public_url   TEXT NOT NULL,
  url_order    INTEGER NOT NULL DEFAULT 0,
  joined_ms    INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL DEFAULT 0,
  health       TEXT NOT NULL DEFAULT ''
);
)sql",
    // Version 7 (issue 15): the change feed gains 'node' (NodeRegistry
    // writes kNode rows); rebuilt as in version 2, every seq kept.
    R"sql(
CREATE TABLE changes_v7 (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL
       CHECK (kind IN ('device', 'certificate', 'endpoint', 'block', 'alert', 'node')),
  key  TEXT NOT NULL
);
INSERT INTO changes_v7 (seq, kind, key) SELECT seq, kind, key FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_v7';
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'changes_v7', MAX(seq) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'changes'
    UNION ALL SELECT COALESCE(MAX(seq), 0) FROM changes);
DROP TABLE changes;
ALTER TABLE changes_v7 RENAME TO changes;
)sql",
};

constexpr int kBusyTimeoutMs = 5000;

// SetSqliteSynchronousNormalForTest (benchmarks: FULL against NORMAL).
std::atomic<bool> g_synchronous_normal_for_test{false};

// The status of a failed sqlite3 call. Constraint violations on a unique
// key surface as AlreadyExists so that callers can refine the message;
// a busy database (another process holding the write lock past the busy
// timeout) is Unavailable: retrying later may succeed.
Status SqlStatus(int rc, std::string msg) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg + " (database busy)");
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Status::AlreadyExists(msg);
      }
      return Status::Internal(msg);
    default:
      return Status::Internal(msg);
  }
}

Status SqlError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "store: " + std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  // A full disk says so, whichever SQLite code carries it (SQLITE_FULL, or
  // an I/O error with ENOSPC when the WAL or its index cannot grow). The
  // transaction was rolled back: nothing of it is in the store.
  if ((rc & 0xff) == SQLITE_FULL || (db != nullptr && sqlite3_system_errno(db) == ENOSPC)) {
    return Status::Unavailable(msg + " (disk full: nothing was written; free space in the data dir and retry)");
  }
  return SqlStatus(rc, std::move(msg));
}

// nlohmann::json::dump throws on invalid UTF-8 unless told otherwise; the
// store must not throw, and a replacement character is the lesser harm.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t LimitOrAll(size_t limit) {
  // SQLite reads a negative LIMIT as "no limit".
  if (limit == 0) return -1;
  return static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max()));
}

}  // namespace

// A cached prepared statement in use. Reset and unbound when it goes out of
// scope, so that it neither holds a read transaction open nor leaks
// parameters into its next use. Bind errors are kept and reported by the
// first Step.
class Statement {
 public:
  // `in_use` is the cache's flag for this statement, cleared on destruction.
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use)
      : db_(db), stmt_(stmt), in_use_(in_use) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        in_use_(std::exchange(other.in_use_, nullptr)),
        bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    if (in_use_ != nullptr) *in_use_ = false;
  }

  // Parameter indexes are 1-based, as in SQL "?1".
  Statement& BindText(int index, std::string_view v) {
    // A null data pointer would bind SQL NULL instead of ''.
    const char* data = v.data() != nullptr ? v.data() : "";
    Keep(sqlite3_bind_text(stmt_, index, data, static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindInt(int index, int64_t v) {
    Keep(sqlite3_bind_int64(stmt_, index, v));
    return *this;
  }
  Statement& BindDouble(int index, std::optional<double> v) {
    Keep(v ? sqlite3_bind_double(stmt_, index, *v) : sqlite3_bind_null(stmt_, index));
    return *this;
  }
  Statement& BindBlob(int index, std::string_view v) {
    const char* data = v.data() != nullptr ? v.data() : "";
    Keep(sqlite3_bind_blob(stmt_, index, data, static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }

  // True when a row is ready to read, false when the statement is done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqlError(db_, bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc, "step");
  }
  // Runs a statement that returns no row.
  Status Run() {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (*row) return Status::Internal("store: statement returned an unexpected row");
    return Status::Ok();
  }

  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return {};
    return std::string(static_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<double> OptDouble(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_double(stmt_, col);
  }

 private:
  void Keep(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  int bind_rc_ = SQLITE_OK;
};

// One sqlite3 connection and its prepared statements. Not thread-safe: the
// owning SqliteStore serialises access.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    // sqlite3_open_v2 hands out a handle even on failure; it must be closed.
    auto conn = std::unique_ptr<Connection>(new Connection(raw));
    if (rc != SQLITE_OK) return SqlError(raw, rc, "cannot open " + path);
    sqlite3_extended_result_codes(raw, 1);
    // Before anything else: switching to WAL and migrating take locks that
    // another process may hold for a moment.
    if (int brc = sqlite3_busy_timeout(raw, kBusyTimeoutMs); brc != SQLITE_OK) {
      return SqlError(raw, brc, "busy_timeout");
    }
    FG_RETURN_IF_ERROR(conn->SetJournalModeWal(path));
    // FULL: every COMMIT fsyncs the WAL before it returns, so a write that
    // was acknowledged (a revocation, a hold, a block, a device status) is on
    // disk, also across a power loss. NORMAL syncs only at checkpoints: it
    // survives a crash of the process, but a power loss may roll back the
    // last acknowledged transactions (docs/operations.md has the cost).
    FG_RETURN_IF_ERROR(conn->Exec(g_synchronous_normal_for_test.load() ? "PRAGMA synchronous = NORMAL"
                                                                        : "PRAGMA synchronous = FULL"));
    FG_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
    return conn;
  }

  ~Connection() {
    cache_.clear();  // statements must be finalized before the handle closes
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A statement from the cache, prepared on first use. `sql` is always a
  // constant of this file: values travel as bound parameters only.
  Result<Statement> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return SqlError(db_, rc, "prepare");
      }
      it = cache_.emplace(sql, Cached{StmtPtr(stmt), false}).first;
    }
    // One statement object cannot run twice at once: a nested use would
    // reset the outer one mid-iteration.
    if (it->second.in_use) return Status::Internal("store: statement already in use: " + it->first);
    it->second.in_use = true;
    return Statement(db_, it->second.stmt.get(), &it->second.in_use);
  }

  // Runs constant SQL, possibly several statements (migrations, pragmas).
  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return SqlStatus(rc, "store: " + msg);
  }

  // Runs `body` (returning Status or Result<T>) in a BEGIN IMMEDIATE
  // transaction: committed when it succeeds, rolled back otherwise, so a
  // failure leaves nothing partial behind.
  template <typename F>
  std::invoke_result_t<F> WriteTransaction(F&& body) {
    {
      FG_ASSIGN_OR_RETURN(Statement begin, Prepare("BEGIN IMMEDIATE"));
      FG_RETURN_IF_ERROR(begin.Run());
    }
    auto result = body();
    if (!result.ok()) {
      Rollback();
      return result;
    }
    Status committed = CommitTransaction();
    if (!committed.ok()) {
      Rollback();
      return committed;
    }
    return result;
  }

  sqlite3* handle() const { return db_; }

 private:
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
  struct Cached {
    StmtPtr stmt;
    bool in_use;
  };

  explicit Connection(sqlite3* db) : db_(db) {}

  Status SetJournalModeWal(const std::string& path) {
    FG_ASSIGN_OR_RETURN(Statement stmt, Prepare("PRAGMA journal_mode = WAL"));
    FG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    std::string mode = row ? stmt.Text(0) : "";
    // An in-memory database (tests) cannot do WAL and needs no cross-process locking.
    if (mode == "wal" || (path == ":memory:" && mode == "memory")) return Status::Ok();
    return Status::Internal("store: cannot switch " + path + " to WAL mode (journal_mode is '" +
                            mode + "')");
  }

  Status CommitTransaction() {
    FG_ASSIGN_OR_RETURN(Statement commit, Prepare("COMMIT"));
    return commit.Run();
  }

  void Rollback() {
    // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled back.
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  sqlite3* db_;
  // Keyed by SQL text; the statements are finalized when the map is cleared.
  // Node-based, so the in_use flags handed to Statements stay put.
  std::unordered_map<std::string, Cached> cache_;
};

namespace {

// ---- encoding of enums as stored ----

std::string_view ChangeKindName(ChangeKind k) {
  switch (k) {
    case ChangeKind::kDevice:
      return "device";
    case ChangeKind::kCertificate:
      return "certificate";
    case ChangeKind::kEndpoint:
      return "endpoint";
    case ChangeKind::kBlock:
      return "block";
    case ChangeKind::kAlert:
      return "alert";
    case ChangeKind::kNode:
      return "node";
  }
  return "unknown";
}

Result<ChangeKind> ParseChangeKind(std::string_view s) {
  if (s == "device") return ChangeKind::kDevice;
  if (s == "certificate") return ChangeKind::kCertificate;
  if (s == "endpoint") return ChangeKind::kEndpoint;
  if (s == "block") return ChangeKind::kBlock;
  if (s == "alert") return ChangeKind::kAlert;
  if (s == "node") return ChangeKind::kNode;
  return Status::Internal("store: unknown change kind '" + std::string(s) + "'");
}

Result<CertStatus> ParseCertStatus(std::string_view s) {
  if (s == "valid") return CertStatus::kValid;
  if (s == "hold") return CertStatus::kHold;
  if (s == "revoked") return CertStatus::kRevoked;
  return Status::Internal("store: unknown certificate status '" + std::string(s) + "'");
}

Result<std::vector<std::string>> ParseStringArray(const std::string& text, const char* column) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return Status::Internal(std::string("store: devices.") + column + " is not a JSON array");
  }
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) {
      return Status::Internal(std::string("store: devices.") + column + " holds a non-string");
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

// ---- devices ----

// Column lists in the order ReadDevice / ReadCertificate expect them.
#define FG_DEVICE_COLUMNS                                                                 \
  " id, status, owner, mode, site_lat, site_lon, site_radius_m, prefixes, csg, cert_fp, " \
  "max_ues, created_ms, updated_ms, last_seen_ms "
#define FG_CERT_COLUMNS                                                                        \
  " serial, device, key_fp, cert_fp, not_before_ms, not_after_ms, issued_ms, status, reason, " \
  "revoked_ms, der "

Result<Device> ReadDevice(const Statement& s) {
  Device d;
  d.id = s.Text(0);
  FG_ASSIGN_OR_RETURN(d.status, ParseDeviceStatus(s.Text(1)));
  d.owner = s.Text(2);
  FG_ASSIGN_OR_RETURN(d.mode, ParseAccessMode(s.Text(3)));
  std::optional<double> lat = s.OptDouble(4);
  std::optional<double> lon = s.OptDouble(5);
  if (lat && lon) d.site = Site{*lat, *lon, s.OptDouble(6).value_or(0)};
  FG_ASSIGN_OR_RETURN(d.prefixes, ParseStringArray(s.Text(7), "prefixes"));
  FG_ASSIGN_OR_RETURN(d.csg, ParseStringArray(s.Text(8), "csg"));
  d.cert_fp = s.Text(9);
  d.max_ues = static_cast<int>(s.Int(10));
  d.created_ms = s.Int(11);
  d.updated_ms = s.Int(12);
  d.last_seen_ms = s.Int(13);
  return d;
}

Result<std::optional<Device>> LoadDevice(Connection& c, std::string_view id) {
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("SELECT" FG_DEVICE_COLUMNS "FROM devices WHERE id = ?1"));
  s.BindText(1, id);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Device>();
  FG_ASSIGN_OR_RETURN(Device d, ReadDevice(s));
  return std::optional<Device>(std::move(d));
}

// Binds the registry attributes at the parameter indexes shared by the
// INSERT and the UPDATE below (?2..?10).
void BindAttributes(Statement& s, const Device& d) {
  s.BindText(2, d.owner)
      .BindText(3, AccessModeName(d.mode))
      .BindDouble(4, d.site ? std::optional<double>(d.site->lat) : std::nullopt)
      .BindDouble(5, d.site ? std::optional<double>(d.site->lon) : std::nullopt)
      .BindDouble(6, d.site ? std::optional<double>(d.site->radius_m) : std::nullopt)
      .BindText(7, Dump(json(d.prefixes)))
      .BindText(8, Dump(json(d.csg)))
      .BindText(9, d.cert_fp)
      .BindInt(10, d.max_ues);
}

// Names of the registry attributes that differ between `a` and `b`.
Status SetDeviceStatusRow(Connection& c, std::string_view id, DeviceStatus to, UnixMillis now) {
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("UPDATE devices SET status = ?2, updated_ms = ?3 WHERE id = ?1"));
  s.BindText(1, id).BindText(2, DeviceStatusName(to)).BindInt(3, now);
  return s.Run();
}

Status TouchDeviceRow(Connection& c, std::string_view id, UnixMillis when, bool* found) {
  // Only forward: a late, out-of-order report must not make a device look dormant.
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE devices SET last_seen_ms = "
                                             "MAX(last_seen_ms, ?2) WHERE id = ?1"));
  s.BindText(1, id).BindInt(2, when);
  FG_RETURN_IF_ERROR(s.Run());
  *found = sqlite3_changes(c.handle()) > 0;
  return Status::Ok();
}

// ---- certificates ----

Result<Certificate> ReadCertificate(const Statement& s) {
  Certificate c;
  c.serial = s.Text(0);
  c.device = s.Text(1);
  c.key_fp = s.Text(2);
  c.cert_fp = s.Text(3);
  c.not_before_ms = s.Int(4);
  c.not_after_ms = s.Int(5);
  c.issued_ms = s.Int(6);
  FG_ASSIGN_OR_RETURN(c.status, ParseCertStatus(s.Text(7)));
  c.reason = static_cast<RevocationReason>(s.Int(8));
  c.revoked_ms = s.Int(9);
  c.der = s.Blob(10);
  return c;
}

Result<std::vector<Certificate>> ReadCertificates(Statement& s) {
  std::vector<Certificate> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(Certificate c, ReadCertificate(s));
    out.push_back(std::move(c));
  }
  return out;
}

// Serials of the device's certificates in `status`, oldest first.
Result<std::vector<std::string>> SerialsWithStatus(Connection& c, std::string_view device,
                                                   CertStatus status) {
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT serial FROM certificates WHERE device = ?1 "
                                             "AND status = ?2 ORDER BY issued_ms, rowid"));
  s.BindText(1, device).BindText(2, CertStatusName(status));
  std::vector<std::string> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.Text(0));
  }
  return out;
}

Status SetCertState(Connection& c, std::string_view serial, CertStatus status,
                    RevocationReason reason, UnixMillis revoked_ms) {
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE certificates SET status = ?2, reason = ?3, "
                                             "revoked_ms = ?4 WHERE serial = ?1"));
  s.BindText(1, serial)
      .BindText(2, CertStatusName(status))
      .BindInt(3, static_cast<int64_t>(reason))
      .BindInt(4, revoked_ms);
  return s.Run();
}

// ---- audit and change feed ----

Status WriteAudit(Connection& c, UnixMillis ts, std::string_view actor, std::string_view action,
                  std::string_view subject, std::string_view reason, std::string_view detail) {
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("INSERT INTO audit (ts_ms, actor, action, subject, reason, detail) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  s.BindInt(1, ts)
      .BindText(2, actor)
      .BindText(3, action)
      .BindText(4, subject)
      .BindText(5, reason)
      .BindText(6, detail);
  return s.Run();
}

Status WriteAudit(Connection& c, UnixMillis ts, const AuditContext& ctx, std::string_view action,
                  std::string_view subject, const json& detail) {
  return WriteAudit(c, ts, ctx.actor, action, subject, ctx.reason, Dump(detail));
}

Status WriteChange(Connection& c, ChangeKind kind, std::string_view key) {
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT INTO changes (kind, key) VALUES (?1, ?2)"));
  s.BindText(1, ChangeKindName(kind)).BindText(2, key);
  return s.Run();
}

// Moves one certificate to a new state and records it (audit + change).
Status TransitionCertificate(Connection& c, UnixMillis now, const AuditContext& ctx,
                             std::string_view action, std::string_view serial,
                             std::string_view device, CertStatus status, RevocationReason reason,
                             UnixMillis revoked_ms, json detail) {
  FG_RETURN_IF_ERROR(SetCertState(c, serial, status, reason, revoked_ms));
  detail["serial"] = serial;
  detail["device"] = device;
  FG_RETURN_IF_ERROR(WriteAudit(c, now, ctx, action, serial, detail));
  return WriteChange(c, ChangeKind::kCertificate, serial);
}

// ---- enrolment credentials ----

std::string_view CredentialLabel(EnrolmentKind k) {
  switch (k) {
    case EnrolmentKind::kBootstrapToken:
      return "bootstrap token";
    case EnrolmentKind::kVendorCertificate:
      return "vendor certificate";
    case EnrolmentKind::kLegacyCredential:
      return "legacy credential";
    case EnrolmentKind::kRenewal:
      return "renewing certificate";
    case EnrolmentKind::kOperator:
      break;
  }
  return "operator";
}

// Whether the credential authorises an issuance to `device` at all
// (PermissionDenied otherwise). Read-only; runs first, so that a caller
// without a valid credential learns nothing else from the refusal.
Status CheckCredentialValid(Connection& c, std::string_view device,
                            const EnrolmentAuthorization& auth, UnixMillis now) {
  const std::string& cred = auth.credential;
  const std::string dev(device);
  switch (auth.kind) {
    case EnrolmentKind::kOperator:
    case EnrolmentKind::kVendorCertificate:  // the chain is checked by pki; uses below
      return Status::Ok();
    case EnrolmentKind::kBootstrapToken: {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT device, expires_ms, used_ms, revoked_ms FROM "
                                                 "bootstrap_tokens WHERE ref = ?1"));
      s.BindText(1, cred);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::PermissionDenied("bootstrap token " + cred + " is not known");
      // The token's own device is not named: the caller may not own it.
      if (s.Text(0) != device) {
        return Status::PermissionDenied("bootstrap token " + cred + " was not issued for device " +
                                        dev);
      }
      if (s.Int(3) != 0) {
        return Status::PermissionDenied("bootstrap token " + cred + " was revoked at " +
                                        FormatRfc3339(s.Int(3)));
      }
      if (s.Int(2) != 0) {
        return Status::PermissionDenied("bootstrap token " + cred + " was already used at " +
                                        FormatRfc3339(s.Int(2)));
      }
      // Expired from its expiry instant on (as pki's pre-check has it).
      if (s.Int(1) <= now) {
        return Status::PermissionDenied("bootstrap token " + cred + " expired at " +
                                        FormatRfc3339(s.Int(1)));
      }
      return Status::Ok();
    }
    case EnrolmentKind::kLegacyCredential: {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT cutoff_ms FROM legacy_credentials WHERE fp = ?1"));
      s.BindText(1, cred);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) {
        return Status::PermissionDenied("legacy credential " + cred + " is not registered");
      }
      if (s.Int(0) <= now) {
        return Status::PermissionDenied("legacy credential " + cred + " is past its cutoff (" +
                                        FormatRfc3339(s.Int(0)) + ")");
      }
      return Status::Ok();
    }
    case EnrolmentKind::kRenewal: {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT device, status, not_after_ms FROM "
                                                 "certificates WHERE serial = ?1"));
      s.BindText(1, cred);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::PermissionDenied("renewing certificate " + cred + " is not known");
      if (s.Text(0) != device) {
        return Status::PermissionDenied("renewing certificate " + cred +
                                        " does not belong to device " + dev);
      }
      FG_ASSIGN_OR_RETURN(CertStatus status, ParseCertStatus(s.Text(1)));
      if (status != CertStatus::kValid) {
        return Status::PermissionDenied("renewing certificate " + cred + " is " +
                                        std::string(CertStatusName(status)));
      }
      if (s.Int(2) < now) {
        return Status::PermissionDenied("renewing certificate " + cred + " expired at " +
                                        FormatRfc3339(s.Int(2)));
      }
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown enrolment kind");
}

// The one-time checks: a vendor certificate enrols one device, once, and
// only a device that never had a certificate; a legacy credential migrates
// each device once.
Status CheckCredentialUnused(Connection& c, std::string_view device,
                             const EnrolmentAuthorization& auth) {
  const std::string dev(device);
  if (auth.kind == EnrolmentKind::kVendorCertificate) {
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT serial FROM certificates WHERE device = ?1 LIMIT 1"));
      s.BindText(1, device);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        return Status::FailedPrecondition("device " + dev + " is already enrolled (certificate " +
                                          s.Text(0) +
                                          "): a vendor certificate only serves initial enrolment");
      }
    }
    FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT 1 FROM credential_uses WHERE kind = "
                                               "'vendor_certificate' AND credential = ?1"));
    s.BindText(1, auth.credential);
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return Status::AlreadyExists("vendor certificate " + auth.credential +
                                   " was already used to enrol a device");
    }
  } else if (auth.kind == EnrolmentKind::kLegacyCredential) {
    FG_ASSIGN_OR_RETURN(Statement s,
                        c.Prepare("SELECT serial FROM credential_uses WHERE kind = "
                                  "'legacy_credential' AND credential = ?1 AND device = ?2"));
    s.BindText(1, auth.credential).BindText(2, device);
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return Status::AlreadyExists("device " + dev + " already migrated off legacy credential " +
                                   auth.credential + " (certificate " + s.Text(0) + ")");
    }
  }
  return Status::Ok();
}

// Marks the credential used by the certificate `cert` (already inserted).
Status ConsumeCredential(Connection& c, const Certificate& cert, const EnrolmentAuthorization& auth,
                         UnixMillis now) {
  if (auth.kind == EnrolmentKind::kOperator || auth.kind == EnrolmentKind::kRenewal) {
    return Status::Ok();
  }
  if (auth.kind == EnrolmentKind::kBootstrapToken) {
    FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE bootstrap_tokens SET used_ms = ?2 "
                                               "WHERE ref = ?1 AND used_ms = 0"));
    s.BindText(1, auth.credential).BindInt(2, now);
    FG_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(c.handle()) != 1) {
      return Status::PermissionDenied("bootstrap token " + auth.credential + " was already used");
    }
  }
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("INSERT INTO credential_uses (kind, credential, device, serial, "
                                "ts_ms, source_ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  s.BindText(1, EnrolmentKindName(auth.kind))
      .BindText(2, auth.credential)
      .BindText(3, cert.device)
      .BindText(4, cert.serial)
      .BindInt(5, now)
      .BindText(6, auth.source_ip);
  Status inserted = s.Run();
  if (inserted.IsAlreadyExists()) {
    // The unique indexes held: only reachable if the checks above were bypassed.
    return Status::AlreadyExists(std::string(CredentialLabel(auth.kind)) + " " + auth.credential +
                                 " was already used");
  }
  return inserted;
}

Result<BootstrapToken> ReadBootstrapToken(const Statement& s) {
  BootstrapToken t;
  t.ref = s.Text(0);
  t.device = s.Text(1);
  t.created_ms = s.Int(2);
  t.expires_ms = s.Int(3);
  t.used_ms = s.Int(4);
  t.revoked_ms = s.Int(5);
  return t;
}

// ---- endpoints ----

Result<EndpointStatus> ParseStoredEndpointStatus(std::string_view s) {
  auto parsed = ParseEndpointStatus(s);
  if (!parsed.ok())
    return Status::Internal("store: unknown endpoint status '" + std::string(s) + "'");
  return *parsed;
}

// The rotation order's lifecycle: active <-> draining -> retired, and
// active -> retired directly; retired is terminal.
bool IsAllowedEndpointTransition(EndpointStatus from, EndpointStatus to) {
  if (from == to) return false;
  switch (from) {
    case EndpointStatus::kActive:
      return true;  // to draining or retired
    case EndpointStatus::kDraining:
      return true;  // back to active (un-drain) or on to retired
    case EndpointStatus::kRetired:
      return false;
  }
  return false;
}

}  // namespace
}  // namespace sqlite

using nlohmann::json;
using sqlite::Connection;
using sqlite::Statement;
using sqlite::Dump;
using sqlite::ParseStringArray;

void SetSqliteSynchronousNormalForTest(bool normal) { sqlite::g_synchronous_normal_for_test.store(normal); }

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(path));
  // Migrating under BEGIN IMMEDIATE: two processes opening a fresh file at
  // once must not both apply version 1.
  Status migrated = conn->WriteTransaction([&]() -> Status {
    FG_RETURN_IF_ERROR(
        conn->Exec("CREATE TABLE IF NOT EXISTS schema_version ("
                   "version INTEGER PRIMARY KEY NOT NULL, applied_ms INTEGER NOT NULL)"));
    int64_t current = 0;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          conn->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) current = s.Int(0);
    }
    const int64_t latest = static_cast<int64_t>(std::size(sqlite::kMigrations));
    if (current > latest) {
      return Status::FailedPrecondition(
          "store " + path + " has schema version " + std::to_string(current) +
          ", newer than this binary knows (" + std::to_string(latest) + "): upgrade femtoguard");
    }
    for (int64_t v = current + 1; v <= latest; ++v) {
      Status applied = conn->Exec(sqlite::kMigrations[v - 1]);
      if (!applied.ok()) {
        return Status::Internal("store: migration to version " + std::to_string(v) +
                                " failed: " + applied.message());
      }
      FG_ASSIGN_OR_RETURN(Statement s, conn->Prepare("INSERT INTO schema_version "
                                                     "(version, applied_ms) VALUES (?1, ?2)"));
      s.BindInt(1, v).BindInt(2, NowMillis());
      FG_RETURN_IF_ERROR(s.Run());
    }
    return Status::Ok();
  });
  if (!migrated.ok()) return migrated;
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(conn)));
}

SqliteStore::SqliteStore(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

SqliteStore::~SqliteStore() = default;

// ---- devices ----

namespace sqlite {

// The bodies of the device writes, run inside a caller's transaction so that
// ImportDevices can apply a whole registry file in one.
Status AddDeviceTx(Connection& c, const Device& device, const AuditContext& audit) {
  const UnixMillis now = NowMillis();
  {
    FG_ASSIGN_OR_RETURN(
        Statement s,
        c.Prepare("INSERT INTO devices (id, owner, mode, site_lat, site_lon, site_radius_m, "
                  "prefixes, csg, cert_fp, max_ues, status, created_ms, updated_ms, "
                  "last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                  "?13, ?14)"));
    s.BindText(1, device.id);
    sqlite::BindAttributes(s, device);
    // Timestamps given by the caller (a migration from another store) are kept.
    s.BindText(11, DeviceStatusName(device.status))
        .BindInt(12, device.created_ms != 0 ? device.created_ms : now)
        .BindInt(13, device.updated_ms != 0 ? device.updated_ms : now)
        .BindInt(14, device.last_seen_ms);
    Status inserted = s.Run();
    if (inserted.IsAlreadyExists()) {
      return Status::AlreadyExists("device " + device.id + " already exists");
    }
    FG_RETURN_IF_ERROR(inserted);
  }
  json detail = {{"status", DeviceStatusName(device.status)},
                 {"mode", AccessModeName(device.mode)}};
  FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "device.add", device.id, detail));
  return sqlite::WriteChange(c, ChangeKind::kDevice, device.id);
}

Status UpdateDeviceAttributesTx(Connection& c, const Device& device, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(std::optional<Device> current, sqlite::LoadDevice(c, device.id));
  if (!current) return Status::NotFound("device " + device.id + " is not registered");
  std::vector<std::string> changed = ChangedDeviceAttributes(*current, device);
  if (changed.empty()) return Status::Ok();  // nothing happened, so nothing to record
  const UnixMillis now = NowMillis();
  {
    FG_ASSIGN_OR_RETURN(
        Statement s,
        c.Prepare("UPDATE devices SET owner = ?2, mode = ?3, site_lat = ?4, site_lon = ?5, "
                  "site_radius_m = ?6, prefixes = ?7, csg = ?8, cert_fp = ?9, max_ues = ?10, "
                  "updated_ms = ?11 WHERE id = ?1"));
    s.BindText(1, device.id);
    sqlite::BindAttributes(s, device);
    s.BindInt(11, now);
    FG_RETURN_IF_ERROR(s.Run());
  }
  json detail = {{"changed", changed}};
  FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "device.update", device.id, detail));
  return sqlite::WriteChange(c, ChangeKind::kDevice, device.id);
}

Result<DeviceTransition> SetDeviceStatusTx(Connection& c, std::string_view id, DeviceStatus to,
                                           const AuditContext& audit) {
  const std::string device(id);
  FG_ASSIGN_OR_RETURN(std::optional<Device> current, sqlite::LoadDevice(c, id));
  if (!current) return Status::NotFound("device " + device + " is not registered");
  DeviceTransition t;
  t.from = current->status;
  t.to = to;
  if (!IsAllowedTransition(t.from, to)) {
    return Status::FailedPrecondition("device " + device + ": transition from " +
                                      std::string(DeviceStatusName(t.from)) + " to " +
                                      std::string(DeviceStatusName(to)) + " is not allowed");
  }
  const UnixMillis now = NowMillis();
  FG_RETURN_IF_ERROR(sqlite::SetDeviceStatusRow(c, id, to, now));
  json detail = {{"from", DeviceStatusName(t.from)}, {"to", DeviceStatusName(to)}};
  FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "device.status", device, detail));
  FG_RETURN_IF_ERROR(sqlite::WriteChange(c, ChangeKind::kDevice, device));

  if (to == DeviceStatus::kSuspended) {
    FG_ASSIGN_OR_RETURN(t.certs_held, sqlite::SerialsWithStatus(c, id, CertStatus::kValid));
    for (const std::string& serial : t.certs_held) {
      FG_RETURN_IF_ERROR(sqlite::TransitionCertificate(
          c, now, audit, "cert.hold", serial, device, CertStatus::kHold,
          RevocationReason::kCertificateHold, now,
          {{"reason", RevocationReasonName(RevocationReason::kCertificateHold)}}));
    }
  } else if (t.from == DeviceStatus::kSuspended && to == DeviceStatus::kActive) {
    FG_ASSIGN_OR_RETURN(t.certs_released, sqlite::SerialsWithStatus(c, id, CertStatus::kHold));
    for (const std::string& serial : t.certs_released) {
      FG_RETURN_IF_ERROR(sqlite::TransitionCertificate(
          c, now, audit, "cert.release", serial, device, CertStatus::kValid,
          RevocationReason::kUnspecified, 0, json::object()));
    }
  } else if (to == DeviceStatus::kDecommissioned) {
    FG_ASSIGN_OR_RETURN(std::vector<std::string> valid,
                        sqlite::SerialsWithStatus(c, id, CertStatus::kValid));
    FG_ASSIGN_OR_RETURN(std::vector<std::string> held,
                        sqlite::SerialsWithStatus(c, id, CertStatus::kHold));
    const auto reason = RevocationReason::kCessationOfOperation;
    for (const auto* group : {&valid, &held}) {
      const bool was_held = group == &held;
      for (const std::string& serial : *group) {
        json d = {{"reason", RevocationReasonName(reason)}};
        if (was_held) d["from"] = "hold";
        FG_RETURN_IF_ERROR(sqlite::TransitionCertificate(c, now, audit, "cert.revoke", serial,
                                                         device, CertStatus::kRevoked, reason,
                                                         now, std::move(d)));
        t.certs_revoked.push_back(serial);
      }
    }
  }
  return t;
}

}  // namespace sqlite

Status SqliteStore::AddDevice(const Device& device, const AuditContext& audit) {
  FG_RETURN_IF_ERROR(ValidateDeviceId(device.id));
  if (device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status { return sqlite::AddDeviceTx(c, device, audit); });
}

Status SqliteStore::UpdateDeviceAttributes(const Device& device, const AuditContext& audit) {
  if (device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status { return sqlite::UpdateDeviceAttributesTx(c, device, audit); });
}

Status SqliteStore::ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) {
  for (const DeviceImport& step : plan) {
    FG_RETURN_IF_ERROR(ValidateDeviceId(step.device.id));
    if (step.device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    for (const DeviceImport& step : plan) {
      if (step.is_new) {
        FG_RETURN_IF_ERROR(sqlite::AddDeviceTx(c, step.device, audit));
        continue;
      }
      if (step.attributes) FG_RETURN_IF_ERROR(sqlite::UpdateDeviceAttributesTx(c, step.device, audit));
      if (step.status) {
        FG_ASSIGN_OR_RETURN(DeviceTransition t, sqlite::SetDeviceStatusTx(c, step.device.id, *step.status, audit));
        (void)t;
      }
    }
    return Status::Ok();
  });
}

Result<Device> SqliteStore::GetDevice(std::string_view id) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(std::optional<Device> d, sqlite::LoadDevice(*conn_, id));
  if (!d) return Status::NotFound("device " + std::string(id) + " is not registered");
  return std::move(*d);
}

Result<std::vector<Device>> SqliteStore::ListDevices(const DeviceFilter& filter) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  auto prepared = filter.status
                      ? c.Prepare("SELECT" FG_DEVICE_COLUMNS
                                  "FROM devices WHERE status = ?2 ORDER BY id LIMIT ?1")
                      : c.Prepare("SELECT" FG_DEVICE_COLUMNS "FROM devices ORDER BY id LIMIT ?1");
  if (!prepared.ok()) return prepared.status();
  Statement& s = prepared.value();
  s.BindInt(1, sqlite::LimitOrAll(filter.limit));
  if (filter.status) s.BindText(2, DeviceStatusName(*filter.status));
  std::vector<Device> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(Device d, sqlite::ReadDevice(s));
    out.push_back(std::move(d));
  }
  return out;
}

Result<DeviceTransition> SqliteStore::SetDeviceStatus(std::string_view id, DeviceStatus to,
                                                      const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Result<DeviceTransition> { return sqlite::SetDeviceStatusTx(c, id, to, audit); });
}

Status SqliteStore::TouchDevice(std::string_view id, UnixMillis when) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    bool found = false;
    FG_RETURN_IF_ERROR(sqlite::TouchDeviceRow(c, id, when, &found));
    if (!found) return Status::NotFound("device " + std::string(id) + " is not registered");
    return Status::Ok();
  });
}

Result<size_t> SqliteStore::TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  size_t found_rows = 0;
  FG_RETURN_IF_ERROR(c.WriteTransaction([&]() -> Status {
    found_rows = 0;
    for (const auto& [id, when] : seen) {
      bool found = false;
      FG_RETURN_IF_ERROR(sqlite::TouchDeviceRow(c, id, when, &found));
      found_rows += found ? 1 : 0;
    }
    return Status::Ok();
  }));
  return found_rows;
}

// ---- certificates ----

Result<std::optional<std::string>> SqliteStore::FindKeyOwner(std::string_view key_fp) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT device FROM certificates WHERE key_fp = ?1"));
  s.BindText(1, key_fp);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Result<std::vector<std::string>> SqliteStore::RecordIssuedCertificate(
    const Certificate& cert, const AuditContext& audit, const EnrolmentAuthorization& auth) {
  if (cert.serial.empty() || cert.device.empty() || cert.key_fp.empty()) {
    return Status::InvalidArgument("certificate record needs a serial, a device and a key_fp");
  }
  if (EnrolmentKindName(auth.kind) == "unknown") {
    return Status::InvalidArgument("unknown enrolment kind " +
                                   std::to_string(static_cast<int>(auth.kind)));
  }
  if (auth.kind != EnrolmentKind::kOperator && auth.credential.empty()) {
    return Status::InvalidArgument(std::string(EnrolmentKindName(auth.kind)) +
                                   " issuance needs the credential that authorised it");
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Result<std::vector<std::string>> {
    const UnixMillis now = NowMillis();
    // Under the write lock, in this order: the credential, the device, the
    // one-time uses; then the key and serial (unique indexes) on insert.
    FG_RETURN_IF_ERROR(sqlite::CheckCredentialValid(c, cert.device, auth, now));
    FG_ASSIGN_OR_RETURN(std::optional<Device> device, sqlite::LoadDevice(c, cert.device));
    if (!device) {
      return Status::FailedPrecondition("device " + cert.device + " is not registered");
    }
    if (device->status != DeviceStatus::kProvisioned && device->status != DeviceStatus::kActive) {
      return Status::FailedPrecondition("device " + cert.device + " is " +
                                        std::string(DeviceStatusName(device->status)) +
                                        ": no certificate may be issued to it");
    }
    FG_RETURN_IF_ERROR(sqlite::CheckCredentialUnused(c, cert.device, auth));
    const UnixMillis issued = cert.issued_ms != 0 ? cert.issued_ms : now;

    // Earlier valid certificates, read before the new one is in the table.
    FG_ASSIGN_OR_RETURN(std::vector<std::string> superseded,
                        sqlite::SerialsWithStatus(c, cert.device, CertStatus::kValid));
    {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare("INSERT INTO certificates (serial, device, key_fp, cert_fp, not_before_ms, "
                    "not_after_ms, issued_ms, status, reason, revoked_ms, der) VALUES (?1, ?2, "
                    "?3, ?4, ?5, ?6, ?7, 'valid', 0, 0, ?8)"));
      s.BindText(1, cert.serial)
          .BindText(2, cert.device)
          .BindText(3, cert.key_fp)
          .BindText(4, cert.cert_fp)
          .BindInt(5, cert.not_before_ms)
          .BindInt(6, cert.not_after_ms)
          .BindInt(7, issued)
          .BindBlob(8, cert.der);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        // The unique indexes are the real guard; find out which one held,
        // inside the same transaction, to say who owns what.
        FG_ASSIGN_OR_RETURN(Statement q, c.Prepare("SELECT device, serial FROM certificates "
                                                   "WHERE key_fp = ?1"));
        q.BindText(1, cert.key_fp);
        FG_ASSIGN_OR_RETURN(bool row, q.Step());
        if (row && q.Text(0) == cert.device) {
          return Status::AlreadyExists("key " + cert.key_fp + " was already used by certificate " +
                                       q.Text(1) + " of device " + cert.device +
                                       "; a new certificate needs a new key");
        }
        if (row) {
          return Status::AlreadyExists("key " + cert.key_fp + " is bound to device " + q.Text(0) +
                                       "; it cannot be bound to device " + cert.device);
        }
        return Status::AlreadyExists("certificate serial " + cert.serial + " already exists");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    FG_RETURN_IF_ERROR(sqlite::ConsumeCredential(c, cert, auth, now));

    if (device->status == DeviceStatus::kProvisioned) {
      FG_RETURN_IF_ERROR(sqlite::SetDeviceStatusRow(c, cert.device, DeviceStatus::kActive, now));
      json detail = {{"from", DeviceStatusName(DeviceStatus::kProvisioned)},
                     {"to", DeviceStatusName(DeviceStatus::kActive)},
                     {"serial", cert.serial}};
      FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit.actor, "device.status", cert.device,
                                            "first certificate issued", sqlite::Dump(detail)));
      FG_RETURN_IF_ERROR(sqlite::WriteChange(c, ChangeKind::kDevice, cert.device));
    }
    for (const std::string& old : superseded) {
      FG_RETURN_IF_ERROR(sqlite::TransitionCertificate(
          c, now, audit, "cert.supersede", old, cert.device, CertStatus::kRevoked,
          RevocationReason::kSuperseded, now,
          {{"reason", RevocationReasonName(RevocationReason::kSuperseded)}, {"by", cert.serial}}));
    }
    bool found = false;
    FG_RETURN_IF_ERROR(sqlite::TouchDeviceRow(c, cert.device, issued, &found));

    json detail = {{"serial", cert.serial},
                   {"device", cert.device},
                   {"key_fp", cert.key_fp},
                   {"not_after_ms", cert.not_after_ms}};
    if (!superseded.empty()) detail["superseded"] = superseded;
    detail["auth"] = EnrolmentKindName(auth.kind);
    if (!auth.credential.empty()) detail["credential"] = auth.credential;
    if (!auth.source_ip.empty()) detail["source_ip"] = auth.source_ip;
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "cert.issue", cert.serial, detail));
    FG_RETURN_IF_ERROR(sqlite::WriteChange(c, ChangeKind::kCertificate, cert.serial));
    return superseded;
  });
}

Result<Certificate> SqliteStore::GetCertificate(std::string_view serial) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(
      Statement s, conn_->Prepare("SELECT" FG_CERT_COLUMNS "FROM certificates WHERE serial = ?1"));
  s.BindText(1, serial);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no certificate with serial " + std::string(serial));
  return sqlite::ReadCertificate(s);
}

Result<std::vector<Certificate>> SqliteStore::ListCertificates(
    std::optional<std::string_view> device) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  if (device) {
    FG_ASSIGN_OR_RETURN(Statement s,
                        c.Prepare("SELECT" FG_CERT_COLUMNS "FROM certificates WHERE device = ?1 "
                                  "ORDER BY issued_ms, rowid"));
    s.BindText(1, *device);
    return sqlite::ReadCertificates(s);
  }
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT" FG_CERT_COLUMNS
                                             "FROM certificates ORDER BY issued_ms, rowid"));
  return sqlite::ReadCertificates(s);
}

Status SqliteStore::RevokeCertificate(std::string_view serial, RevocationReason reason,
                                      UnixMillis when, const AuditContext& audit) {
  if (RevocationReasonName(reason) == "unknown") {
    return Status::InvalidArgument("unknown revocation reason code " +
                                   std::to_string(static_cast<int>(reason)));
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  const std::string id(serial);
  return c.WriteTransaction([&]() -> Status {
    std::string device;
    CertStatus status;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT device, status FROM certificates WHERE serial = ?1"));
      s.BindText(1, serial);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("no certificate with serial " + id);
      device = s.Text(0);
      FG_ASSIGN_OR_RETURN(status, sqlite::ParseCertStatus(s.Text(1)));
    }
    if (status == CertStatus::kRevoked) {
      return Status::FailedPrecondition("certificate " + id + " is already revoked");
    }
    const UnixMillis now = NowMillis();
    const UnixMillis at = when != 0 ? when : now;
    if (reason == RevocationReason::kCertificateHold) {
      if (status == CertStatus::kHold) {
        return Status::FailedPrecondition("certificate " + id + " is already on hold");
      }
      return sqlite::TransitionCertificate(c, now, audit, "cert.hold", id, device,
                                           CertStatus::kHold, reason, at,
                                           {{"reason", RevocationReasonName(reason)}});
    }
    json detail = {{"reason", RevocationReasonName(reason)}};
    if (status == CertStatus::kHold) detail["from"] = "hold";
    return sqlite::TransitionCertificate(c, now, audit, "cert.revoke", id, device,
                                         CertStatus::kRevoked, reason, at, std::move(detail));
  });
}

Result<std::vector<Certificate>> SqliteStore::ListRevokedCertificates(UnixMillis now) {
  std::lock_guard lock(mutex_);
  // A certificate is valid through its notAfter instant (RFC 5280 §4.1.2.5),
  // so it stays listed until then.
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT" FG_CERT_COLUMNS
                                     "FROM certificates WHERE status IN ('hold', 'revoked') "
                                     "AND not_after_ms >= ?1 ORDER BY revoked_ms, rowid"));
  s.BindInt(1, now);
  return sqlite::ReadCertificates(s);
}

// ---- enrolment credentials ----

Status SqliteStore::AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) {
  if (token.ref.empty() || token.device.empty()) {
    return Status::InvalidArgument("bootstrap token needs a ref and a device");
  }
  if (token.used_ms != 0) return Status::InvalidArgument("a new bootstrap token cannot be used");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    const UnixMillis created = token.created_ms != 0 ? token.created_ms : now;
    if (token.expires_ms <= created) {
      return Status::InvalidArgument("bootstrap token " + token.ref +
                                     " must expire after it is created");
    }
    FG_ASSIGN_OR_RETURN(std::optional<Device> device, sqlite::LoadDevice(c, token.device));
    if (!device) return Status::NotFound("device " + token.device + " is not registered");
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("INSERT INTO bootstrap_tokens (ref, device, created_ms, "
                                    "expires_ms, used_ms) VALUES (?1, ?2, ?3, ?4, 0)"));
      s.BindText(1, token.ref)
          .BindText(2, token.device)
          .BindInt(3, created)
          .BindInt(4, token.expires_ms);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        return Status::AlreadyExists("bootstrap token " + token.ref + " already exists");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    // The reference only: the secret is never stored, so never logged.
    json detail = {{"ref", token.ref}, {"expires", FormatRfc3339(token.expires_ms)}};
    return sqlite::WriteAudit(c, now, audit, "token.create", token.device, detail);
  });
}

Result<BootstrapToken> SqliteStore::GetBootstrapToken(std::string_view ref) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms FROM "
                                     "bootstrap_tokens WHERE ref = ?1"));
  s.BindText(1, ref);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no bootstrap token " + std::string(ref));
  return sqlite::ReadBootstrapToken(s);
}

Result<std::optional<std::string>> SqliteStore::FindVendorCertificateUse(
    std::string_view vendor_cert_fp) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT device FROM credential_uses WHERE kind = "
                                                  "'vendor_certificate' AND credential = ?1"));
  s.BindText(1, vendor_cert_fp);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status SqliteStore::AddVendorCa(const VendorCa& ca, const AuditContext& audit) {
  if (ca.fp.empty() || ca.pem.empty()) {
    return Status::InvalidArgument("vendor CA needs a fingerprint and a PEM certificate");
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT INTO vendor_cas (fp, subject, pem, "
                                                 "added_ms) VALUES (?1, ?2, ?3, ?4)"));
      s.BindText(1, ca.fp)
          .BindText(2, ca.subject)
          .BindText(3, ca.pem)
          .BindInt(4, ca.added_ms != 0 ? ca.added_ms : now);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        return Status::AlreadyExists("vendor CA " + ca.fp + " is already trusted");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    json detail = {{"subject", ca.subject}};
    return sqlite::WriteAudit(c, now, audit, "vendor_ca.add", ca.fp, detail);
  });
}

Status SqliteStore::RemoveVendorCa(std::string_view fp, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  const std::string id(fp);
  return c.WriteTransaction([&]() -> Status {
    std::string subject;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("DELETE FROM vendor_cas WHERE fp = ?1 RETURNING subject"));
      s.BindText(1, fp);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("vendor CA " + id + " is not trusted");
      subject = s.Text(0);
      FG_ASSIGN_OR_RETURN(bool more, s.Step());  // runs the statement to completion
      if (more) return Status::Internal("store: two vendor CAs with fingerprint " + id);
    }
    json detail = {{"subject", subject}};
    return sqlite::WriteAudit(c, NowMillis(), audit, "vendor_ca.remove", id, detail);
  });
}

Result<std::vector<VendorCa>> SqliteStore::ListVendorCas() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT fp, subject, pem, added_ms FROM "
                                                  "vendor_cas ORDER BY added_ms, fp"));
  std::vector<VendorCa> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    VendorCa ca;
    ca.fp = s.Text(0);
    ca.subject = s.Text(1);
    ca.pem = s.Text(2);
    ca.added_ms = s.Int(3);
    out.push_back(std::move(ca));
  }
  return out;
}

Status SqliteStore::AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) {
  if (cred.fp.empty() || cred.pem.empty()) {
    return Status::InvalidArgument("legacy credential needs a fingerprint and a PEM certificate");
  }
  if (cred.cutoff_ms <= 0) return Status::InvalidArgument("legacy credential needs a cutoff");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("INSERT INTO legacy_credentials (fp, subject, pem, cutoff_ms, "
                                    "added_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
      s.BindText(1, cred.fp)
          .BindText(2, cred.subject)
          .BindText(3, cred.pem)
          .BindInt(4, cred.cutoff_ms)
          .BindInt(5, cred.added_ms != 0 ? cred.added_ms : now);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        return Status::AlreadyExists("legacy credential " + cred.fp + " is already registered");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    json detail = {{"subject", cred.subject}, {"cutoff", FormatRfc3339(cred.cutoff_ms)}};
    return sqlite::WriteAudit(c, now, audit, "legacy.add", cred.fp, detail);
  });
}

Result<std::vector<LegacyCredential>> SqliteStore::ListLegacyCredentials() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT fp, subject, pem, cutoff_ms, added_ms FROM "
                                     "legacy_credentials ORDER BY added_ms, fp"));
  std::vector<LegacyCredential> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    LegacyCredential l;
    l.fp = s.Text(0);
    l.subject = s.Text(1);
    l.pem = s.Text(2);
    l.cutoff_ms = s.Int(3);
    l.added_ms = s.Int(4);
    out.push_back(std::move(l));
  }
  return out;
}

Result<bool> SqliteStore::LegacyCredentialUsed(std::string_view fp, std::string_view device) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT 1 FROM credential_uses WHERE kind = "
                                     "'legacy_credential' AND credential = ?1 AND device = ?2"));
  s.BindText(1, fp).BindText(2, device);
  return s.Step();
}

// ---- authentication endpoints ----

Status SqliteStore::AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) {
  if (endpoint.address.empty()) return Status::InvalidArgument("endpoint needs an address");
  if (EndpointStatusName(endpoint.status) == "unknown") {
    return Status::InvalidArgument("unknown endpoint status " +
                                   std::to_string(static_cast<int>(endpoint.status)));
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("INSERT INTO endpoints (address, status, created_ms, "
                                    "updated_ms) VALUES (?1, ?2, ?3, ?4)"));
      s.BindText(1, endpoint.address)
          .BindText(2, EndpointStatusName(endpoint.status))
          .BindInt(3, endpoint.created_ms != 0 ? endpoint.created_ms : now)
          .BindInt(4, endpoint.updated_ms != 0 ? endpoint.updated_ms : now);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        return Status::AlreadyExists("endpoint " + endpoint.address + " already exists");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    json detail = {{"status", EndpointStatusName(endpoint.status)}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "endpoint.add", endpoint.address, detail));
    return sqlite::WriteChange(c, ChangeKind::kEndpoint, endpoint.address);
  });
}

Status SqliteStore::SetEndpointStatus(std::string_view address, EndpointStatus to,
                                      const AuditContext& audit) {
  if (EndpointStatusName(to) == "unknown") {
    return Status::InvalidArgument("unknown endpoint status " +
                                   std::to_string(static_cast<int>(to)));
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  const std::string id(address);
  return c.WriteTransaction([&]() -> Status {
    EndpointStatus from;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT status FROM endpoints WHERE address = ?1"));
      s.BindText(1, address);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("endpoint " + id + " is not known");
      FG_ASSIGN_OR_RETURN(from, sqlite::ParseStoredEndpointStatus(s.Text(0)));
    }
    if (!sqlite::IsAllowedEndpointTransition(from, to)) {
      return Status::FailedPrecondition("endpoint " + id + ": transition from " +
                                        std::string(EndpointStatusName(from)) + " to " +
                                        std::string(EndpointStatusName(to)) + " is not allowed");
    }
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE endpoints SET status = ?2, updated_ms = "
                                                 "?3 WHERE address = ?1"));
      s.BindText(1, address).BindText(2, EndpointStatusName(to)).BindInt(3, now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    json detail = {{"from", EndpointStatusName(from)}, {"to", EndpointStatusName(to)}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "endpoint.status", id, detail));
    return sqlite::WriteChange(c, ChangeKind::kEndpoint, id);
  });
}

Result<std::vector<Endpoint>> SqliteStore::ListEndpoints() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT address, status, created_ms, "
                                                  "updated_ms FROM endpoints ORDER BY address"));
  std::vector<Endpoint> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Endpoint e;
    e.address = s.Text(0);
    FG_ASSIGN_OR_RETURN(e.status, sqlite::ParseStoredEndpointStatus(s.Text(1)));
    e.created_ms = s.Int(2);
    e.updated_ms = s.Int(3);
    out.push_back(std::move(e));
  }
  return out;
}

// ---- API tokens ----

Status SqliteStore::AddApiToken(const ApiToken& token, const AuditContext& audit) {
  if (token.id.empty() || token.hash.empty()) {
    return Status::InvalidArgument("an API token needs an id and a hash");
  }
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT INTO api_tokens (id, role, hash, label, "
                                                 "created_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
      s.BindText(1, token.id)
          .BindText(2, ApiRoleName(token.role))
          .BindText(3, token.hash)
          .BindText(4, token.label)
          .BindInt(5, token.created_ms != 0 ? token.created_ms : now);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) return Status::AlreadyExists("API token " + token.id + " already exists");
      FG_RETURN_IF_ERROR(inserted);
    }
    json detail = {{"role", ApiRoleName(token.role)}, {"label", token.label}};
    return sqlite::WriteAudit(c, now, audit, "api_token.create", token.id, detail);
  });
}

namespace {
Result<ApiToken> ReadApiToken(Statement& s) {
  ApiToken t;
  t.id = s.Text(0);
  FG_ASSIGN_OR_RETURN(t.role, ParseApiRole(s.Text(1)));
  t.hash = s.Text(2);
  t.label = s.Text(3);
  t.created_ms = s.Int(4);
  t.revoked_ms = s.Int(5);
  return t;
}
}  // namespace

Result<std::optional<ApiToken>> SqliteStore::FindApiTokenByHash(std::string_view hash) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT id, role, hash, label, created_ms, revoked_ms "
                                                  "FROM api_tokens WHERE hash = ?1 AND revoked_ms = 0"));
  s.BindText(1, hash);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<ApiToken>();
  FG_ASSIGN_OR_RETURN(ApiToken t, ReadApiToken(s));
  return std::optional<ApiToken>(std::move(t));
}

Result<std::vector<ApiToken>> SqliteStore::ListApiTokens() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT id, role, hash, label, created_ms, revoked_ms "
                                                  "FROM api_tokens ORDER BY created_ms, id"));
  std::vector<ApiToken> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(ApiToken t, ReadApiToken(s));
    out.push_back(std::move(t));
  }
  return out;
}

Status SqliteStore::RevokeApiToken(std::string_view id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE api_tokens SET revoked_ms = ?2 "
                                                 "WHERE id = ?1 AND revoked_ms = 0"));
      s.BindText(1, id).BindInt(2, now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) {
      return Status::NotFound("no live API token " + std::string(id));
    }
    return sqlite::WriteAudit(c, now, audit, "api_token.revoke", id, json::object());
  });
}

// ---- bootstrap token custody (issue 14) ----

Result<std::vector<BootstrapToken>> SqliteStore::ListBootstrapTokens(std::optional<std::string_view> device) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare("SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms FROM "
                                     "bootstrap_tokens WHERE ?1 IS NULL OR device = ?1 ORDER BY created_ms, ref"));
  if (device) s.BindText(1, *device);
  std::vector<BootstrapToken> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(BootstrapToken t, sqlite::ReadBootstrapToken(s));
    out.push_back(std::move(t));
  }
  return out;
}

Status SqliteStore::RevokeBootstrapToken(std::string_view ref, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    BootstrapToken t;
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms "
                                                 "FROM bootstrap_tokens WHERE ref = ?1"));
      s.BindText(1, ref);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("no bootstrap token " + std::string(ref));
      FG_ASSIGN_OR_RETURN(t, sqlite::ReadBootstrapToken(s));
    }
    if (t.revoked_ms != 0) {
      return Status::FailedPrecondition("bootstrap token " + t.ref + " was already revoked at " +
                                        FormatRfc3339(t.revoked_ms));
    }
    if (t.used_ms != 0) {
      return Status::FailedPrecondition("bootstrap token " + t.ref + " was already used at " +
                                        FormatRfc3339(t.used_ms) + "; revoke the certificate it paid for instead");
    }
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE bootstrap_tokens SET revoked_ms = ?2 "
                                                 "WHERE ref = ?1 AND revoked_ms = 0 AND used_ms = 0"));
      s.BindText(1, ref).BindInt(2, now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) return Status::Internal("bootstrap token " + t.ref + " changed under us");
    json detail = {{"ref", t.ref}};
    return sqlite::WriteAudit(c, now, audit, "token.revoke", t.device, detail);
  });
}

// ---- blocks ----

namespace {
bool IsBlockKind(std::string_view k) { return k == "device" || k == "line" || k == "payments"; }
std::string BlockKey(std::string_view kind, std::string_view value) {
  return std::string(kind) + ":" + std::string(value);
}
}  // namespace

Status SqliteStore::AddBlock(const Block& block, const AuditContext& audit) {
  if (!IsBlockKind(block.kind)) return Status::InvalidArgument("unknown block kind '" + block.kind + "'");
  if (block.value.empty()) return Status::InvalidArgument("a block needs a value");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT OR IGNORE INTO blocks (kind, value, alert_id, "
                                                 "reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)"));
      s.BindText(1, block.kind)
          .BindText(2, block.value)
          .BindText(3, block.alert_id)
          .BindText(4, block.reason)
          .BindInt(5, block.created_ms != 0 ? block.created_ms : now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) return Status::Ok();  // already blocked: nothing changes
    json detail = {{"kind", block.kind}, {"alert", block.alert_id}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "block.add", BlockKey(block.kind, block.value), detail));
    return sqlite::WriteChange(c, ChangeKind::kBlock, BlockKey(block.kind, block.value));
  });
}

Status SqliteStore::RemoveBlock(std::string_view kind, std::string_view value, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("DELETE FROM blocks WHERE kind = ?1 AND value = ?2"));
      s.BindText(1, kind).BindText(2, value);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) {
      return Status::NotFound("no block " + BlockKey(kind, value));
    }
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, NowMillis(), audit, "block.remove", BlockKey(kind, value),
                                          json::object()));
    return sqlite::WriteChange(c, ChangeKind::kBlock, BlockKey(kind, value));
  });
}

Result<std::vector<Block>> SqliteStore::ListBlocks() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT kind, value, alert_id, reason, created_ms "
                                                  "FROM blocks ORDER BY kind, value"));
  std::vector<Block> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Block b;
    b.kind = s.Text(0);
    b.value = s.Text(1);
    b.alert_id = s.Text(2);
    b.reason = s.Text(3);
    b.created_ms = s.Int(4);
    out.push_back(std::move(b));
  }
  return out;
}

// ---- alerts ----

namespace {
Result<AlertState> ParseAlertState(std::string_view s) {
  if (s == "open") return AlertState::kOpen;
  if (s == "pending_approval") return AlertState::kPendingApproval;
  if (s == "acted") return AlertState::kActed;
  if (s == "dismissed") return AlertState::kDismissed;
  return Status::Internal("store: unknown alert state '" + std::string(s) + "'");
}
constexpr const char* kAlertColumns =
    "id, ts_ms, rule, severity, device, json, state, actions_done, actions_pending, updated_ms, "
    "actions_skipped, false_positive, seq";
std::string SkippedJson(const std::vector<StoredAlert::Skipped>& skipped) {
  json out = json::array();
  for (const auto& k : skipped) out.push_back({{"action", k.action}, {"reason", k.reason}});
  return Dump(out);
}
Result<std::vector<StoredAlert::Skipped>> ParseSkipped(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::Internal("store: actions_skipped is not a JSON array");
  std::vector<StoredAlert::Skipped> out;
  for (const json& e : j) {
    if (!e.is_object() || !e.contains("action") || !e["action"].is_string()) {
      return Status::Internal("store: bad actions_skipped entry");
    }
    out.push_back({e["action"].get<std::string>(), e.value("reason", std::string())});
  }
  return out;
}
Result<StoredAlert> ReadAlert(Statement& s) {
  StoredAlert a;
  a.id = s.Text(0);
  a.ts_ms = s.Int(1);
  a.rule = s.Text(2);
  a.severity = s.Text(3);
  a.device = s.Text(4);
  a.json = s.Text(5);
  FG_ASSIGN_OR_RETURN(a.state, ParseAlertState(s.Text(6)));
  FG_ASSIGN_OR_RETURN(a.actions_done, ParseStringArray(s.Text(7), "actions_done"));
  FG_ASSIGN_OR_RETURN(a.actions_pending, ParseStringArray(s.Text(8), "actions_pending"));
  a.updated_ms = s.Int(9);
  FG_ASSIGN_OR_RETURN(a.actions_skipped, ParseSkipped(s.Text(10)));
  a.false_positive = s.Int(11) != 0;
  a.seq = s.Int(12);
  return a;
}
}  // namespace

Result<bool> SqliteStore::AddAlert(const StoredAlert& alert, const AuditContext& audit) {
  if (alert.id.empty() || alert.rule.empty()) return Status::InvalidArgument("an alert needs an id and a rule");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  bool inserted = false;
  Status st = c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare((std::string("INSERT OR IGNORE INTO alerts (") + kAlertColumns +
                                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                                     "(SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts))")
                                        .c_str()));
      s.BindText(1, alert.id)
          .BindInt(2, alert.ts_ms)
          .BindText(3, alert.rule)
          .BindText(4, alert.severity)
          .BindText(5, alert.device)
          .BindText(6, alert.json)
          .BindText(7, AlertStateName(alert.state))
          .BindText(8, Dump(json(alert.actions_done)))
          .BindText(9, Dump(json(alert.actions_pending)))
          .BindInt(10, now)
          .BindText(11, SkippedJson(alert.actions_skipped))
          .BindInt(12, alert.false_positive ? 1 : 0);
      FG_RETURN_IF_ERROR(s.Run());
    }
    inserted = sqlite3_changes(c.handle()) > 0;
    if (!inserted) return Status::Ok();
    json detail = {{"rule", alert.rule}, {"device", alert.device}, {"severity", alert.severity}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "alert.raise", alert.id, detail));
    return sqlite::WriteChange(c, ChangeKind::kAlert, alert.id);
  });
  if (!st.ok()) return st;
  return inserted;
}

Result<StoredAlert> SqliteStore::GetAlert(std::string_view id) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s,
                      conn_->Prepare((std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE id = ?1").c_str()));
  s.BindText(1, id);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no alert " + std::string(id));
  return ReadAlert(s);
}

Result<std::vector<StoredAlert>> SqliteStore::ListAlerts(const AlertFilter& filter) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(
      Statement s,
      conn_->Prepare((std::string("SELECT ") + kAlertColumns +
                      " FROM alerts WHERE (?1 = '' OR rule = ?1) AND (?2 = '' OR device = ?2) "
                      "AND (?3 = '' OR state = ?3) AND (?5 = '' OR severity = ?5) "
                      "ORDER BY ts_ms DESC, id LIMIT ?4")
                         .c_str()));
  s.BindText(1, filter.rule)
      .BindText(2, filter.device)
      .BindText(3, filter.state ? AlertStateName(*filter.state) : std::string_view())
      .BindInt(4, filter.limit == 0 ? -1 : static_cast<int64_t>(filter.limit))
      .BindText(5, filter.severity);
  std::vector<StoredAlert> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(StoredAlert a, ReadAlert(s));
    out.push_back(std::move(a));
  }
  return out;
}

Status SqliteStore::UpdateAlert(const StoredAlert& alert, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE alerts SET state = ?2, actions_done = ?3, "
                                                 "actions_pending = ?4, updated_ms = ?5, actions_skipped = ?6, "
                                                 "false_positive = ?7 WHERE id = ?1"));
      s.BindText(1, alert.id)
          .BindText(2, AlertStateName(alert.state))
          .BindText(3, Dump(json(alert.actions_done)))
          .BindText(4, Dump(json(alert.actions_pending)))
          .BindInt(5, now)
          .BindText(6, SkippedJson(alert.actions_skipped))
          .BindInt(7, alert.false_positive ? 1 : 0);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) return Status::NotFound("no alert " + alert.id);
    json detail = {{"state", AlertStateName(alert.state)},
                   {"done", alert.actions_done},
                   {"pending", alert.actions_pending},
                   {"skipped", json::parse(SkippedJson(alert.actions_skipped))},
                   {"false_positive", alert.false_positive}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, "alert.update", alert.id, detail));
    return sqlite::WriteChange(c, ChangeKind::kAlert, alert.id);
  });
}

// ---- the alert workflow (issue 14) ----

Result<std::vector<StoredAlert>> SqliteStore::ListAlertsSince(int64_t after_seq, size_t limit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare((std::string("SELECT ") + kAlertColumns +
                                                   " FROM alerts WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                                                      .c_str()));
  s.BindInt(1, after_seq).BindInt(2, sqlite::LimitOrAll(limit));
  std::vector<StoredAlert> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    FG_ASSIGN_OR_RETURN(StoredAlert a, ReadAlert(s));
    out.push_back(std::move(a));
  }
  return out;
}

Result<Block> SqliteStore::GetBlock(std::string_view kind, std::string_view value) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT kind, value, alert_id, reason, created_ms "
                                                  "FROM blocks WHERE kind = ?1 AND value = ?2"));
  s.BindText(1, kind).BindText(2, value);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no block " + BlockKey(kind, value));
  Block b;
  b.kind = s.Text(0);
  b.value = s.Text(1);
  b.alert_id = s.Text(2);
  b.reason = s.Text(3);
  b.created_ms = s.Int(4);
  return b;
}

// ---- audit and change feed ----

Status SqliteStore::AppendAudit(const AuditEntry& entry) {
  if (entry.action.empty()) return Status::InvalidArgument("audit entry needs an action");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    return sqlite::WriteAudit(c, entry.ts_ms != 0 ? entry.ts_ms : NowMillis(), entry.actor,
                              entry.action, entry.subject, entry.reason, entry.detail);
  });
}

Result<int64_t> SqliteStore::UpsertAggregateAudit(const AuditEntry& entry) {
  if (entry.action.empty()) return Status::InvalidArgument("audit entry needs an action");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Result<int64_t> {
    if (entry.seq == 0) {
      FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, entry.ts_ms != 0 ? entry.ts_ms : NowMillis(),
                                            entry.actor, entry.action, entry.subject, entry.reason,
                                            entry.detail));
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT last_insert_rowid()"));
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::Internal("store: no rowid for the audit row");
      return s.Int(0);
    }
    FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE audit SET reason = ?4, detail = ?5 "
                                               "WHERE seq = ?1 AND action = ?2 AND subject = ?3 "
                                               "RETURNING seq"));
    s.BindInt(1, entry.seq)
        .BindText(2, entry.action)
        .BindText(3, entry.subject)
        .BindText(4, entry.reason)
        .BindText(5, entry.detail);
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("no aggregated audit row " + std::to_string(entry.seq));
    return s.Int(0);
  });
}

Result<std::vector<AuditEntry>> SqliteStore::ListAudit(const AuditFilter& filter) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  // Read newest first (that is what a limit keeps), then restore the
  // chronological order when the whole log was asked for.
  auto prepared = filter.subject.empty()
                      ? c.Prepare(
                            "SELECT seq, ts_ms, actor, action, subject, reason, detail "
                            "FROM audit ORDER BY seq DESC LIMIT ?1")
                      : c.Prepare(
                            "SELECT seq, ts_ms, actor, action, subject, reason, detail "
                            "FROM audit WHERE subject = ?2 ORDER BY seq DESC LIMIT ?1");
  if (!prepared.ok()) return prepared.status();
  Statement& s = prepared.value();
  s.BindInt(1, sqlite::LimitOrAll(filter.limit));
  if (!filter.subject.empty()) s.BindText(2, filter.subject);
  std::vector<AuditEntry> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    AuditEntry e;
    e.seq = s.Int(0);
    e.ts_ms = s.Int(1);
    e.actor = s.Text(2);
    e.action = s.Text(3);
    e.subject = s.Text(4);
    e.reason = s.Text(5);
    e.detail = s.Text(6);
    out.push_back(std::move(e));
  }
  if (filter.limit == 0) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<Change>> SqliteStore::ChangesSince(int64_t after, size_t limit) {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT seq, kind, key FROM changes "
                                                  "WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
  s.BindInt(1, after).BindInt(2, sqlite::LimitOrAll(limit));
  std::vector<Change> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Change ch;
    ch.seq = s.Int(0);
    FG_ASSIGN_OR_RETURN(ch.kind, sqlite::ParseChangeKind(s.Text(1)));
    ch.key = s.Text(2);
    out.push_back(std::move(ch));
  }
  return out;
}

Result<int64_t> SqliteStore::LatestChangeSeq() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM changes"));
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : int64_t{0};
}

// ---- counters ----

Result<int64_t> SqliteStore::NextCounter(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("counter name must not be empty");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Result<int64_t> {
    FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT INTO counters (name, value) VALUES (?1, 1) "
                                               "ON CONFLICT (name) DO UPDATE SET value = value + 1 "
                                               "RETURNING value"));
    s.BindText(1, name);
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Internal("store: counter upsert returned no value");
    return s.Int(0);
  });
}

// ---- nodes (issue 15, schema v6) ----

Status SqliteStore::UpsertNode(const NodeInfo& node, const AuditContext& audit) {
  if (node.id.empty() || node.public_url.empty()) return Status::InvalidArgument("a node needs an id and a public URL");
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    bool existed = false;
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT 1 FROM nodes WHERE id = ?1"));
      s.BindText(1, node.id);
      FG_ASSIGN_OR_RETURN(existed, s.Step());
    }
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("INSERT INTO nodes (id, public_url, url_order, joined_ms) "
                                                 "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET "
                                                 "public_url = excluded.public_url, url_order = excluded.url_order"));
      s.BindText(1, node.id).BindText(2, node.public_url).BindInt(3, node.url_order)
          .BindInt(4, node.joined_ms != 0 ? node.joined_ms : now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    json detail = {{"public_url", node.public_url}, {"url_order", node.url_order}};
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, now, audit, existed ? "node.update" : "node.join", node.id, detail));
    return sqlite::WriteChange(c, ChangeKind::kNode, node.id);
  });
}

Status SqliteStore::HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health_json) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE nodes SET heartbeat_ms = ?2, health = ?3 WHERE id = ?1"));
    s.BindText(1, id).BindInt(2, when).BindText(3, health_json);
    FG_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(c.handle()) == 0) return Status::NotFound("no node " + std::string(id));
    return Status::Ok();
  });
}

Result<std::vector<NodeInfo>> SqliteStore::ListNodes() {
  std::lock_guard lock(mutex_);
  FG_ASSIGN_OR_RETURN(Statement s, conn_->Prepare("SELECT id, public_url, url_order, joined_ms, heartbeat_ms, health "
                                                  "FROM nodes ORDER BY url_order, joined_ms, id"));
  std::vector<NodeInfo> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    NodeInfo n;
    n.id = s.Text(0);
    n.public_url = s.Text(1);
    n.url_order = static_cast<int>(s.Int(2));
    n.joined_ms = s.Int(3);
    n.heartbeat_ms = s.Int(4);
    n.health = s.Text(5);
    out.push_back(std::move(n));
  }
  return out;
}

Status SqliteStore::RemoveNode(std::string_view id, const AuditContext& audit) {
  std::lock_guard lock(mutex_);
  Connection& c = *conn_;
  return c.WriteTransaction([&]() -> Status {
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("DELETE FROM nodes WHERE id = ?1"));
      s.BindText(1, id);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (sqlite3_changes(c.handle()) == 0) return Status::NotFound("no node " + std::string(id));
    FG_RETURN_IF_ERROR(sqlite::WriteAudit(c, NowMillis(), audit, "node.remove", id, json::object()));
    return sqlite::WriteChange(c, ChangeKind::kNode, id);
  });
}

}  // namespace fg
