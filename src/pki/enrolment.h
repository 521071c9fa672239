#pragma once

// What the enrolment protocols (CMP, EST) share: one-time bootstrap token
// secrets, identifying the device behind a presented certificate, and
// recording refusals that are security events (cert.clone, cert.legacy,
// device.unknown) in the audit log.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
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

// Why an enrolment attempt was refused: the `reason` label of
// femtoguard_enrolment_refused_total and the key of the aggregated audit
// row's counts. A closed set, so that no input reaches a metric label.
enum class RefusalReason : uint8_t {
  kUntrusted,        // no trusted credential (unknown signer, untrusted vendor CA)
  kProtection,       // CMP protection did not verify (wrong PBM secret, bad signature)
  kTokenUnknown,     // bootstrap token reference not known
  kTokenUsed,        // bootstrap token already used (a replay)
  kTokenExpired,     // bootstrap token expired
  kTokenRevoked,     // bootstrap token revoked by an operator (`device token revoke`)
  kTokenSecret,      // EST Basic auth: wrong secret
  kBadIdentifier,    // a reference, CN or serialNumber outside docs/identifiers.md
  kCertRefused,      // own certificate revoked, on hold, not verifying
  kSubjectMismatch,  // requested subject is not the credential's device
  kPolicy,           // issuance policy refused (key reuse, lifecycle, ...)
  kClientError,      // the client sent a CMP error message
  kMalformed,        // not a decodable CMP message
  kRateLimited,      // too many refusals from this source this minute
  kSecurityEvent,    // a rule fires: cert.clone, cert.legacy, device.unknown
  kOther,
};
std::string_view RefusalReasonName(RefusalReason reason);

// Who a certificate presented for enrolment speaks for.
struct PresentedCredential {
  EnrolmentKind kind = EnrolmentKind::kOperator;  // kOperator = not trusted for anything
  std::string device;      // device id; empty for a legacy credential (the request names it)
  std::string credential;  // as EnrolmentAuthorization::credential
  std::string refusal;     // non-empty: recognised, but must be refused (and why)
  std::string refusal_rule;  // rule id to record with the refusal, may be empty
  RefusalReason refusal_reason = RefusalReason::kOther;  // meaningful with `refusal`
};

// Refused attempts (docs/identifiers.md, "Refused enrolments"): every
// refusal counts in femtoguard_enrolment_refused_total{reason}. In the audit
// log they are aggregated per source address (an IPv6 source per /64) and
// calendar minute: one "enrol.refused" row whose subject is the source and
// whose detail holds the count, the reasons, the protocols and the first
// few device ids named. The row is written at the first refusal and its
// count brought up to date at most once a second by a background flusher
// (and by FlushRefusals), so a flood costs at most one write per second per
// source. A refusal that raises a rule (cert.clone, cert.legacy,
// device.unknown) keeps its own "alert" row, at most kAlertRowsPerMinute
// per source and minute; more are folded into the aggregated row.
// A source with kRefusalsPerMinute refusals in the current minute is
// throttled: AllowSource() is false, and the protocol answers 429 without
// looking at the request (counted as rate_limited, in the same row).
// At most kMaxSources sources are tracked; beyond that, new ones share the
// row of the source "other".
//
// Thread-safe.
class Enrolment {
 public:
  static constexpr uint64_t kRefusalsPerMinute = 60;
  static constexpr uint32_t kAlertRowsPerMinute = 10;
  static constexpr size_t kMaxSources = 4096;

  Enrolment(Store& store, const CertificateAuthority& ca, IssuancePolicy& policy, TokenSecrets secrets,
            std::function<void()> on_change);
  ~Enrolment();
  Enrolment(const Enrolment&) = delete;
  Enrolment& operator=(const Enrolment&) = delete;

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
  //
  // Re-delivery: a bootstrap token that is already used, presented again
  // within the retry window of its use with the very public key
  // it certified, gets that certificate again (same serial, nothing signed,
  // nothing consumed, audited as "cert.redeliver"), so a device whose answer
  // was lost is not stranded. The window is SetRetryWindowSeconds (config
  // enrolment.retry_window_s, default 600 s; 0 = never). Only while that certificate is still valid
  // (not superseded, revoked or held), and at most 3 times per token (a
  // replayed capture beyond that is refused like any used token, so it is
  // rate-limited and aggregated, not an audit row per replay). Any other key
  // with a used token is refused as before ("bootstrap token already used").
  Result<IssuedCertificate> Issue(const PresentedCredential& cred, std::string device_from_request,
                                  EVP_PKEY* public_key, int validity_days, const std::string& source_ip,
                                  const std::string& protocol, std::string_view spki_der = {});

  // Records one refused attempt (see the class comment). `rule` non-empty:
  // a security event with its own audit row (bounded per source).
  void RecordRefusal(RefusalReason reason, const std::string& rule, const std::string& device,
                     const std::string& why, const std::string& protocol,
                     const std::string& source_ip);
  // RecordRefusal with the reason a credential carries (kSecurityEvent when
  // `rule` is set, else kOther).
  void RecordAlert(const std::string& rule, const std::string& device, const std::string& why,
                   const std::string& protocol, const std::string& source_ip);
  // Before any work on a request from `source_ip`: false when the source is
  // throttled this minute; the attempt is then counted as refused.
  bool AllowSource(const std::string& source_ip, const std::string& protocol);
  // Seconds until a throttled source may try again (Retry-After).
  int RetryAfterSeconds() const;
  // Writes the aggregated rows' counts now. Also done once a second while
  // there is something to write, and on destruction.
  void FlushRefusals();
  void SetClockForTest(std::function<UnixMillis()> clock);
  void SetRetryWindowSeconds(int seconds) { retry_window_s_.store(seconds); }

  void NotifyChanged() {
    if (on_change_) on_change_();
  }

 private:
  // The certificate a used bootstrap token produced for this key, when
  // re-delivery applies (see Issue); nullopt otherwise.
  std::optional<IssuedCertificate> Redeliver(const PresentedCredential& cred,
                                             const std::string& device_from_request,
                                             EVP_PKEY* public_key, std::string_view spki_der,
                                             const std::string& protocol,
                                             const std::string& source_ip);

  Store& store_;
  const CertificateAuthority& ca_;
  IssuancePolicy& policy_;
  TokenSecrets secrets_;
  std::function<void()> on_change_;
  std::atomic<int> retry_window_s_{600};
  // Re-deliveries made per token (kMaxRedeliveries each): a device retries
  // a lost answer a few times; a captured request replayed hundreds of times
  // must not write hundreds of audit rows, so beyond that it is refused as a
  // used token (and rate-limited and aggregated like every refusal).
  std::mutex redelivered_mu_;
  std::unordered_map<std::string, int> redelivered_;  // token ref -> count

  class RefusalLog;  // enrolment.cc
  std::unique_ptr<RefusalLog> refusals_;
};

// Device id from a subject: the serialNumber attribute (vendor certificates
// carry the unit's serial there), else the CN. Empty when neither.
std::string DeviceIdFromName(const X509_NAME* name);
// CN only (our device certificates and requested subjects).
std::string CommonName(const X509_NAME* name);

}  // namespace fg
