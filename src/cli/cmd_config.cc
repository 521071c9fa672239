// femtoguard config keys | reasons | check
//
// `keys` and `reasons` print the declarations (config.yaml's key table, each
// admission check's CheckSpec, each detector's RuleSpec) as the Markdown that
// docs/configuration.md and docs/reasons.md carry; a test holds the docs to
// this output. `check` loads config.yaml, admission.yaml and the rules file
// of a data dir as serve would, and exits 2 naming the file and key of the
// first error.

#include <cstdio>
#include <filesystem>
#include <string>

#include "admission/check.h"
#include "admission/policy.h"
#include "cli/commands.h"
#include "common/config_keys.h"
#include "common/schema.h"
#include "detect/default_rules.h"
#include "detect/detector.h"
#include "detect/rules.h"

namespace fg::cli {
namespace {

std::string Cell(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = c == '|' ? '/' : c;
  return out;
}

std::string KeysMarkdown() {
  std::string out;
  out += "### config.yaml\n\n" + RenderKeyTable(ConfigKeys()) + "\n";
  out += "### admission.yaml\n\nGeneral keys:\n\n" +
         RenderKeyTable(admission::AdmissionGeneralKeys()) + "\n";
  for (const admission::CheckRegistration& c : admission::BuiltinChecks()) {
    if (!c.spec || c.spec->params.empty()) continue;
    out += "Check `" + c.name + "` (" + std::string(c.spec->meaning) + "):\n\n" +
           RenderKeyTable(c.spec->params) + "\n";
  }
  out += "### Rules file parameters (`rules.<rule>.params`)\n\n";
  for (const detect::DetectorInfo& d : detect::AllDetectors()) {
    if (!d.spec) continue;
    out += "#### " + std::string(d.rule) + "\n\n";
    if (d.spec->params.empty()) {
      out += "No parameters.\n\n";
    } else {
      out += RenderKeyTable(d.spec->params) + "\n";
    }
  }
  return out;
}

std::string ReasonsMarkdown() {
  std::string out =
      "### Admission reason codes\n\n| reason | check | meaning | what to do "
      "|\n|---|---|---|---|\n";
  for (const admission::CheckRegistration& c : admission::BuiltinChecks()) {
    if (!c.spec) continue;
    for (const ReasonSpec& r : c.spec->reasons) {
      out += "| `" + std::string(r.code) + "` | " + c.name + " | " + Cell(r.meaning) + " | " +
             Cell(r.action) + " |\n";
    }
  }
  for (const ReasonSpec& r : admission::AdmissionReasons()) {
    if (r.code == "internal") {
      out += "| `internal` | (engine) | " + Cell(r.meaning) + " | " + Cell(r.action) + " |\n";
    }
  }
  out += "\n### Detection rules\n\n";
  for (const detect::DetectorInfo& d : detect::AllDetectors()) {
    if (!d.spec) continue;
    out += "#### " + std::string(d.rule) + "\n\nFires when " + std::string(d.spec->meaning) +
           ".\n\nWhat to do: " + std::string(d.spec->action) + ".\n\n";
    if (!d.spec->kinds.empty()) {
      out += "| kind | meaning | what to do |\n|---|---|---|\n";
      for (const ReasonSpec& k : d.spec->kinds) {
        out += "| `" + std::string(k.code) + "` | " + Cell(k.meaning) + " | " + Cell(k.action) +
               " |\n";
      }
      out += "\n";
    }
  }
  return out;
}

int Check(const std::string& data_flag, const std::string& rules_flag) {
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty())
    return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  DataDir dir(data);
  auto config = dir.LoadConfig();
  if (!config.ok()) return Fail(config.status());
  auto policy = admission::AdmissionPolicy::LoadForDataDir(dir, *config);
  if (!policy.ok()) return Fail(policy.status());
  std::string rules = rules_flag;
  if (rules.empty() && std::filesystem::exists(dir.root() / "rules.yaml"))
    rules = (dir.root() / "rules.yaml").string();
  auto set = detect::LoadRulesOrDefault(rules);
  if (!set.ok()) return Fail(Status::InvalidArgument(set.status().message()));
  std::printf("ok: %s, %s, %s\n", dir.ConfigPath().string().c_str(),
              std::filesystem::exists(dir.root() / "admission.yaml")
                  ? (dir.root() / "admission.yaml").string().c_str()
                  : "admission.yaml (absent: defaults)",
              rules.empty() ? "rules (built-in)" : rules.c_str());
  return 0;
}

}  // namespace

void RegisterConfigCommands(CLI::App& app, Program& program) {
  auto* config =
      app.add_subcommand("config", "configuration: declared keys, reason codes, validation");
  config->require_subcommand(1);
  {
    auto* cmd = config->add_subcommand(
        "keys", "every config.yaml, admission.yaml and rules parameter (Markdown)");
    cmd->callback([&program] {
      program.action = [] {
        std::fputs(KeysMarkdown().c_str(), stdout);
        return 0;
      };
    });
  }
  {
    auto* cmd = config->add_subcommand("reasons",
                                       "every admission reason code and detection rule (Markdown)");
    cmd->callback([&program] {
      program.action = [] {
        std::fputs(ReasonsMarkdown().c_str(), stdout);
        return 0;
      };
    });
  }
  {
    auto* cmd = config->add_subcommand(
        "check", "validate DIR's config.yaml, admission.yaml and rules file (exit 2 on error)");
    auto data = std::make_shared<std::string>();
    auto rules = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--rules", *rules,
                    "rules file (default: DATA/rules.yaml if present, else built-in)");
    cmd->callback(
        [&program, data, rules] { program.action = [=] { return Check(*data, *rules); }; });
  }
}

}  // namespace fg::cli
