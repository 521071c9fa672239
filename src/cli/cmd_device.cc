// femtoguard device add | import | list | show | set-status

#include <cstdio>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/pseudonym.h"
#include "common/registry_file.h"

namespace fg::cli {
namespace {

nlohmann::json DeviceJson(const Device& d) {
  nlohmann::json j;
  j["device"] = d.id;
  j["status"] = DeviceStatusName(d.status);
  if (!d.owner.empty()) j["owner"] = d.owner;
  j["mode"] = AccessModeName(d.mode);
  if (d.site) j["site"] = {{"lat", d.site->lat}, {"lon", d.site->lon}, {"radius_m", d.site->radius_m}};
  if (!d.prefixes.empty()) j["prefixes"] = d.prefixes;
  if (!d.csg.empty()) j["csg"] = d.csg;  // pseudonyms
  if (!d.cert_fp.empty()) j["cert_fp"] = d.cert_fp;
  if (d.max_ues) j["max_ues"] = d.max_ues;
  // The radio identity, in the registry's own field names (import round-trips).
  if (!d.radio.empty()) j.update(nlohmann::json::parse(RadioIdentityJson(d.radio)));
  j["created"] = FormatRfc3339(d.created_ms);
  j["updated"] = FormatRfc3339(d.updated_ms);
  if (d.last_seen_ms) j["last_seen"] = FormatRfc3339(d.last_seen_ms);
  return j;
}

struct ImportOptions {
  bool dry_run = false;  // print what would change, change nothing
  bool replace = false;  // a line replaces every attribute (absent = cleared)
  bool partial = false;  // apply the good lines even when some are rejected
};

// One line's planned change, and the words that describe it.
struct PlannedImport {
  size_t lineno = 0;
  DeviceImport step;
  std::string summary;  // empty: the device is unchanged
};

std::string Describe(const Device& before, const Device& after, const std::vector<std::string>& changed) {
  std::string out;
  for (const std::string& field : changed) {
    if (!out.empty()) out += ", ";
    out += field;
    if (field == "owner") out += " '" + Shown(before.owner) + "' -> '" + Shown(after.owner) + "'";
    if (field == "mode") {
      out += " " + std::string(AccessModeName(before.mode)) + " -> " + std::string(AccessModeName(after.mode));
    }
    if (field == "radio") out += " '" + RadioIdentityJson(before.radio) + "' -> '" + RadioIdentityJson(after.radio) + "'";
    if (field == "max_ues") out += " " + std::to_string(before.max_ues) + " -> " + std::to_string(after.max_ues);
    if (field == "prefixes" || field == "csg") {
      const auto& b = field == "prefixes" ? before.prefixes : before.csg;
      const auto& a = field == "prefixes" ? after.prefixes : after.csg;
      out += " (" + std::to_string(b.size()) + " -> " + std::to_string(a.size()) + " entries)";
    }
  }
  return out;
}

// Plans one parsed line against the store: Ok with an empty summary when it
// changes nothing, an error when the line cannot be applied.
Result<PlannedImport> PlanLine(Store& store, const RegistryEntry& entry, const ImportOptions& opts) {
  PlannedImport plan;
  plan.step.device = entry.device;
  auto existing = store.GetDevice(entry.device.id);
  if (!existing.ok() && !existing.status().IsNotFound()) return existing.status();
  if (!existing.ok()) {
    plan.step.is_new = true;
    plan.summary = "+ " + entry.device.id + " (new, " + std::string(DeviceStatusName(entry.device.status)) + ")";
    return plan;
  }
  Device target = opts.replace ? entry.device : MergeRegistryEntry(*existing, entry);
  target.status = existing->status;
  target.created_ms = existing->created_ms;
  target.last_seen_ms = existing->last_seen_ms;
  std::vector<std::string> changed = ChangedDeviceAttributes(*existing, target);
  std::string words = Describe(*existing, target, changed);
  plan.step.device = target;
  plan.step.attributes = !changed.empty();
  const DeviceStatus wanted = entry.device.status;
  if (entry.Has(RegistryField::kStatus) && wanted != existing->status) {
    if (!IsAllowedTransition(existing->status, wanted)) {
      return Status::FailedPrecondition("device " + entry.device.id + ": lifecycle does not allow " +
                                        std::string(DeviceStatusName(existing->status)) + " -> " +
                                        std::string(DeviceStatusName(wanted)));
    }
    plan.step.status = wanted;
    if (!words.empty()) words += ", ";
    words += "status " + std::string(DeviceStatusName(existing->status)) + " -> " +
             std::string(DeviceStatusName(wanted));
  }
  if (!words.empty()) plan.summary = "~ " + entry.device.id + ": " + words;
  return plan;
}

// `device import`: merge by default (a line changes only the fields it names),
// all or nothing by default (one rejected line and nothing is written, exit 2).
int RunImport(const std::string& data, const std::string& path, const std::string& reason,
              const ImportOptions& opts) {
  auto env = OpenEnv(data);
  if (!env.ok()) return Fail(env.status());
  auto key = env->dir.LoadPseudonymKey();
  if (!key.ok()) return Fail(key.status());
  Pseudonymizer pseudonymizer(std::move(key).value());
  std::ifstream in(path);
  if (!in) return Fail(Status::NotFound("cannot read " + path));
  AuditContext audit = CliAudit(reason.empty() ? "registry import from " + path : reason);

  std::vector<PlannedImport> plans;
  std::unordered_map<std::string, size_t> seen;  // device -> line
  std::string line;
  size_t lineno = 0, rejected = 0, unchanged = 0;
  auto report = [&](size_t at, const Status& s) {
    std::fprintf(stderr, "%s:%zu: %s\n", Shown(path).c_str(), at, Shown(s.message()).c_str());
    ++rejected;
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto entry = ParseRegistryEntry(line, pseudonymizer);
    if (!entry.ok()) {
      report(lineno, entry.status());
      continue;
    }
    auto [it, fresh] = seen.emplace(entry->device.id, lineno);
    if (!fresh) {
      report(lineno, Status::InvalidArgument("device " + entry->device.id + " is already on line " +
                                             std::to_string(it->second)));
      continue;
    }
    auto plan = PlanLine(*env->store, *entry, opts);
    if (!plan.ok()) {
      report(lineno, plan.status());
      continue;
    }
    if (plan->summary.empty()) {
      ++unchanged;
      continue;
    }
    plan->lineno = lineno;
    plans.push_back(std::move(plan).value());
  }
  if (in.bad()) return Fail(Status::Internal("reading " + path + " failed"));
  size_t added = 0, updated = 0;
  for (const PlannedImport& p : plans) (p.step.is_new ? added : updated)++;

  const char* mode = opts.replace ? "replace" : "merge";
  if (opts.dry_run) {
    for (const PlannedImport& p : plans) std::printf("%s\n", p.summary.c_str());
    std::printf("dry run (%s) of %s: would add %zu, update %zu, leave %zu unchanged; %zu rejected; nothing written\n",
                mode, Shown(path).c_str(), added, updated, unchanged, rejected);
    return rejected == 0 ? 0 : 2;
  }
  if (rejected > 0 && !opts.partial) {
    std::fprintf(stderr,
                 "femtoguard: nothing imported: %zu line(s) rejected (fix them, or pass --partial to import "
                 "the others)\n",
                 rejected);
    return 2;
  }
  if (!opts.partial) {
    std::vector<DeviceImport> steps;
    steps.reserve(plans.size());
    for (const PlannedImport& p : plans) steps.push_back(p.step);
    if (!steps.empty()) {
      if (Status s = env->store->ImportDevices(steps, audit); !s.ok()) {
        std::fprintf(stderr, "femtoguard: nothing imported\n");
        return Fail(s);
      }
    }
  } else {
    added = updated = 0;
    for (const PlannedImport& p : plans) {
      if (Status s = env->store->ImportDevices({p.step}, audit); !s.ok()) {
        report(p.lineno, s);
        continue;
      }
      (p.step.is_new ? added : updated)++;
    }
  }
  std::printf("imported %s (%s): %zu added, %zu updated, %zu unchanged, %zu rejected\n", Shown(path).c_str(), mode,
              added, updated, unchanged, rejected);
  if (added + updated > 0) NotifyServeOrWarn(env->dir);
  return rejected == 0 ? 0 : 2;
}

}  // namespace

void RegisterDeviceCommands(CLI::App& app, Program& program) {
  auto* device = app.add_subcommand("device", "the femtocell registry");
  device->require_subcommand(1);
  AddDeviceTokenCommand(device, program);
  AddSweepDormantCommand(device, program);
  {
    auto* cmd = device->add_subcommand("add", "register one device");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto status = std::make_shared<std::string>("provisioned");
    auto owner = std::make_shared<std::string>();
    auto mode = std::make_shared<std::string>("closed");
    auto prefixes = std::make_shared<std::vector<std::string>>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *id, "device id")->required()->check(IdArg(IdKind::kDeviceId));
    cmd->add_option("--status", *status, "provisioned|active|suspended|decommissioned");
    cmd->add_option("--owner", *owner, "owning account")->check(IdArg(IdKind::kText));
    cmd->add_option("--mode", *mode, "closed|hybrid|open");
    cmd->add_option("--prefix", *prefixes, "registered IP prefix (CIDR), repeatable")
        ->check(IdArg(IdKind::kToken, 64));
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, id, status, owner, mode, prefixes, reason] {
      program.action = [=] {
        Device d;
        d.id = *id;
        if (Status s = ValidateDeviceId(d.id); !s.ok()) return Fail(s);
        auto st = ParseDeviceStatus(*status);
        if (!st.ok()) return Fail(st.status());
        d.status = *st;
        auto m = ParseAccessMode(*mode);
        if (!m.ok()) return Fail(m.status());
        d.mode = *m;
        d.owner = *owner;
        for (const auto& p : *prefixes) {
          auto c = CanonicalCidr(p);
          if (!c.ok()) return Fail(c.status());
          d.prefixes.push_back(*c);
        }
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        if (Status s = env->store->AddDevice(d, CliAudit(reason->empty() ? "device add" : *reason)); !s.ok()) {
          return Fail(s);
        }
        std::printf("added %s (%s)\n", d.id.c_str(), status->c_str());
        return 0;
      };
    });
  }
  {
    auto* cmd = device->add_subcommand("import", "import or update devices from registry.jsonl");
    auto data = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto opts = std::make_shared<ImportOptions>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--registry", *path, "registry.jsonl (docs/formats.md)")->required();
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    cmd->add_flag("--dry-run", opts->dry_run, "print what would change; write nothing");
    cmd->add_flag("--replace", opts->replace,
                  "a line replaces every attribute of a known device (absent fields are cleared); "
                  "default: merge, absent fields stay as they are");
    cmd->add_flag("--partial", opts->partial,
                  "import the good lines even if some are rejected (default: all or nothing)");
    cmd->callback([&program, data, path, reason, opts] {
      program.action = [=] { return RunImport(*data, *path, *reason, *opts); };
    });
  }
  {
    auto* cmd = device->add_subcommand("list", "list devices");
    auto data = std::make_shared<std::string>();
    auto status = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_option("--status", *status, "only devices in this status");
    cmd->add_flag("--json", *json, "JSON Lines instead of a table");
    cmd->callback([&program, data, status, json] {
      program.action = [=] {
        DeviceFilter filter;
        if (!status->empty()) {
          auto st = ParseDeviceStatus(*status);
          if (!st.ok()) return Fail(st.status());
          filter.status = *st;
        }
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        auto devices = env->store->ListDevices(filter);
        if (!devices.ok()) return Fail(devices.status());
        if (!*json) std::printf("%-24s %-15s %-7s %-20s %s\n", "DEVICE", "STATUS", "MODE", "LAST SEEN", "OWNER");
        for (const Device& d : *devices) {
          if (*json) {
            std::printf("%s\n", ShownJson(DeviceJson(d)).c_str());
          } else {
            std::printf("%-24s %-15s %-7s %-20s %s\n", Shown(d.id).c_str(),
                        std::string(DeviceStatusName(d.status)).c_str(),
                        std::string(AccessModeName(d.mode)).c_str(),
                        d.last_seen_ms ? FormatRfc3339(d.last_seen_ms).c_str() : "-",
                        Shown(d.owner).c_str());
          }
        }
        return 0;
      };
    });
  }
  {
    auto* cmd = device->add_subcommand("show", "one device, its certificates and recent audit entries (JSON)");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *id, "device id")->required()->check(IdArg(IdKind::kDeviceId));
    RunWithEnv(cmd, program, data, [=](Env& env) {
      auto d = env.store->GetDevice(*id);
      if (!d.ok()) return Fail(d.status());
      nlohmann::json j = DeviceJson(*d);
      auto certs = env.store->ListCertificates(std::string_view(*id));
      if (!certs.ok()) return Fail(certs.status());
      j["certificates"] = nlohmann::json::array();
      for (const Certificate& c : *certs) {
        nlohmann::json cj = {{"serial", c.serial},
                             {"status", CertStatusName(c.status)},
                             {"not_before", FormatRfc3339(c.not_before_ms)},
                             {"not_after", FormatRfc3339(c.not_after_ms)},
                             {"cert_fp", c.cert_fp},
                             {"key_fp", c.key_fp}};
        if (c.status != CertStatus::kValid) {
          cj["reason"] = RevocationReasonName(c.reason);
          cj["revoked"] = FormatRfc3339(c.revoked_ms);
        }
        j["certificates"].push_back(cj);
      }
      AuditFilter filter;
      filter.subject = *id;
      filter.limit = 20;
      auto audit = env.store->ListAudit(filter);
      if (!audit.ok()) return Fail(audit.status());
      j["audit"] = nlohmann::json::array();
      for (const AuditEntry& e : *audit) {
        j["audit"].push_back({{"ts", FormatRfc3339(e.ts_ms)}, {"actor", e.actor}, {"action", e.action},
                              {"reason", e.reason}});
      }
      std::printf("%s\n", ShownJson(j, 2).c_str());
      return 0;
    });
  }
  {
    auto* cmd = device->add_subcommand("set-status", "move a device through its lifecycle");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto status = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--device", *id, "device id")->required()->check(IdArg(IdKind::kDeviceId));
    cmd->add_option("--status", *status, "active|suspended|decommissioned")->required();
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, id, status, reason] {
      program.action = [=] {
        auto st = ParseDeviceStatus(*status);
        if (!st.ok()) return Fail(st.status());
        auto env = OpenEnv(*data);
        if (!env.ok()) return Fail(env.status());
        auto t = env->store->SetDeviceStatus(*id, *st, CliAudit(reason->empty() ? "set-status" : *reason));
        if (!t.ok()) return Fail(t.status());
        std::printf("%s: %s -> %s", id->c_str(), std::string(DeviceStatusName(t->from)).c_str(),
                    std::string(DeviceStatusName(t->to)).c_str());
        if (!t->certs_held.empty()) std::printf("; %zu certificate(s) on hold", t->certs_held.size());
        if (!t->certs_released.empty()) std::printf("; %zu certificate(s) released", t->certs_released.size());
        if (!t->certs_revoked.empty()) std::printf("; %zu certificate(s) revoked", t->certs_revoked.size());
        std::printf("\n");
        NotifyServeOrWarn(env->dir);
        return 0;
      };
    });
  }
}

}  // namespace fg::cli
