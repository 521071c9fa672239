#include "detect/rules.h"

#include "detect/default_rules.h"
#include "detect/detector.h"
#include "common/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fg::detect {
namespace {

constexpr std::string_view kSeverityNames[] = {"info", "low", "medium", "high", "critical"};

// Validation error: "line L: <path>: <what>" (the line when known).
struct Invalid {
  std::string path;
  std::string what;
  std::string line = {};  // "line L: " or empty
};

std::string Index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }
std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Scalar(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) throw Invalid{path, "expected a scalar", LineOf(node)};
  return node.Scalar();
}

int64_t Seconds(const YAML::Node& node, const std::string& path) {
  std::string text = Scalar(node, path);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < 0 || v > 10LL * 365 * 86400) {
    throw Invalid{path, "expected a number of seconds (integer >= 0), got '" + text + "'", LineOf(node)};
  }
  return v;
}

bool Bool(const YAML::Node& node, const std::string& path) {
  std::string text = Scalar(node, path);
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  throw Invalid{path, "expected true or false, got '" + text + "'", LineOf(node)};
}

std::vector<std::string> Actions(const YAML::Node& node, const std::string& path) {
  if (node.IsNull()) return {};
  if (!node.IsSequence()) throw Invalid{path, "expected a list of actions"};
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    std::string a = Scalar(node[i], Index(path, i));
    if (!IsKnownAction(a)) {
      throw Invalid{Index(path, i), "unknown action '" + a + "' (revoke, suspend, terminate, block, hold_payments, notify)",
                    LineOf(node[i])};
    }
    if (std::find(out.begin(), out.end(), a) != out.end()) {
      throw Invalid{Index(path, i), "action '" + a + "' listed twice"};
    }
    out.push_back(std::move(a));
  }
  return out;
}

// The keys an outcome may set; `rule_level` adds params, kinds and doc.
void ParseOutcome(const YAML::Node& node, const std::string& path, bool rule_level, RuleOutcome* out) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = Scalar(it->first, path);
    std::string at = Child(path, key);
    YAML::Node v = it->second;
    if (key == "enabled") {
      out->enabled = Bool(v, at);
    } else if (key == "severity") {
      std::string s = Scalar(v, at);
      if (!ParseSeverity(s, &out->severity)) {
        throw Invalid{at, "unknown severity '" + s + "' (info, low, medium, high, critical)", LineOf(v)};
      }
    } else if (key == "actions") {
      out->actions = Actions(v, at);
    } else if (key == "approve") {
      out->approve = Actions(v, at);
    } else if (key == "dedup_s") {
      out->dedup_ms = Seconds(v, at) * 1000;
    } else if (rule_level && (key == "params" || key == "kinds" || key == "doc")) {
      // Handled by the caller.
    } else {
      throw Invalid{at,
                    rule_level ? "unknown key (enabled, severity, actions, approve, dedup_s, params, kinds, doc)"
                               : "unknown key (enabled, severity, actions, approve, dedup_s)",
                    LineOf(it->first)};
    }
  }
  for (size_t i = 0; i < out->approve.size(); ++i) {
    if (std::find(out->actions.begin(), out->actions.end(), out->approve[i]) != out->actions.end()) {
      throw Invalid{Index(Child(path, "approve"), i),
                    "action '" + out->approve[i] + "' is also taken automatically (in actions)"};
    }
  }
}

void ParseParams(const YAML::Node& node, const std::string& path, RuleParams* out) {
  if (node.IsNull()) return;
  if (!node.IsMap()) throw Invalid{path, "expected a map of parameters"};
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = Scalar(it->first, path);
    std::string at = Child(path, key);
    YAML::Node v = it->second;
    if (v.IsScalar()) {
      out->scalars[key] = v.Scalar();
    } else if (v.IsNull()) {
      out->scalars[key] = "";
    } else if (v.IsSequence()) {
      bool any_map = false, any_scalar = false;
      for (size_t i = 0; i < v.size(); ++i) (v[i].IsMap() ? any_map : any_scalar) = true;
      if (any_map && any_scalar) throw Invalid{at, "a list must hold only scalars or only maps"};
      if (any_map) {
        std::vector<std::map<std::string, std::string>> maps;
        for (size_t i = 0; i < v.size(); ++i) {
          std::map<std::string, std::string> m;
          for (auto e = v[i].begin(); e != v[i].end(); ++e) {
            std::string k = Scalar(e->first, Index(at, i));
            m[k] = Scalar(e->second, Child(Index(at, i), k));
          }
          maps.push_back(std::move(m));
        }
        out->maps[key] = std::move(maps);
      } else {
        std::vector<std::string> list;
        for (size_t i = 0; i < v.size(); ++i) list.push_back(Scalar(v[i], Index(at, i)));
        out->lists[key] = std::move(list);
      }
    } else {
      throw Invalid{at, "expected a scalar or a list"};
    }
  }
}

}  // namespace

void CompleteParams(const RuleSpec& spec, RuleParams* params) {
  for (const KeySpec& k : spec.params) {
    bool scalar = k.type == ValueType::kInt || k.type == ValueType::kNumber || k.type == ValueType::kBool ||
                  k.type == ValueType::kString;
    if (scalar && !params->Has(k.path)) params->scalars.emplace(std::string(k.path), std::string(k.default_text));
  }
}

RuleParams DeclaredDefaults(std::string_view rule) {
  RuleParams p;
  if (const RuleSpec* spec = FindRuleSpec(rule)) CompleteParams(*spec, &p);
  return p;
}

std::string_view SeverityName(Severity s) {
  size_t i = static_cast<size_t>(s);
  return i < std::size(kSeverityNames) ? kSeverityNames[i] : std::string_view("medium");
}

bool ParseSeverity(std::string_view s, Severity* out) {
  for (size_t i = 0; i < std::size(kSeverityNames); ++i) {
    if (kSeverityNames[i] == s) {
      *out = static_cast<Severity>(i);
      return true;
    }
  }
  return false;
}

bool IsKnownAction(std::string_view a) {
  return std::find(std::begin(kActions), std::end(kActions), a) != std::end(kActions);
}

bool IsDisruptiveAction(std::string_view a) {
  return a == "revoke" || a == "suspend" || a == "terminate" || a == "block";
}

// ---- RuleParams ----

int64_t RuleParams::GetInt(std::string_view key, int64_t fallback) const {
  auto it = scalars.find(key);
  if (it == scalars.end()) return fallback;
  const std::string& t = it->second;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec == std::errc() && p == t.data() + t.size()) return v;
  // "1e3" or "60.0": accept integral doubles.
  double d = GetDouble(key, std::nan(""));
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  return fallback;
}

double RuleParams::GetDouble(std::string_view key, double fallback) const {
  auto it = scalars.find(key);
  if (it == scalars.end() || it->second.empty()) return fallback;
  const char* begin = it->second.c_str();
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  if (end != begin + it->second.size() || !std::isfinite(v)) return fallback;
  return v;
}

std::string RuleParams::GetString(std::string_view key, std::string_view fallback) const {
  auto it = scalars.find(key);
  return it == scalars.end() ? std::string(fallback) : it->second;
}

std::vector<std::string> RuleParams::GetList(std::string_view key) const {
  if (auto it = lists.find(key); it != lists.end()) return it->second;
  if (auto it = scalars.find(key); it != scalars.end() && !it->second.empty()) return {it->second};
  return {};
}

std::vector<std::map<std::string, std::string>> RuleParams::GetMaps(std::string_view key) const {
  auto it = maps.find(key);
  return it == maps.end() ? std::vector<std::map<std::string, std::string>>{} : it->second;
}

bool RuleParams::Has(std::string_view key) const {
  return scalars.count(key) || lists.count(key) || maps.count(key);
}

// ---- RuleConfig / RuleSet ----

const RuleOutcome& RuleConfig::For(std::string_view kind) const {
  if (!kind.empty()) {
    if (auto it = kinds.find(kind); it != kinds.end()) return it->second;
  }
  return outcome;
}

const RuleConfig* RuleSet::Find(std::string_view rule) const {
  auto it = rules_.find(rule);
  return it == rules_.end() ? nullptr : &it->second;
}

const RuleOutcome& RuleSet::OutcomeFor(std::string_view rule, std::string_view kind) const {
  const RuleConfig* c = Find(rule);
  return c ? c->For(kind) : default_outcome_;
}

RuleConfig& RuleSet::MutableRule(std::string_view rule) {
  auto it = rules_.find(rule);
  if (it == rules_.end()) {
    RuleConfig c;
    c.id = std::string(rule);
    c.outcome = default_outcome_;
    if (const RuleSpec* declared = FindRuleSpec(rule)) CompleteParams(*declared, &c.params);
    it = rules_.emplace(c.id, std::move(c)).first;
  }
  return it->second;
}

Result<RuleSet> RuleSet::Parse(std::string_view yaml, const std::vector<std::string>& known_rules) {
  RuleSet set;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsNull()) return set;  // an empty file: every rule with its defaults
    if (!root.IsMap()) throw Invalid{"(top)", "expected a map with version, defaults, rules"};
    // Defaults first: rules inherit them whatever the key order.
    if (YAML::Node d = root["defaults"]; d && !d.IsNull()) {
      if (!d.IsMap()) throw Invalid{"defaults", "expected a map"};
      for (auto it = d.begin(); it != d.end(); ++it) {
        std::string key = Scalar(it->first, "defaults");
        std::string at = Child("defaults", key);
        if (key == "dedup_s") {
          set.default_outcome_.dedup_ms = Seconds(it->second, at) * 1000;
        } else if (key == "suspect_ttl_s") {
          set.suspect_ttl_ms_ = Seconds(it->second, at) * 1000;
        } else {
          throw Invalid{at, "unknown key (dedup_s, suspect_ttl_s)", LineOf(it->first)};
        }
      }
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      std::string key = Scalar(it->first, "(top)");
      if (key == "version") {
        if (Scalar(it->second, "version") != "1") throw Invalid{"version", "unsupported version (expected 1)"};
      } else if (key != "defaults" && key != "rules") {
        throw Invalid{key, "unknown key (version, defaults, rules)", LineOf(it->first)};
      }
    }
    YAML::Node rules = root["rules"];
    if (rules && !rules.IsNull()) {
      if (!rules.IsMap()) throw Invalid{"rules", "expected a map of rule id to rule"};
      for (auto it = rules.begin(); it != rules.end(); ++it) {
        std::string id = Scalar(it->first, "rules");
        std::string path = Child("rules", id);
        if (std::find(known_rules.begin(), known_rules.end(), id) == known_rules.end()) {
          std::string known;
          for (const std::string& k : known_rules) known += (known.empty() ? "" : ", ") + k;
          throw Invalid{path, "unknown rule (known: " + known + ")", LineOf(it->first)};
        }
        if (set.rules_.count(id)) throw Invalid{path, "rule defined twice"};
        YAML::Node r = it->second;
        RuleConfig config;
        config.id = id;
        config.outcome = set.default_outcome_;
        if (!r.IsNull()) {
          if (!r.IsMap()) throw Invalid{path, "expected a map"};
          ParseOutcome(r, path, /*rule_level=*/true, &config.outcome);
          const RuleSpec* spec = FindRuleSpec(id);
          if (YAML::Node p = r["params"]) {
            // A rule of the build: its declared parameters only, typed and in range.
            if (spec) {
              if (Status s = ValidateKeys(p, spec->params, Child(path, "params")); !s.ok()) throw s;
            }
            ParseParams(p, Child(path, "params"), &config.params);
          }
          if (YAML::Node doc = r["doc"]; doc && !doc.IsNull()) config.doc = Scalar(doc, Child(path, "doc"));
          if (YAML::Node kinds = r["kinds"]; kinds && !kinds.IsNull()) {
            std::string kpath = Child(path, "kinds");
            if (!kinds.IsMap()) throw Invalid{kpath, "expected a map of evidence kind to outcome"};
            for (auto k = kinds.begin(); k != kinds.end(); ++k) {
              std::string kind = Scalar(k->first, kpath);
              std::string at = Child(kpath, kind);
              if (spec && std::none_of(spec->kinds.begin(), spec->kinds.end(),
                                       [&](const ReasonSpec& r) { return r.code == kind; })) {
                std::string known;
                for (const ReasonSpec& r : spec->kinds) known += (known.empty() ? "" : ", ") + std::string(r.code);
                throw Invalid{at, "unknown evidence kind (known: " + (known.empty() ? "none" : known) + ")",
                              LineOf(k->first)};
              }
              RuleOutcome o = config.outcome;
              if (!k->second.IsNull()) {
                if (!k->second.IsMap()) throw Invalid{at, "expected a map"};
                ParseOutcome(k->second, at, /*rule_level=*/false, &o);
              }
              config.kinds[kind] = std::move(o);
            }
          }
        }
        // A rule of the build runs with its declared defaults where the file is silent.
        if (const RuleSpec* declared = FindRuleSpec(id)) CompleteParams(*declared, &config.params);
        set.rules_.emplace(id, std::move(config));
      }
    }
  } catch (const Invalid& e) {
    return Status::InvalidArgument(e.line + e.path + ": " + e.what);
  } catch (const Status& s) {
    return s;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("line " + std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return set;
}

Result<RuleSet> RuleSet::Load(const std::string& path, const std::vector<std::string>& known_rules) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read rules file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto set = Parse(ss.str(), known_rules);
  // "FILE: line L: rules.cert.clone.params.grace_s: expected an integer, got 'sixty'"
  if (!set.ok()) return Status::InvalidArgument(path + ": " + set.status().message());
  return set;
}

Result<RuleSet> LoadRulesOrDefault(const std::string& path) {
  if (path.empty()) {
    auto set = RuleSet::Parse(DefaultRulesYaml(), AllRuleIds());
    if (!set.ok()) return Status::Internal("embedded rules/default.yaml: " + set.status().message());
    return set;
  }
  return RuleSet::Load(path, AllRuleIds());
}

}  // namespace fg::detect
