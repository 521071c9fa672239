#pragma once

// The small SQL driver the store's logic is written against (internal to
// src/store). Two drivers implement it: SQLite (sqlite_driver.cc) and
// PostgreSQL on libpq (pg_driver.cc). The logic (sql_*.cc) exists once.
//
// The SQL dialect both accept, and the only one the logic may use:
//   - parameters are "?N" (1-based); the PostgreSQL driver rewrites them to "$N";
//   - INSERT ... ON CONFLICT DO NOTHING / DO UPDATE, and RETURNING, instead of
//     INSERT OR IGNORE and last_insert_rowid();
//   - no LIMIT -1 (LimitOrAll gives the largest int64 instead);
//   - no two-argument MAX(a, b) (CASE WHEN instead);
//   - "rowid" only on tables whose PostgreSQL DDL declares a rowid column
//     (certificates), so that "ORDER BY issued_ms, rowid" keeps insertion order.
// Values travel as bound parameters only; SQL text is a constant of the logic.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace fg::sql {

// A driver's statement: bound, stepped, read. Bind errors are kept and
// reported by the first Step.
class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual void BindText(int index, std::string_view v) = 0;
  virtual void BindInt(int index, int64_t v) = 0;
  virtual void BindDouble(int index, std::optional<double> v) = 0;
  virtual void BindBlob(int index, std::string_view v) = 0;
  // True when a row is ready to read, false when the statement is done.
  virtual Result<bool> Step() = 0;
  virtual std::string Text(int col) const = 0;
  virtual std::string Blob(int col) const = 0;
  virtual int64_t Int(int col) const = 0;
  virtual std::optional<double> OptDouble(int col) const = 0;
};

// A statement in use, as the logic holds it (a value with chained binds).
class Statement {
 public:
  explicit Statement(std::unique_ptr<StatementImpl> impl) : impl_(std::move(impl)) {}
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) = delete;

  // Parameter indexes are 1-based, as in SQL "?1".
  Statement& BindText(int index, std::string_view v) {
    impl_->BindText(index, v);
    return *this;
  }
  Statement& BindInt(int index, int64_t v) {
    impl_->BindInt(index, v);
    return *this;
  }
  Statement& BindDouble(int index, std::optional<double> v) {
    impl_->BindDouble(index, v);
    return *this;
  }
  Statement& BindBlob(int index, std::string_view v) {
    impl_->BindBlob(index, v);
    return *this;
  }
  Result<bool> Step() { return impl_->Step(); }
  // Runs a statement that returns no row.
  Status Run() {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (*row) return Status::Internal("store: statement returned an unexpected row");
    return Status::Ok();
  }
  std::string Text(int col) const { return impl_->Text(col); }
  std::string Blob(int col) const { return impl_->Blob(col); }
  int64_t Int(int col) const { return impl_->Int(col); }
  std::optional<double> OptDouble(int col) const { return impl_->OptDouble(col); }

 private:
  std::unique_ptr<StatementImpl> impl_;
};

// One database connection. Not thread-safe: a pool hands it to one caller
// at a time.
class Connection {
 public:
  virtual ~Connection() = default;

  virtual Result<Statement> Prepare(const std::string& sql) = 0;
  // Runs constant SQL, possibly several statements (migrations).
  virtual Status Exec(const std::string& sql) = 0;
  // Rows changed by the last INSERT/UPDATE/DELETE that ran to completion.
  virtual int64_t Changes() = 0;

  // A write transaction, serialised against every other writer of the
  // database (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock).
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
  // Called by the logic when the transaction wrote a change-feed row (the
  // PostgreSQL driver then NOTIFYs at commit; SQLite has nobody to tell).
  virtual void NoteChange() {}

  // Runs `body` (returning Status or Result<T>) in a write transaction:
  // committed when it succeeds, rolled back otherwise, so a failure leaves
  // nothing partial behind.
  template <typename F>
  std::invoke_result_t<F> WriteTransaction(F&& body) {
    FG_RETURN_IF_ERROR(Begin());
    auto result = body();
    if (!result.ok()) {
      Rollback();
      return result;
    }
    Status committed = Commit();
    if (!committed.ok()) {
      Rollback();
      return committed;
    }
    return result;
  }
};

// A connection lent by a pool; given back when the lease ends.
class Lease {
 public:
  Lease(Connection* conn, std::function<void(Connection*)> give_back)
      : conn_(conn), give_back_(std::move(give_back)) {}
  Lease(Lease&& o) noexcept
      : conn_(std::exchange(o.conn_, nullptr)), give_back_(std::move(o.give_back_)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn_ != nullptr && give_back_) give_back_(conn_);
  }
  Connection& operator*() const { return *conn_; }
  Connection* operator->() const { return conn_; }

 private:
  Connection* conn_;
  std::function<void(Connection*)> give_back_;
};

// Where a store gets its connections. Thread-safe.
class Pool {
 public:
  virtual ~Pool() = default;
  virtual std::string_view backend() const = 0;
  // Whether concurrent issuances should share one transaction (each under
  // its own SAVEPOINT) and one COMMIT: worth it where a commit is a network
  // round trip and a replicated fsync (PostgreSQL).
  virtual bool group_commit() const { return false; }
  // A connection for reads or for one write transaction. Fails fast with
  // Unavailable while the database is unreachable.
  virtual Result<Lease> Acquire() = 0;
  // A connection for reads only (no transaction, no write). Where the
  // database allows it, it never waits behind a writer, so that a writer
  // held up by a lock (another process, a busy timeout) does not hold up
  // reads: the bearer token's lookup, OCSP misses, the operator's queries.
  virtual Result<Lease> AcquireRead() { return Acquire(); }
  virtual StoreHealth Health() { return StoreHealth{}; }
  // The ChangeFeed hint; the default sleeps for the timeout.
  virtual void WaitForChange(int64_t after, int timeout_ms) {
    (void)after;
    if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  }
};

// Opens the SQLite file (creating and migrating it). sqlite_driver.cc.
Result<std::unique_ptr<Pool>> OpenSqlitePool(const std::string& path);
// Opens a PostgreSQL database from a libpq URL and migrates it. pg_driver.cc.
Result<std::unique_ptr<Pool>> OpenPgPool(const std::string& url);

// No limit, in the dialect both backends accept (never LIMIT -1).
inline int64_t LimitOrAll(size_t limit) {
  if (limit == 0) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::min<size_t>(limit, std::numeric_limits<int64_t>::max()));
}

// Reads every row of `s` with `read(const Statement&) -> Result<T>` (or T).
template <typename T, typename F>
Result<std::vector<T>> ReadRows(Statement& s, F&& read) {
  std::vector<T> out;
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if constexpr (std::is_same_v<std::invoke_result_t<F, const Statement&>, T>) {
      out.push_back(read(s));
    } else {
      FG_ASSIGN_OR_RETURN(T v, read(s));
      out.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace fg::sql
