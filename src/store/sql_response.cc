// Role ResponseLedger: blocks and alerts.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- blocks ----

namespace {
bool IsBlockKind(std::string_view k) { return k == "device" || k == "line" || k == "payments"; }
std::string BlockKey(std::string_view kind, std::string_view value) {
  return std::string(kind) + ":" + std::string(value);
}
}  // namespace

Status SqlStore::AddBlock(const Block& block, const AuditContext& audit) {
  if (!IsBlockKind(block.kind))
    return Status::InvalidArgument("unknown block kind '" + block.kind + "'");
  if (block.value.empty()) return Status::InvalidArgument("a block needs a value");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare("INSERT INTO blocks (kind, value, alert_id, "
                    "reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING"));
      s.BindText(1, block.kind)
          .BindText(2, block.value)
          .BindText(3, block.alert_id)
          .BindText(4, block.reason)
          .BindInt(5, block.created_ms != 0 ? block.created_ms : now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) return Status::Ok();  // already blocked: nothing changes
    json detail = {{"kind", block.kind}, {"alert", block.alert_id}};
    FG_RETURN_IF_ERROR(
        sql::WriteAudit(c, now, audit, "block.add", BlockKey(block.kind, block.value), detail));
    return sql::WriteChange(c, ChangeKind::kBlock, BlockKey(block.kind, block.value));
  });
}

Status SqlStore::RemoveBlock(std::string_view kind, std::string_view value,
                             const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("DELETE FROM blocks WHERE kind = ?1 AND value = ?2"));
      s.BindText(1, kind).BindText(2, value);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) {
      return Status::NotFound("no block " + BlockKey(kind, value));
    }
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, NowMillis(), audit, "block.remove", BlockKey(kind, value),
                                       json::object()));
    return sql::WriteChange(c, ChangeKind::kBlock, BlockKey(kind, value));
  });
}

Result<std::vector<Block>> SqlStore::ListBlocks() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT kind, value, alert_id, reason, created_ms "
                                             "FROM blocks ORDER BY kind, value"));
  return sql::ReadRows<Block>(s, [](const Statement& s) -> Result<Block> {
    Block b;
    b.kind = s.Text(0);
    b.value = s.Text(1);
    b.alert_id = s.Text(2);
    b.reason = s.Text(3);
    b.created_ms = s.Int(4);
    return b;
  });
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
Result<StoredAlert> ReadAlert(const Statement& s) {
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

Result<bool> SqlStore::AddAlert(const StoredAlert& alert, const AuditContext& audit) {
  if (alert.id.empty() || alert.rule.empty())
    return Status::InvalidArgument("an alert needs an id and a rule");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  bool inserted = false;
  Status st = c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare((std::string("INSERT INTO alerts (") + kAlertColumns +
                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                     "(SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts)) ON CONFLICT DO NOTHING")
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
    inserted = c.Changes() > 0;
    if (!inserted) return Status::Ok();
    json detail = {{"rule", alert.rule}, {"device", alert.device}, {"severity", alert.severity}};
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "alert.raise", alert.id, detail));
    return sql::WriteChange(c, ChangeKind::kAlert, alert.id);
  });
  if (!st.ok()) return st;
  return inserted;
}

Result<StoredAlert> SqlStore::GetAlert(std::string_view id) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(
      Statement s,
      c.Prepare((std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE id = ?1").c_str()));
  s.BindText(1, id);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no alert " + std::string(id));
  return ReadAlert(s);
}

Result<std::vector<StoredAlert>> SqlStore::ListAlerts(const AlertFilter& filter) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(
      Statement s,
      c.Prepare((std::string("SELECT ") + kAlertColumns +
                 " FROM alerts WHERE (?1 = '' OR rule = ?1) AND (?2 = '' OR device = ?2) "
                 "AND (?3 = '' OR state = ?3) AND (?5 = '' OR severity = ?5) "
                 "ORDER BY ts_ms DESC, id LIMIT ?4")
                    .c_str()));
  s.BindText(1, filter.rule)
      .BindText(2, filter.device)
      .BindText(3, filter.state ? AlertStateName(*filter.state) : std::string_view())
      .BindInt(4, sql::LimitOrAll(filter.limit))
      .BindText(5, filter.severity);
  return sql::ReadRows<StoredAlert>(s, [](const Statement& s) -> Result<StoredAlert> {
    FG_ASSIGN_OR_RETURN(StoredAlert a, ReadAlert(s));
    return a;
  });
}

Status SqlStore::UpdateAlert(const StoredAlert& alert, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("UPDATE alerts SET state = ?2, actions_done = ?3, "
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
    if (c.Changes() == 0) return Status::NotFound("no alert " + alert.id);
    json detail = {{"state", AlertStateName(alert.state)},
                   {"done", alert.actions_done},
                   {"pending", alert.actions_pending},
                   {"skipped", json::parse(SkippedJson(alert.actions_skipped))},
                   {"false_positive", alert.false_positive}};
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "alert.update", alert.id, detail));
    return sql::WriteChange(c, ChangeKind::kAlert, alert.id);
  });
}

// ---- the alert workflow (issue 14) ----

Result<std::vector<StoredAlert>> SqlStore::ListAlertsSince(int64_t after_seq, size_t limit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare((std::string("SELECT ") + kAlertColumns +
                                              " FROM alerts WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                                                 .c_str()));
  s.BindInt(1, after_seq).BindInt(2, sql::LimitOrAll(limit));
  return sql::ReadRows<StoredAlert>(s, [](const Statement& s) -> Result<StoredAlert> {
    FG_ASSIGN_OR_RETURN(StoredAlert a, ReadAlert(s));
    return a;
  });
}

Result<Block> SqlStore::GetBlock(std::string_view kind, std::string_view value) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT kind, value, alert_id, reason, created_ms "
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

}  // namespace fg
