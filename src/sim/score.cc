#include "sim/score.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/metrics.h"

namespace fg::sim {

namespace {

using nlohmann::json;

constexpr int64_t kGraceMs = 3600 * 1000;  // an alert up to 1 h after the label's end still counts

struct TruthLabel {
  std::string kind;  // attack, fraud_payment, expected
  std::string rule;
  std::string device;  // empty: null
  std::string imsi;    // empty: null
  UnixMillis from = 0, to = 0;
  bool has_cell = false;
  int64_t pci = -1, earfcn = -1;
  bool has_payment = false;  // merchant + amount (from = payment ts)
  std::string merchant;
  double amount = 0;
  // Results.
  UnixMillis first_ms = INT64_MAX;
  bool denied = false;  // a matching payment.risk alert said "deny"
};

struct AlertLine {
  UnixMillis ts = 0;
  std::string rule;
  std::string device;
  bool disruptive = false;
  bool has_cell = false;
  int64_t pci = -1, earfcn = -1;
  bool has_payment = false;
  UnixMillis pay_ts = 0;
  std::string merchant;
  double amount = 0;
  std::string decision;
};

bool IsDisruptive(std::string_view a) {
  return a == "revoke" || a == "suspend" || a == "terminate" || a == "block";
}

// "at line N" problems; each caller counts its own.
void Problem(ScoreReport* r, std::string_view file, size_t line, const std::string& what) {
  r->problems.push_back(std::string(file) + " line " + std::to_string(line) + ": " + what);
}

std::optional<UnixMillis> TimeField(const json& j, const char* key, std::string* err) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    *err = std::string("'") + key + "' missing or not a string";
    return std::nullopt;
  }
  auto t = ParseRfc3339(it->get<std::string>());
  if (!t.ok()) {
    *err = std::string("'") + key + "': " + t.status().message();
    return std::nullopt;
  }
  return *t;
}

std::string OptString(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool ParseLabel(const json& j, TruthLabel* l, std::string* err) {
  l->kind = OptString(j, "kind");
  l->rule = OptString(j, "rule");
  if (l->rule.empty()) {
    *err = "'rule' missing or not a string";
    return false;
  }
  auto from = TimeField(j, "from", err);
  if (!from) return false;
  auto to = TimeField(j, "to", err);
  if (!to) return false;
  l->from = *from;
  l->to = *to;
  if (l->to < l->from) {
    *err = "'to' is before 'from'";
    return false;
  }
  l->device = OptString(j, "device");
  l->imsi = OptString(j, "imsi");
  if (auto c = j.find("cell"); c != j.end() && c->is_object()) {
    auto p = c->find("pci"), e = c->find("earfcn");
    if (p == c->end() || e == c->end() || !p->is_number_integer() || !e->is_number_integer()) {
      *err = "'cell' needs integer pci and earfcn";
      return false;
    }
    l->has_cell = true;
    l->pci = p->get<int64_t>();
    l->earfcn = e->get<int64_t>();
  }
  if (auto m = j.find("merchant"); m != j.end() && m->is_string()) {
    auto a = j.find("amount");
    if (a == j.end() || !a->is_number()) {
      *err = "'merchant' without a numeric 'amount'";
      return false;
    }
    l->has_payment = true;
    l->merchant = m->get<std::string>();
    l->amount = a->get<double>();
  }
  if (l->kind == "fraud_payment" && !l->has_payment) {
    *err = "fraud_payment without merchant and amount";
    return false;
  }
  if (l->device.empty() && !l->has_cell && !l->has_payment) {
    *err = "label names no device, cell or payment";
    return false;
  }
  return true;
}

bool ParseAlert(const json& j, AlertLine* a, std::string* err) {
  auto ts = TimeField(j, "ts", err);
  if (!ts) return false;
  a->ts = *ts;
  a->rule = OptString(j, "rule");
  if (a->rule.empty()) {
    *err = "'rule' missing or not a string";
    return false;
  }
  a->device = OptString(j, "device");
  if (auto it = j.find("actions"); it != j.end()) {
    if (!it->is_array()) {
      *err = "'actions' is not an array";
      return false;
    }
    for (const auto& x : *it) {
      if (x.is_string() && IsDisruptive(x.get<std::string>())) a->disruptive = true;
    }
  }
  auto ev = j.find("evidence");
  if (ev == j.end() || !ev->is_object()) return true;
  const json* cell = &*ev;
  if (auto c = ev->find("cell"); c != ev->end() && c->is_object()) cell = &*c;
  auto p = cell->find("pci"), e = cell->find("earfcn");
  if (p != cell->end() && e != cell->end() && p->is_number_integer() && e->is_number_integer()) {
    a->has_cell = true;
    a->pci = p->get<int64_t>();
    a->earfcn = e->get<int64_t>();
  }
  a->decision = OptString(*ev, "decision");
  if (auto pay = ev->find("payment"); pay != ev->end() && pay->is_object()) {
    std::string perr;
    auto pts = TimeField(*pay, "ts", &perr);
    auto amount = pay->find("amount");
    if (pts && amount != pay->end() && amount->is_number()) {
      a->has_payment = true;
      a->pay_ts = *pts;
      a->merchant = OptString(*pay, "merchant");
      a->amount = amount->get<double>();
      if (a->decision.empty()) a->decision = OptString(*pay, "decision");
    }
  }
  return true;
}

bool Matches(const TruthLabel& l, const AlertLine& a) {
  if (a.rule != l.rule) return false;
  if (a.ts < l.from || a.ts > l.to + kGraceMs) return false;
  if (l.has_payment && a.has_payment) {
    return a.pay_ts == l.from && a.merchant == l.merchant && std::fabs(a.amount - l.amount) < 0.005;
  }
  if (l.has_cell) return a.has_cell && a.pci == l.pci && a.earfcn == l.earfcn;
  return !l.device.empty() && a.device == l.device;
}

std::string PaymentKey(UnixMillis ts, const std::string& merchant, double amount) {
  return std::to_string(ts) + "|" + merchant + "|" + std::to_string(std::llround(amount * 100));
}

template <typename F>
void ForEachLine(std::string_view text, F&& f) {
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    ++line_no;
    pos = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) continue;
    f(line_no, line);
  }
}

std::optional<double> Median(std::vector<int64_t> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  double m = n % 2 ? static_cast<double>(v[n / 2]) : (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2;
  return m / 1000.0;
}

json Opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json RuleJson(const RuleScore& r) {
  return json{{"labels", r.labels},
              {"detected", r.detected},
              {"recall", Opt(r.Recall())},
              {"true_positives", r.true_positives},
              {"false_positives", r.false_positives},
              {"expected", r.expected},
              {"precision", Opt(r.Precision())},
              {"time_to_detect_s", {{"median", Opt(r.TtdMedianSeconds())}, {"max", Opt(r.TtdMaxSeconds())}}},
              {"false_blocks", r.false_blocks}};
}

std::string Num(const std::optional<double>& v, const char* fmt = "%.2f") {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, *v);
  return buf;
}

std::string Duration(const std::optional<double>& s) {
  if (!s) return "-";
  char buf[32];
  if (*s < 120) {
    std::snprintf(buf, sizeof buf, "%.0f s", *s);
  } else if (*s < 7200) {
    std::snprintf(buf, sizeof buf, "%.1f min", *s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", *s / 3600);
  }
  return buf;
}

Counter& MalformedCounter(std::string_view which) {
  return Metrics::Global().GetCounter("femtoguard_score_malformed_lines_total",
                                      which == "truth" ? "file=\"truth\"" : "file=\"alerts\"",
                                      "Malformed lines skipped by femtoguard score");
}

}  // namespace

std::optional<double> RuleScore::Recall() const {
  if (labels == 0) return std::nullopt;
  return static_cast<double>(detected) / static_cast<double>(labels);
}
std::optional<double> RuleScore::Precision() const {
  uint64_t n = true_positives + false_positives;
  if (n == 0) return std::nullopt;
  return static_cast<double>(true_positives) / static_cast<double>(n);
}
std::optional<double> RuleScore::TtdMedianSeconds() const { return Median(ttd_ms); }
std::optional<double> RuleScore::TtdMaxSeconds() const {
  if (ttd_ms.empty()) return std::nullopt;
  return static_cast<double>(*std::max_element(ttd_ms.begin(), ttd_ms.end())) / 1000.0;
}

ScoreReport ScoreTexts(std::string_view truth, std::string_view alerts, std::string_view truth_name,
                       std::string_view alerts_name) {
  ScoreReport r;
  std::vector<TruthLabel> labels;
  ForEachLine(truth, [&](size_t no, std::string_view line) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::string err;
    if (j.is_discarded() || !j.is_object()) {
      err = "not a JSON object";
    } else {
      std::string kind = OptString(j, "kind");
      if (kind == "meta") {
        std::string e1, e2;
        auto from = TimeField(j, "from", &e1);
        auto to = TimeField(j, "to", &e2);
        auto dev = j.find("devices");
        if (!from || !to || dev == j.end() || !dev->is_number_unsigned()) {
          err = "meta line needs from, to and devices";
        } else {
          r.has_meta = true;
          r.scenario = OptString(j, "scenario");
          r.devices = dev->get<uint64_t>();
          r.from_ms = *from;
          r.to_ms = *to;
          return;
        }
      } else if (kind == "attack" || kind == "fraud_payment" || kind == "expected") {
        TruthLabel l;
        if (ParseLabel(j, &l, &err)) {
          labels.push_back(std::move(l));
          return;
        }
      } else {
        err = "unknown kind '" + kind + "'";
      }
    }
    ++r.malformed_truth;
    MalformedCounter("truth").Inc();
    Problem(&r, truth_name, no, err);
  });

  // Indexes: by rule and device, by payment, and cell labels by rule.
  std::unordered_map<std::string, std::vector<size_t>> by_device, by_payment;
  std::unordered_map<std::string, std::vector<size_t>> cell_labels;
  std::set<std::string> attacked;  // devices named by attack / fraud labels
  for (size_t i = 0; i < labels.size(); ++i) {
    const TruthLabel& l = labels[i];
    if (!l.device.empty()) by_device[l.rule + '\n' + l.device].push_back(i);
    if (l.has_payment) by_payment[PaymentKey(l.from, l.merchant, l.amount)].push_back(i);
    if (l.has_cell) cell_labels[l.rule].push_back(i);
    if (l.kind != "expected") {
      if (!l.device.empty()) attacked.insert(l.device);
      RuleScore& rs = r.rules[l.rule];
      ++rs.labels;
      ++r.overall.labels;
    }
  }

  std::set<std::string> falsely_blocked;
  std::vector<size_t> cand;
  ForEachLine(alerts, [&](size_t no, std::string_view line) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    AlertLine a;
    std::string err;
    if (j.is_discarded() || !j.is_object()) {
      err = "not a JSON object";
    } else if (ParseAlert(j, &a, &err)) {
      err.clear();
    }
    if (!err.empty()) {
      ++r.malformed_alerts;
      MalformedCounter("alerts").Inc();
      Problem(&r, alerts_name, no, err);
      return;
    }
    ++r.alerts;
    cand.clear();
    if (!a.device.empty()) {
      auto it = by_device.find(a.rule + '\n' + a.device);
      if (it != by_device.end()) cand.insert(cand.end(), it->second.begin(), it->second.end());
    }
    if (a.has_payment) {
      auto it = by_payment.find(PaymentKey(a.pay_ts, a.merchant, a.amount));
      if (it != by_payment.end()) cand.insert(cand.end(), it->second.begin(), it->second.end());
    }
    if (a.has_cell) {
      auto it = cell_labels.find(a.rule);
      if (it != cell_labels.end()) cand.insert(cand.end(), it->second.begin(), it->second.end());
    }
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    bool tp = false, expected = false;
    for (size_t i : cand) {
      TruthLabel& l = labels[i];
      if (!Matches(l, a)) continue;
      if (l.kind == "expected") {
        expected = true;
        continue;
      }
      tp = true;
      l.first_ms = std::min(l.first_ms, a.ts);
      if (a.decision == "deny") l.denied = true;
    }
    RuleScore& rs = r.rules[a.rule];
    if (tp) {
      ++rs.true_positives;
      ++r.overall.true_positives;
    } else if (expected) {
      ++rs.expected;
      ++r.overall.expected;
    } else {
      ++rs.false_positives;
      ++r.overall.false_positives;
    }
    if (a.disruptive && !a.device.empty() && !attacked.count(a.device)) {
      ++rs.false_blocks;
      ++r.overall.false_blocks;
      falsely_blocked.insert(a.device);
    }
  });
  r.false_blocked_devices = falsely_blocked.size();

  // Detection and time to detect.
  std::unordered_map<std::string, UnixMillis> device_first, imsi_first;
  for (const TruthLabel& l : labels) {
    if (l.kind != "expected" && l.first_ms == INT64_MAX) {
      std::string who = l.has_cell ? "pci " + std::to_string(l.pci) + " earfcn " + std::to_string(l.earfcn)
                                   : (l.device.empty() ? "-" : l.device);
      r.missed.push_back(l.rule + " " + who + " " + FormatRfc3339(l.from));
    }
    if (l.kind == "expected" || l.first_ms == INT64_MAX) continue;
    RuleScore& rs = r.rules[l.rule];
    ++rs.detected;
    ++r.overall.detected;
    rs.ttd_ms.push_back(l.first_ms - l.from);
    if (l.kind == "attack") r.overall.ttd_ms.push_back(l.first_ms - l.from);
    if (!l.device.empty()) {
      auto [it, fresh] = device_first.emplace(l.device, l.first_ms);
      if (!fresh) it->second = std::min(it->second, l.first_ms);
    }
    if (l.kind == "fraud_payment" && !l.imsi.empty()) {
      auto [it, fresh] = imsi_first.emplace(l.imsi, l.first_ms);
      if (!fresh) it->second = std::min(it->second, l.first_ms);
    }
  }

  // Fraudulent payments before and after detection.
  std::map<std::string, bool> victims;  // imsi -> all prevented so far
  for (const TruthLabel& l : labels) {
    if (l.kind != "fraud_payment") continue;
    ++r.fraud.total;
    UnixMillis det = INT64_MAX;
    if (auto it = device_first.find(l.device); !l.device.empty() && it != device_first.end()) det = it->second;
    if (auto it = imsi_first.find(l.imsi); !l.imsi.empty() && it != imsi_first.end()) det = std::min(det, it->second);
    bool prevented = false;
    if (det <= l.from) {
      ++r.fraud.after_detection;
      prevented = l.denied && l.first_ms != INT64_MAX;
      if (prevented) ++r.fraud.prevented;
    } else {
      ++r.fraud.before_detection;
    }
    std::string who = l.imsi.empty() ? "payment@" + std::to_string(l.from) : l.imsi;
    auto [it, fresh] = victims.emplace(who, prevented);
    if (!fresh) it->second = it->second && prevented;
  }
  r.fraud.victims = victims.size();
  for (const auto& [who, all_prevented] : victims) r.fraud.victims_protected += all_prevented ? 1 : 0;

  if (r.has_meta && r.devices > 0 && r.to_ms > r.from_ms) {
    double weeks = static_cast<double>(r.to_ms - r.from_ms) / (7.0 * 86400 * 1000);
    r.false_blocks_per_100k_device_weeks =
        static_cast<double>(r.overall.false_blocks) / (static_cast<double>(r.devices) / 100000.0) / weeks;
  }
  return r;
}

Result<ScoreReport> ScoreFiles(const std::string& truth_path, const std::string& alerts_path) {
  auto slurp = [](const std::string& path, std::string* out) -> Status {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::Unavailable("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Status::Unavailable("error reading " + path);
    *out = std::move(ss).str();
    return Status::Ok();
  };
  std::string truth, alerts;
  FG_RETURN_IF_ERROR(slurp(truth_path, &truth));
  FG_RETURN_IF_ERROR(slurp(alerts_path, &alerts));
  return ScoreTexts(truth, alerts, truth_path, alerts_path);
}

std::string ScoreReport::ToJson() const {
  json rules_json = json::object();
  for (const auto& [rule, rs] : rules) rules_json[rule] = RuleJson(rs);
  json j = RuleJson(overall);
  j["scenario"] = scenario;
  j["devices"] = devices;
  j["alerts"] = alerts;
  j["span_s"] = has_meta ? json((to_ms - from_ms) / 1000) : json(nullptr);
  j["false_blocked_devices"] = false_blocked_devices;
  j["false_blocks_per_100k_device_weeks"] = Opt(false_blocks_per_100k_device_weeks);
  j["fraud_payments"] = {{"total", fraud.total},
                         {"before_detection", fraud.before_detection},
                         {"after_detection", fraud.after_detection},
                         {"prevented", fraud.prevented},
                         {"victims", fraud.victims},
                         {"victims_protected", fraud.victims_protected}};
  j["rules"] = std::move(rules_json);
  j["malformed"] = {{"truth", malformed_truth}, {"alerts", malformed_alerts}};
  j["missed"] = missed;
  return j.dump();
}

std::string ScoreReport::ToTable() const {
  std::string out;
  char line[256];
  if (has_meta) {
    std::snprintf(line, sizeof line, "scenario %s, %llu devices, %s .. %s (%.1f days), %llu alerts\n\n",
                  scenario.c_str(), static_cast<unsigned long long>(devices), FormatRfc3339(from_ms).c_str(),
                  FormatRfc3339(to_ms).c_str(), static_cast<double>(to_ms - from_ms) / 86400000.0,
                  static_cast<unsigned long long>(alerts));
  } else {
    std::snprintf(line, sizeof line, "no meta line in the truth file, %llu alerts\n\n",
                  static_cast<unsigned long long>(alerts));
  }
  out += line;
  std::snprintf(line, sizeof line, "%-18s %6s %6s %6s %7s %6s %6s %9s %10s %10s %6s\n", "rule", "labels", "found",
                "recall", "TP", "FP", "exp", "precision", "ttd median", "ttd max", "blocks");
  out += line;
  auto row = [&](const std::string& name, const RuleScore& rs) {
    std::snprintf(line, sizeof line, "%-18s %6llu %6llu %6s %7llu %6llu %6llu %9s %10s %10s %6llu\n", name.c_str(),
                  static_cast<unsigned long long>(rs.labels), static_cast<unsigned long long>(rs.detected),
                  Num(rs.Recall()).c_str(), static_cast<unsigned long long>(rs.true_positives),
                  static_cast<unsigned long long>(rs.false_positives), static_cast<unsigned long long>(rs.expected),
                  Num(rs.Precision()).c_str(), Duration(rs.TtdMedianSeconds()).c_str(),
                  Duration(rs.TtdMaxSeconds()).c_str(), static_cast<unsigned long long>(rs.false_blocks));
    out += line;
  };
  for (const auto& [rule, rs] : rules) row(rule, rs);
  row("all", overall);
  std::snprintf(line, sizeof line,
                "\nfraudulent payments: %llu (before detection %llu, after %llu, prevented %llu); "
                "victims %llu, protected %llu\n",
                static_cast<unsigned long long>(fraud.total), static_cast<unsigned long long>(fraud.before_detection),
                static_cast<unsigned long long>(fraud.after_detection), static_cast<unsigned long long>(fraud.prevented),
                static_cast<unsigned long long>(fraud.victims), static_cast<unsigned long long>(fraud.victims_protected));
  out += line;
  std::snprintf(line, sizeof line, "false blocks: %llu on %llu benign devices (%s per 100,000 devices per week)\n",
                static_cast<unsigned long long>(overall.false_blocks),
                static_cast<unsigned long long>(false_blocked_devices),
                Num(false_blocks_per_100k_device_weeks).c_str());
  out += line;
  if (!missed.empty()) {
    out += "missed:\n";
    for (size_t i = 0; i < missed.size() && i < 20; ++i) out += "  " + missed[i] + "\n";
    if (missed.size() > 20) out += "  ... " + std::to_string(missed.size() - 20) + " more\n";
  }
  if (malformed_truth + malformed_alerts > 0) {
    std::snprintf(line, sizeof line, "malformed lines skipped: truth %llu, alerts %llu\n",
                  static_cast<unsigned long long>(malformed_truth), static_cast<unsigned long long>(malformed_alerts));
    out += line;
  }
  return out;
}

}  // namespace fg::sim
