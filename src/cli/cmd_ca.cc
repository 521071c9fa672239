// femtoguard ca cert | audit list

#include <cstdio>

#include "cli/commands.h"
#include "pki/ca.h"

namespace fg::cli {

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
    RunWithEnv(cmd, program, data, [=](Env& env) {
      // Certificates only: no passphrase needed, no key touched.
      const char* name = *root ? "root.crt" : "issuing.crt";
      auto pem = ReadFile(env.dir.CaDir() / name);
      if (!pem.ok()) return Fail(pem.status());
      std::fputs(pem->c_str(), stdout);
      if (*chain && !*root) {
        auto rpem = ReadFile(env.dir.CaDir() / "root.crt");
        if (!rpem.ok()) return Fail(rpem.status());
        std::fputs(rpem->c_str(), stdout);
      }
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
