// femtoguard cert issue | revoke | list

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "node/node_membership.h"
#include "pki/issuance.h"

namespace fg::cli {
namespace {

using CrlPtr = std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)>;

// A CRL file (PEM or DER) that one of this data dir's CA certificates signed.
Result<CrlPtr> LoadOwnCrl(const DataDir& dir, const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  ossl::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), X509_CRL_free);
  if (!crl) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size())));
  }
  if (!crl) return Status::InvalidArgument(path + " is not a CRL (PEM or DER)");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir.CaDir(), ec)) {
    if (entry.path().extension() != ".crt") continue;
    auto pem = ReadFile(entry.path());
    if (!pem.ok()) continue;
    auto cert = ossl::CertFromPem(*pem);
    if (!cert.ok() || X509_check_ca(cert->get()) == 0) continue;
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(cert->get())) != 0) continue;
    if (X509_CRL_verify(crl.get(), X509_get0_pubkey(cert->get())) == 1) return crl;
  }
  return Status::InvalidArgument(path + " is not signed by a CA of this data dir");
}

// `cert revoke --from-crl`: re-applies the revocations of a CRL this CA
// published (after restoring an older backup, docs/backup.md).
int RevokeFromCrl(Env& env, const std::string& path, const std::string& comment) {
  auto crl = LoadOwnCrl(env.dir, path);
  if (!crl.ok()) return Fail(crl.status());
  AuditContext audit = CliAudit(comment.empty() ? "cert revoke --from-crl " + path : comment);
  size_t revoked = 0, already = 0, unknown = 0;
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl->get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(entries, i);
    const std::string serial = ossl::SerialToHex(X509_REVOKED_get0_serialNumber(r));
    RevocationReason reason = RevocationReason::kUnspecified;
    if (auto* code = static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(r, NID_crl_reason, nullptr, nullptr))) {
      reason = static_cast<RevocationReason>(ASN1_ENUMERATED_get(code));
      ASN1_ENUMERATED_free(code);
    }
    auto when = ossl::Asn1TimeToMillis(X509_REVOKED_get0_revocationDate(r));
    auto current = env.store->GetCertificate(serial);
    if (!current.ok()) {
      if (!current.status().IsNotFound()) return Fail(current.status());
      std::fprintf(stderr, "femtoguard: serial %s is not in this store (issued after the backup?)\n",
                   serial.c_str());
      ++unknown;
      continue;
    }
    if (current->status == CertStatus::kRevoked ||
        (current->status == CertStatus::kHold && reason == RevocationReason::kCertificateHold)) {
      ++already;
      continue;
    }
    if (Status s = env.store->RevokeCertificate(serial, reason, when.ok() ? *when : NowMillis(), audit); !s.ok()) {
      return Fail(s);
    }
    std::printf("revoked %s (%s)\n", serial.c_str(), std::string(RevocationReasonName(reason)).c_str());
    ++revoked;
  }
  std::printf("%s: %zu revoked, %zu already revoked, %zu not in this store\n", Shown(path).c_str(), revoked,
              already, unknown);
  if (revoked > 0) NotifyServeOrWarn(env.dir);
  return 0;
}

}  // namespace

void RegisterCertCommands(CLI::App& app, Program& program) {
  auto* cert = app.add_subcommand("cert", "device certificates");
  cert->require_subcommand(1);
  {
    auto* cmd = cert->add_subcommand("issue", "issue a certificate for a device from a CSR; PEM on stdout");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto csr = std::make_shared<std::string>();
    auto days = std::make_shared<int>(0);
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *id, "device id")->required()->check(IdArg(IdKind::kDeviceId));
    cmd->add_option("--csr", *csr, "PKCS#10 request, PEM or DER")->required();
    cmd->add_option("--days", *days, "validity in days (default and cap from config)");
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto csr_bytes = ReadFile(*csr);
      if (!csr_bytes.ok()) return Fail(csr_bytes.status());
      auto passphrase = env.dir.LoadCaPassphrase();
      if (!passphrase.ok()) return Fail(passphrase.status());
      auto ca = CertificateAuthority::Load(env.dir, env.config, *passphrase);
      if (!ca.ok()) return Fail(ca.status());
      // The cluster's URLs in url_order, as serve signs with (docs/cluster.md).
      auto nodes = env.store->ListNodes();
      if (!nodes.ok()) return Fail(nodes.status());
      (*ca)->SetNodeUrls(NodeBaseUrls(*nodes));
      IssuancePolicy policy(*env.store, **ca);
      IssueRequest request;
      request.device = *id;
      request.validity_days = *days;
      request.audit = CliAudit(reason->empty() ? "cert issue" : *reason);
      auto issued = policy.IssueFromCsr(request, *csr_bytes);
      if (!issued.ok()) return Fail(issued.status());
      std::fputs(issued->pem.c_str(), stdout);
      std::fprintf(stderr, "issued serial %s to %s, valid until %s", issued->record.serial.c_str(), id->c_str(),
                   FormatRfc3339(issued->record.not_after_ms).c_str());
      if (!issued->superseded.empty()) std::fprintf(stderr, "; superseded %zu", issued->superseded.size());
      std::fprintf(stderr, "\n");
      NotifyServeOrWarn(env.dir);
      return 0;
    });
  }
  {
    auto* cmd = cert->add_subcommand("revoke", "revoke a certificate (reason certificateHold = reversible hold)");
    auto data = std::make_shared<std::string>();
    auto serial = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>("unspecified");
    auto comment = std::make_shared<std::string>();
    auto from_crl = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    auto* serial_opt = cmd->add_option("--serial", *serial, "serial number, hex")->check(IdArg(IdKind::kToken));
    cmd->add_option("--from-crl", *from_crl,
                    "re-apply every revocation of this CRL (one this CA signed; after a restore, docs/backup.md)")
        ->excludes(serial_opt);
    cmd->add_option("--reason", *reason,
                    "keyCompromise|caCompromise|affiliationChanged|superseded|cessationOfOperation|"
                    "certificateHold|privilegeWithdrawn|unspecified")
        ->check(IdArg(IdKind::kText, 512));
    cmd->add_option("--comment", *comment, "why, in words (audit log)")
        ->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, serial, reason, comment, from_crl] {
      program.action = [=] {
        if (!from_crl->empty()) {
          auto env = OpenEnv(*data);
          if (!env.ok()) return Fail(env.status());
          return RevokeFromCrl(*env, *from_crl, *comment);
        }
        if (serial->empty()) return Fail(Status::InvalidArgument("pass --serial HEX or --from-crl FILE"));
        auto norm = ossl::NormalizeSerialHex(*serial);
        if (!norm.ok()) return Fail(norm.status());
        auto r = ParseRevocationReason(*reason);
        if (!r.ok()) return Fail(r.status());
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        std::string why = comment->empty() ? "cert revoke (" + *reason + ")" : *comment;
        if (Status s = env->store->RevokeCertificate(*norm, *r, NowMillis(), CliAudit(why)); !s.ok()) {
          return Fail(s);
        }
        std::printf("revoked %s (%s)\n", norm->c_str(), std::string(RevocationReasonName(*r)).c_str());
        NotifyServeOrWarn(env->dir);
        return 0;
      };
    });
  }
  {
    auto* cmd = cert->add_subcommand("list", "certificates, oldest first");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *id, "only this device's certificates")
        ->check(IdArg(IdKind::kDeviceId));
    RunWithEnv(cmd, program, data, [=](Env& env) {
      std::optional<std::string_view> filter;
      if (!id->empty()) filter = *id;
      auto certs = env.store->ListCertificates(filter);
      if (!certs.ok()) return Fail(certs.status());
      std::printf("%-34s %-24s %-8s %-21s %-21s %s\n", "SERIAL", "DEVICE", "STATUS", "NOT AFTER", "REVOKED",
                  "REASON");
      for (const Certificate& c : *certs) {
        std::printf(
            "%-34s %-24s %-8s %-21s %-21s %s\n", Shown(c.serial).c_str(), Shown(c.device).c_str(),
            std::string(CertStatusName(c.status)).c_str(), FormatRfc3339(c.not_after_ms).c_str(),
            c.status == CertStatus::kValid ? "-" : FormatRfc3339(c.revoked_ms).c_str(),
            c.status == CertStatus::kValid ? "-"
                                           : std::string(RevocationReasonName(c.reason)).c_str());
      }
      return 0;
    });
  }
}

}  // namespace fg::cli
