// femtoguard device add | import | list | show | set-status

#include <cstdio>
#include <fstream>

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
  j["created"] = FormatRfc3339(d.created_ms);
  j["updated"] = FormatRfc3339(d.updated_ms);
  if (d.last_seen_ms) j["last_seen"] = FormatRfc3339(d.last_seen_ms);
  return j;
}

int RunImport(const std::string& data, const std::string& path, const std::string& reason) {
  auto env = OpenEnv(data);
  if (!env.ok()) return Fail(env.status());
  auto key = env->dir.LoadPseudonymKey();
  if (!key.ok()) return Fail(key.status());
  Pseudonymizer pseudonymizer(std::move(key).value());
  std::ifstream in(path);
  if (!in) return Fail(Status::NotFound("cannot read " + path));
  AuditContext audit = CliAudit(reason.empty() ? "registry import from " + path : reason);

  std::string line;
  size_t lineno = 0, added = 0, updated = 0, unchanged = 0, rejected = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto report = [&](const Status& s) {
      std::fprintf(stderr, "%s:%zu: %s\n", Shown(path).c_str(), lineno, Shown(s.message()).c_str());
      ++rejected;
    };
    auto device = ParseRegistryLine(line, pseudonymizer);
    if (!device.ok()) {
      report(device.status());
      continue;
    }
    auto existing = env->store->GetDevice(device->id);
    if (!existing.ok() && !existing.status().IsNotFound()) {
      report(existing.status());
      continue;
    }
    if (!existing.ok()) {
      if (Status s = env->store->AddDevice(*device, audit); !s.ok()) {
        report(s);
      } else {
        ++added;
      }
      continue;
    }
    // Known device: check the status move first so that a refused line
    // writes nothing at all.
    bool status_change = existing->status != device->status;
    if (status_change && !IsAllowedTransition(existing->status, device->status)) {
      report(Status::FailedPrecondition("device " + device->id + ": lifecycle does not allow " +
                                        std::string(DeviceStatusName(existing->status)) + " -> " +
                                        std::string(DeviceStatusName(device->status))));
      continue;
    }
    Device merged = *device;
    merged.created_ms = existing->created_ms;
    merged.last_seen_ms = existing->last_seen_ms;
    merged.status = existing->status;
    bool attrs_change = merged.owner != existing->owner || merged.mode != existing->mode ||
                        merged.prefixes != existing->prefixes || merged.csg != existing->csg ||
                        merged.cert_fp != existing->cert_fp || merged.max_ues != existing->max_ues ||
                        merged.site.has_value() != existing->site.has_value() ||
                        (merged.site && (merged.site->lat != existing->site->lat ||
                                         merged.site->lon != existing->site->lon ||
                                         merged.site->radius_m != existing->site->radius_m));
    if (attrs_change) {
      if (Status s = env->store->UpdateDeviceAttributes(merged, audit); !s.ok()) {
        report(s);
        continue;
      }
    }
    if (status_change) {
      auto t = env->store->SetDeviceStatus(device->id, device->status, audit);
      if (!t.ok()) {
        report(t.status());
        continue;
      }
    }
    if (attrs_change || status_change) {
      ++updated;
    } else {
      ++unchanged;
    }
  }
  std::printf("imported %s: %zu added, %zu updated, %zu unchanged, %zu rejected\n", path.c_str(), added, updated,
              unchanged, rejected);
  if (added + updated > 0) NotifyServeOrWarn(env->dir);
  return rejected == 0 ? 0 : 1;
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
    AddDataOption(cmd, data.get());
    cmd->add_option("--registry", *path, "registry.jsonl (DESIGN.md §3.2)")->required();
    cmd->add_option("--reason", *reason, "why (audit log)")->check(IdArg(IdKind::kText, 512));
    cmd->callback([&program, data, path, reason] {
      program.action = [=] { return RunImport(*data, *path, *reason); };
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
