#pragma once

// The JSON face of admission, for POST /v1/admission (wired in
// src/node/node.cc behind a bearer token with role segw).
//
// Request: the fields of a session.up event (DESIGN.md §3.4)
//   {"device": "FG-1", "session": "7", "cert_fp": "sha256:...", "src_ip": "198.51.100.7",
//    "endpoint": "segw1.example.net:4500", "segw": "segw-a",
//    "serial": "1A2B",                                   (optional)
//    "gnss": {"lat": 37.5, "lon": 127.0, "acc_m": 20},   (optional)
//    "rem": [{"mcc":450,"mnc":8,"tac":4660,"eci":123,"pci":101,"earfcn":1300,"rsrp":-95}]}  (optional)
// Unknown fields are ignored.
// Response 200: {"decision": "allow"|"deny"|"quarantine", "reasons": [...], "evidence": {...}}
// Response 400: {"error": "..."} for malformed JSON, a missing device or a
// field of the wrong type; counted in femtoguard_admission_api_bad_requests_total;
// no decision is made (nothing is logged as a decision, no session recorded).
//
// Thread-safe when `gate` is.

#include <string>
#include <string_view>

#include "admission/admission.h"
#include "common/status.h"

namespace fg::admission {

// Largest accepted body and REM scan.
constexpr size_t kMaxAdmissionBody = 64 * 1024;
constexpr size_t kMaxRemCells = 256;

std::string HandleAdmissionJson(Gate& gate, std::string_view body, int* http_status);

// The parsing half, for adapters that already hold the JSON text.
Result<AdmissionRequest> ParseAdmissionRequest(std::string_view body);
// {"decision":...,"reasons":[...],"evidence":{...}}
std::string DecisionToJson(const Decision& decision);

}  // namespace fg::admission
