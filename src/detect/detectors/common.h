#pragma once

// Helpers shared by the detectors of src/detect/detectors/ (private to them):
// identity hashing, how risky a serving femtocell is, evidence assembly and
// a cheap time-gated sweep for state expiry. Nothing here allocates on the
// common path; building evidence (which only happens when a rule fires) may.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/time.h"
#include "detect/detector.h"
#include "detect/event.h"
#include "detect/world.h"

namespace fg::detect::detectors {

// Keys per-detector maps by device id or certificate fingerprint without
// keeping the text (collisions at 64 bits are negligible for a fleet of a
// few hundred thousand). In memory only, never stored. libstdc++'s
// std::hash (MurmurHash64A, 8 bytes a step): FNV-1a was one dependent
// multiply per byte, some 280 cycles (estimated) for a 71-character
// fingerprint, three times per session.up.
inline uint64_t HashText(std::string_view s) { return std::hash<std::string_view>{}(s); }

inline std::string SubjectText(const SubjectId& s) { return s.ToString("imsi"); }

// The device index of the event's femtocell, or kNoDevice. Several
// detectors look up the same event's device: the last hit is remembered
// (per thread, one engine per thread) and verified by comparing ids, so it
// is never stale - device indices are stable and ids unique in a World.
inline DeviceIdx FindDevice(const World& w, std::string_view device) {
  if (device.empty()) return kNoDevice;
  thread_local const World* last_world = nullptr;
  thread_local DeviceIdx last = kNoDevice;
  if (last_world == &w && last < w.device_count() && w.device(last).id == device) return last;
  DeviceIdx d = w.Find(device);
  if (d != kNoDevice) {
    last_world = &w;
    last = d;
  }
  return d;
}

// Why a femtocell that serves subscribers is not to be trusted, in the
// order that matters: "" (trusted), "unknown" (not in the registry),
// "inactive" (suspended or decommissioned), "blocked", "suspect" (an alert
// of severity high or critical named it within suspect_ttl_s).
inline std::string_view FemtoRisk(const World& w, DeviceIdx d, UnixMillis now_ms) {
  if (d == kNoDevice) return "unknown";
  const DeviceState& s = w.device(d);
  if (s.id.empty()) return "";  // no femtocell named (a macro-delivered SMS): nothing to distrust
  if (!s.registered) return "unknown";
  if (s.status == DeviceStatus::kSuspended || s.status == DeviceStatus::kDecommissioned)
    return "inactive";
  if (s.blocked) return "blocked";
  if (s.Suspect(now_ms)) return "suspect";
  return "";
}

inline Evidence MakeEvidence(std::string_view rule, std::string_view kind, std::string_view device,
                             UnixMillis ts_ms) {
  Evidence e;
  e.rule = std::string(rule);
  e.kind = std::string(kind);
  e.device = std::string(device);
  e.ts_ms = ts_ms;
  return e;
}

inline std::string Ts(UnixMillis t) { return FormatRfc3339(t); }

// Runs a sweep at most once per `period_ms` of event time: Expire() calls
// can come as often as the engine likes without costing a full pass each.
class SweepGate {
 public:
  explicit SweepGate(UnixMillis period_ms) : period_ms_(period_ms) {}
  bool Due(UnixMillis now_ms) {
    if (now_ms < next_ms_) return false;
    next_ms_ = now_ms + period_ms_;
    return true;
  }

 private:
  UnixMillis period_ms_;
  UnixMillis next_ms_ = 0;
};

// A duration parameter given in seconds, returned in milliseconds (negative -> 0).
inline int64_t ParamSecondsAsMs(const RuleParams& p, std::string_view key, int64_t fallback_s) {
  int64_t v = p.GetInt(key, fallback_s);
  return v < 0 ? 0 : v * kMillisPerSecond;
}

}  // namespace fg::detect::detectors
