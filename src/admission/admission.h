#pragma once

// Admission: should this femtocell be let into the core network now?
// An AdmissionRequest (what the SeGW saw) goes through an ordered chain of
// checks; each check answers allow / deny / quarantine / abstain with a reason
// code, and the policy (admission.yaml in the data dir, built-in defaults
// otherwise) decides the order and which reason denies or quarantines.
// Fail closed: an error or a timeout anywhere is deny with reason "internal".
//
// This header is the contract between the decision engine (src/admission/),
// the SeGW adapters (src/segw/: vici, `femtoguard admit`) and the HTTP API
// (POST /v1/admission in src/node/node.cc).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/time.h"

namespace fg::admission {

enum class Verdict { kAllow, kDeny, kQuarantine, kAbstain };
std::string_view VerdictName(Verdict v);  // "allow", "deny", "quarantine", "abstain"

struct GnssFix {
  double lat = 0;
  double lon = 0;
  double acc_m = 0;
};

// One cell heard over the air by the femtocell's radio environment scan
// (DESIGN.md §3.4 rem.scan).
struct RemCell {
  int mcc = 0;
  int mnc = 0;
  uint32_t tac = 0;
  uint64_t eci = 0;
  int pci = -1;
  int earfcn = -1;
  double rsrp = 0;
};

struct AdmissionRequest {
  std::string device;    // identity from the certificate (CN / IKE id)
  std::string session;   // the SeGW's session id (e.g. IKE unique id)
  std::string cert_fp;   // "sha256:<hex>" of the presented certificate; may be empty
  std::string serial;    // certificate serial, hex; may be empty
  std::string src_ip;    // the femtocell's outer address as the SeGW sees it
  std::string endpoint;  // the SeGW address the device connected to
  std::string segw;      // which SeGW asks
  std::optional<GnssFix> gnss;
  std::vector<RemCell> rem;  // empty = no scan
  UnixMillis now_ms = 0;     // 0 = wall clock
};

struct Decision {
  Verdict verdict = Verdict::kDeny;  // never kAbstain in a final decision
  std::vector<std::string> reasons;  // reason codes, e.g. "cert.clone", "internal"
  // Flat key/value evidence for the decision log and the API's "evidence".
  std::vector<std::pair<std::string, std::string>> evidence;
};

// What SeGW adapters and the API call. Implementations are thread-safe.
class Gate {
 public:
  virtual ~Gate() = default;
  // A new session asks to be admitted. An allowed (or quarantined) session
  // is recorded as live until SessionDown.
  virtual Decision Admit(const AdmissionRequest& request) = 0;
  // The session ended (or was terminated): it no longer counts as live.
  virtual void SessionDown(std::string_view device, std::string_view session) = 0;
};

// Ends live sessions at the SeGW. Implemented by SeGW adapters (vici); the
// node calls it when a device is revoked, suspended or blocked.
class SessionTerminator {
 public:
  virtual ~SessionTerminator() = default;
  // Terminates every live session of `device`; returns how many.
  virtual int TerminateDevice(std::string_view device, std::string_view reason) = 0;
  // Terminates one session by the SeGW's session id; false if not live.
  virtual bool TerminateSession(std::string_view session, std::string_view reason) = 0;
};

}  // namespace fg::admission
