#pragma once

// A throwaway femtoguard data dir for the harnesses that need a CA and a
// store (CMP, EST, OCSP): created once, in LLVMFuzzerInitialize, under
// $TMPDIR, and removed at exit. Deterministic where the seeds depend on it:
// the token key is fixed, so the bootstrap token kTokenRef's secret is
// HMAC-SHA256(kTokenKey, "femtoguard-bootstrap-token:" + ref), first 16
// bytes in hex (fuzz/make-seeds computes the same to protect CMP seeds).
//
// Not thread-safe; libFuzzer runs one input at a time.

#include <memory>
#include <string>

#include "common/config.h"
#include "pki/ca.h"
#include "pki/enrolment.h"
#include "pki/issuance.h"
#include "store/store.h"

namespace fg::fuzz {

inline constexpr const char* kTokenKey = "femtoguard-fuzz-token-key";
inline constexpr const char* kTokenRef = "tok-fuzz0001";
inline constexpr const char* kDevice = "FG-FUZZ-1";

struct Env {
  std::string root;
  Config config;
  std::unique_ptr<DataDir> dir;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<Store> store;
  std::unique_ptr<IssuancePolicy> policy;
  std::unique_ptr<Enrolment> enrolment;
};

// The process-wide environment; aborts (a harness bug, not a finding) when
// it cannot be set up.
Env& GetEnv();

// Silences spdlog: a refused request logs, and libFuzzer runs millions.
void QuietLogs();

}  // namespace fg::fuzz
