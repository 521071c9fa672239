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

Result<AlertState> ParseAlertStateArg(const std::string& state) {
  for (AlertState s : {AlertState::kOpen, AlertState::kPendingApproval, AlertState::kActed,
                       AlertState::kDismissed}) {
    if (AlertStateName(s) == state) return s;
  }
  return Status::InvalidArgument("--state must be open, pending_approval, acted or dismissed");
}

}  // namespace

void RegisterAlertCommands(CLI::App& app, Program& program) {
  auto* alert =
      app.add_subcommand("alert", "alerts raised by detection and admission, and their actions");
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
    cmd->add_option("--severity", filter->severity, "only this severity")
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--limit", filter->limit, "at most this many (default 100)");
    cmd->add_flag("--json", *as_json, "one alert JSON object per line");
    RunWithEnv(cmd, program, data, [filter, state, as_json](Env& env) {
      AlertFilter f = *filter;
      if (!state->empty()) {
        bool ok = false;
        for (AlertState s : {AlertState::kOpen, AlertState::kPendingApproval, AlertState::kActed,
                             AlertState::kDismissed}) {
          if (AlertStateName(s) == *state) {
            f.state = s;
            ok = true;
          }
        }
        if (!ok)
          return Fail(Status::InvalidArgument(
              "--state must be open, pending_approval, acted or dismissed"));
      }
      auto alerts = env.store->ListAlerts(f);
      if (!alerts.ok()) return Fail(alerts.status());
      if (*as_json) {
        for (const auto& a : *alerts) std::printf("%s\n", ShownJsonText(a.json).c_str());
        return 0;
      }
      std::printf("%-16s %-24s %-18s %-8s %-14s %-16s %-22s %s\n", "ID", "TIME", "RULE", "SEVERITY",
                  "DEVICE", "STATE", "DONE", "PENDING");
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
      json skipped = json::array();
      for (const auto& k : a->actions_skipped)
        skipped.push_back({{"action", k.action}, {"reason", k.reason}});
      j["actions_skipped"] = skipped;
      j["false_positive"] = a->false_positive;
      std::printf("%s\n", ShownJson(j, 2).c_str());
      return 0;
    });
  }
  for (bool approve : {true, false}) {
    auto* cmd = alert->add_subcommand(
        approve ? "approve" : "dismiss",
        approve ? "run the actions waiting for an operator (one alert by id, or every alert a "
                  "filter matches)"
                : "drop the waiting actions (--false-positive: also undo what the alert did)");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto filter = std::make_shared<AlertFilter>();
    auto state = std::make_shared<std::string>();
    auto false_positive = std::make_shared<bool>(false);
    auto as_json = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_option("id", *id, "alert id (or select alerts with the filters)")
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--reason", *reason, "why (goes to the audit log)")
        ->check(IdArg(IdKind::kText, 512));
    cmd->add_option("--rule", filter->rule, "bulk: alerts of this rule")
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--device", filter->device, "bulk: alerts of this device")
        ->check(IdArg(IdKind::kDeviceId));
    cmd->add_option("--severity", filter->severity, "bulk: alerts of this severity")
        ->check(IdArg(IdKind::kToken));
    cmd->add_option("--state", *state, "bulk: alerts in this state");
    cmd->add_option("--limit", filter->limit,
                    "bulk: at most this many, newest first (default 1000)");
    if (!approve) {
      cmd->add_flag(
          "--false-positive", *false_positive,
          "undo what the alert did: unblock, release payment holds, clear suspicion, re-activate");
    }
    cmd->add_flag("--json", *as_json, "one JSON object per alert on stdout");
    filter->limit = 1000;
    RunWithEnv(
        cmd, program, data,
        [id, reason, filter, state, false_positive, as_json, approve](Env& env) {
          AlertFilter f = *filter;
          const bool bulk = id->empty();
          if (!state->empty()) {
            auto s = ParseAlertStateArg(*state);
            if (!s.ok()) return Fail(s.status());
            f.state = *s;
          }
          if (bulk && f.rule.empty() && f.device.empty() && f.severity.empty() && !f.state) {
            return Fail(Status::InvalidArgument(
                "name an alert id, or select alerts with --rule, --device, --severity "
                "or --state"));
          }
          if (!bulk && (!f.rule.empty() || !f.device.empty() || !f.severity.empty() || f.state)) {
            return Fail(Status::InvalidArgument("an alert id and filters exclude each other"));
          }
          std::vector<std::string> ids;
          if (bulk) {
            if (approve && !f.state) f.state = AlertState::kPendingApproval;
            auto alerts = env.store->ListAlerts(f);
            if (!alerts.ok()) return Fail(alerts.status());
            for (const auto& a : *alerts) ids.push_back(a.id);
          } else {
            ids.push_back(*id);
          }
          response::Options options;
          options.syslog = false;
          options.terminate_via_node =
              true;  // serve ends the sessions when it sees the alert change
          response::Responder responder(*env.store, options);
          const std::string verb =
              approve ? "alert approve"
                      : (*false_positive ? "alert dismiss --false-positive" : "alert dismiss");
          AuditContext audit = CliAudit(reason->empty() ? verb : *reason);
          int rc = 0;
          size_t changed = 0;
          for (const std::string& alert_id : ids) {
            json out = {{"id", alert_id}};
            Status s;
            if (approve) {
              s = responder.Approve(alert_id, audit);
            } else if (*false_positive) {
              auto report = responder.DismissFalsePositive(alert_id, audit);
              s = report.status();
              if (report.ok()) {
                out["already_undone"] = report->already_undone;
                json steps = json::array();
                for (const auto& st : report->steps) {
                  steps.push_back(
                      {{"action", st.action}, {"outcome", st.outcome}, {"note", st.note}});
                  if (!*as_json) {
                    std::printf("%s %-14s %-10s %s\n", Shown(alert_id).c_str(),
                                Shown(st.action).c_str(), st.outcome.c_str(),
                                Shown(st.note).c_str());
                  }
                }
                out["undo"] = steps;
                if (report->already_undone && !*as_json) {
                  std::printf("%s already dismissed as a false positive; nothing changed\n",
                              Shown(alert_id).c_str());
                }
                if (!report->already_undone) ++changed;
              }
            } else {
              s = responder.Dismiss(alert_id, audit);
              if (s.ok()) ++changed;
            }
            if (!s.ok()) {
              // One id: its own exit code (3 unknown, 4 refused). Bulk: go on, exit 1.
              if (!bulk) return Fail(s);
              std::fprintf(stderr, "femtoguard: %s: %s\n", Shown(alert_id).c_str(),
                           Shown(s.ToString()).c_str());
              rc = 1;
              continue;
            }
            if (approve) ++changed;
            auto a = env.store->GetAlert(alert_id);
            if (a.ok()) {
              out["state"] = AlertStateName(a->state);
              out["actions_done"] = a->actions_done;
              json skipped = json::array();
              for (const auto& k : a->actions_skipped)
                skipped.push_back({{"action", k.action}, {"reason", k.reason}});
              out["actions_skipped"] = skipped;
              out["false_positive"] = a->false_positive;
              if (*as_json) {
                std::printf("%s\n", ShownJson(out).c_str());
              } else {
                std::fprintf(stderr, "femtoguard: alert %s %s%s; done: %s\n",
                             Shown(alert_id).c_str(), std::string(AlertStateName(a->state)).c_str(),
                             a->false_positive ? " (false positive)" : "",
                             Join(a->actions_done).c_str());
              }
            }
          }
          if (bulk)
            std::fprintf(stderr, "femtoguard: %zu of %zu matching alert(s) changed\n", changed,
                         ids.size());
          if (changed > 0) NotifyServeOrWarn(env.dir);  // serve unblocks, releases, terminates now
          return rc;
        });
  }
}

}  // namespace fg::cli
