#pragma once

// The detection engine: events in (event-time order), alerts out. Runs every
// registered detector, turns evidence into alerts through the rules file,
// deduplicates, gives each alert a stable id, applies the local effect of its
// actions to the World (suspect, block, hold payments, status) and hands the
// alert to the sink (replay: a JSON Lines file; serve: the response engine).
// Single-threaded: one Engine per thread / shard.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/time.h"
#include "detect/detector.h"
#include "detect/event.h"
#include "detect/rules.h"
#include "detect/world.h"

namespace fg::detect {

struct Alert {
  std::string id;  // stable: hex of a hash over rule, kind, device, dedup_extra, first ts
  UnixMillis ts_ms = 0;
  std::string rule;
  std::string kind;
  Severity severity = Severity::kMedium;
  std::string device;
  std::vector<std::string> subjects;  // "imsi:<hex>" pseudonyms
  std::vector<std::string> actions;   // taken automatically
  std::vector<std::string> approve;   // waiting for an operator
  std::string evidence_json;          // JSON object text
  // One JSON object, one line (DESIGN.md §3.5 + id, kind, approve).
  std::string ToJson() const;
};

// The payment check of POST /v1/payment/check and of payment.risk.
enum class PaymentVerdict { kAllow, kStepUp, kDeny };
std::string_view PaymentVerdictName(PaymentVerdict v);
struct PaymentDecision {
  PaymentVerdict verdict = PaymentVerdict::kAllow;
  std::vector<std::string> reasons;
  std::string femto;  // the suspect femtocell, if any
};
PaymentDecision CheckPayment(const World& world, const RuleParams& params, const SubjectId& subscriber,
                             PayChannel channel, double amount, UnixMillis now_ms);

struct EngineStats {
  uint64_t events = 0;
  uint64_t alerts = 0;
  uint64_t suppressed = 0;  // deduplicated
  size_t devices = 0;
  size_t subscribers = 0;
  size_t detector_bytes = 0;
  size_t world_bytes = 0;  // World::MemoryBytes()
};

class Engine {
 public:
  using AlertSink = std::function<void(const Alert&)>;

  // Runs every detector of the build (AllDetectors()) that the rules file
  // does not switch off (`enabled: false`), each with its rule's params.
  Engine(World world, RuleSet rules, AlertSink sink);
  // Runs `detectors` instead of AllDetectors() (tests, tools, a shard that
  // runs a subset). Same rules handling.
  Engine(World world, RuleSet rules, AlertSink sink, const std::vector<DetectorInfo>& detectors);
  ~Engine();

  // Events must come in non-decreasing ts order (a late event is processed
  // at its own time but timers never run backwards).
  void Process(const Event& event);
  // Cluster mode: an event of a device of another partition, fed only to
  // the CrossDevice() detectors (state only; no World change, no clock).
  // Their evidence is kept only when it names a device `is_local` accepts;
  // the evidence they raise on Process() naming a device of another
  // partition is dropped (that partition raises it). Without SetLocality
  // every device is local.
  void ProcessForeign(const Event& event);
  void SetLocality(std::function<bool(std::string_view device)> is_local);
  // A hint for a caller that knows the events to come: World::Prefetch and
  // the detectors' Prefetch for `event`, stage 0..2 (see World::Prefetch).
  void Prefetch(const Event& event, int stage) const;
  // Whether a running detector reads imei / msisdn / sender_msisdn
  // (Detector::ReadsSecondaryIds).
  bool ReadsSecondaryIds() const;
  // Runs timers due up to `now_ms`; Flush(INT64_MAX) at the end of a replay.
  void Flush(UnixMillis now_ms);

  World& world();
  const RuleSet& rules() const;
  // A reloaded rules file (SIGHUP). Detectors whose params are unchanged
  // keep their state; the others restart with the new params. Returns how
  // many detectors were restarted or switched off.
  size_t ReplaceRules(RuleSet rules);
  EngineStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fg::detect
