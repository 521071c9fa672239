#include <sqlite3.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "store/sql_driver.h"
#include "store/sqlite_store.h"

// The SQLite driver: one connection per store, serialised by the pool's
// mutex, the file in WAL mode, every write one BEGIN IMMEDIATE transaction
// (the write lock is taken before anything is read, so the invariants the
// logic checks inside the transaction still hold when it commits).

namespace fg {
namespace {

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
    // Version 8 (issue 18): the viewer role, for the console's read-only
    // users. SQLite cannot alter a CHECK constraint: the table is rebuilt.
    R"sql(
CREATE TABLE api_tokens_v8 (
  id         TEXT PRIMARY KEY NOT NULL,
  role       TEXT NOT NULL
             CHECK (role IN ('admin', 'operator', 'segw', 'ingest', 'payments', 'viewer')),
  hash       TEXT NOT NULL UNIQUE,
  label      TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0
);
INSERT INTO api_tokens_v8 (id, role, hash, label, created_ms, revoked_ms)
  SELECT id, role, hash, label, created_ms, revoked_ms FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v8 RENAME TO api_tokens;
)sql",
    // Version 9 (issue 17): the femtocell's radio identity (plmn, enb_id,
    // gnb_id, csg_id, cells as one JSON object; '' = none), bound by
    // identity.mismatch and the tap to its S1/NG setups.
    R"sql(
ALTER TABLE devices ADD COLUMN radio TEXT NOT NULL DEFAULT '';
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
  std::string msg = "store: " + std::string(what) + ": " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  // A full disk says so, whichever SQLite code carries it (SQLITE_FULL, or
  // an I/O error with ENOSPC when the WAL or its index cannot grow). The
  // transaction was rolled back: nothing of it is in the store.
  if ((rc & 0xff) == SQLITE_FULL || (db != nullptr && sqlite3_system_errno(db) == ENOSPC)) {
    return Status::Unavailable(
        msg + " (disk full: nothing was written; free space in the data dir and retry)");
  }
  return SqlStatus(rc, std::move(msg));
}

// A cached prepared statement in use. Reset and unbound when it goes out of
// scope, so that it neither holds a read transaction open nor leaks
// parameters into its next use.
class SqliteStatement final : public sql::StatementImpl {
 public:
  // `in_use` is the cache's flag for this statement, cleared on destruction.
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use)
      : db_(db), stmt_(stmt), in_use_(in_use) {}
  ~SqliteStatement() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  }

  void BindText(int index, std::string_view v) override {
    // A null data pointer would bind SQL NULL instead of ''.
    const char* data = v.data() != nullptr ? v.data() : "";
    Keep(sqlite3_bind_text(stmt_, index, data, static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void BindInt(int index, int64_t v) override { Keep(sqlite3_bind_int64(stmt_, index, v)); }
  void BindDouble(int index, std::optional<double> v) override {
    Keep(v ? sqlite3_bind_double(stmt_, index, *v) : sqlite3_bind_null(stmt_, index));
  }
  void BindBlob(int index, std::string_view v) override {
    const char* data = v.data() != nullptr ? v.data() : "";
    Keep(sqlite3_bind_blob(stmt_, index, data, static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }

  Result<bool> Step() override {
    if (bind_rc_ != SQLITE_OK) return SqlError(db_, bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc, "step");
  }

  std::string Text(int col) const override {
    const auto* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const override {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return {};
    return std::string(static_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  std::optional<double> OptDouble(int col) const override {
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

// One sqlite3 connection and its prepared statements.
class SqliteConnection final : public sql::Connection {
 public:
  static Result<std::unique_ptr<SqliteConnection>> Open(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    // sqlite3_open_v2 hands out a handle even on failure; it must be closed.
    auto conn = std::unique_ptr<SqliteConnection>(new SqliteConnection(raw));
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
    FG_RETURN_IF_ERROR(conn->Exec(g_synchronous_normal_for_test.load()
                                      ? "PRAGMA synchronous = NORMAL"
                                      : "PRAGMA synchronous = FULL"));
    FG_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
    return conn;
  }

  ~SqliteConnection() override {
    cache_.clear();  // statements must be finalized before the handle closes
    sqlite3_close_v2(db_);
  }

  // A statement from the cache, prepared on first use.
  Result<sql::Statement> Prepare(const std::string& sql) override {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
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
    return sql::Statement(
        std::make_unique<SqliteStatement>(db_, it->second.stmt.get(), &it->second.in_use));
  }

  Status Exec(const std::string& sql) override {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return SqlStatus(rc, "store: " + msg);
  }

  int64_t Changes() override { return sqlite3_changes64(db_); }

  Status Begin() override {
    FG_ASSIGN_OR_RETURN(sql::Statement begin, Prepare("BEGIN IMMEDIATE"));
    return begin.Run();
  }
  Status Commit() override {
    FG_ASSIGN_OR_RETURN(sql::Statement commit, Prepare("COMMIT"));
    return commit.Run();
  }
  void Rollback() override {
    // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled back.
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
  struct Cached {
    StmtPtr stmt;
    bool in_use;
  };

  explicit SqliteConnection(sqlite3* db) : db_(db) {}

  Status SetJournalModeWal(const std::string& path) {
    FG_ASSIGN_OR_RETURN(sql::Statement stmt, Prepare("PRAGMA journal_mode = WAL"));
    FG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    std::string mode = row ? stmt.Text(0) : "";
    // An in-memory database (tests) cannot do WAL and needs no cross-process locking.
    if (mode == "wal" || (path == ":memory:" && mode == "memory")) return Status::Ok();
    return Status::Internal("store: cannot switch " + path + " to WAL mode (journal_mode is '" +
                            mode + "')");
  }

  sqlite3* db_;
  // Keyed by SQL text; the statements are finalized when the map is cleared.
  // Node-based, so the in_use flags handed to Statements stay put.
  std::unordered_map<std::string, Cached> cache_;
};

// Two connections, each lent to one caller at a time: one for writes
// (SQLite serialises writers on the file anyway, and the statement cache is
// per connection) and one for reads. In WAL mode a reader does not wait for
// a writer, so a write that waits out the busy timeout behind another
// process's lock does not stall the reads queued behind it.
class SqlitePool final : public sql::Pool {
 public:
  SqlitePool(std::unique_ptr<SqliteConnection> writer, std::unique_ptr<SqliteConnection> reader)
      : writer_(std::move(writer)), reader_(std::move(reader)) {}
  std::string_view backend() const override { return "sqlite"; }
  Result<sql::Lease> Acquire() override { return Lend(writer_mutex_, writer_.get()); }
  Result<sql::Lease> AcquireRead() override {
    // An in-memory database has no second connection to the same data.
    if (!reader_) return Acquire();
    return Lend(reader_mutex_, reader_.get());
  }

 private:
  static sql::Lease Lend(std::mutex& mutex, SqliteConnection* conn) {
    mutex.lock();
    return sql::Lease(conn, [&mutex](sql::Connection*) { mutex.unlock(); });
  }

  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;  // used only by the holder of writer_mutex_
  std::mutex reader_mutex_;
  std::unique_ptr<SqliteConnection> reader_;  // used only by the holder of reader_mutex_; may be null
};

}  // namespace

void SetSqliteSynchronousNormalForTest(bool normal) { g_synchronous_normal_for_test.store(normal); }

namespace sql {

Result<std::unique_ptr<Pool>> OpenSqlitePool(const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> conn, SqliteConnection::Open(path));
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
    const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
    if (current > latest) {
      return Status::FailedPrecondition(
          "store " + path + " has schema version " + std::to_string(current) +
          ", newer than this binary knows (" + std::to_string(latest) + "): upgrade femtoguard");
    }
    for (int64_t v = current + 1; v <= latest; ++v) {
      Status applied = conn->Exec(kMigrations[v - 1]);
      if (!applied.ok()) {
        return Status::Internal("store: migration to version " + std::to_string(v) +
                                " failed: " + applied.message());
      }
      FG_ASSIGN_OR_RETURN(
          Statement s,
          conn->Prepare("INSERT INTO schema_version (version, applied_ms) VALUES (?1, ?2)"));
      s.BindInt(1, v).BindInt(2, NowMillis());
      FG_RETURN_IF_ERROR(s.Run());
    }
    return Status::Ok();
  });
  if (!migrated.ok()) return migrated;
  std::unique_ptr<SqliteConnection> reader;
  if (path != ":memory:") {
    FG_ASSIGN_OR_RETURN(reader, SqliteConnection::Open(path));
    // A guard: a write on this connection is a bug, refused by SQLite.
    FG_RETURN_IF_ERROR(reader->Exec("PRAGMA query_only = ON"));
  }
  return std::unique_ptr<Pool>(new SqlitePool(std::move(conn), std::move(reader)));
}

}  // namespace sql
}  // namespace fg
