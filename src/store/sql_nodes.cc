// Role NodeRegistry: the nodes of a cluster.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- nodes (issue 15, schema v6) ----

Status SqlStore::UpsertNode(const NodeInfo& node, const AuditContext& audit) {
  if (node.id.empty() || node.public_url.empty())
    return Status::InvalidArgument("a node needs an id and a public URL");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    bool existed = false;
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT 1 FROM nodes WHERE id = ?1"));
      s.BindText(1, node.id);
      FG_ASSIGN_OR_RETURN(existed, s.Step());
    }
    {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare("INSERT INTO nodes (id, public_url, url_order, joined_ms) "
                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET "
                    "public_url = excluded.public_url, url_order = excluded.url_order"));
      s.BindText(1, node.id)
          .BindText(2, node.public_url)
          .BindInt(3, node.url_order)
          .BindInt(4, node.joined_ms != 0 ? node.joined_ms : now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    json detail = {{"public_url", node.public_url}, {"url_order", node.url_order}};
    FG_RETURN_IF_ERROR(
        sql::WriteAudit(c, now, audit, existed ? "node.update" : "node.join", node.id, detail));
    return sql::WriteChange(c, ChangeKind::kNode, node.id);
  });
}

Status SqlStore::HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health_json) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    FG_ASSIGN_OR_RETURN(Statement s,
                        c.Prepare("UPDATE nodes SET heartbeat_ms = ?2, health = ?3 WHERE id = ?1"));
    s.BindText(1, id).BindInt(2, when).BindText(3, health_json);
    FG_RETURN_IF_ERROR(s.Run());
    if (c.Changes() == 0) return Status::NotFound("no node " + std::string(id));
    return Status::Ok();
  });
}

Result<std::vector<NodeInfo>> SqlStore::ListNodes() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("SELECT id, public_url, url_order, joined_ms, heartbeat_ms, health "
                                "FROM nodes ORDER BY url_order, joined_ms, id"));
  return sql::ReadRows<NodeInfo>(s, [](const Statement& s) -> Result<NodeInfo> {
    NodeInfo n;
    n.id = s.Text(0);
    n.public_url = s.Text(1);
    n.url_order = static_cast<int>(s.Int(2));
    n.joined_ms = s.Int(3);
    n.heartbeat_ms = s.Int(4);
    n.health = s.Text(5);
    return n;
  });
}

Status SqlStore::RemoveNode(std::string_view id, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("DELETE FROM nodes WHERE id = ?1"));
      s.BindText(1, id);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) return Status::NotFound("no node " + std::string(id));
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, NowMillis(), audit, "node.remove", id, json::object()));
    return sql::WriteChange(c, ChangeKind::kNode, id);
  });
}

}  // namespace fg
