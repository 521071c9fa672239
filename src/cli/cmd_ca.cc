// femtoguard ca cert | init-root | sign-issuing | install-issuing | root-crl | rotate
// femtoguard audit list

#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "pki/ca.h"

namespace fg::cli {
namespace {

namespace fs = std::filesystem;

// The passphrase of a root data dir: --passphrase-file, else what
// DataDir::LoadCaPassphrase finds (FEMTOGUARD_CA_PASSPHRASE, config).
Result<std::string> RootPassphrase(const DataDir& dir, const std::string& file) {
  if (!file.empty()) return ReadSecretFile(file);
  return dir.LoadCaPassphrase();
}

// A root data dir's config (the CA name and validity); not a node.
Result<Config> RootConfig(const DataDir& dir) {
  if (!fs::exists(dir.CaDir() / "root.key")) {
    return Status::NotFound("no root key in " + dir.root().string() + " (make one with `femtoguard ca init-root`)");
  }
  return dir.LoadConfig();
}

Result<std::string> ReadInput(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return Status::NotFound("cannot read " + path);
  return text;
}

// Runs `body` as the subcommand's action with the data dir resolved.
void RunWithDir(CLI::App* cmd, Program& program, std::shared_ptr<std::string> data,
                std::function<int(const DataDir&)> body) {
  cmd->callback([&program, data, body] {
    program.action = [data, body] {
      std::string root = ResolveDataDirArg(*data);
      if (root.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
      return body(DataDir(root));
    };
  });
}

void RegisterOfflineRootCommands(CLI::App* ca, Program& program) {
  {
    auto* cmd = ca->add_subcommand("init-root", "make a root-only data dir (offline root): root key and certificate");
    auto data = std::make_shared<std::string>();
    auto pass_file = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--passphrase-file", *pass_file, "root key passphrase from this file (mode 600)");
    cmd->add_option("--name", *name, "CA name (default femtoguard; the nodes' config ca.name must match)")
        ->check(IdArg(IdKind::kText, 64));
    RunWithDir(cmd, program, data, [pass_file, name](const DataDir& dir) {
      std::error_code ec;
      if (fs::exists(dir.root(), ec) && !fs::is_empty(dir.root(), ec)) {
        return Fail(Status::AlreadyExists("refusing to overwrite existing data dir " + dir.root().string()));
      }
      Config config;
      if (!name->empty()) config.ca_name = *name;
      std::string passphrase;
      if (!pass_file->empty()) {
        auto p = ReadSecretFile(*pass_file);
        if (!p.ok()) return Fail(p.status());
        passphrase = std::move(p).value();
        config.ca_passphrase_file = fs::absolute(*pass_file, ec).string();
      } else if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) {
        passphrase = env;
      } else {
        // An offline root's passphrase is the operator's, never a file beside it.
        return Fail(Status::InvalidArgument("ca init-root needs --passphrase-file or FEMTOGUARD_CA_PASSPHRASE"));
      }
      fs::create_directories(dir.root(), ec);
      fs::permissions(dir.root(), fs::perms::owner_all, ec);
      Status s = WriteFileAtomic(dir.ConfigPath(), config.ToYaml(), 0600);
      if (s.ok()) s = CertificateAuthority::CreateRoot(dir, config, passphrase);
      OPENSSL_cleanse(passphrase.data(), passphrase.size());
      if (!s.ok()) return Fail(s);
      std::printf("root CA '%s' made in %s; keep this directory offline\n", config.ca_name.c_str(),
                  dir.root().c_str());
      return 0;
    });
  }
  {
    auto* cmd = ca->add_subcommand("sign-issuing", "with the root data dir: sign a node's issuing CA request");
    auto data = std::make_shared<std::string>();
    auto csr = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto pass_file = std::make_shared<std::string>();
    auto days = std::make_shared<int>(0);
    auto crl_url = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--csr", *csr, "the node's request (init --issuing-csr-out)")->required();
    cmd->add_option("--crl-url", *crl_url,
                    "where the root CRL will be published, e.g. http://NODE:8440/crl/root (the issuing CA's CRL "
                    "distribution point; strict relying parties need it)")
        ->check(IdArg(IdKind::kText, 512));
    cmd->add_option("--out", *out, "where to write the issuing CA certificate, PEM")->required();
    cmd->add_option("--passphrase-file", *pass_file, "root key passphrase from this file (mode 600)");
    cmd->add_option("--days", *days, "validity (default config ca.issuing_validity_days)")->check(CLI::Range(1, 7300));
    RunWithDir(cmd, program, data, [csr, out, pass_file, days, crl_url](const DataDir& dir) {
      auto config = RootConfig(dir);
      if (!config.ok()) return Fail(config.status());
      auto request = ReadInput(*csr);
      if (!request.ok()) return Fail(request.status());
      auto passphrase = RootPassphrase(dir, *pass_file);
      if (!passphrase.ok()) return Fail(passphrase.status());
      auto pem = CertificateAuthority::SignIssuing(dir, *config, *passphrase, *request,
                                                   *days > 0 ? *days : config->issuing_validity_days, *crl_url);
      OPENSSL_cleanse(passphrase->data(), passphrase->size());
      if (!pem.ok()) return Fail(pem.status());
      if (Status s = WriteFileAtomic(*out, *pem, 0644); !s.ok()) return Fail(s);
      std::fprintf(stderr, "femtoguard: issuing CA certificate written to %s\n", out->c_str());
      return 0;
    });
  }
  {
    auto* cmd = ca->add_subcommand("install-issuing",
                                   "on a node made with init --issuing-csr-out: install the signed issuing CA");
    auto data = std::make_shared<std::string>();
    auto cert = std::make_shared<std::string>();
    auto root = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--cert", *cert, "issuing CA certificate from `ca sign-issuing`, PEM")->required();
    cmd->add_option("--root", *root, "the root CA certificate (`ca cert --root` on the root data dir), PEM")
        ->required();
    RunWithDir(cmd, program, data, [cert, root](const DataDir& dir) {
      auto config = dir.LoadConfig();
      if (!config.ok()) return Fail(config.status());
      auto issuing_pem = ReadInput(*cert);
      if (!issuing_pem.ok()) return Fail(issuing_pem.status());
      auto root_pem = ReadInput(*root);
      if (!root_pem.ok()) return Fail(root_pem.status());
      auto passphrase = dir.LoadCaPassphrase();
      if (!passphrase.ok()) return Fail(passphrase.status());
      Status s = CertificateAuthority::InstallIssuing(dir, *config, *passphrase, *issuing_pem, *root_pem);
      OPENSSL_cleanse(passphrase->data(), passphrase->size());
      if (!s.ok()) return Fail(s);
      auto store = Store::Open(dir.ResolveStoreUrl(*config));
      if (store.ok()) {
        AuditEntry entry;
        entry.ts_ms = NowMillis();
        AuditContext who = CliAudit("ca install-issuing");
        entry.actor = who.actor;
        entry.action = "ca.install_issuing";
        entry.subject = config->ca_name;
        entry.reason = "issuing CA signed by an offline root; no root key on this node";
        (void)(*store)->AppendAudit(entry);
      }
      std::printf("issuing CA installed in %s\n", dir.root().c_str());
      return 0;
    });
  }
  {
    auto* cmd = ca->add_subcommand("root-crl", "with the root data dir: sign the root's CRL (DER)");
    auto data = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto pass_file = std::make_shared<std::string>();
    auto revoked = std::make_shared<std::vector<std::string>>();
    auto days = std::make_shared<int>(30);
    AddDataOption(cmd, data.get());
    cmd->add_option("--out", *out, "where to write the CRL, DER")->required();
    cmd->add_option("--passphrase-file", *pass_file, "root key passphrase from this file (mode 600)");
    cmd->add_option("--revoked-serial", *revoked, "serial (hex) of a revoked issuing CA certificate; repeatable")
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--days", *days, "nextUpdate, days from now (default 30)")->check(CLI::Range(1, 366));
    RunWithDir(cmd, program, data, [out, pass_file, revoked, days](const DataDir& dir) {
      auto config = RootConfig(dir);
      if (!config.ok()) return Fail(config.status());
      auto passphrase = RootPassphrase(dir, *pass_file);
      if (!passphrase.ok()) return Fail(passphrase.status());
      // The CRL number: one more than the last one this root signed.
      fs::path counter = dir.CaDir() / "root-crl.number";
      int64_t number = 1;
      if (auto last = ReadFile(counter); last.ok()) number = std::strtoll(last->c_str(), nullptr, 10) + 1;
      UnixMillis now = NowMillis();
      auto der = CertificateAuthority::SignRootCrl(dir, *passphrase, *revoked, number, now,
                                                   now + static_cast<UnixMillis>(*days) * kMillisPerDay);
      OPENSSL_cleanse(passphrase->data(), passphrase->size());
      if (!der.ok()) return Fail(der.status());
      if (Status s = WriteFileAtomic(counter, std::to_string(number) + "\n", 0600); !s.ok()) return Fail(s);
      if (Status s = WriteFileAtomic(*out, *der, 0644); !s.ok()) return Fail(s);
      std::fprintf(stderr, "femtoguard: root CRL #%lld written to %s\n", static_cast<long long>(number),
                   out->c_str());
      return 0;
    });
  }
}

}  // namespace

void RegisterCaCommands(CLI::App& app, Program& program) {
  auto* ca = app.add_subcommand("ca", "the certificate authority");
  ca->require_subcommand(1);
  {
    auto* cmd = ca->add_subcommand("cert", "print the issuing (or root) CA certificate, PEM");
    auto data = std::make_shared<std::string>();
    auto root = std::make_shared<bool>(false);
    auto chain = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_flag("--root", *root, "the root CA instead of the issuing CA");
    cmd->add_flag("--chain", *chain, "issuing CA followed by the root");
    // Certificates only: no passphrase needed, no key touched, no store
    // opened (an offline root's data dir has none).
    RunWithDir(cmd, program, data, [=](const DataDir& dir) {
      if (!dir.Exists()) return Fail(dir.LoadConfig().status());
      const char* name = *root ? "root.crt" : "issuing.crt";
      auto pem = ReadFile(dir.CaDir() / name);
      if (!pem.ok()) return Fail(pem.status());
      std::fputs(pem->c_str(), stdout);
      if (*chain && !*root) {
        auto rpem = ReadFile(dir.CaDir() / "root.crt");
        if (!rpem.ok()) return Fail(rpem.status());
        std::fputs(rpem->c_str(), stdout);
      }
      return 0;
    });
  }

  RegisterOfflineRootCommands(ca, program);

  {
    auto* cmd = ca->add_subcommand("rotate",
                                   "with the root key online: a new issuing CA; the old one is retired, still "
                                   "answered for (OCSP, CRL, renewal) until its certificates expire");
    auto data = std::make_shared<std::string>();
    auto days = std::make_shared<int>(0);
    auto csr_out = std::make_shared<std::string>();
    auto install = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    auto* days_opt =
        cmd->add_option("--days", *days, "validity of the new issuing CA (default config ca.issuing_validity_days)")
            ->check(CLI::Range(1, 7300));
    auto* csr_opt = cmd->add_option("--csr-out", *csr_out,
                                    "root kept elsewhere, step 1: make the new issuing key and write its request "
                                    "here (sign it with `ca sign-issuing` where the root is)");
    auto* install_opt = cmd->add_option("--install", *install,
                                        "root kept elsewhere, step 2: the new issuing CA certificate from "
                                        "`ca sign-issuing`, PEM");
    csr_opt->excludes(install_opt);
    days_opt->excludes(csr_opt)->excludes(install_opt);
    RunWithDir(cmd, program, data, [days, csr_out, install](const DataDir& dir) {
      auto config = dir.LoadConfig();
      if (!config.ok()) return Fail(config.status());
      if (!csr_out->empty()) {
        auto passphrase = dir.LoadCaPassphrase();
        if (!passphrase.ok()) return Fail(passphrase.status());
        auto csr = CertificateAuthority::RotateRequest(dir, *config, *passphrase);
        OPENSSL_cleanse(passphrase->data(), passphrase->size());
        if (!csr.ok()) return Fail(csr.status());
        if (Status s = WriteFileAtomic(*csr_out, *csr, 0644); !s.ok()) return Fail(s);
        std::printf("new issuing CA request written to %s; sign it where the root is (`ca sign-issuing --csr %s "
                    "--crl-url %s/crl/root`), then `ca rotate --install`\n",
                    csr_out->c_str(), csr_out->c_str(), config->public_url.c_str());
        return 0;
      }
      std::string new_pem;
      if (!install->empty()) {
        auto text = ReadInput(*install);
        if (!text.ok()) return Fail(text.status());
        new_pem = std::move(text).value();
      }
      auto old_pem = ReadFile(dir.CaDir() / "issuing.crt");
      if (!old_pem.ok()) return Fail(old_pem.status());
      auto old_cert = ossl::CertFromPem(*old_pem);
      if (!old_cert.ok()) return Fail(old_cert.status());
      const std::string old_serial = ossl::SerialToHex(X509_get0_serialNumber(old_cert->get()));
      auto passphrase = dir.LoadCaPassphrase();
      if (!passphrase.ok()) return Fail(passphrase.status());
      auto serial = new_pem.empty()
                        ? CertificateAuthority::Rotate(dir, *config, *passphrase,
                                                       *days > 0 ? *days : config->issuing_validity_days)
                        : CertificateAuthority::RotateInstall(dir, *config, *passphrase, new_pem);
      OPENSSL_cleanse(passphrase->data(), passphrase->size());
      if (!serial.ok()) return Fail(serial.status());
      if (auto store = Store::Open(dir.ResolveStoreUrl(*config)); store.ok()) {
        AuditEntry entry;
        entry.ts_ms = NowMillis();
        AuditContext who = CliAudit("ca rotate");
        entry.actor = who.actor;
        entry.action = "ca.rotate";
        entry.subject = *serial;
        entry.reason = "new issuing CA; " + old_serial + " retired (answered for until its certificates expire)";
        (void)(*store)->AppendAudit(entry);
      }
      NotifyServeOrWarn(dir);  // a running serve logs that it needs a restart
      std::printf("issuing CA rotated: new %s, retired %s (kept in %s)\n", serial->c_str(), old_serial.c_str(),
                  (dir.CaDir() / "retired").c_str());
      std::printf("restart serve to issue with the new CA; devices and relying parties need the new chain "
                  "(`femtoguard ca cert --chain`)\n");
      return 0;
    });
  }

  auto* audit = app.add_subcommand("audit", "the audit log");
  audit->require_subcommand(1);
  {
    auto* cmd = audit->add_subcommand("list", "audit entries, newest first");
    auto data = std::make_shared<std::string>();
    auto subject = std::make_shared<std::string>();
    auto limit = std::make_shared<size_t>(50);
    AddDataOption(cmd, data.get());
    cmd->add_option("--subject", *subject, "only entries about this device id or serial");
    cmd->add_option("--limit", *limit, "at most this many (0 = all)");
    RunWithEnv(cmd, program, data, [=](Env& env) {
      AuditFilter filter;
      filter.subject = *subject;
      filter.limit = *limit;
      auto entries = env.store->ListAudit(filter);
      if (!entries.ok()) return Fail(entries.status());
      for (const AuditEntry& e : *entries) {
        std::printf("%-6lld %s  %-16s %-15s %-34s %s%s%s\n", static_cast<long long>(e.seq),
                    FormatRfc3339(e.ts_ms).c_str(), Shown(e.actor).c_str(), Shown(e.action).c_str(),
                    Shown(e.subject).c_str(), Shown(e.reason).c_str(), e.detail.empty() ? "" : "  ",
                    ShownJsonText(e.detail).c_str());
      }
      return 0;
    });
  }
}

}  // namespace fg::cli
