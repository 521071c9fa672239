// femtoguard device token | vendor-ca add|list|remove | legacy add|list

#include <cstdio>

#include "cli/commands.h"
#include "common/ossl.h"
#include "pki/enrolment.h"

namespace fg::cli {
namespace {

Result<ossl::X509Ptr> ReadCertFile(const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto cert = ossl::CertFromPem(pem);
  if (!cert.ok()) return Status::InvalidArgument(path + ": not a PEM certificate");
  return cert;
}

std::string SubjectText(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

}  // namespace

void AddDeviceTokenCommand(CLI::App* device, Program& program) {
  auto* cmd = device->add_subcommand("token", "a one-time bootstrap token for CMP (PBM) or EST; prints REF SECRET");
  auto data = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto ttl_hours = std::make_shared<int>(72);
  AddDataOption(cmd, data.get());
  cmd->add_option("--device", *id, "device id (required to make a token)")->check(IdArg(IdKind::kDeviceId));
  cmd->add_option("--ttl-hours", *ttl_hours, "hours until the token expires (default 72)")->check(CLI::Range(1, 24 * 90));
  AddDeviceTokenSubcommands(cmd, program);  // list | revoke (cmd_token.cc)
  cmd->callback([&program, cmd, data, id, ttl_hours] {
    if (!cmd->get_subcommands().empty()) return;  // `device token list|revoke` set the action
    if (id->empty()) throw CLI::RequiredError("--device");
    program.action = [=] {
      auto env = OpenEnv(*data);
      if (!env.ok()) return Fail(env.status());
      auto key = env->dir.LoadOrCreateTokenKey();
      if (!key.ok()) return Fail(key.status());
      TokenSecrets secrets(std::move(key).value());
      BootstrapToken token;
      token.ref = TokenSecrets::NewRef();
      token.device = *id;
      token.created_ms = NowMillis();
      token.expires_ms = token.created_ms + static_cast<UnixMillis>(*ttl_hours) * 3600 * 1000;
      if (Status s = env->store->AddBootstrapToken(token, CliAudit("bootstrap token")); !s.ok()) return Fail(s);
      std::string secret = secrets.SecretFor(token.ref);
      // The one place a secret is shown: to the operator who asked for it.
      std::printf("%s %s\n", token.ref.c_str(), secret.c_str());
      OPENSSL_cleanse(secret.data(), secret.size());
      return 0;
    };
  });
}

void RegisterEnrolmentCommands(CLI::App& app, Program& program) {
  auto* vendor = app.add_subcommand("vendor-ca", "manufacturer CAs trusted for initial enrolment (TS 33.310)");
  vendor->require_subcommand(1);
  {
    auto* cmd = vendor->add_subcommand("add", "trust a vendor CA certificate");
    auto data = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--cert", *path, "vendor CA certificate, PEM")->required();
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, path, reason] {
      program.action = [=] {
        auto cert = ReadCertFile(*path);
        if (!cert.ok()) return Fail(cert.status());
        if (X509_check_ca(cert->get()) < 1) {
          return Fail(Status::InvalidArgument(*path + " is not a CA certificate (basicConstraints CA:TRUE)"));
        }
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        VendorCa ca;
        ca.fp = ossl::CertFingerprint(cert->get());
        ca.subject = SubjectText(cert->get());
        ca.pem = ossl::CertToPem(cert->get());
        ca.added_ms = NowMillis();
        if (Status s = env->store->AddVendorCa(ca, CliAudit(reason->empty() ? "vendor CA trusted" : *reason)); !s.ok()) {
          return Fail(s);
        }
        std::printf("trusted vendor CA %s (%s)\n", Shown(ca.subject).c_str(), Shown(ca.fp).c_str());
        return 0;
      };
    });
  }
  {
    auto* cmd = vendor->add_subcommand("list", "trusted vendor CAs");
    auto data = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto cas = env.store->ListVendorCas();
      if (!cas.ok()) return Fail(cas.status());
      for (const VendorCa& c : *cas)
        std::printf("%s  %s\n", Shown(c.fp).c_str(), Shown(c.subject).c_str());
      return 0;
    });
  }
  {
    auto* cmd = vendor->add_subcommand("remove", "stop trusting a vendor CA");
    auto data = std::make_shared<std::string>();
    auto fp = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--fp", *fp, "sha256:<hex> as shown by list")->required();
    RunWithEnv(cmd, program, data, [=](Env& env) {
      if (Status s = env.store->RemoveVendorCa(*fp, CliAudit("vendor CA removed")); !s.ok()) return Fail(s);
      std::printf("removed %s\n", fp->c_str());
      return 0;
    });
  }

  auto* legacy = app.add_subcommand("legacy", "a credential the fleet shares, accepted once per device until a cutoff");
  legacy->require_subcommand(1);
  {
    auto* cmd = legacy->add_subcommand("add", "register the shared legacy certificate and its cutoff");
    auto data = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    auto cutoff = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--cert", *path, "the shared certificate, PEM")->required();
    cmd->add_option("--cutoff", *cutoff, "RFC 3339 time or YYYY-MM-DD (UTC midnight) after which it is refused")
        ->required();
    cmd->callback([&program, data, path, cutoff] {
      program.action = [=] {
        std::string when = *cutoff;
        if (when.size() == 10) when += "T00:00:00Z";
        auto t = ParseRfc3339(when);
        if (!t.ok()) return Fail(t.status());
        auto cert = ReadCertFile(*path);
        if (!cert.ok()) return Fail(cert.status());
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        LegacyCredential cred;
        cred.fp = ossl::CertFingerprint(cert->get());
        cred.subject = SubjectText(cert->get());
        cred.pem = ossl::CertToPem(cert->get());
        cred.cutoff_ms = *t;
        cred.added_ms = NowMillis();
        if (Status s = env->store->AddLegacyCredential(cred, CliAudit("legacy credential registered for migration"));
            !s.ok()) {
          return Fail(s);
        }
        std::printf("legacy credential %s accepted for one migration per device until %s\n", cred.fp.c_str(),
                    FormatRfc3339(cred.cutoff_ms).c_str());
        return 0;
      };
    });
  }
  {
    auto* cmd = legacy->add_subcommand("list", "registered legacy credentials");
    auto data = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto creds = env.store->ListLegacyCredentials();
      if (!creds.ok()) return Fail(creds.status());
      for (const LegacyCredential& c : *creds) {
        std::printf("%s  cutoff %s  %s\n", Shown(c.fp).c_str(), FormatRfc3339(c.cutoff_ms).c_str(),
                    Shown(c.subject).c_str());
      }
      return 0;
    });
  }
}

}  // namespace fg::cli
