#pragma once

// The issuance policy: the one place that decides whether a certificate may
// be issued. Every path that issues (CLI, CMP, EST) goes through Issue().
//
//   - one device = one key: a public key already bound to any device, or to
//     an earlier certificate of the same device (even a revoked one), is
//     refused. Reusing a key is exactly the shared-credential failure.
//   - only provisioned or active devices get certificates;
//   - validity: default from config, capped by config (itself capped at 365 days);
//   - the requester proves possession of the key (CSR signature), or the
//     caller has already verified it (CMP's CRMF POP, done by OpenSSL).
//   - acceptable keys: EC P-256/P-384, RSA >= 2048, Ed25519.
//
// Thread-safe: the store re-checks the invariants atomically when recording.

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "store/store.h"

namespace fg {

struct IssueRequest {
  std::string device;
  int validity_days = 0;  // 0 = config default
  AuditContext audit;
  // How the request was authenticated; one-time credentials are consumed
  // atomically with the issuance (Store::RecordIssuedCertificate).
  EnrolmentAuthorization auth;
};

struct IssuedCertificate {
  Certificate record;
  // The certificate as signed (shared: callers hand it to OpenSSL stacks
  // without parsing record.der again).
  std::shared_ptr<X509> cert;
  std::string pem;
  std::vector<std::string> superseded;  // serials revoked as superseded
};

class IssuancePolicy {
 public:
  IssuancePolicy(Store& store, const CertificateAuthority& ca) : store_(store), ca_(ca) {}

  // From a PKCS#10 CSR (PEM or DER): verifies its signature, then issues.
  Result<IssuedCertificate> IssueFromCsr(const IssueRequest& request, std::string_view csr);
  // From a public key whose possession the caller has verified. `spki_der`,
  // when the caller has it (CSR, CRMF template), saves re-encoding the key.
  Result<IssuedCertificate> IssueForKey(const IssueRequest& request, EVP_PKEY* public_key,
                                        std::string_view spki_der = {});

  // The checks alone, without signing (used to refuse early, e.g. in CMP).
  Status Check(const IssueRequest& request, EVP_PKEY* public_key);

 private:
  Status CheckWithFingerprint(const IssueRequest& request, EVP_PKEY* public_key, const std::string& key_fp);
  Status CheckKeyType(EVP_PKEY* key) const;

  Store& store_;
  const CertificateAuthority& ca_;
};

}  // namespace fg
