// Role EnrolmentCredentials: bootstrap tokens, vendor CAs, legacy credentials.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- enrolment credentials ----

Status SqlStore::AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) {
  if (token.ref.empty() || token.device.empty()) {
    return Status::InvalidArgument("bootstrap token needs a ref and a device");
  }
  if (token.used_ms != 0) return Status::InvalidArgument("a new bootstrap token cannot be used");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    const UnixMillis created = token.created_ms != 0 ? token.created_ms : now;
    if (token.expires_ms <= created) {
      return Status::InvalidArgument("bootstrap token " + token.ref +
                                     " must expire after it is created");
    }
    FG_ASSIGN_OR_RETURN(std::optional<Device> device, sql::LoadDevice(c, token.device));
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
    return sql::WriteAudit(c, now, audit, "token.create", token.device, detail);
  });
}

Result<BootstrapToken> SqlStore::GetBootstrapToken(std::string_view ref) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(
      Statement s, c.Prepare("SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms FROM "
                             "bootstrap_tokens WHERE ref = ?1"));
  s.BindText(1, ref);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no bootstrap token " + std::string(ref));
  return sql::ReadBootstrapToken(s);
}

Result<std::optional<std::string>> SqlStore::FindVendorCertificateUse(
    std::string_view vendor_cert_fp) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT device FROM credential_uses WHERE kind = "
                                             "'vendor_certificate' AND credential = ?1"));
  s.BindText(1, vendor_cert_fp);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status SqlStore::AddVendorCa(const VendorCa& ca, const AuditContext& audit) {
  if (ca.fp.empty() || ca.pem.empty()) {
    return Status::InvalidArgument("vendor CA needs a fingerprint and a PEM certificate");
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
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
    return sql::WriteAudit(c, now, audit, "vendor_ca.add", ca.fp, detail);
  });
}

Status SqlStore::RemoveVendorCa(std::string_view fp, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
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
    return sql::WriteAudit(c, NowMillis(), audit, "vendor_ca.remove", id, detail);
  });
}

Result<std::vector<VendorCa>> SqlStore::ListVendorCas() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT fp, subject, pem, added_ms FROM "
                                             "vendor_cas ORDER BY added_ms, fp"));
  return sql::ReadRows<VendorCa>(s, [](const Statement& s) -> Result<VendorCa> {
    VendorCa ca;
    ca.fp = s.Text(0);
    ca.subject = s.Text(1);
    ca.pem = s.Text(2);
    ca.added_ms = s.Int(3);
    return ca;
  });
}

Status SqlStore::AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) {
  if (cred.fp.empty() || cred.pem.empty()) {
    return Status::InvalidArgument("legacy credential needs a fingerprint and a PEM certificate");
  }
  if (cred.cutoff_ms <= 0) return Status::InvalidArgument("legacy credential needs a cutoff");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
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
    return sql::WriteAudit(c, now, audit, "legacy.add", cred.fp, detail);
  });
}

Result<std::vector<LegacyCredential>> SqlStore::ListLegacyCredentials() {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT fp, subject, pem, cutoff_ms, added_ms FROM "
                                             "legacy_credentials ORDER BY added_ms, fp"));
  return sql::ReadRows<LegacyCredential>(s, [](const Statement& s) -> Result<LegacyCredential> {
    LegacyCredential l;
    l.fp = s.Text(0);
    l.subject = s.Text(1);
    l.pem = s.Text(2);
    l.cutoff_ms = s.Int(3);
    l.added_ms = s.Int(4);
    return l;
  });
}

Result<bool> SqlStore::LegacyCredentialUsed(std::string_view fp, std::string_view device) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("SELECT 1 FROM credential_uses WHERE kind = "
                                "'legacy_credential' AND credential = ?1 AND device = ?2"));
  s.BindText(1, fp).BindText(2, device);
  return s.Step();
}

// ---- bootstrap token custody (issue 14) ----

Result<std::vector<BootstrapToken>> SqlStore::ListBootstrapTokens(
    std::optional<std::string_view> device) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  // Two statements rather than "?1 IS NULL OR device = ?1": every parameter
  // is bound and typed (PostgreSQL cannot type an unbound one).
  constexpr const char* kColumns = "SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms FROM bootstrap_tokens ";
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare(std::string(kColumns) + (device ? "WHERE device = ?1 " : "") +
                                             "ORDER BY created_ms, ref"));
  if (device) s.BindText(1, *device);
  return sql::ReadRows<BootstrapToken>(s, [](const Statement& s) -> Result<BootstrapToken> {
    FG_ASSIGN_OR_RETURN(BootstrapToken t, sql::ReadBootstrapToken(s));
    return t;
  });
}

Status SqlStore::RevokeBootstrapToken(std::string_view ref, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    const UnixMillis now = NowMillis();
    BootstrapToken t;
    {
      FG_ASSIGN_OR_RETURN(
          Statement s, c.Prepare("SELECT ref, device, created_ms, expires_ms, used_ms, revoked_ms "
                                 "FROM bootstrap_tokens WHERE ref = ?1"));
      s.BindText(1, ref);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("no bootstrap token " + std::string(ref));
      FG_ASSIGN_OR_RETURN(t, sql::ReadBootstrapToken(s));
    }
    if (t.revoked_ms != 0) {
      return Status::FailedPrecondition("bootstrap token " + t.ref + " was already revoked at " +
                                        FormatRfc3339(t.revoked_ms));
    }
    if (t.used_ms != 0) {
      return Status::FailedPrecondition("bootstrap token " + t.ref + " was already used at " +
                                        FormatRfc3339(t.used_ms) +
                                        "; revoke the certificate it paid for instead");
    }
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("UPDATE bootstrap_tokens SET revoked_ms = ?2 "
                                    "WHERE ref = ?1 AND revoked_ms = 0 AND used_ms = 0"));
      s.BindText(1, ref).BindInt(2, now);
      FG_RETURN_IF_ERROR(s.Run());
    }
    if (c.Changes() == 0) return Status::Internal("bootstrap token " + t.ref + " changed under us");
    json detail = {{"ref", t.ref}};
    return sql::WriteAudit(c, now, audit, "token.revoke", t.device, detail);
  });
}

}  // namespace fg
