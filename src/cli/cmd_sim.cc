// femtoguard sim (the fleet simulator) and femtoguard score (alerts against
// the simulator's ground truth). Neither needs a data dir.

#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "common/time.h"
#include "sim/score.h"
#include "sim/sim.h"

namespace fg::cli {

void RegisterSimCommands(CLI::App& app, Program& program) {
  {
    auto* cmd = app.add_subcommand("sim", "write a simulated operator's world: registry, cells, events, truth");
    auto opt = std::make_shared<sim::SimOptions>();
    auto start = std::make_shared<std::string>();
    std::string scenarios;
    for (auto n : sim::ScenarioNames()) scenarios += (scenarios.empty() ? "" : ", ") + std::string(n);
    cmd->add_option("--scenario", opt->scenario, "one of: " + scenarios)->required();
    cmd->add_option("--devices", opt->devices, "registered femtocells (100..5000000)")->required();
    cmd->add_option("--seed", opt->seed, "same seed, same files (byte for byte)")->required();
    cmd->add_option("--out", opt->out_dir, "output directory (created if missing)")->required();
    cmd->add_option("--subscribers", opt->subscribers, "subscribers (default: 3 per device)");
    cmd->add_option("--days", opt->days, "simulated days (1..60, default 2)");
    cmd->add_option("--start", *start,
                    "RFC 3339 start, rounded down to local (KST) midnight (default 2025-03-03T00:00:00+09:00)");
    cmd->callback([&program, opt, start] {
      program.action = [opt, start] {
        if (!start->empty()) {
          auto t = ParseRfc3339(*start);
          if (!t.ok()) return Fail(Status::InvalidArgument("--start: " + t.status().message()));
          opt->start_ms = *t;
        }
        auto t0 = std::chrono::steady_clock::now();
        auto summary = sim::RunSimulation(*opt);
        if (!summary.ok()) return Fail(summary.status());
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "%s: %llu devices, %llu subscribers, %llu cells, %llu events (%.1f MB), %llu labels, %s .. %s\n"
            "written to %s in %.2f s (%.0f events/s)\n",
            opt->scenario.c_str(), static_cast<unsigned long long>(summary->devices),
            static_cast<unsigned long long>(summary->subscribers), static_cast<unsigned long long>(summary->cells),
            static_cast<unsigned long long>(summary->events), static_cast<double>(summary->event_bytes) / 1e6,
            static_cast<unsigned long long>(summary->labels), FormatRfc3339(summary->from_ms).c_str(),
            FormatRfc3339(summary->to_ms).c_str(), opt->out_dir.c_str(), secs,
            secs > 0 ? static_cast<double>(summary->events) / secs : 0.0);
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("score", "score alerts against a simulation's truth.jsonl");
    auto truth = std::make_shared<std::string>();
    auto alerts = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("--truth", *truth, "truth.jsonl written by femtoguard sim")->required();
    cmd->add_option("--alerts", *alerts, "alerts (JSON Lines) from femtoguard replay or serve")->required();
    cmd->add_flag("--json", *as_json, "one JSON object on stdout instead of the table");
    cmd->callback([&program, truth, alerts, as_json] {
      program.action = [truth, alerts, as_json] {
        auto report = sim::ScoreFiles(*truth, *alerts);
        if (!report.ok()) {
          std::fprintf(stderr, "femtoguard: %s\n", report.status().ToString().c_str());
          return 2;
        }
        for (const auto& p : report->problems) std::fprintf(stderr, "femtoguard score: %s (skipped)\n", p.c_str());
        if (*as_json) {
          std::printf("%s\n", report->ToJson().c_str());
        } else {
          std::fputs(report->ToTable().c_str(), stdout);
        }
        return 0;
      };
    });
  }
}

}  // namespace fg::cli
