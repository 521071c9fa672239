// femtoguard token create|list|revoke: bearer tokens of the HTTP API.
// femtoguard device token list|revoke: one-time bootstrap (enrolment) tokens.

#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "common/time.h"
#include "node/api_auth.h"

namespace fg::cli {

void RegisterTokenCommands(CLI::App& app, Program& program) {
  auto* token = app.add_subcommand("token", "bearer tokens of the HTTP API (only their hashes are stored)");
  token->require_subcommand(1);

  {
    auto* cmd = token->add_subcommand("create", "make a token; it is printed once, on stdout");
    auto data = std::make_shared<std::string>();
    auto role = std::make_shared<std::string>();
    auto label = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--role", *role, "admin, operator, viewer, segw, ingest or payments")->required();
    cmd->add_option("--label", *label, "what the token is for (e.g. the SeGW's name)")
        ->check(IdArg(IdKind::kText));
    RunWithEnv(cmd, program, data, [role, label](Env& env) {
      auto parsed = ParseApiRole(*role);
      if (!parsed.ok()) return Fail(parsed.status());
      std::string id;
      auto t = CreateApiToken(*env.store, *parsed, *label, CliAudit("token create"), &id);
      if (!t.ok()) return Fail(t.status());
      std::printf("%s\n", t->c_str());
      std::fprintf(stderr, "femtoguard: token %s (role %s) created; keep it secret, it is not shown again\n",
                   id.c_str(), std::string(ApiRoleName(*parsed)).c_str());
      return 0;
    });
  }
  {
    auto* cmd = token->add_subcommand("list", "list tokens (ids, roles, labels; never secrets)");
    auto data = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    RunWithEnv(cmd, program, data, [](Env& env) {
      auto tokens = env.store->ListApiTokens();
      if (!tokens.ok()) return Fail(tokens.status());
      std::printf("%-16s %-9s %-8s %-24s %s\n", "ID", "ROLE", "STATE", "CREATED", "LABEL");
      for (const auto& t : *tokens) {
        std::printf("%-16s %-9s %-8s %-24s %s\n", t.id.c_str(),
                    std::string(ApiRoleName(t.role)).c_str(), t.revoked_ms ? "revoked" : "live",
                    FormatRfc3339(t.created_ms).c_str(), Shown(t.label).c_str());
      }
      return 0;
    });
  }
  {
    auto* cmd = token->add_subcommand("revoke", "revoke a token by id; a running serve stops accepting it at once");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("id", *id, "token id (tk_...)")->required()->check(IdArg(IdKind::kToken));
    RunWithEnv(cmd, program, data, [id](Env& env) {
      if (Status s = env.store->RevokeApiToken(*id, CliAudit("token revoke")); !s.ok()) return Fail(s);
      NotifyServeOrWarn(env.dir);
      std::fprintf(stderr, "femtoguard: token %s revoked\n", id->c_str());
      return 0;
    });
  }
}

namespace {

// What a bootstrap token can still do, as `device token list` shows it.
const char* BootstrapTokenState(const BootstrapToken& t, UnixMillis now) {
  if (t.revoked_ms != 0) return "revoked";
  if (t.used_ms != 0) return "used";
  if (t.expires_ms <= now) return "expired";
  return "live";
}

}  // namespace

// `device token` makes a token (cmd_enrol.cc); these list and revoke them.
// The secret is derived from the reference with the data dir's token key and
// never stored, so nothing here can show it.
void AddDeviceTokenSubcommands(CLI::App* device_token, Program& program) {
  {
    auto* cmd = device_token->add_subcommand("list", "list bootstrap tokens (reference, device, times, state; never secrets)");
    auto data = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *device, "only this device's tokens")->check(IdArg(IdKind::kDeviceId));
    RunWithEnv(cmd, program, data, [device](Env& env) {
      std::optional<std::string_view> only;
      if (!device->empty()) only = *device;
      auto tokens = env.store->ListBootstrapTokens(only);
      if (!tokens.ok()) return Fail(tokens.status());
      const UnixMillis now = NowMillis();
      std::printf("%-36s %-24s %-24s %-24s %-8s %s\n", "REF", "DEVICE", "CREATED", "EXPIRES", "STATE", "WHEN");
      for (const BootstrapToken& t : *tokens) {
        UnixMillis when = t.revoked_ms != 0 ? t.revoked_ms : t.used_ms;
        std::printf("%-36s %-24s %-24s %-24s %-8s %s\n", Shown(t.ref).c_str(), Shown(t.device).c_str(),
                    FormatRfc3339(t.created_ms).c_str(), FormatRfc3339(t.expires_ms).c_str(),
                    BootstrapTokenState(t, now), when != 0 ? FormatRfc3339(when).c_str() : "-");
      }
      return 0;
    });
  }
  {
    auto* cmd = device_token->add_subcommand(
        "revoke", "revoke an unused bootstrap token; CMP and EST refuse it from now on (audited)");
    auto data = std::make_shared<std::string>();
    auto ref = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("ref", *ref, "token reference (tok-...)")->required()->check(IdArg(IdKind::kToken));
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    RunWithEnv(cmd, program, data, [ref, reason](Env& env) {
      std::string why = reason->empty() ? "device token revoke" : *reason;
      if (Status s = env.store->RevokeBootstrapToken(*ref, CliAudit(why)); !s.ok()) return Fail(s);
      // CMP and EST read the token from the store on every request: no
      // notification is needed for the refusal to take effect.
      std::fprintf(stderr, "femtoguard: bootstrap token %s revoked\n", ref->c_str());
      return 0;
    });
  }
}

}  // namespace fg::cli
