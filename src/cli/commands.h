#pragma once

// Shared plumbing of the femtoguard subcommands. Each cmd_*.cc registers its
// subcommands; a subcommand's callback stores the action to run, and main()
// runs it after parsing so that exit codes stay in one place.

#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/config.h"
#include "common/status.h"
#include "store/store.h"

namespace fg::cli {

using Action = std::function<int()>;

struct Program {
  Action action;  // set by the chosen subcommand
};

// What most subcommands need: the data dir, its config and its store.
struct Env {
  DataDir dir{""};
  Config config;
  std::unique_ptr<Store> store;
};

// --data DIR, falling back to FEMTOGUARD_DATA.
void AddDataOption(CLI::App* cmd, std::string* data);
Result<Env> OpenEnv(const std::string& data_flag);
// Makes `cmd`'s action: open the data dir named by *data (or FEMTOGUARD_DATA),
// failing with its error, then run `body` on it.
void RunWithEnv(CLI::App* cmd, Program& program, std::shared_ptr<std::string> data,
                std::function<int(Env&)> body);
// "cli:<user>" plus the operator's reason.
AuditContext CliAudit(std::string reason);
// Prints "femtoguard: <message>" on stderr and returns the exit code.
int Fail(const Status& status);
// Tells a running serve about the change; a warning if it cannot confirm.
void NotifyServeOrWarn(const DataDir& dir);

void RegisterCaCommands(CLI::App& app, Program& program);
void RegisterDeviceCommands(CLI::App& app, Program& program);
void RegisterCertCommands(CLI::App& app, Program& program);
void RegisterEnrolmentCommands(CLI::App& app, Program& program);
void AddDeviceTokenCommand(CLI::App* device, Program& program);
void AddSweepDormantCommand(CLI::App* device, Program& program);
void RegisterEndpointCommands(CLI::App& app, Program& program);
void RegisterTokenCommands(CLI::App& app, Program& program);    // cmd_token.cc
void RegisterAdmitCommand(CLI::App& app, Program& program);     // cmd_admit.cc
void RegisterReplayCommand(CLI::App& app, Program& program);    // cmd_replay.cc
void RegisterAlertCommands(CLI::App& app, Program& program);    // cmd_alert.cc
void RegisterSimCommands(CLI::App& app, Program& program);      // cmd_sim.cc (sim, score)
void RegisterFeedCommand(CLI::App& app, Program& program);      // cmd_feed.cc

}  // namespace fg::cli
