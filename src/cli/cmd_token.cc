// femtoguard token create|list|revoke: bearer tokens of the HTTP API.

#include <cstdio>

#include "cli/commands.h"
#include "common/time.h"
#include "server/api_auth.h"

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
    cmd->add_option("--role", *role, "admin, operator, segw, ingest or payments")->required();
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

}  // namespace fg::cli
