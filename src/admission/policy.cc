#include "admission/policy.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include <yaml-cpp/yaml.h>

#include "admission/check.h"
#include "common/ip.h"
#include "common/schema.h"

namespace fg::admission {
namespace {

Status KeyError(const std::string& key, const std::string& what) {
  if (key.empty()) return Status::InvalidArgument("admission.yaml: " + what);
  return Status::InvalidArgument("admission.yaml: " + key + ": " + what);
}

bool IsAdmissionReason(std::string_view reason) {
  for (const ReasonSpec& r : AdmissionReasons()) {
    if (r.code == reason) return true;
  }
  return false;
}

Status CheckKeys(const YAML::Node& node, const std::string& path, std::initializer_list<const char*> allowed) {
  if (!node.IsMap()) return KeyError(path.empty() ? "top level" : path, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      return KeyError(path + key, "unknown key");
    }
  }
  return Status::Ok();
}

template <typename T>
Status Read(const YAML::Node& parent, const char* key, const std::string& path, T* out) {
  if (!parent || !parent.IsMap() || !parent[key]) return Status::Ok();
  const YAML::Node& n = parent[key];
  if (!n.IsScalar()) return KeyError(path + key, "must be a single value");
  try {
    *out = n.as<T>();
  } catch (const YAML::Exception&) {
    return KeyError(path + key, "wrong type");
  }
  return Status::Ok();
}

Status ReadStrings(const YAML::Node& parent, const char* key, std::vector<std::string>* out) {
  if (!parent[key]) return Status::Ok();
  const YAML::Node& n = parent[key];
  if (!n.IsSequence()) return KeyError(key, "must be a list");
  out->clear();
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) return KeyError(std::string(key) + "[" + std::to_string(i) + "]", "must be a string");
    out->push_back(n[i].as<std::string>());
  }
  return Status::Ok();
}

Result<Verdict> ParseVerdict(std::string_view s) {
  if (s == "allow") return Verdict::kAllow;
  if (s == "deny") return Verdict::kDeny;
  if (s == "quarantine") return Verdict::kQuarantine;
  return Status::InvalidArgument("must be allow, deny or quarantine, got \"" + std::string(s) + "\"");
}

std::optional<std::pair<int, int>> ParsePlmn(std::string_view s) {
  size_t dash = s.find_first_of("-/");
  if (dash == std::string_view::npos) return std::nullopt;
  int mcc = -1, mnc = -1;
  std::string_view a = s.substr(0, dash), b = s.substr(dash + 1);
  auto r1 = std::from_chars(a.data(), a.data() + a.size(), mcc);
  auto r2 = std::from_chars(b.data(), b.data() + b.size(), mnc);
  if (r1.ec != std::errc() || r1.ptr != a.data() + a.size() || r2.ec != std::errc() ||
      r2.ptr != b.data() + b.size() || a.size() != 3 || b.size() < 2 || b.size() > 3 || mcc < 0 || mnc < 0) {
    return std::nullopt;
  }
  return std::pair{mcc, mnc};
}

Status Positive(const std::string& key, double v, bool allow_zero) {
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
    return KeyError(key, allow_zero ? "must be >= 0" : "must be > 0");
  }
  return Status::Ok();
}

Status ReadRate(const YAML::Node& rate, const char* which, RateLimit* out) {
  if (!rate[which]) return Status::Ok();
  std::string path = std::string("rate.") + which + ".";
  FG_RETURN_IF_ERROR(CheckKeys(rate[which], path, {"max", "window_s"}));
  FG_RETURN_IF_ERROR(Read(rate[which], "max", path, &out->max));
  FG_RETURN_IF_ERROR(Read(rate[which], "window_s", path, &out->window_s));
  return Status::Ok();
}

// Keys of admission.yaml no single check owns. Each check declares its own
// (checks/*.cc CheckSpec); AdmissionKeys() is the union.
constexpr KeySpec kGeneralKeys[] = {
    {"chain", ValueType::kStringList, "[blocked, rate, certificate, device, endpoint, clone, line, gnss, rem]", kNoMin,
     kNoMax, "the checks that run, in order", "blocked|rate|certificate|device|endpoint|clone|line|gnss|rem"},
    {"verdicts", ValueType::kMap, "{}", kNoMin, kNoMax,
     "reason code -> verdict: changes what a reason means (allow waives it); reasons: docs/reasons.md",
     "allow|deny|quarantine"},
    {"cells_csv", ValueType::kString, "cells.csv", kNoMin, kNoMax,
     "cell database (OpenCellID CSV), relative to the data dir; DIR/cells.csv is used when present"},
    {"time_budget_ms", ValueType::kInt, "500", 0, 60000,
     "wall-clock budget per decision; over it = deny internal (0 = no budget)"},
};

constexpr ReasonSpec kEngineReasons[] = {
    {"internal", "admission could not decide (the store or a check failed, or the time budget ran out): fail closed",
     "read serve's log and the fg_admission metrics; fix the cause. Cannot be changed in verdicts"},
};

}  // namespace

std::span<const KeySpec> AdmissionKeys() {
  static const std::vector<KeySpec> kAll = [] {
    std::vector<KeySpec> all(std::begin(kGeneralKeys), std::end(kGeneralKeys));
    for (const CheckRegistration& c : BuiltinChecks()) {
      if (c.spec) all.insert(all.end(), c.spec->params.begin(), c.spec->params.end());
    }
    return all;
  }();
  return kAll;
}

std::span<const KeySpec> AdmissionGeneralKeys() { return kGeneralKeys; }

std::vector<ReasonSpec> AdmissionReasons() {
  std::vector<ReasonSpec> all;
  for (const CheckRegistration& c : BuiltinChecks()) {
    if (c.spec) all.insert(all.end(), c.spec->reasons.begin(), c.spec->reasons.end());
  }
  all.insert(all.end(), std::begin(kEngineReasons), std::end(kEngineReasons));
  return all;
}

std::vector<std::string> BuiltinCheckNames() {
  return {"blocked", "rate", "certificate", "device", "endpoint", "clone", "line", "gnss", "rem"};
}

Status AdmissionPolicy::Validate() const {
  std::vector<std::string> known = BuiltinCheckNames();
  std::set<std::string> seen;
  for (const std::string& c : chain) {
    if (std::find(known.begin(), known.end(), c) == known.end()) {
      return KeyError("chain", "unknown check \"" + c + "\"");
    }
    if (!seen.insert(c).second) return KeyError("chain", "check \"" + c + "\" listed twice");
  }
  for (const auto& [reason, verdict] : verdicts) {
    if (reason == "internal") return KeyError("verdicts.internal", "cannot be changed (fail closed)");
    if (reason.empty()) return KeyError("verdicts", "empty reason code");
    if (!IsAdmissionReason(reason)) {
      std::string known;
      for (const ReasonSpec& r : AdmissionReasons()) known += (known.empty() ? "" : ", ") + std::string(r.code);
      return KeyError("verdicts." + reason, "unknown reason code (known: " + known + ")");
    }
    if (verdict == Verdict::kAbstain) return KeyError("verdicts." + reason, "must be allow, deny or quarantine");
  }
  for (size_t i = 0; i < access_networks.size(); ++i) {
    if (access_networks[i].find('/') == std::string::npos || !ParseIpPrefix(access_networks[i])) {
      return KeyError("access_networks[" + std::to_string(i) + "]",
                      "not a CIDR prefix: \"" + access_networks[i] + "\"");
    }
  }
  if (time_budget_ms < 0 || time_budget_ms > 60'000) return KeyError("time_budget_ms", "must be in [0, 60000]");
  FG_RETURN_IF_ERROR(Positive("gnss.margin_m", gnss_margin_m, true));
  FG_RETURN_IF_ERROR(Positive("gnss.max_acc_m", gnss_max_acc_m, true));
  FG_RETURN_IF_ERROR(Positive("rem.expected_radius_m", rem.expected_radius_m, false));
  FG_RETURN_IF_ERROR(Positive("rem.far_km", rem.far_km, false));
  if (rem.min_expected_cells < 1) return KeyError("rem.min_expected_cells", "must be >= 1");
  if (rem.min_matched < 1) return KeyError("rem.min_matched", "must be >= 1");
  if (rem.far_min_cells < 1) return KeyError("rem.far_min_cells", "must be >= 1");
  if (rem.foreign_min_cells < 1) return KeyError("rem.foreign_min_cells", "must be >= 1");
  if (!std::isfinite(rem.min_rsrp) || rem.min_rsrp > 0 || rem.min_rsrp < -200) {
    return KeyError("rem.min_rsrp", "must be a dBm value in [-200, 0]");
  }
  for (auto [name, r] : {std::pair{"rate.identity", rate_identity}, std::pair{"rate.line", rate_line}}) {
    if (r.max < 0) return KeyError(std::string(name) + ".max", "must be >= 0 (0 = no limit)");
    if (r.window_s < 1 || r.window_s > 86400) return KeyError(std::string(name) + ".window_s", "must be in [1, 86400]");
  }
  if (dormancy_days < 0) return KeyError("dormancy_days", "must be >= 0");
  return Status::Ok();
}

Result<AdmissionPolicy> AdmissionPolicy::FromYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("admission.yaml: not valid YAML: ") + e.what());
  }
  AdmissionPolicy p;
  if (root.IsNull()) return p;  // an empty file: the defaults
  // Every key declared (kGeneralKeys and the checks' CheckSpec), typed and in range.
  if (Status s = ValidateKeys(root, AdmissionKeys(), ""); !s.ok()) return KeyError("", s.message());
  try {
    FG_RETURN_IF_ERROR(CheckKeys(root, "", {"chain", "verdicts", "access_networks", "home_plmns", "cells_csv",
                                            "time_budget_ms", "gnss", "rem", "rate", "clone"}));
    FG_RETURN_IF_ERROR(ReadStrings(root, "chain", &p.chain));
    if (root["verdicts"]) {
      FG_RETURN_IF_ERROR(root["verdicts"].IsMap() ? Status::Ok() : KeyError("verdicts", "must be a mapping"));
      for (const auto& kv : root["verdicts"]) {
        std::string reason = kv.first.as<std::string>();
        if (reason != "internal" && !IsAdmissionReason(reason)) {
          return KeyError(LineOf(kv.first) + "verdicts." + reason,
                          "unknown reason code (docs/reasons.md lists them)");
        }
        if (!kv.second.IsScalar()) return KeyError("verdicts." + reason, "must be allow, deny or quarantine");
        auto v = ParseVerdict(kv.second.as<std::string>());
        if (!v.ok()) return KeyError("verdicts." + reason, v.status().message());
        p.verdicts[reason] = *v;
      }
    }
    FG_RETURN_IF_ERROR(ReadStrings(root, "access_networks", &p.access_networks));
    std::vector<std::string> plmns;
    FG_RETURN_IF_ERROR(ReadStrings(root, "home_plmns", &plmns));
    for (size_t i = 0; i < plmns.size(); ++i) {
      auto plmn = ParsePlmn(plmns[i]);
      if (!plmn) return KeyError("home_plmns[" + std::to_string(i) + "]", "not MCC-MNC (e.g. \"450-08\"): \"" + plmns[i] + "\"");
      p.home_plmns.push_back(*plmn);
    }
    FG_RETURN_IF_ERROR(Read(root, "cells_csv", "", &p.cells_csv));
    FG_RETURN_IF_ERROR(Read(root, "time_budget_ms", "", &p.time_budget_ms));
    if (root["gnss"]) {
      FG_RETURN_IF_ERROR(CheckKeys(root["gnss"], "gnss.", {"margin_m", "max_acc_m"}));
      FG_RETURN_IF_ERROR(Read(root["gnss"], "margin_m", "gnss.", &p.gnss_margin_m));
      FG_RETURN_IF_ERROR(Read(root["gnss"], "max_acc_m", "gnss.", &p.gnss_max_acc_m));
    }
    if (const YAML::Node rem = root["rem"]) {
      FG_RETURN_IF_ERROR(CheckKeys(rem, "rem.", {"expected_radius_m", "min_expected_cells", "min_matched", "far_km",
                                                 "far_min_cells", "foreign_min_cells", "min_rsrp"}));
      FG_RETURN_IF_ERROR(Read(rem, "expected_radius_m", "rem.", &p.rem.expected_radius_m));
      FG_RETURN_IF_ERROR(Read(rem, "min_expected_cells", "rem.", &p.rem.min_expected_cells));
      FG_RETURN_IF_ERROR(Read(rem, "min_matched", "rem.", &p.rem.min_matched));
      FG_RETURN_IF_ERROR(Read(rem, "far_km", "rem.", &p.rem.far_km));
      FG_RETURN_IF_ERROR(Read(rem, "far_min_cells", "rem.", &p.rem.far_min_cells));
      FG_RETURN_IF_ERROR(Read(rem, "foreign_min_cells", "rem.", &p.rem.foreign_min_cells));
      FG_RETURN_IF_ERROR(Read(rem, "min_rsrp", "rem.", &p.rem.min_rsrp));
    }
    if (const YAML::Node rate = root["rate"]) {
      FG_RETURN_IF_ERROR(CheckKeys(rate, "rate.", {"identity", "line"}));
      FG_RETURN_IF_ERROR(ReadRate(rate, "identity", &p.rate_identity));
      FG_RETURN_IF_ERROR(ReadRate(rate, "line", &p.rate_line));
    }
    if (const YAML::Node clone = root["clone"]) {
      FG_RETURN_IF_ERROR(CheckKeys(clone, "clone.", {"same_prefix_is_reconnect"}));
      FG_RETURN_IF_ERROR(Read(clone, "same_prefix_is_reconnect", "clone.", &p.clone_same_prefix_is_reconnect));
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("admission.yaml: ") + e.what());
  }
  FG_RETURN_IF_ERROR(p.Validate());
  return p;
}

Result<AdmissionPolicy> AdmissionPolicy::LoadForDataDir(const DataDir& dir, const Config& config) {
  AdmissionPolicy p;
  std::filesystem::path file = dir.root() / "admission.yaml";
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    FG_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    auto parsed = FromYaml(text);
    if (!parsed.ok()) return Status::InvalidArgument(file.string() + ": " + parsed.status().message());
    p = std::move(parsed).value();
  }
  p.dormancy_days = config.dormancy_days;
  if (!p.cells_csv.empty()) {
    std::filesystem::path csv(p.cells_csv);
    if (csv.is_relative()) csv = dir.root() / csv;
    if (!std::filesystem::exists(csv, ec)) {
      return Status::InvalidArgument(file.string() + ": cells_csv: no such file: " + csv.string());
    }
    p.cells_csv = csv.string();
  } else if (std::filesystem::exists(dir.root() / "cells.csv", ec)) {
    p.cells_csv = (dir.root() / "cells.csv").string();
  }
  FG_RETURN_IF_ERROR(p.Validate());
  return p;
}

}  // namespace fg::admission
