// femtoguard block list|remove: the blocks that admission and the payment
// check enforce (placed by alert actions or by hand), and their removal.
// Every removal is audited (who, when, why) and reaches a running serve at
// once through the change feed.

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/time.h"

namespace fg::cli {

void RegisterBlockCommands(CLI::App& app, Program& program) {
  auto* block =
      app.add_subcommand("block", "device, line and payment blocks (placed by alerts or by hand)");
  block->require_subcommand(1);
  {
    auto* cmd = block->add_subcommand("list", "every block, by kind and value");
    auto data = std::make_shared<std::string>();
    auto kind = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_option("--kind", *kind, "only device, line or payments")
        ->check(CLI::IsMember({"device", "line", "payments"}));
    cmd->add_flag("--json", *as_json, "one block JSON object per line");
    RunWithEnv(cmd, program, data, [kind, as_json](Env& env) {
      auto blocks = env.store->ListBlocks();
      if (!blocks.ok()) return Fail(blocks.status());
      if (!*as_json)
        std::printf("%-9s %-40s %-18s %-24s %s\n", "KIND", "VALUE", "ALERT", "SINCE", "REASON");
      for (const Block& b : *blocks) {
        if (!kind->empty() && b.kind != *kind) continue;
        if (*as_json) {
          nlohmann::json j = {{"kind", b.kind},
                              {"value", b.value},
                              {"alert", b.alert_id},
                              {"reason", b.reason},
                              {"since", FormatRfc3339(b.created_ms)}};
          std::printf("%s\n", ShownJson(j).c_str());
        } else {
          std::printf("%-9s %-40s %-18s %-24s %s\n", Shown(b.kind).c_str(), Shown(b.value).c_str(),
                      b.alert_id.empty() ? "-" : Shown(b.alert_id).c_str(),
                      FormatRfc3339(b.created_ms).c_str(),
                      b.reason.empty() ? "-" : Shown(b.reason).c_str());
        }
      }
      return 0;
    });
  }
  {
    auto* cmd = block->add_subcommand(
        "remove",
        "lift a device or line block (payment holds: femtoguard payments release --imsi)");
    auto data = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>();
    auto line = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    auto* dev_opt = cmd->add_option("--device", *device, "the blocked device id")
                        ->check(IdArg(IdKind::kDeviceId));
    auto* line_opt = cmd->add_option("--line", *line, "the blocked IP address or CIDR, as listed")
                         ->check(IdArg(IdKind::kToken));
    dev_opt->excludes(line_opt);
    cmd->add_option("--reason", *reason, "why (goes to the audit log)")
        ->check(IdArg(IdKind::kText, 512));
    RunWithEnv(cmd, program, data, [device, line, reason](Env& env) {
      if (device->empty() && line->empty())
        return Fail(Status::InvalidArgument("name --device ID or --line IP"));
      const std::string kind = device->empty() ? "line" : "device";
      const std::string& value = device->empty() ? *line : *device;
      Status s =
          env.store->RemoveBlock(kind, value, CliAudit(reason->empty() ? "block remove" : *reason));
      if (!s.ok()) return Fail(s);  // NotFound: exit 3
      NotifyServeOrWarn(env.dir);   // admission allows it again now
      std::fprintf(stderr, "femtoguard: %s block on %s removed\n", kind.c_str(),
                   Shown(value).c_str());
      return 0;
    });
  }
}

}  // namespace fg::cli
