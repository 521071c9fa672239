// The PostgreSQL driver (libpq), for a store shared by several femtoguard
// nodes (issue 15).
//
// Concurrency: constraints and transactions, never in-process locks. Every
// write transaction first takes one transaction-level advisory lock
// (pg_advisory_xact_lock(kWriteLock)), so that writers from every node are
// serialised exactly as SQLite's BEGIN IMMEDIATE serialises them: the
// invariants the logic checks inside the transaction (token unused, key
// never bound, device active) still hold when it commits, and the seqs of
// the change feed, the audit log and the alerts (identity columns, or
// MAX+1) become visible in commit order, so a reader that saw seq N+1 can
// never later see N appear. The unique constraints (key_fp, serial,
// credential uses, token refs) stay the hard guard beneath.
//
// Connections: a small pool (reads never wait behind a group commit) and one
// more connection that LISTENs on fg_changes for WaitForChange. Every
// transaction that wrote a change row NOTIFYs fg_changes before COMMIT; a
// missed notification is harmless, readers poll anyway.
//
// Failure: the URL may be multi-host with target_session_attrs=read-write.
// A connection that broke is reconnected on its next use, at most once per
// kReconnectBackoff; in between, and while no primary answers, every call
// fails fast with Unavailable("store unreachable: ...") and Health() says
// not writable. A write whose connection broke before COMMIT was sent did
// not commit (the server rolls it back); one that broke during COMMIT is
// reported as Unavailable "outcome unknown" and never retried blindly. Only
// BEGIN is retried after a reconnect: nothing was sent yet.
//
// Group commit: concurrent RecordIssuedCertificate calls are run by one
// leader in one transaction, each under its own SAVEPOINT (sql_certificates.cc).

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "store/pg_store.h"
#include "store/sql_driver.h"

namespace fg::sql {
namespace {

// Arbitrary constants: the advisory lock keys of femtoguard's writers and
// of its migrations ("fg" in ASCII, then a role).
constexpr int64_t kWriteLock = 0x6667'0001;
constexpr int64_t kMigrateLock = 0x6667'0002;
constexpr auto kReconnectBackoff = std::chrono::milliseconds(200);
constexpr size_t kPoolSize = 4;
constexpr auto kAcquireTimeout = std::chrono::seconds(30);
constexpr auto kIdleInTransaction = std::chrono::milliseconds(10000);

// SetPgGroupCommitForTest (benchmarks: with against without).
std::atomic<bool> g_group_commit{true};

// PostgreSQL type OIDs of the parameters we bind (pg_type.h).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kByteaOid = 17;

// The schema, one migration per version, as for SQLite (sqlite_driver.cc),
// numbered on their own: version 1 is the whole schema of SQLite's version
// 7 (PostgreSQL stores start there). Append new versions; never edit one.
// Text sorts by byte (COLLATE "C"), as SQLite sorts it. certificates has a
// rowid (insertion order), which the shared SQL orders by on both backends.
constexpr const char* kMigrations[] = {
    // Version 1.
    R"sql(
CREATE TABLE devices (
  id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  status        TEXT NOT NULL
                CHECK (status IN ('provisioned', 'active', 'suspended', 'decommissioned')),
  owner         TEXT NOT NULL DEFAULT '',
  mode          TEXT NOT NULL CHECK (mode IN ('closed', 'hybrid', 'open')),
  site_lat      DOUBLE PRECISION,
  site_lon      DOUBLE PRECISION,
  site_radius_m DOUBLE PRECISION,
  prefixes      TEXT NOT NULL DEFAULT '[]',
  csg           TEXT NOT NULL DEFAULT '[]',
  cert_fp       TEXT NOT NULL DEFAULT '',
  max_ues       BIGINT NOT NULL DEFAULT 0,
  created_ms    BIGINT NOT NULL,
  updated_ms    BIGINT NOT NULL,
  last_seen_ms  BIGINT NOT NULL DEFAULT 0,
  CHECK ((site_lat IS NULL) = (site_lon IS NULL))
);

CREATE TABLE certificates (
  rowid         BIGINT GENERATED ALWAYS AS IDENTITY,
  serial        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  device        TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
  key_fp        TEXT COLLATE "C" NOT NULL,
  cert_fp       TEXT NOT NULL,
  not_before_ms BIGINT NOT NULL,
  not_after_ms  BIGINT NOT NULL,
  issued_ms     BIGINT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('valid', 'hold', 'revoked')),
  reason        BIGINT NOT NULL DEFAULT 0,
  revoked_ms    BIGINT NOT NULL DEFAULT 0,
  der           BYTEA NOT NULL
);
-- The hard guard of "one key = one device, once".
CREATE UNIQUE INDEX certificates_key_fp ON certificates (key_fp);
CREATE INDEX certificates_device ON certificates (device, issued_ms);
CREATE INDEX certificates_status ON certificates (status, not_after_ms);

CREATE TABLE audit (
  seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ts_ms   BIGINT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT COLLATE "C" NOT NULL,
  reason  TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit (subject, seq);

CREATE TABLE changes (
  seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind TEXT NOT NULL
       CHECK (kind IN ('device', 'certificate', 'endpoint', 'block', 'alert', 'node')),
  key  TEXT NOT NULL
);

CREATE TABLE counters (
  name  TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  value BIGINT NOT NULL
);

CREATE TABLE bootstrap_tokens (
  ref        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  device     TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms    BIGINT NOT NULL DEFAULT 0,
  revoked_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bootstrap_tokens_device ON bootstrap_tokens (device);

-- The hard guard of "once": a token or a vendor certificate once at all, a
-- legacy credential once per device.
CREATE TABLE credential_uses (
  kind       TEXT NOT NULL
             CHECK (kind IN ('bootstrap_token', 'vendor_certificate', 'legacy_credential')),
  credential TEXT COLLATE "C" NOT NULL,
  device     TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
  serial     TEXT COLLATE "C" NOT NULL REFERENCES certificates (serial),
  ts_ms      BIGINT NOT NULL,
  source_ip  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX credential_uses_per_device ON credential_uses (kind, credential, device);
CREATE UNIQUE INDEX credential_uses_once ON credential_uses (kind, credential)
  WHERE kind IN ('bootstrap_token', 'vendor_certificate');
CREATE INDEX credential_uses_device ON credential_uses (device);

CREATE TABLE vendor_cas (
  fp       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  subject  TEXT NOT NULL DEFAULT '',
  pem      TEXT NOT NULL,
  added_ms BIGINT NOT NULL
);

CREATE TABLE legacy_credentials (
  fp        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  subject   TEXT NOT NULL DEFAULT '',
  pem       TEXT NOT NULL,
  cutoff_ms BIGINT NOT NULL,
  added_ms  BIGINT NOT NULL
);

CREATE TABLE endpoints (
  address    TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('active', 'draining', 'retired')),
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);

CREATE TABLE api_tokens (
  id         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'segw', 'ingest', 'payments')),
  hash       TEXT NOT NULL UNIQUE,
  label      TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL,
  revoked_ms BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE blocks (
  kind       TEXT COLLATE "C" NOT NULL CHECK (kind IN ('device', 'line', 'payments')),
  value      TEXT COLLATE "C" NOT NULL,
  alert_id   TEXT NOT NULL DEFAULT '',
  reason     TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (kind, value)
);

CREATE TABLE alerts (
  id              TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  ts_ms           BIGINT NOT NULL,
  rule            TEXT NOT NULL,
  severity        TEXT NOT NULL,
  device          TEXT NOT NULL DEFAULT '',
  json            TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('open', 'pending_approval', 'acted', 'dismissed')),
  actions_done    TEXT NOT NULL DEFAULT '[]',
  actions_pending TEXT NOT NULL DEFAULT '[]',
  updated_ms      BIGINT NOT NULL,
  seq             BIGINT NOT NULL DEFAULT 0,
  actions_skipped TEXT NOT NULL DEFAULT '[]',
  false_positive  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alerts_ts ON alerts (ts_ms);
CREATE INDEX alerts_device ON alerts (device);
CREATE UNIQUE INDEX alerts_seq ON alerts (seq);

CREATE TABLE nodes (
  id           TEXT COLLATE "C" PRIMARY KEY,
  public_url   TEXT NOT NULL,
  url_order    BIGINT NOT NULL DEFAULT 0,
  joined_ms    BIGINT NOT NULL,
  heartbeat_ms BIGINT NOT NULL DEFAULT 0,
  health       TEXT NOT NULL DEFAULT ''
);
)sql",
    // Version 2 (issue 18): the viewer role (the console's read-only users).
    R"sql(
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
  CHECK (role IN ('admin', 'operator', 'segw', 'ingest', 'payments', 'viewer'));
)sql",
    // Version 3 (issue 17): the femtocell's radio identity (as SQLite v9).
    R"sql(
ALTER TABLE devices ADD COLUMN radio TEXT NOT NULL DEFAULT '';
)sql",
};

// "?N" -> "$N", outside quoted literals and identifiers.
std::string TranslatePlaceholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    char ch = sql[i];
    if (quote != 0) {
      if (ch == quote) quote = 0;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
    } else if (ch == '?' && i + 1 < sql.size() &&
               std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      ch = '$';
    }
    out += ch;
  }
  return out;
}

// Where a URL points, for messages: hosts, ports and database, never the
// password or other parameters.
std::string DescribeUrl(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (opts == nullptr) {
    PQfreemem(err);
    return "(unparsable PostgreSQL URL)";
  }
  std::string host, port, db;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "host") == 0 || std::strcmp(o->keyword, "hostaddr") == 0)
      host = o->val;
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "dbname") == 0) db = o->val;
  }
  PQconninfoFree(opts);
  return "postgresql host(s) " + (host.empty() ? std::string("(default)") : host) +
         (port.empty() ? "" : " port(s) " + port) + " database " + (db.empty() ? "(default)" : db);
}

bool IsConnectionClass(const char* sqlstate) {
  if (sqlstate == nullptr) return false;
  const std::string s(sqlstate);
  // 08: connection exception; 57P0x: the server is shutting down / crashed;
  // 25006: read-only transaction (we reached a standby after a failover).
  return s.starts_with("08") || s.starts_with("57P") || s == "25006";
}

// Connects with the URL's own parameters, plus defaults it may override: a
// connect timeout (a host that drops packets must not hold a call for the
// kernel's TCP timeout; multi-host URLs try the next host after it), the
// application name seen in pg_stat_activity, and an idle-in-transaction
// timeout. Every write transaction holds the cluster-wide write lock, so a
// node frozen inside one (SIGSTOP, a paused VM, swapped out) would hold
// every other node's writes for as long as it is frozen; after
// kIdleInTransaction the server ends that session instead, which rolls
// the transaction back (it never acknowledged anything) and frees the lock.
// Our transactions never wait on anything but the database between two
// statements, so a gap that long means the node is not running.
PGconn* ConnectUrl(const std::string& url) {
  static const std::string options =
      "-c idle_in_transaction_session_timeout=" + std::to_string(kIdleInTransaction.count());
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* vals[] = {"5", "femtoguard", options.c_str(), url.c_str(), nullptr};
  return PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
}

class PgConnection;

class PgStatement final : public StatementImpl {
 public:
  PgStatement(PgConnection* conn, const std::string* sql) : conn_(conn), sql_(sql) {}
  ~PgStatement() override {
    if (res_ != nullptr) PQclear(res_);
  }

  void BindText(int index, std::string_view v) override { Set(index, std::string(v), kTextOid, 0); }
  void BindInt(int index, int64_t v) override { Set(index, std::to_string(v), kInt8Oid, 0); }
  void BindDouble(int index, std::optional<double> v) override {
    if (!v) {
      Grow(index);
      types_[index - 1] = kFloat8Oid;
      return;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", *v);
    Set(index, buf, kFloat8Oid, 0);
  }
  void BindBlob(int index, std::string_view v) override {
    Set(index, std::string(v), kByteaOid, 1);
  }

  Result<bool> Step() override;

  std::string Text(int col) const override {
    return std::string(PQgetvalue(res_, row_, col),
                       static_cast<size_t>(PQgetlength(res_, row_, col)));
  }
  std::string Blob(int col) const override {
    if (PQgetisnull(res_, row_, col)) return {};
    size_t n = 0;
    unsigned char* p =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(res_, row_, col)), &n);
    if (p == nullptr) return {};
    std::string out(reinterpret_cast<char*>(p), n);
    PQfreemem(p);
    return out;
  }
  int64_t Int(int col) const override {
    if (PQgetisnull(res_, row_, col)) return 0;
    return std::strtoll(PQgetvalue(res_, row_, col), nullptr, 10);
  }
  std::optional<double> OptDouble(int col) const override {
    if (PQgetisnull(res_, row_, col)) return std::nullopt;
    return std::strtod(PQgetvalue(res_, row_, col), nullptr);
  }

 private:
  void Grow(int index) {
    if (index < 1) return;
    if (values_.size() < static_cast<size_t>(index)) {
      values_.resize(index);
      types_.resize(index, kTextOid);  // an unbound parameter is a NULL text
      formats_.resize(index, 0);
    }
  }
  void Set(int index, std::string v, Oid type, int format) {
    Grow(index);
    values_[index - 1] = std::move(v);
    types_[index - 1] = type;
    formats_[index - 1] = format;
  }

  PgConnection* conn_;
  const std::string* sql_;  // translated; owned by the connection's cache
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  PGresult* res_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
};

class PgConnection final : public Connection {
 public:
  PgConnection(std::string url, std::string where)
      : url_(std::move(url)), where_(std::move(where)) {}
  ~PgConnection() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  bool Healthy() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

  // (Re)connects. Unavailable while no read-write server answers.
  Status Connect() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = ConnectUrl(url_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      return Status::Unavailable("store unreachable: " + where_ + ": " + msg);
    }
    // Quiet NOTICEs (e.g. "there is no transaction in progress") go nowhere.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    in_tx_ = false;
    prepared_.clear();
    return Status::Ok();
  }

  Result<Statement> Prepare(const std::string& sql) override {
    auto it = translated_.find(sql);
    if (it == translated_.end()) it = translated_.emplace(sql, TranslatePlaceholders(sql)).first;
    return Statement(std::make_unique<PgStatement>(this, &it->second));
  }

  Status Exec(const std::string& sql) override {
    PGresult* res = PQexec(conn_, sql.c_str());
    Status st = Check(res, "exec");
    PQclear(res);
    return st;
  }

  int64_t Changes() override { return changes_; }

  Status Begin() override {
    note_change_ = false;
    Status st = Exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLock) + ")");
    if (!st.ok() && !Healthy()) {
      // Nothing of this transaction reached the server: safe to retry once
      // on a fresh connection (the primary may have changed).
      FG_RETURN_IF_ERROR(Connect());
      reconnects_->Inc();
      st = Exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLock) + ")");
    }
    if (st.ok()) in_tx_ = true;
    return st;
  }

  Status Commit() override {
    if (note_change_) {
      FG_RETURN_IF_ERROR(Exec("NOTIFY fg_changes"));
      note_change_ = false;
    }
    PGresult* res = PQexec(conn_, "COMMIT");
    const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    std::string msg = ok ? "" : PQresultErrorMessage(res);
    PQclear(res);
    in_tx_ = false;
    if (ok) return Status::Ok();
    if (!Healthy()) {
      // The COMMIT may or may not have been applied before the link broke.
      return Status::Unavailable("store unreachable: " + where_ +
                                 ": the connection broke during COMMIT: outcome unknown (" +
                                 Trim(msg) + ")");
    }
    return Status::Internal("store: commit: " + Trim(msg));
  }

  void Rollback() override {
    if (Healthy()) {
      PGresult* res = PQexec(conn_, "ROLLBACK");
      PQclear(res);
    }
    in_tx_ = false;
  }

  void NoteChange() override { note_change_ = true; }

  // Executes a statement with typed parameters; maps errors to Status.
  Result<PGresult*> ExecParams(const std::string& sql,
                               const std::vector<std::optional<std::string>>& values,
                               const std::vector<Oid>& types, const std::vector<int>& formats) {
    if (!Healthy())
      return Status::Unavailable("store unreachable: " + where_ + ": connection lost");
    std::vector<const char*> vals(values.size());
    std::vector<int> lens(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      vals[i] = values[i] ? values[i]->data() : nullptr;
      lens[i] = values[i] ? static_cast<int>(values[i]->size()) : 0;
    }
    // Prepared once per session and parameter types: the server parses and
    // plans each statement of the logic once, not at every call.
    std::string key = sql;
    key.append(reinterpret_cast<const char*>(types.data()), types.size() * sizeof(Oid));
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = "fg" + std::to_string(prepared_.size());
      PGresult* prep =
          PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data());
      Status ps = Check(prep, "prepare");
      PQclear(prep);
      if (!ps.ok()) return ps;
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    PGresult* res = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                                   vals.data(), lens.data(), formats.data(), 0);
    Status st = Check(res, "query");
    if (!st.ok()) {
      PQclear(res);
      return st;
    }
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
      const char* n = PQcmdTuples(res);
      changes_ = (n != nullptr && *n != 0) ? std::strtoll(n, nullptr, 10) : 0;
    } else {
      const char* n = PQcmdTuples(res);  // INSERT ... RETURNING counts too
      changes_ = (n != nullptr && *n != 0) ? std::strtoll(n, nullptr, 10) : PQntuples(res);
    }
    return res;
  }

  void set_reconnect_counter(Counter* c) { reconnects_ = c; }
  bool in_tx() const { return in_tx_; }

 private:
  static std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  Status Check(PGresult* res, std::string_view what) {
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) return Status::Ok();
    const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = Trim(res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
    if (!Healthy() || IsConnectionClass(state)) {
      return Status::Unavailable("store unreachable: " + where_ + ": " + msg);
    }
    std::string full = "store: " + std::string(what) + ": " + msg;
    if (state != nullptr && std::strcmp(state, "23505") == 0) return Status::AlreadyExists(full);
    // Serialisation failure or deadlock: retrying later may succeed.
    if (state != nullptr &&
        (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0)) {
      return Status::Unavailable(full);
    }
    return Status::Internal(full);
  }

  std::string url_;
  std::string where_;
  PGconn* conn_ = nullptr;
  bool in_tx_ = false;
  bool note_change_ = false;
  int64_t changes_ = 0;
  Counter* reconnects_ = nullptr;
  std::unordered_map<std::string, std::string> translated_;
  // SQL + parameter types -> the name of its prepared statement in this
  // session (emptied when the session is replaced).
  std::unordered_map<std::string, std::string> prepared_;
};

Result<bool> PgStatement::Step() {
  if (res_ == nullptr) {
    FG_ASSIGN_OR_RETURN(res_, conn_->ExecParams(*sql_, values_, types_, formats_));
    rows_ = PQntuples(res_);
    row_ = 0;
  } else {
    ++row_;
  }
  return row_ < rows_;
}

class PgPool final : public Pool {
 public:
  PgPool(std::string url, std::string where)
      : url_(std::move(url)),
        where_(std::move(where)),
        up_(Metrics::Global().GetGauge(
            "femtoguard_store_up", {},
            "1 while the store (database primary) is reachable, else 0")),
        reconnects_(
            Metrics::Global().GetCounter("femtoguard_store_reconnects_total", {},
                                         "Reconnections to the store after a broken connection")) {}

  ~PgPool() override {
    if (listen_ != nullptr) PQfinish(listen_);
  }

  Status Init() {
    for (size_t i = 0; i < kPoolSize; ++i) {
      auto c = std::make_unique<PgConnection>(url_, where_);
      c->set_reconnect_counter(&reconnects_);
      FG_RETURN_IF_ERROR(c->Connect());
      idle_.push_back(c.get());
      all_.push_back(std::move(c));
    }
    SetUp(true, "");
    return Status::Ok();
  }

  std::string_view backend() const override { return "postgresql"; }
  bool group_commit() const override { return group_commit_; }

  Result<Lease> Acquire() override {
    PgConnection* c = nullptr;
    {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, kAcquireTimeout, [&] { return !idle_.empty(); })) {
        return Status::Unavailable("store busy: no free database connection");
      }
      c = idle_.back();
      idle_.pop_back();
    }
    Lease lease(c, [this](Connection* conn) {
      std::lock_guard lock(mutex_);
      idle_.push_back(static_cast<PgConnection*>(conn));
      cv_.notify_one();
    });
    if (!c->Healthy()) FG_RETURN_IF_ERROR(Reconnect(*c));
    return lease;
  }

  StoreHealth Health() override {
    std::lock_guard lock(health_mutex_);
    if (!writable_) return StoreHealth{false, reason_};
    return StoreHealth{};
  }

  void WaitForChange(int64_t after, int timeout_ms) override;

 private:
  // Reconnects `c`, at most once per backoff across the pool: while no
  // primary answers, calls fail fast instead of each waiting on connect.
  Status Reconnect(PgConnection& c) {
    {
      std::lock_guard lock(health_mutex_);
      const auto now = std::chrono::steady_clock::now();
      if (!writable_ && now - last_attempt_ < kReconnectBackoff) {
        return Status::Unavailable(reason_);
      }
      last_attempt_ = now;
    }
    Status st = c.Connect();
    if (!st.ok()) {
      SetUp(false, st.message());
      return st;
    }
    reconnects_.Inc();
    SetUp(true, "");
    return Status::Ok();
  }

  void SetUp(bool up, const std::string& reason) {
    std::lock_guard lock(health_mutex_);
    writable_ = up;
    reason_ = reason;
    up_.Set(up ? 1 : 0);
  }

  const std::string url_;
  const std::string where_;
  const bool group_commit_ = g_group_commit.load();
  Gauge& up_;
  Counter& reconnects_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> all_;
  std::vector<PgConnection*> idle_;  // guarded by mutex_

  std::mutex health_mutex_;
  bool writable_ = true;  // guarded by health_mutex_
  std::string reason_;    // guarded by health_mutex_
  std::chrono::steady_clock::time_point last_attempt_{};

  // The LISTEN connection (WaitForChange); one waiter at a time.
  std::timed_mutex listen_mutex_;
  PGconn* listen_ = nullptr;  // guarded by listen_mutex_
};

void PgPool::WaitForChange(int64_t after, int timeout_ms) {
  (void)after;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  std::unique_lock lock(listen_mutex_, std::defer_lock);
  if (!lock.try_lock_for(std::chrono::milliseconds(std::max(timeout_ms, 0)))) return;
  if (listen_ == nullptr || PQstatus(listen_) != CONNECTION_OK) {
    if (listen_ != nullptr) PQfinish(listen_);
    listen_ = ConnectUrl(url_);
    PGresult* res =
        PQstatus(listen_) == CONNECTION_OK ? PQexec(listen_, "LISTEN fg_changes") : nullptr;
    const bool ok = res != nullptr && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
      PQfinish(listen_);
      listen_ = nullptr;
      // No listener: behave like the default (sleep), callers poll anyway.
      std::this_thread::sleep_until(deadline);
      return;
    }
    return;  // a change may have happened before we listened: let the caller look
  }
  // Earlier notifications were about changes the caller has had a chance to read.
  PQconsumeInput(listen_);
  while (PGnotify* n = PQnotifies(listen_)) PQfreemem(n);
  for (;;) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    if (left <= 0) return;
    pollfd pfd{PQsocket(listen_), POLLIN, 0};
    if (poll(&pfd, 1, left) <= 0) return;
    if (PQconsumeInput(listen_) == 0) return;  // broken: reconnected next time
    bool woke = false;
    while (PGnotify* n = PQnotifies(listen_)) {
      woke = true;
      PQfreemem(n);
    }
    if (woke) return;
  }
}

// Applies the migrations under a session advisory lock, so that two nodes
// opening a fresh database at once do not both apply version 1.
Status Migrate(PgConnection& c, const std::string& where) {
  FG_RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_lock(" + std::to_string(kMigrateLock) + ")"));
  auto body = [&]() -> Status {
    FG_RETURN_IF_ERROR(
        c.Exec("CREATE TABLE IF NOT EXISTS schema_version ("
               "version BIGINT PRIMARY KEY NOT NULL, applied_ms BIGINT NOT NULL)"));
    int64_t current = 0;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) current = s.Int(0);
    }
    const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
    if (current > latest) {
      return Status::FailedPrecondition(
          "store " + where + " has schema version " + std::to_string(current) +
          ", newer than this binary knows (" + std::to_string(latest) + "): upgrade femtoguard");
    }
    for (int64_t v = current + 1; v <= latest; ++v) {
      Status applied = c.WriteTransaction([&]() -> Status {
        FG_RETURN_IF_ERROR(c.Exec(kMigrations[v - 1]));
        FG_ASSIGN_OR_RETURN(
            Statement s,
            c.Prepare("INSERT INTO schema_version (version, applied_ms) VALUES (?1, ?2)"));
        s.BindInt(1, v).BindInt(2, NowMillis());
        return s.Run();
      });
      if (!applied.ok()) {
        std::string msg =
            "store: migration to version " + std::to_string(v) + " failed: " + applied.message();
        return applied.code() == StatusCode::kUnavailable ? Status::Unavailable(msg)
                                                          : Status::Internal(msg);
      }
    }
    return Status::Ok();
  };
  Status st = body();
  Status unlocked = c.Exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrateLock) + ")");
  if (!st.ok()) return st;
  return unlocked;
}

}  // namespace

Result<std::unique_ptr<Pool>> OpenPgPool(const std::string& url) {
  const std::string where = DescribeUrl(url);
  {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
    if (opts == nullptr) {
      // libpq's message may quote the URL: not echoed.
      PQfreemem(err);
      return Status::InvalidArgument("store URL is not a valid PostgreSQL connection URI");
    }
    PQconninfoFree(opts);
  }
  {
    PgConnection c(url, where);
    FG_RETURN_IF_ERROR(c.Connect());
    FG_RETURN_IF_ERROR(Migrate(c, where));
  }
  auto pool = std::make_unique<PgPool>(url, where);
  FG_RETURN_IF_ERROR(pool->Init());
  return std::unique_ptr<Pool>(std::move(pool));
}

}  // namespace fg::sql

namespace fg {
void SetPgGroupCommitForTest(bool on) { sql::g_group_commit.store(on); }
}  // namespace fg
