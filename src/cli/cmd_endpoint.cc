// femtoguard endpoint add | rotate | retire | list, and device sweep-dormant

#include <cstdio>

#include "cli/commands.h"
#include "pki/dormancy.h"

namespace fg::cli {
namespace {

int SetStatus(const std::string& data, const std::string& address, EndpointStatus status, const std::string& why) {
  auto env = OpenEnv(data);
  if (!env.ok()) return Fail(env.status());
  if (Status s = env->store->SetEndpointStatus(address, status, CliAudit(why)); !s.ok()) return Fail(s);
  std::printf("%s: %s\n", Shown(address).c_str(), std::string(EndpointStatusName(status)).c_str());
  NotifyServeOrWarn(env->dir);
  return 0;
}

}  // namespace

void AddSweepDormantCommand(CLI::App* device, Program& program) {
  auto* cmd = device->add_subcommand("sweep-dormant", "suspend active devices not seen for devices.dormancy_days");
  auto data = std::make_shared<std::string>();
  auto as_of = std::make_shared<std::string>();
  auto days = std::make_shared<int>(-1);
  auto dry_run = std::make_shared<bool>(false);
  AddDataOption(cmd, data.get());
  cmd->add_option("--as-of", *as_of, "judge as of this RFC 3339 time (default: now)");
  cmd->add_option("--days", *days, "override devices.dormancy_days");
  cmd->add_flag("--dry-run", *dry_run, "list what would be suspended, change nothing");
  cmd->callback([&program, data, as_of, days, dry_run] {
    program.action = [=] {
      auto env = OpenEnv(*data);
      if (!env.ok()) return Fail(env.status());
      UnixMillis now = NowMillis();
      if (!as_of->empty()) {
        auto t = ParseRfc3339(*as_of);
        if (!t.ok()) return Fail(t.status());
        now = *t;
      }
      int limit = *days >= 0 ? *days : env->config.dormancy_days;
      auto sweep = SuspendDormant(*env->store, limit, now, *dry_run, CliAudit("dormancy sweep").actor);
      if (!sweep.ok()) return Fail(sweep.status());
      for (const auto& id : sweep->suspended) {
        std::printf("%s %s\n", *dry_run ? "would suspend" : "suspended", Shown(id).c_str());
      }
      std::printf("%zu of %zu active devices dormant (limit %d days)\n", sweep->suspended.size(), sweep->examined,
                  limit);
      if (!*dry_run && !sweep->suspended.empty()) NotifyServeOrWarn(env->dir);
      return 0;
    };
  });
}

void RegisterEndpointCommands(CLI::App& app, Program& program) {
  auto* ep = app.add_subcommand("endpoint", "SeGW / authentication endpoints and their rotation");
  ep->require_subcommand(1);
  {
    auto* cmd = ep->add_subcommand("add", "a new active endpoint");
    auto data = std::make_shared<std::string>();
    auto address = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--address", *address, "HOST:PORT or URL as devices use it")
        ->required()
        ->check(IdArg(IdKind::kEndpoint));
    RunWithEnv(cmd, program, data, [=](Env& env) {
      Endpoint e;
      e.address = *address;
      e.status = EndpointStatus::kActive;
      e.created_ms = e.updated_ms = NowMillis();
      if (Status s = env.store->AddEndpoint(e, CliAudit("endpoint add")); !s.ok()) return Fail(s);
      std::printf("%s: active\n", address->c_str());
      NotifyServeOrWarn(env.dir);
      return 0;
    });
  }
  {
    auto* cmd = ep->add_subcommand("rotate", "bring up a new endpoint and drain the old one");
    auto data = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--from", *from, "endpoint to drain")
        ->required()
        ->check(IdArg(IdKind::kEndpoint));
    cmd->add_option("--to", *to, "new endpoint (added if unknown)")
        ->required()
        ->check(IdArg(IdKind::kEndpoint));
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto list = env.store->ListEndpoints();
      if (!list.ok()) return Fail(list.status());
      bool have_to = false, have_from = false;
      for (const Endpoint& e : *list) {
        have_to = have_to || e.address == *to;
        have_from = have_from || e.address == *from;
      }
      if (!have_from) return Fail(Status::NotFound("no endpoint " + *from));
      AuditContext audit = CliAudit("rotate " + *from + " -> " + *to);
      if (!have_to) {
        Endpoint e;
        e.address = *to;
        e.status = EndpointStatus::kActive;
        e.created_ms = e.updated_ms = NowMillis();
        if (Status s = env.store->AddEndpoint(e, audit); !s.ok()) return Fail(s);
      }
      if (Status s = env.store->SetEndpointStatus(*from, EndpointStatus::kDraining, audit); !s.ok()) {
        return Fail(s);
      }
      std::printf("%s: active\n%s: draining\n", to->c_str(), from->c_str());
      NotifyServeOrWarn(env.dir);
      return 0;
    });
  }
  {
    auto* cmd = ep->add_subcommand("retire", "retire an endpoint: devices still using it are suspect");
    auto data = std::make_shared<std::string>();
    auto address = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--address", *address, "endpoint")->required()->check(IdArg(IdKind::kEndpoint));
    cmd->callback([&program, data, address] {
      program.action = [=] { return SetStatus(*data, *address, EndpointStatus::kRetired, "endpoint retire"); };
    });
  }
  {
    auto* cmd = ep->add_subcommand("list", "endpoints and their status");
    auto data = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto list = env.store->ListEndpoints();
      if (!list.ok()) return Fail(list.status());
      std::printf("%-40s %-9s %s\n", "ENDPOINT", "STATUS", "SINCE");
      for (const Endpoint& e : *list) {
        std::printf("%-40s %-9s %s\n", Shown(e.address).c_str(),
                    std::string(EndpointStatusName(e.status)).c_str(),
                    FormatRfc3339(e.updated_ms).c_str());
      }
      return 0;
    });
  }
}

}  // namespace fg::cli
