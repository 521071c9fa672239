#pragma once

// The rules file (YAML; shipped default rules/default.yaml): mechanism and
// policy apart. Detectors compute evidence; this file says whether evidence
// becomes an alert, at which severity, with which actions, and the tuning
// parameters each detector reads. Validated on load: an unknown rule, key,
// severity, action or evidence kind, and a parameter the detector does not
// declare (detector.h RuleSpec), of the wrong type or out of its range, is an
// error naming the key's path and line.
//
//   version: 1
//   defaults: {dedup_s: 3600, suspect_ttl_s: 86400}
//   rules:
//     cert.clone:
//       enabled: true
//       severity: critical
//       actions: [terminate, block, notify]
//       approve: [revoke]           # wait for `femtoguard alert approve ID`
//       dedup_s: 3600
//       params: {grace_s: 60}
//       kinds:                      # per evidence kind overrides
//         line: {severity: medium, actions: [notify]}
//       doc: "..."

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg::detect {

enum class Severity : uint8_t { kInfo, kLow, kMedium, kHigh, kCritical };
std::string_view SeverityName(Severity s);
bool ParseSeverity(std::string_view s, Severity* out);

// The actions the response engine knows.
inline constexpr std::string_view kActions[] = {"revoke", "suspend", "terminate", "block",
                                                "hold_payments", "notify"};
bool IsKnownAction(std::string_view a);
// revoke, suspend, terminate, block.
bool IsDisruptiveAction(std::string_view a);

// A rule's tuning parameters: scalars and lists of scalars, as text.
class RuleParams {
 public:
  int64_t GetInt(std::string_view key, int64_t fallback) const;
  double GetDouble(std::string_view key, double fallback) const;
  std::string GetString(std::string_view key, std::string_view fallback) const;
  std::vector<std::string> GetList(std::string_view key) const;
  // List of maps (e.g. legacy_credentials: [{fp: ..., cutoff: ...}]).
  std::vector<std::map<std::string, std::string>> GetMaps(std::string_view key) const;
  bool Has(std::string_view key) const;

  std::map<std::string, std::string, std::less<>> scalars;
  std::map<std::string, std::vector<std::string>, std::less<>> lists;
  std::map<std::string, std::vector<std::map<std::string, std::string>>, std::less<>> maps;
};

struct RuleOutcome {
  bool enabled = true;
  Severity severity = Severity::kMedium;
  std::vector<std::string> actions;  // taken automatically
  std::vector<std::string> approve;  // wait for an operator
  int64_t dedup_ms = 3600 * 1000;
};

struct RuleConfig {
  std::string id;  // rule family, e.g. "cert.clone"
  RuleOutcome outcome;
  std::map<std::string, RuleOutcome, std::less<>> kinds;  // per evidence kind
  RuleParams params;
  std::string doc;

  // The outcome for evidence of `kind` (the override if there is one).
  const RuleOutcome& For(std::string_view kind) const;
};

struct RuleSpec;  // detector.h
// Adds the declared default of every scalar parameter `params` lacks, so a
// detector reads the documented default, not a fallback of its own.
void CompleteParams(const RuleSpec& spec, RuleParams* params);
// The declared defaults of a rule of the build (empty for an unknown rule).
RuleParams DeclaredDefaults(std::string_view rule);

class RuleSet {
 public:
  // `known_rules`: rule ids the build has detectors for (an unknown id in
  // the file is an error).
  static Result<RuleSet> Parse(std::string_view yaml, const std::vector<std::string>& known_rules);
  static Result<RuleSet> Load(const std::string& path, const std::vector<std::string>& known_rules);

  // nullptr when the file does not name the rule (the detector then runs
  // with its defaults and its alerts use severity medium, actions [notify]).
  const RuleConfig* Find(std::string_view rule) const;
  int64_t suspect_ttl_ms() const { return suspect_ttl_ms_; }
  const std::map<std::string, RuleConfig, std::less<>>& rules() const { return rules_; }

  // What evidence of a rule the file does not name becomes: severity medium,
  // actions [notify], the file's default dedup_s.
  const RuleOutcome& default_outcome() const { return default_outcome_; }
  // The outcome for evidence of (rule, kind): the rule's kind override, the
  // rule's outcome, or default_outcome().
  const RuleOutcome& OutcomeFor(std::string_view rule, std::string_view kind) const;
  // Mutable access for callers that merge data-dir state into a rule's
  // params before building the engine (e.g. the store's legacy credentials
  // into cert.legacy). Creates an enabled entry with the default outcome
  // when the file does not name the rule.
  RuleConfig& MutableRule(std::string_view rule);

 private:
  std::map<std::string, RuleConfig, std::less<>> rules_;
  int64_t suspect_ttl_ms_ = 86400 * 1000;
  RuleOutcome default_outcome_{true, Severity::kMedium, {"notify"}, {}, 3600 * 1000};
};

}  // namespace fg::detect
