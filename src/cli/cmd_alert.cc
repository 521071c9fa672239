// femtoguard alert list|show|approve|dismiss: the operator's side of response.

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/time.h"
#include "response/response.h"

namespace fg::cli {
namespace {

using nlohmann::json;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + Shown(s);
  return out.empty() ? "-" : out;
}

}  // namespace

void RegisterAlertCommands(CLI::App& app, Program& program) {
  auto* alert = app.add_subcommand("alert", "alerts raised by detection and admission, and their actions");
  alert->require_subcommand(1);
  {
    auto* cmd = alert->add_subcommand("list", "newest first");
    auto data = std::make_shared<std::string>();
    auto filter = std::make_shared<AlertFilter>();
    auto state = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_option("--rule", filter->rule, "only this rule")->check(IdArg(IdKind::kToken));
    cmd->add_option("--device", filter->device, "only this device")
        ->check(IdArg(IdKind::kDeviceId));
    cmd->add_option("--state", *state, "open, pending_approval, acted or dismissed");
    cmd->add_option("--limit", filter->limit, "at most this many (default 100)");
    cmd->add_flag("--json", *as_json, "one alert JSON object per line");
    RunWithEnv(cmd, program, data, [filter, state, as_json](Env& env) {
      AlertFilter f = *filter;
      if (!state->empty()) {
        bool ok = false;
        for (AlertState s : {AlertState::kOpen, AlertState::kPendingApproval, AlertState::kActed, AlertState::kDismissed}) {
          if (AlertStateName(s) == *state) {
            f.state = s;
            ok = true;
          }
        }
        if (!ok) return Fail(Status::InvalidArgument("--state must be open, pending_approval, acted or dismissed"));
      }
      auto alerts = env.store->ListAlerts(f);
      if (!alerts.ok()) return Fail(alerts.status());
      if (*as_json) {
        for (const auto& a : *alerts) std::printf("%s\n", ShownJsonText(a.json).c_str());
        return 0;
      }
      std::printf("%-16s %-24s %-18s %-8s %-14s %-16s %-22s %s\n", "ID", "TIME", "RULE", "SEVERITY", "DEVICE",
                  "STATE", "DONE", "PENDING");
      for (const auto& a : *alerts) {
        std::printf("%-16s %-24s %-18s %-8s %-14s %-16s %-22s %s\n", Shown(a.id).c_str(),
                    FormatRfc3339(a.ts_ms).c_str(), Shown(a.rule).c_str(),
                    Shown(a.severity).c_str(), a.device.empty() ? "-" : Shown(a.device).c_str(),
                    std::string(AlertStateName(a.state)).c_str(), Join(a.actions_done).c_str(),
                    Join(a.actions_pending).c_str());
      }
      return 0;
    });
  }
  {
    auto* cmd = alert->add_subcommand("show", "one alert with its evidence");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("id", *id, "alert id")->required()->check(IdArg(IdKind::kToken));
    RunWithEnv(cmd, program, data, [id](Env& env) {
      auto a = env.store->GetAlert(*id);
      if (!a.ok()) return Fail(a.status());
      json j = json::parse(a->json, nullptr, false);
      if (j.is_discarded()) j = json::object();
      j["state"] = AlertStateName(a->state);
      j["actions_done"] = a->actions_done;
      j["actions_pending"] = a->actions_pending;
      std::printf("%s\n", ShownJson(j, 2).c_str());
      return 0;
    });
  }
  for (bool approve : {true, false}) {
    auto* cmd = alert->add_subcommand(approve ? "approve" : "dismiss",
                                      approve ? "run the actions waiting for an operator"
                                              : "drop the waiting actions; nothing is done");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("id", *id, "alert id")->required()->check(IdArg(IdKind::kToken));
    cmd->add_option("--reason", *reason, "why (goes to the audit log)")
        ->check(IdArg(IdKind::kText, 512));
    RunWithEnv(cmd, program, data, [id, reason, approve](Env& env) {
      response::Options options;
      options.syslog = false;
      response::Responder responder(*env.store, options);
      AuditContext audit = CliAudit(reason->empty() ? std::string(approve ? "alert approve" : "alert dismiss") : *reason);
      Status s = approve ? responder.Approve(*id, audit) : responder.Dismiss(*id, audit);
      if (!s.ok()) return Fail(s);
      NotifyServeOrWarn(env.dir);  // serve terminates sessions and reloads blocks now
      auto a = env.store->GetAlert(*id);
      if (a.ok()) {
        std::fprintf(stderr, "femtoguard: alert %s %s; done: %s\n", Shown(*id).c_str(),
                     std::string(AlertStateName(a->state)).c_str(), Join(a->actions_done).c_str());
      }
      return 0;
    });
  }
}

}  // namespace fg::cli
