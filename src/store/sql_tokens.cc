// Role ApiTokenStore: bearer tokens of the API.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- API tokens ----

Status SqlStore::AddApiToken(const ApiToken& token, const AuditContext& audit) {
  if (token.id.empty() || token.hash.empty()) {
    return Status::InvalidArgument("an API token needs an id and a hash");
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
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
      if (inserted.IsAlreadyExists())
        return Status::AlreadyExists("API token " + token.id + " already exists");
      FG_RETURN_IF_ERROR(inserted);
    }
    json detail = {{"role", ApiRoleName(token.role)}, {"label", token.label}};
    return sql::WriteAudit(c, now, audit, "api_token.create", token.id, detail);
  });
}

namespace {
Result<ApiToken> ReadApiToken(const Statement& s) {
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

Result<std::optional<ApiToken>> SqlStore::FindApiTokenByHash(std::string_view hash) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT id, role, hash, label, created_ms, revoked_ms "
                                             "FROM api_tokens WHERE hash = ?1 AND revoked_ms = 0"));
  s.BindText(1, hash);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<ApiToken>();
  FG_ASSIGN_OR_RETURN(ApiToken t, ReadApiToken(s));
  return std::optional<ApiToken>(std::move(t));
}

Result<std::vector<ApiToken>> SqlStore::ListApiTokens() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT id, role, hash, label, created_ms, revoked_ms "
                                             "FROM api_tokens ORDER BY created_ms, id"));
  return sql::ReadRows<ApiToken>(s, [](const Statement& s) -> Result<ApiToken> {
    FG_ASSIGN_OR_RETURN(ApiToken t, ReadApiToken(s));
    return t;
  });
}

Status SqlStore::RevokeApiToken(std::string_view id, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    {
      FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("UPDATE api_tokens SET revoked_ms = ?2 "
                                                 "WHERE id = ?1 AND revoked_ms = 0"));
      s.BindText(1, id).BindInt(2, now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) {
      return Status::NotFound("no live API token " + std::string(id));
    }
    return sql::WriteAudit(c, now, audit, "api_token.revoke", id, json::object());
  });
}

}  // namespace fg
