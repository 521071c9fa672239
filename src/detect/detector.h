#pragma once

// A detector: one rule family (DESIGN.md §3.5), one file under
// src/detect/detectors/, one line in detectors/registry.cc. It keeps its own
// keyed state (bounded, expired by event time), reads the shared World, and
// emits Evidence; the rules file decides whether evidence becomes an alert,
// with which severity and actions.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/schema.h"
#include "common/time.h"
#include "detect/event.h"
#include "detect/rules.h"
#include "detect/world.h"

namespace fg::detect {

struct Evidence {
  std::string rule;    // the detector's rule id
  std::string kind;    // sub-kind ("gnss", "rem", "line", ...), may be empty
  std::string device;  // may be empty (cell.unregistered)
  std::vector<SubjectId> subjects;  // pseudonymized subscribers concerned (imsi kind)
  UnixMillis ts_ms = 0;             // event time at which it fired
  // What makes two evidences "the same alert" for dedup and the stable id,
  // beyond rule + kind + device (e.g. the subscriber for per-subscriber
  // rules, the pci/earfcn for cell.unregistered). May be empty.
  std::string dedup_extra;
  // Details for the alert's "evidence" object: JSON object text.
  std::string details_json;
  // False when `device` is named for reference, not accused (payment.risk
  // names the femtocell that exposed the subscriber): the engine then makes
  // no device suspect and applies no device action for it. Its subjects'
  // effects (hold_payments) still apply.
  bool accuses_device = true;
};

class Context {
 public:
  virtual ~Context() = default;
  virtual const World& world() const = 0;
  virtual const RuleParams& params() const = 0;  // this detector's params
  virtual void Emit(Evidence evidence) = 0;
  // OnTimer(key) runs once event time reaches `when_ms` (or at Flush).
  virtual void ScheduleAt(UnixMillis when_ms, uint64_t key) = 0;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual void OnEvent(const Event& event, Context& ctx) = 0;
  virtual void OnTimer(uint64_t key, UnixMillis now_ms, Context& ctx) {}
  // Drops state older than the detector's windows; called as time advances.
  virtual void Expire(UnixMillis now_ms) {}
  virtual size_t MemoryBytes() const { return 0; }

  // A hint from a caller that decodes a few events ahead (replay): bring the
  // detector's state that OnEvent(event) will read towards the cache, in
  // stages 0, 1, 2 run a few events apart and in order, as World::Prefetch.
  // Changes nothing. The engine calls it only for detectors whose
  // Prefetches() is true.
  virtual bool Prefetches() const { return false; }
  virtual void Prefetch(const Event& event, const World& world, int stage) const {}

  // True if OnEvent reads the secondary identities of an Event (imei,
  // msisdn, sender_msisdn). Replay pseudonymizes them only when a running
  // detector does (EventDecoder::set_secondary_ids): a keyed HMAC per
  // identity is a sixth of replay's CPU, and an identity nobody reads is
  // better not derived at all. A detector that reads them and does not say
  // so sees them empty in replay.
  virtual bool ReadsSecondaryIds() const { return false; }

  // True if the detector's state is keyed by something several devices
  // share (a certificate, a transport address) rather than by the device.
  // In cluster mode (bus/stream_detection.h) each device partition then
  // also feeds it the other partitions' events of the kinds it reads
  // (Engine::ProcessForeign), and keeps only the evidence naming its own
  // devices: the evidence is the same as one engine over every event.
  virtual bool CrossDevice() const { return false; }
};

// What a detector declares (defined in its own file, listed in
// detectors/registry.cc): its typed parameters - the rules file's
// `rules.<id>.params` is validated against them and completed with their
// defaults - and its evidence kinds (`rules.<id>.kinds` may name only
// these). The source of docs/configuration.md and docs/reasons.md.
struct RuleSpec {
  std::string_view rule;
  std::string_view meaning;  // when it fires (one or two sentences)
  std::string_view action;   // what the operator should do
  std::span<const KeySpec> params;
  std::span<const ReasonSpec> kinds;  // empty: the rule has no kinds
};

struct DetectorInfo {
  std::string_view rule;
  std::unique_ptr<Detector> (*make)(const RuleParams& params);
  const RuleSpec* spec = nullptr;  // nullptr only for test detectors
};
// Every detector of the build (detectors/registry.cc).
const std::vector<DetectorInfo>& AllDetectors();
std::vector<std::string> AllRuleIds();
// The declaration of a rule of the build, or nullptr.
const RuleSpec* FindRuleSpec(std::string_view rule);

}  // namespace fg::detect
