// femtoguard cert issue | revoke | list

#include <cstdio>

#include "cli/commands.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "pki/issuance.h"

namespace fg::cli {

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
    AddDataOption(cmd, data.get());
    cmd->add_option("--serial", *serial, "serial number, hex")
        ->required()
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--reason", *reason,
                    "keyCompromise|caCompromise|affiliationChanged|superseded|cessationOfOperation|"
                    "certificateHold|privilegeWithdrawn|unspecified")
        ->check(IdArg(IdKind::kText, 512));
    cmd->add_option("--comment", *comment, "why, in words (audit log)")
        ->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, serial, reason, comment] {
      program.action = [=] {
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
