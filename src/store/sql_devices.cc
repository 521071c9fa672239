// Role DeviceRegistry: the registry of femtocells and their lifecycle.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- devices ----

namespace sql {

// The bodies of the device writes, run inside a caller's transaction so that
// ImportDevices can apply a whole registry file in one.
Status AddDeviceTx(Connection& c, const Device& device, const AuditContext& audit) {
  const UnixMillis now = NowMillis();
  {
    FG_ASSIGN_OR_RETURN(
        Statement s,
        c.Prepare("INSERT INTO devices (id, owner, mode, site_lat, site_lon, site_radius_m, "
                  "prefixes, csg, cert_fp, max_ues, status, created_ms, updated_ms, "
                  "last_seen_ms, radio) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                  "?13, ?14, ?15)"));
    s.BindText(1, device.id);
    sql::BindAttributes(s, device);
    // Timestamps given by the caller (a migration from another store) are kept.
    s.BindText(11, DeviceStatusName(device.status))
        .BindInt(12, device.created_ms != 0 ? device.created_ms : now)
        .BindInt(13, device.updated_ms != 0 ? device.updated_ms : now)
        .BindInt(14, device.last_seen_ms)
        .BindText(15, RadioIdentityJson(device.radio));
    Status inserted = s.Run();
    if (inserted.IsAlreadyExists()) {
      return Status::AlreadyExists("device " + device.id + " already exists");
    }
    FG_RETURN_IF_ERROR(inserted);
  }
  json detail = {{"status", DeviceStatusName(device.status)},
                 {"mode", AccessModeName(device.mode)}};
  FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "device.add", device.id, detail));
  return sql::WriteChange(c, ChangeKind::kDevice, device.id);
}

Status UpdateDeviceAttributesTx(Connection& c, const Device& device, const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(std::optional<Device> current, sql::LoadDevice(c, device.id));
  if (!current) return Status::NotFound("device " + device.id + " is not registered");
  std::vector<std::string> changed = ChangedDeviceAttributes(*current, device);
  if (changed.empty()) return Status::Ok();  // nothing happened, so nothing to record
  const UnixMillis now = NowMillis();
  {
    FG_ASSIGN_OR_RETURN(
        Statement s,
        c.Prepare("UPDATE devices SET owner = ?2, mode = ?3, site_lat = ?4, site_lon = ?5, "
                  "site_radius_m = ?6, prefixes = ?7, csg = ?8, cert_fp = ?9, max_ues = ?10, "
                  "updated_ms = ?11, radio = ?12 WHERE id = ?1"));
    s.BindText(1, device.id);
    sql::BindAttributes(s, device);
    s.BindInt(11, now);
    s.BindText(12, RadioIdentityJson(device.radio));
    FG_RETURN_IF_ERROR(s.Run());
  }
  json detail = {{"changed", changed}};
  FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "device.update", device.id, detail));
  return sql::WriteChange(c, ChangeKind::kDevice, device.id);
}

Result<DeviceTransition> SetDeviceStatusTx(Connection& c, std::string_view id, DeviceStatus to,
                                           const AuditContext& audit) {
  const std::string device(id);
  FG_ASSIGN_OR_RETURN(std::optional<Device> current, sql::LoadDevice(c, id));
  if (!current) return Status::NotFound("device " + device + " is not registered");
  DeviceTransition t;
  t.from = current->status;
  t.to = to;
  if (!IsAllowedTransition(t.from, to)) {
    return Status::FailedPrecondition("device " + device + ": transition from " +
                                      std::string(DeviceStatusName(t.from)) + " to " +
                                      std::string(DeviceStatusName(to)) + " is not allowed");
  }
  const UnixMillis now = NowMillis();
  FG_RETURN_IF_ERROR(sql::SetDeviceStatusRow(c, id, to, now));
  json detail = {{"from", DeviceStatusName(t.from)}, {"to", DeviceStatusName(to)}};
  FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "device.status", device, detail));
  FG_RETURN_IF_ERROR(sql::WriteChange(c, ChangeKind::kDevice, device));

  if (to == DeviceStatus::kSuspended) {
    FG_ASSIGN_OR_RETURN(t.certs_held, sql::SerialsWithStatus(c, id, CertStatus::kValid));
    for (const std::string& serial : t.certs_held) {
      FG_RETURN_IF_ERROR(sql::TransitionCertificate(
          c, now, audit, "cert.hold", serial, device, CertStatus::kHold,
          RevocationReason::kCertificateHold, now,
          {{"reason", RevocationReasonName(RevocationReason::kCertificateHold)}}));
    }
  } else if (t.from == DeviceStatus::kSuspended && to == DeviceStatus::kActive) {
    FG_ASSIGN_OR_RETURN(t.certs_released, sql::SerialsWithStatus(c, id, CertStatus::kHold));
    for (const std::string& serial : t.certs_released) {
      FG_RETURN_IF_ERROR(sql::TransitionCertificate(
          c, now, audit, "cert.release", serial, device, CertStatus::kValid,
          RevocationReason::kUnspecified, 0, json::object()));
    }
  } else if (to == DeviceStatus::kDecommissioned) {
    FG_ASSIGN_OR_RETURN(std::vector<std::string> valid,
                        sql::SerialsWithStatus(c, id, CertStatus::kValid));
    FG_ASSIGN_OR_RETURN(std::vector<std::string> held,
                        sql::SerialsWithStatus(c, id, CertStatus::kHold));
    const auto reason = RevocationReason::kCessationOfOperation;
    for (const auto* group : {&valid, &held}) {
      const bool was_held = group == &held;
      for (const std::string& serial : *group) {
        json d = {{"reason", RevocationReasonName(reason)}};
        if (was_held) d["from"] = "hold";
        FG_RETURN_IF_ERROR(sql::TransitionCertificate(c, now, audit, "cert.revoke", serial, device,
                                                      CertStatus::kRevoked, reason, now,
                                                      std::move(d)));
        t.certs_revoked.push_back(serial);
      }
    }
  }
  return t;
}

}  // namespace sql

Status SqlStore::AddDevice(const Device& device, const AuditContext& audit) {
  FG_RETURN_IF_ERROR(ValidateDeviceId(device.id));
  if (device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status { return sql::AddDeviceTx(c, device, audit); });
}

Status SqlStore::UpdateDeviceAttributes(const Device& device, const AuditContext& audit) {
  if (device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction(
      [&]() -> Status { return sql::UpdateDeviceAttributesTx(c, device, audit); });
}

Status SqlStore::ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) {
  for (const DeviceImport& step : plan) {
    FG_RETURN_IF_ERROR(ValidateDeviceId(step.device.id));
    if (step.device.max_ues < 0) return Status::InvalidArgument("max_ues must not be negative");
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    for (const DeviceImport& step : plan) {
      if (step.is_new) {
        FG_RETURN_IF_ERROR(sql::AddDeviceTx(c, step.device, audit));
        continue;
      }
      if (step.attributes) FG_RETURN_IF_ERROR(sql::UpdateDeviceAttributesTx(c, step.device, audit));
      if (step.status) {
        FG_ASSIGN_OR_RETURN(DeviceTransition t,
                            sql::SetDeviceStatusTx(c, step.device.id, *step.status, audit));
        (void)t;
      }
    }
    return Status::Ok();
  });
}

Result<Device> SqlStore::GetDevice(std::string_view id) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(std::optional<Device> d, sql::LoadDevice(c, id));
  if (!d) return Status::NotFound("device " + std::string(id) + " is not registered");
  return std::move(*d);
}

Result<std::vector<Device>> SqlStore::ListDevices(const DeviceFilter& filter) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  auto prepared = filter.status
                      ? c.Prepare("SELECT" FG_DEVICE_COLUMNS
                                  "FROM devices WHERE status = ?2 ORDER BY id LIMIT ?1")
                      : c.Prepare("SELECT" FG_DEVICE_COLUMNS "FROM devices ORDER BY id LIMIT ?1");
  if (!prepared.ok()) return prepared.status();
  Statement& s = prepared.value();
  s.BindInt(1, sql::LimitOrAll(filter.limit));
  if (filter.status) s.BindText(2, DeviceStatusName(*filter.status));
  return sql::ReadRows<Device>(s, [](const Statement& s) -> Result<Device> {
    FG_ASSIGN_OR_RETURN(Device d, sql::ReadDevice(s));
    return d;
  });
}

Result<DeviceTransition> SqlStore::SetDeviceStatus(std::string_view id, DeviceStatus to,
                                                   const AuditContext& audit) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction(
      [&]() -> Result<DeviceTransition> { return sql::SetDeviceStatusTx(c, id, to, audit); });
}

Status SqlStore::TouchDevice(std::string_view id, UnixMillis when) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Status {
    bool found = false;
    FG_RETURN_IF_ERROR(sql::TouchDeviceRow(c, id, when, &found));
    if (!found) return Status::NotFound("device " + std::string(id) + " is not registered");
    return Status::Ok();
  });
}

Result<size_t> SqlStore::TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  size_t found_rows = 0;
  FG_RETURN_IF_ERROR(c.WriteTransaction([&]() -> Status {
    found_rows = 0;
    for (const auto& [id, when] : seen) {
      bool found = false;
      FG_RETURN_IF_ERROR(sql::TouchDeviceRow(c, id, when, &found));
      found_rows += found ? 1 : 0;
    }
    return Status::Ok();
  }));
  return found_rows;
}

}  // namespace fg
