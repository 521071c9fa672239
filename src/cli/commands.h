#pragma once

// Shared plumbing of the femtoguard subcommands. Each cmd_*.cc registers its
// subcommands; a subcommand's callback stores the action to run, and main()
// runs it after parsing so that exit codes stay in one place.

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/config.h"
#include "common/ids.h"
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
// Stored or external text as it may be printed: control characters escaped
// (common/ids.h Printable), so no value forges a line or steers a terminal.
inline std::string Shown(std::string_view s) { return Printable(s); }
// JSON for a terminal or a pipe: ASCII only (\uXXXX for the rest, so no C1
// control or bidirectional override survives), bytes that are not UTF-8
// replaced rather than thrown on.
std::string ShownJson(const nlohmann::json& j, int indent = -1);
// A stored JSON text printed the same way (Shown() when it does not parse).
std::string ShownJsonText(std::string_view text);

// A CLI11 check that an argument is a `kind` of identifier
// (docs/identifiers.md): a bad one is a usage error (exit 2) naming the
// rule, not the value, and is counted. Empty passes (optional flags).
CLI::Validator IdArg(IdKind kind, size_t max_bytes = 0);

// cmd_node.cc (docs/cluster.md). A store URL `init --store` and `node
// join --store` accept: sqlite:PATH, postgresql://... or postgres://...
Status CheckStoreUrl(const std::string& url);
// The URL as it may be printed: a password in it replaced by "***".
std::string ShownStoreUrl(const std::string& url);
// The ca.init audit entry's detail: what `node join` matches a bundle's CA
// against ({"root_fp": "sha256:...", "node": ID}).
std::string CaInitDetail(const DataDir& dir, const std::string& node_id);
void RegisterNodeCommands(CLI::App& app, Program& program);

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
void AddDeviceTokenSubcommands(CLI::App* device_token, Program& program);  // cmd_token.cc
void RegisterAdmitCommand(CLI::App& app, Program& program);     // cmd_admit.cc
void RegisterReplayCommand(CLI::App& app, Program& program);    // cmd_replay.cc
void RegisterAlertCommands(CLI::App& app, Program& program);    // cmd_alert.cc
void RegisterSimCommands(CLI::App& app, Program& program);      // cmd_sim.cc (sim, score)
void RegisterFeedCommand(CLI::App& app, Program& program);      // cmd_feed.cc
void RegisterBlockCommands(CLI::App& app, Program& program);    // cmd_block.cc
void RegisterPaymentsCommands(CLI::App& app, Program& program); // cmd_payments.cc
void RegisterTapCommand(CLI::App& app, Program& program);      // cmd_tap.cc

}  // namespace fg::cli
