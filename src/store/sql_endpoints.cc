// Role EndpointRegistry: the SeGW / authentication endpoints.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- authentication endpoints ----

Status SqlStore::AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) {
  if (endpoint.address.empty()) return Status::InvalidArgument("endpoint needs an address");
  if (EndpointStatusName(endpoint.status) == "unknown") {
    return Status::InvalidArgument("unknown endpoint status " +
                                   std::to_string(static_cast<int>(endpoint.status)));
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
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
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "endpoint.add", endpoint.address, detail));
    return sql::WriteChange(c, ChangeKind::kEndpoint, endpoint.address);
  });
}

Status SqlStore::SetEndpointStatus(std::string_view address, EndpointStatus to,
                                   const AuditContext& audit) {
  if (EndpointStatusName(to) == "unknown") {
    return Status::InvalidArgument("unknown endpoint status " +
                                   std::to_string(static_cast<int>(to)));
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  const std::string id(address);
  return c.WriteTransaction([&]() -> Status {
    EndpointStatus from;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT status FROM endpoints WHERE address = ?1"));
      s.BindText(1, address);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("endpoint " + id + " is not known");
      FG_ASSIGN_OR_RETURN(from, sql::ParseStoredEndpointStatus(s.Text(0)));
    }
    if (!sql::IsAllowedEndpointTransition(from, to)) {
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
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "endpoint.status", id, detail));
    return sql::WriteChange(c, ChangeKind::kEndpoint, id);
  });
}

Result<std::vector<Endpoint>> SqlStore::ListEndpoints() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT address, status, created_ms, "
                                             "updated_ms FROM endpoints ORDER BY address"));
  return sql::ReadRows<Endpoint>(s, [](const Statement& s) -> Result<Endpoint> {
    Endpoint e;
    e.address = s.Text(0);
    FG_ASSIGN_OR_RETURN(e.status, sql::ParseStoredEndpointStatus(s.Text(1)));
    e.created_ms = s.Int(2);
    e.updated_ms = s.Int(3);
    return e;
  });
}

}  // namespace fg
