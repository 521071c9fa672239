#pragma once

// One admission check: a small object that looks at a request and the
// engine's snapshot and answers allow / deny / quarantine / abstain with a
// machine-readable reason and flat evidence. Checks are independent; the
// engine runs them in the policy's order and combines the answers (any deny
// -> deny, else any quarantine -> quarantine, else allow).
//
// Adding a check = one file in checks/ plus one line in checks/registry.cc.
//
// Thread-safety: Evaluate is called concurrently from many threads (for
// different devices; the engine serialises decisions of one device), with
// the snapshot read-locked. A check that keeps state guards it itself.
// Errors: return a Status (or throw): the engine turns either into deny
// "internal".

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admission/admission.h"
#include "admission/policy.h"
#include "admission/snapshot.h"
#include "common/celldb.h"
#include "common/schema.h"
#include "common/status.h"

namespace fg::admission {

using Evidence = std::vector<std::pair<std::string, std::string>>;

// A session the engine considers live (admitted and not yet down).
struct LiveSession {
  std::string session;
  std::string src_ip;
  std::string endpoint;
  EndpointKey endpoint_key;
  std::string segw;
  UnixMillis since_ms = 0;
};

// True when `r` is the same session asked again (same id at the same SeGW)
// or a reconnect of `s`: same endpoint and same line (same src_ip, or with
// policy clone.same_prefix_is_reconnect both inside one registered prefix).
bool IsSameOrReconnect(const LiveSession& s, const AdmissionRequest& r, const EndpointKey& endpoint,
                       const IpAddr* src, const DeviceView* device, const AdmissionPolicy& policy);

struct CheckContext {
  const AdmissionRequest& request;
  UnixMillis now_ms;
  const IpAddr* src;                  // the parsed src_ip; nullptr when absent or not an address
  const EndpointKey& endpoint;        // the parsed request endpoint (host empty when absent)
  const DeviceView* device;           // nullptr when the id is not registered
  const Snapshot& snapshot;
  const AdmissionPolicy& policy;
  const CellDb* cells;                // nullptr when no cell database is loaded
  const std::vector<LiveSession>& live;  // this device's live sessions
};

struct CheckAnswer {
  Verdict verdict = Verdict::kAbstain;
  std::string reason;  // empty for a plain allow/abstain
  Evidence evidence;

  static CheckAnswer Allow(Evidence ev = {}) { return {Verdict::kAllow, {}, std::move(ev)}; }
  static CheckAnswer Abstain(std::string reason = {}) { return {Verdict::kAbstain, std::move(reason), {}}; }
  static CheckAnswer Deny(std::string reason, Evidence ev = {}) {
    return {Verdict::kDeny, std::move(reason), std::move(ev)};
  }
  static CheckAnswer Quarantine(std::string reason, Evidence ev = {}) {
    return {Verdict::kQuarantine, std::move(reason), std::move(ev)};
  }
};

class Check {
 public:
  virtual ~Check() = default;
  virtual std::string_view name() const = 0;
  virtual Result<CheckAnswer> Evaluate(const CheckContext& ctx) = 0;
};

// What a check factory gets: the engine's policy (for state sizing).
using CheckFactory = std::function<std::unique_ptr<Check>(const AdmissionPolicy&)>;
// What a check declares (in its own file): the admission.yaml keys it reads
// (full paths, e.g. "gnss.margin_m") and the reason codes it answers. The
// loader validates admission.yaml against the union of the declarations,
// `verdicts:` may name only declared reasons, and docs/configuration.md and
// docs/reasons.md are checked against them.
struct CheckSpec {
  std::string_view name;
  std::string_view meaning;
  std::span<const KeySpec> params;
  std::span<const ReasonSpec> reasons;
};

struct CheckRegistration {
  std::string name;
  CheckFactory factory;
  const CheckSpec* spec = nullptr;
};

// The built-in checks (checks/registry.cc).
const std::vector<CheckRegistration>& BuiltinChecks();

}  // namespace fg::admission
