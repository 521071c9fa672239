// Roles AuditLog and ChangeFeed.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- audit and change feed ----

Status SqlStore::AppendAudit(const AuditEntry& entry) {
  if (entry.action.empty()) return Status::InvalidArgument("audit entry needs an action");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    return sql::WriteAudit(c, entry.ts_ms != 0 ? entry.ts_ms : NowMillis(), entry.actor,
                           entry.action, entry.subject, entry.reason, entry.detail);
  });
}

Result<int64_t> SqlStore::UpsertAggregateAudit(const AuditEntry& entry) {
  if (entry.action.empty()) return Status::InvalidArgument("audit entry needs an action");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Result<int64_t> {
    if (entry.seq == 0) {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare("INSERT INTO audit (ts_ms, actor, action, subject, reason, detail) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq"));
      s.BindInt(1, entry.ts_ms != 0 ? entry.ts_ms : NowMillis())
          .BindText(2, entry.actor)
          .BindText(3, entry.action)
          .BindText(4, entry.subject)
          .BindText(5, entry.reason)
          .BindText(6, entry.detail);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::Internal("store: no seq for the audit row");
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

Result<std::vector<AuditEntry>> SqlStore::ListAudit(const AuditFilter& filter) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
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
  s.BindInt(1, sql::LimitOrAll(filter.limit));
  if (!filter.subject.empty()) s.BindText(2, filter.subject);
  FG_ASSIGN_OR_RETURN(std::vector<AuditEntry> out,
                      sql::ReadRows<AuditEntry>(s, [](const Statement& s) -> Result<AuditEntry> {
                        AuditEntry e;
                        e.seq = s.Int(0);
                        e.ts_ms = s.Int(1);
                        e.actor = s.Text(2);
                        e.action = s.Text(3);
                        e.subject = s.Text(4);
                        e.reason = s.Text(5);
                        e.detail = s.Text(6);
                        return e;
                      }));
  if (filter.limit == 0) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<Change>> SqlStore::ChangesSince(int64_t after, size_t limit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT seq, kind, key FROM changes "
                                             "WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
  s.BindInt(1, after).BindInt(2, sql::LimitOrAll(limit));
  return sql::ReadRows<Change>(s, [](const Statement& s) -> Result<Change> {
    Change ch;
    ch.seq = s.Int(0);
    FG_ASSIGN_OR_RETURN(ch.kind, sql::ParseChangeKind(s.Text(1)));
    ch.key = s.Text(2);
    return ch;
  });
}

Result<int64_t> SqlStore::LatestChangeSeq() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT COALESCE(MAX(seq), 0) FROM changes"));
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : int64_t{0};
}

}  // namespace fg
