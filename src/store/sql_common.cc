#include <nlohmann/json.hpp>

#include "store/sql_store.h"

// The helpers every role's logic shares: encodings of enums as stored, row
// readers, and the audit and change rows written inside a transaction.

namespace fg {
namespace sql {

using nlohmann::json;

// nlohmann::json::dump throws on invalid UTF-8 unless told otherwise; the
// store must not throw, and a replacement character is the lesser harm.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

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
  auto radio = ParseRadioIdentity(s.Text(14));
  if (!radio.ok()) return Status::Internal("store: devices.radio of " + d.id + ": " + radio.status().message());
  d.radio = std::move(*radio);
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
  FG_ASSIGN_OR_RETURN(
      Statement s,
      c.Prepare("UPDATE devices SET last_seen_ms = "
                "CASE WHEN last_seen_ms > ?2 THEN last_seen_ms ELSE ?2 END WHERE id = ?1"));
  s.BindText(1, id).BindInt(2, when);
  FG_RETURN_IF_ERROR(s.Run());
  *found = c.Changes() > 0;
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
  return ReadRows<Certificate>(s, ReadCertificate);
}

// Serials of the device's certificates in `status`, oldest first.
Result<std::vector<std::string>> SerialsWithStatus(Connection& c, std::string_view device,
                                                   CertStatus status) {
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT serial FROM certificates WHERE device = ?1 "
                                             "AND status = ?2 ORDER BY issued_ms, rowid"));
  s.BindText(1, device).BindText(2, CertStatusName(status));
  return ReadRows<std::string>(s,
                               [](const Statement& s) -> Result<std::string> { return s.Text(0); });
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
  c.NoteChange();
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
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT device, expires_ms, used_ms, revoked_ms FROM "
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
    if (c.Changes() != 1) {
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

}  // namespace sql
}  // namespace fg
