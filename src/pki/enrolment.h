#pragma once

// What the enrolment protocols (CMP, EST) share: one-time bootstrap token
// secrets, identifying the device behind a presented certificate, and
// recording refusals that are security events (cert.clone, cert.legacy,
// device.unknown) in the audit log.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ossl.h"
#include "pki/ca.h"
#include "pki/issuance.h"
#include "store/store.h"

namespace fg {

// Bootstrap token secrets are derived, not stored: secret = HMAC(key, ref),
// so the store holds only the reference, device and expiry, and a copy of the
// database alone lets nobody enrol. Thread-safe: immutable.
class TokenSecrets {
 public:
  explicit TokenSecrets(std::string key) : key_(std::move(key)) {}
  ~TokenSecrets();
  std::string SecretFor(std::string_view ref) const;
  static std::string NewRef();

 private:
  std::string key_;
};

// Who a certificate presented for enrolment speaks for.
struct PresentedCredential {
  EnrolmentKind kind = EnrolmentKind::kOperator;  // kOperator = not trusted for anything
  std::string device;      // device id; empty for a legacy credential (the request names it)
  std::string credential;  // as EnrolmentAuthorization::credential
  std::string refusal;     // non-empty: recognised, but must be refused (and why)
  std::string refusal_rule;  // rule id to record with the refusal, may be empty
};

// Thread-safe.
class Enrolment {
 public:
  Enrolment(Store& store, const CertificateAuthority& ca, IssuancePolicy& policy, TokenSecrets secrets,
            std::function<void()> on_change);

  Store& store() { return store_; }
  const CertificateAuthority& ca() const { return ca_; }
  IssuancePolicy& policy() { return policy_; }
  const TokenSecrets& secrets() const { return secrets_; }

  // A bootstrap token reference (CMP PBM senderKID / EST basic-auth user).
  PresentedCredential FromToken(std::string_view ref);
  // A certificate chain (leaf first): a legacy shared credential (exact
  // fingerprint), one of our device certificates (renewal), or a vendor
  // certificate chaining to a trusted vendor CA. kOperator when none.
  PresentedCredential FromCertificate(X509* leaf, const std::vector<X509*>& chain);

  // Issues to `device` (or, for a legacy credential, to the device the
  // request names) with the checks of the credential kind. `source_ip` binds
  // legacy use to the device's registered prefixes.
  Result<IssuedCertificate> Issue(const PresentedCredential& cred, std::string device_from_request,
                                  EVP_PKEY* public_key, int validity_days, const std::string& source_ip,
                                  const std::string& protocol, std::string_view spki_der = {});

  // Records a security-relevant refusal as an audit "alert" entry.
  void RecordAlert(const std::string& rule, const std::string& device, const std::string& why,
                   const std::string& protocol, const std::string& source_ip);

  void NotifyChanged() {
    if (on_change_) on_change_();
  }

 private:
  Store& store_;
  const CertificateAuthority& ca_;
  IssuancePolicy& policy_;
  TokenSecrets secrets_;
  std::function<void()> on_change_;
};

// Device id from a subject: the serialNumber attribute (vendor certificates
// carry the unit's serial there), else the CN. Empty when neither.
std::string DeviceIdFromName(const X509_NAME* name);
// CN only (our device certificates and requested subjects).
std::string CommonName(const X509_NAME* name);

}  // namespace fg
