#pragma once

// The admission policy: which checks run in which order and what their
// reasons mean (deny, quarantine, or waived). Mechanism (the checks) apart
// from policy (this file's data): an operator edits DIR/admission.yaml, no
// compiler needed. Without the file the built-in defaults below apply.
//
// admission.yaml (every key optional; unknown keys, wrong types, values out
// of range and unknown reasons in verdicts are errors naming the key and line;
// keys are declared in kGeneralKeys and by each check, docs/configuration.md):
//   chain: [blocked, rate, certificate, device, endpoint, clone, line, gnss, rem]
//   verdicts: {location.line: quarantine, endpoint.unknown: deny}  # reason -> allow|deny|quarantine
//   access_networks: [10.0.0.0/8]      # the operator's own access lines (CIDR)
//   home_plmns: ["450-08"]             # MCC-MNC of the operator (REM check)
//   cells_csv: cells.csv               # relative to the data dir; default DIR/cells.csv if present
//   time_budget_ms: 500                # per decision (wall clock); over = deny "internal"
//   gnss: {margin_m: 200, max_acc_m: 1000}
//   rem: {expected_radius_m: 1000, min_expected_cells: 3, min_matched: 1,
//         far_km: 30, far_min_cells: 2, foreign_min_cells: 2, min_rsrp: -125}
//   rate: {identity: {max: 20, window_s: 60}, line: {max: 200, window_s: 60}}
//   clone: {same_prefix_is_reconnect: false}
//
// A value type; not synchronised (the engine keeps its own copy).

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admission/admission.h"
#include "common/config.h"
#include "common/schema.h"
#include "common/status.h"

namespace fg::admission {

struct RateLimit {
  int max = 0;       // attempts allowed per window; 0 = no limit
  int window_s = 60;
};

struct RemPolicy {
  double expected_radius_m = 1000;  // db cells this close to the site are "expected"
  int min_expected_cells = 3;       // judge absence only with at least this many expected
  int min_matched = 1;              // fewer expected cells heard than this = "absent"
  double far_km = 30;               // a heard cell (or its area) farther than this is "far"
  int far_min_cells = 2;            // quarantine from this many far cells (and more far than near)
  int foreign_min_cells = 2;        // quarantine from this many cells of a non-home PLMN
  double min_rsrp = -125;           // weaker cells are ignored (0 = not reported, counted)
};

struct AdmissionPolicy {
  std::vector<std::string> chain = {"blocked", "rate", "certificate", "device", "endpoint",
                                    "clone", "line", "gnss", "rem"};
  // reason code -> verdict (kAllow waives the reason). Applied to abstain
  // answers too: {endpoint.unknown: deny} refuses endpoints the store does not know.
  std::map<std::string, Verdict, std::less<>> verdicts;
  std::vector<std::string> access_networks;
  std::vector<std::pair<int, int>> home_plmns;  // (mcc, mnc)
  std::string cells_csv;  // absolute after LoadForDataDir; empty = no cell database
  // Wall clock, so it also counts time the thread was preempted: keep it well
  // above scheduling noise on a loaded host (0 = no budget).
  int time_budget_ms = 500;
  double gnss_margin_m = 200;
  double gnss_max_acc_m = 1000;  // a fix's claimed accuracy counts at most this much
  RemPolicy rem;
  RateLimit rate_identity{20, 60};
  RateLimit rate_line{200, 60};
  bool clone_same_prefix_is_reconnect = false;
  // From config.yaml devices.dormancy_days (0 = off): an active device not
  // seen for this long is "device.inactive".
  int dormancy_days = 90;

  // Checks names and values; the error names the key.
  Status Validate() const;
  // Parses admission.yaml text over the defaults.
  static Result<AdmissionPolicy> FromYaml(const std::string& text);
  // DIR/admission.yaml if present (else defaults), dormancy from `config`,
  // cells_csv resolved against DIR (DIR/cells.csv when present and unset).
  static Result<AdmissionPolicy> LoadForDataDir(const DataDir& dir, const Config& config);
};

// Every admission.yaml key: the general ones and each check's declared ones.
std::span<const KeySpec> AdmissionKeys();
std::span<const KeySpec> AdmissionGeneralKeys();
// Every reason code a built-in check (or the engine: "internal") answers.
std::vector<ReasonSpec> AdmissionReasons();

// Names of the built-in checks (checks/registry.cc), in the default order.
std::vector<std::string> BuiltinCheckNames();

}  // namespace fg::admission
