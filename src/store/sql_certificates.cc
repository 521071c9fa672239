// Role CertificateLedger: issued certificates, revocation, the CRL counter.

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace fg {

using nlohmann::json;
using sql::Connection;
using sql::Dump;
using sql::ParseStringArray;
using sql::Statement;

// ---- certificates ----

Result<std::optional<std::string>> SqlStore::FindKeyOwner(std::string_view key_fp) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT device FROM certificates WHERE key_fp = ?1"));
  s.BindText(1, key_fp);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Result<std::vector<std::string>> SqlStore::RecordIssuedCertificate(
    const Certificate& cert, const AuditContext& audit, const EnrolmentAuthorization& auth) {
  if (cert.serial.empty() || cert.device.empty() || cert.key_fp.empty()) {
    return Status::InvalidArgument("certificate record needs a serial, a device and a key_fp");
  }
  if (EnrolmentKindName(auth.kind) == "unknown") {
    return Status::InvalidArgument("unknown enrolment kind " +
                                   std::to_string(static_cast<int>(auth.kind)));
  }
  if (auth.kind != EnrolmentKind::kOperator && auth.credential.empty()) {
    return Status::InvalidArgument(std::string(EnrolmentKindName(auth.kind)) +
                                   " issuance needs the credential that authorised it");
  }
  auto body = [&](Connection& c) -> Result<std::vector<std::string>> {
    const UnixMillis now = NowMillis();
    // Under the write lock, in this order: the credential, the device, the
    // one-time uses; then the key and serial (unique indexes) on insert.
    FG_RETURN_IF_ERROR(sql::CheckCredentialValid(c, cert.device, auth, now));
    FG_ASSIGN_OR_RETURN(std::optional<Device> device, sql::LoadDevice(c, cert.device));
    if (!device) {
      return Status::FailedPrecondition("device " + cert.device + " is not registered");
    }
    if (device->status != DeviceStatus::kProvisioned && device->status != DeviceStatus::kActive) {
      return Status::FailedPrecondition("device " + cert.device + " is " +
                                        std::string(DeviceStatusName(device->status)) +
                                        ": no certificate may be issued to it");
    }
    FG_RETURN_IF_ERROR(sql::CheckCredentialUnused(c, cert.device, auth));
    const UnixMillis issued = cert.issued_ms != 0 ? cert.issued_ms : now;

    // Earlier valid certificates, read before the new one is in the table.
    FG_ASSIGN_OR_RETURN(std::vector<std::string> superseded,
                        sql::SerialsWithStatus(c, cert.device, CertStatus::kValid));
    // The key and the serial, checked before the insert: a failed statement
    // aborts a PostgreSQL transaction, so who owns what could not be looked
    // up after the unique index refused it. The unique indexes stay the hard
    // guard; under the write transaction's serialisation they never fire here.
    {
      FG_ASSIGN_OR_RETURN(Statement q,
                          c.Prepare("SELECT device, serial FROM certificates WHERE key_fp = ?1"));
      q.BindText(1, cert.key_fp);
      FG_ASSIGN_OR_RETURN(bool row, q.Step());
      if (row && q.Text(0) == cert.device) {
        return Status::AlreadyExists("key " + cert.key_fp + " was already used by certificate " +
                                     q.Text(1) + " of device " + cert.device +
                                     "; a new certificate needs a new key");
      }
      if (row) {
        return Status::AlreadyExists("key " + cert.key_fp + " is bound to device " + q.Text(0) +
                                     "; it cannot be bound to device " + cert.device);
      }
    }
    {
      FG_ASSIGN_OR_RETURN(Statement q, c.Prepare("SELECT 1 FROM certificates WHERE serial = ?1"));
      q.BindText(1, cert.serial);
      FG_ASSIGN_OR_RETURN(bool row, q.Step());
      if (row)
        return Status::AlreadyExists("certificate serial " + cert.serial + " already exists");
    }
    {
      FG_ASSIGN_OR_RETURN(
          Statement s,
          c.Prepare("INSERT INTO certificates (serial, device, key_fp, cert_fp, not_before_ms, "
                    "not_after_ms, issued_ms, status, reason, revoked_ms, der) VALUES (?1, ?2, "
                    "?3, ?4, ?5, ?6, ?7, 'valid', 0, 0, ?8)"));
      s.BindText(1, cert.serial)
          .BindText(2, cert.device)
          .BindText(3, cert.key_fp)
          .BindText(4, cert.cert_fp)
          .BindInt(5, cert.not_before_ms)
          .BindInt(6, cert.not_after_ms)
          .BindInt(7, issued)
          .BindBlob(8, cert.der);
      Status inserted = s.Run();
      if (inserted.IsAlreadyExists()) {
        // Only reachable if a writer bypassed the serialisation above.
        return Status::AlreadyExists("key " + cert.key_fp + " or serial " + cert.serial +
                                     " is already bound");
      }
      FG_RETURN_IF_ERROR(inserted);
    }
    FG_RETURN_IF_ERROR(sql::ConsumeCredential(c, cert, auth, now));

    if (device->status == DeviceStatus::kProvisioned) {
      FG_RETURN_IF_ERROR(sql::SetDeviceStatusRow(c, cert.device, DeviceStatus::kActive, now));
      json detail = {{"from", DeviceStatusName(DeviceStatus::kProvisioned)},
                     {"to", DeviceStatusName(DeviceStatus::kActive)},
                     {"serial", cert.serial}};
      FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit.actor, "device.status", cert.device,
                                         "first certificate issued", sql::Dump(detail)));
      FG_RETURN_IF_ERROR(sql::WriteChange(c, ChangeKind::kDevice, cert.device));
    }
    for (const std::string& old : superseded) {
      FG_RETURN_IF_ERROR(sql::TransitionCertificate(
          c, now, audit, "cert.supersede", old, cert.device, CertStatus::kRevoked,
          RevocationReason::kSuperseded, now,
          {{"reason", RevocationReasonName(RevocationReason::kSuperseded)}, {"by", cert.serial}}));
    }
    bool found = false;
    FG_RETURN_IF_ERROR(sql::TouchDeviceRow(c, cert.device, issued, &found));

    json detail = {{"serial", cert.serial},
                   {"device", cert.device},
                   {"key_fp", cert.key_fp},
                   {"not_after_ms", cert.not_after_ms}};
    if (!superseded.empty()) detail["superseded"] = superseded;
    detail["auth"] = EnrolmentKindName(auth.kind);
    if (!auth.credential.empty()) detail["credential"] = auth.credential;
    if (!auth.source_ip.empty()) detail["source_ip"] = auth.source_ip;
    FG_RETURN_IF_ERROR(sql::WriteAudit(c, now, audit, "cert.issue", cert.serial, detail));
    FG_RETURN_IF_ERROR(sql::WriteChange(c, ChangeKind::kCertificate, cert.serial));
    return superseded;
  };
  if (pool_->group_commit()) {
    IssueRequest request{body, std::nullopt};
    return GroupCommit(request);
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() { return body(c); });
}

// ---- group commit of issuance ----
//
// Callers queue their issuance; whoever finds no batch running becomes the
// leader, takes the whole queue, and runs it in one transaction: each
// issuance under its own SAVEPOINT (a refused one rolls back only itself and
// gets its own error), then one COMMIT for all. Those who queued while it
// ran form the next batch. Nobody is told OK before the COMMIT returned.

Result<std::vector<std::string>> SqlStore::GroupCommit(IssueRequest& request) {
  std::unique_lock lock(issue_mutex_);
  issue_queue_.push_back(&request);
  for (;;) {
    if (request.result) return std::move(*request.result);
    if (!issue_leader_) {
      issue_leader_ = true;
      std::vector<IssueRequest*> batch;
      batch.swap(issue_queue_);
      lock.unlock();
      std::vector<Result<std::vector<std::string>>> results = RunIssueBatch(batch);
      lock.lock();
      for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
      issue_leader_ = false;
      issue_cv_.notify_all();
      continue;
    }
    issue_cv_.wait(lock);
  }
}

std::vector<Result<std::vector<std::string>>> SqlStore::RunIssueBatch(
    const std::vector<IssueRequest*>& batch) {
  using Outcome = Result<std::vector<std::string>>;
  std::vector<Outcome> out;
  auto fail_all = [&](const Status& st) {
    out.assign(batch.size(), Outcome(st));
    return out;
  };
  auto lease = pool_->Acquire();
  if (!lease.ok()) return fail_all(lease.status());
  Connection& c = **lease;
  if (batch.size() == 1) {
    out.push_back(c.WriteTransaction([&]() { return batch[0]->body(c); }));
    return out;
  }
  if (Status begun = c.Begin(); !begun.ok()) return fail_all(begun);
  for (IssueRequest* r : batch) {
    if (Status sp = c.Exec("SAVEPOINT fg_issue"); !sp.ok()) {
      c.Rollback();
      return fail_all(sp);
    }
    Outcome one = r->body(c);
    Status closed =
        c.Exec(one.ok() ? "RELEASE SAVEPOINT fg_issue" : "ROLLBACK TO SAVEPOINT fg_issue");
    if (!closed.ok()) {
      c.Rollback();
      return fail_all(closed);
    }
    out.push_back(std::move(one));
  }
  if (Status committed = c.Commit(); !committed.ok()) {
    c.Rollback();
    // Whatever each one would have been, none is known to be recorded.
    for (Outcome& o : out) {
      if (o.ok()) o = Outcome(committed);
    }
  }
  return out;
}

Result<Certificate> SqlStore::GetCertificate(std::string_view serial) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  FG_ASSIGN_OR_RETURN(Statement s,
                      c.Prepare("SELECT" FG_CERT_COLUMNS "FROM certificates WHERE serial = ?1"));
  s.BindText(1, serial);
  FG_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::NotFound("no certificate with serial " + std::string(serial));
  return sql::ReadCertificate(s);
}

Result<std::vector<Certificate>> SqlStore::ListCertificates(
    std::optional<std::string_view> device) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  if (device) {
    FG_ASSIGN_OR_RETURN(Statement s,
                        c.Prepare("SELECT" FG_CERT_COLUMNS "FROM certificates WHERE device = ?1 "
                                  "ORDER BY issued_ms, rowid"));
    s.BindText(1, *device);
    return sql::ReadCertificates(s);
  }
  FG_ASSIGN_OR_RETURN(Statement s, c.Prepare("SELECT" FG_CERT_COLUMNS
                                             "FROM certificates ORDER BY issued_ms, rowid"));
  return sql::ReadCertificates(s);
}

Status SqlStore::RevokeCertificate(std::string_view serial, RevocationReason reason,
                                   UnixMillis when, const AuditContext& audit) {
  if (RevocationReasonName(reason) == "unknown") {
    return Status::InvalidArgument("unknown revocation reason code " +
                                   std::to_string(static_cast<int>(reason)));
  }
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  const std::string id(serial);
  return c.WriteTransaction([&]() -> Status {
    std::string device;
    CertStatus status;
    {
      FG_ASSIGN_OR_RETURN(Statement s,
                          c.Prepare("SELECT device, status FROM certificates WHERE serial = ?1"));
      s.BindText(1, serial);
      FG_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("no certificate with serial " + id);
      device = s.Text(0);
      FG_ASSIGN_OR_RETURN(status, sql::ParseCertStatus(s.Text(1)));
    }
    if (status == CertStatus::kRevoked) {
      return Status::FailedPrecondition("certificate " + id + " is already revoked");
    }
    const UnixMillis now = NowMillis();
    const UnixMillis at = when != 0 ? when : now;
    if (reason == RevocationReason::kCertificateHold) {
      if (status == CertStatus::kHold) {
        return Status::FailedPrecondition("certificate " + id + " is already on hold");
      }
      return sql::TransitionCertificate(c, now, audit, "cert.hold", id, device, CertStatus::kHold,
                                        reason, at, {{"reason", RevocationReasonName(reason)}});
    }
    json detail = {{"reason", RevocationReasonName(reason)}};
    if (status == CertStatus::kHold) detail["from"] = "hold";
    return sql::TransitionCertificate(c, now, audit, "cert.revoke", id, device,
                                      CertStatus::kRevoked, reason, at, std::move(detail));
  });
}

Result<std::vector<Certificate>> SqlStore::ListRevokedCertificates(UnixMillis now) {
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->AcquireRead());
  Connection& c = *lease;
  // A certificate is valid through its notAfter instant (RFC 5280 §4.1.2.5),
  // so it stays listed until then.
  FG_ASSIGN_OR_RETURN(
      Statement s,
      c.Prepare("SELECT" FG_CERT_COLUMNS "FROM certificates WHERE status IN ('hold', 'revoked') "
                "AND not_after_ms >= ?1 ORDER BY revoked_ms, rowid"));
  s.BindInt(1, now);
  return sql::ReadCertificates(s);
}

// ---- counters ----

Result<int64_t> SqlStore::NextCounter(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("counter name must not be empty");
  FG_ASSIGN_OR_RETURN(sql::Lease lease, pool_->Acquire());
  Connection& c = *lease;
  return c.WriteTransaction([&]() -> Result<int64_t> {
    FG_ASSIGN_OR_RETURN(Statement s,
                        c.Prepare("INSERT INTO counters (name, value) VALUES (?1, 1) "
                                  "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 "
                                  "RETURNING value"));
    s.BindText(1, name);
    FG_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Internal("store: counter upsert returned no value");
    return s.Int(0);
  });
}

}  // namespace fg
