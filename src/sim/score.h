#pragma once

// The scorer (`femtoguard score`): alerts (DESIGN.md §3.5) against the
// simulator's truth.jsonl (docs/detection.md). Matching:
//  - an alert is a true positive when it matches an attack or fraud_payment
//    label: same rule, same device (for cell.unregistered: same pci and
//    earfcn in the evidence; for a fraud payment with evidence.payment: the
//    same payment ts, merchant and amount), ts within [from, to + 1 h];
//  - otherwise, matching an expected label the same way, it is neither;
//  - otherwise it is a false positive;
//  - any alert whose actions include revoke, suspend, terminate or block on a
//    device that no attack or fraud_payment label names is a false block.
// A label is detected when at least one alert matches it; time to detect is
// its first matching alert's ts minus its from. A fraudulent payment is
// "after detection" when its device or its subscriber was detected at or
// before its ts, and prevented when its matching payment.risk alert says
// evidence.decision "deny".
// Stateless functions; thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace fg::sim {

struct RuleScore {
  uint64_t labels = 0;    // attack + fraud_payment labels
  uint64_t detected = 0;  // labels with a matching alert
  uint64_t true_positives = 0;
  uint64_t false_positives = 0;
  uint64_t expected = 0;  // alerts matching an expected label only
  uint64_t false_blocks = 0;
  std::vector<int64_t> ttd_ms;  // one per detected label (overall: attack labels only)

  std::optional<double> Recall() const;
  std::optional<double> Precision() const;
  std::optional<double> TtdMedianSeconds() const;
  std::optional<double> TtdMaxSeconds() const;
};

struct FraudScore {
  uint64_t total = 0;
  uint64_t before_detection = 0;
  uint64_t after_detection = 0;
  uint64_t prevented = 0;  // after detection and denied by the payment check
  uint64_t victims = 0;
  uint64_t victims_protected = 0;  // every fraudulent payment of theirs prevented
};

struct ScoreReport {
  bool has_meta = false;
  std::string scenario;
  uint64_t devices = 0;
  UnixMillis from_ms = 0, to_ms = 0;
  uint64_t alerts = 0;

  RuleScore overall;
  std::map<std::string, RuleScore> rules;  // every family with a label or an alert
  FraudScore fraud;
  uint64_t false_blocked_devices = 0;
  std::optional<double> false_blocks_per_100k_device_weeks;

  // Attack and fraud labels no alert matched, in truth order: "rule device
  // from" (cell.unregistered: "rule pci/earfcn from").
  std::vector<std::string> missed;

  // "truth.jsonl line 3: ..." for each malformed line (skipped).
  std::vector<std::string> problems;
  uint64_t malformed_truth = 0, malformed_alerts = 0;

  std::string ToJson() const;   // one line
  std::string ToTable() const;  // for people
};

// Scores the text of truth.jsonl against the text of an alerts file; the
// names label problems.
ScoreReport ScoreTexts(std::string_view truth, std::string_view alerts, std::string_view truth_name = "truth",
                       std::string_view alerts_name = "alerts");

// Reads both files (an unreadable file is an error) and scores them.
Result<ScoreReport> ScoreFiles(const std::string& truth_path, const std::string& alerts_path);

}  // namespace fg::sim
