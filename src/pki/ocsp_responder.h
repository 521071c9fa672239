#pragma once

// OCSP responder (RFC 6960) over the store's certificate status.
//
// Hot path: a single-CertID request without a nonce (the RFC 5019 profile
// that SeGWs use) is answered from a cache of pre-produced, signed
// responses; no signing happens. A change of a certificate's status
// (revocation, hold, release) re-signs its entries at once (Refresh).
// Requests with a nonce, or with several CertIDs, are signed per request,
// since the nonce is inside the signed data.
//
// Answers: good (kValid), revoked with reason (kRevoked), revoked with
// certificateHold (kHold: suspended device), unknown (CertID of another CA),
// and for a serial this CA never issued, "revoked" with the extended-revoke
// extension as RFC 6960 §2.2 recommends, so a forged serial is never "good"
// nor merely "unknown".
//
// Thread-safety: thread-safe. The cache is guarded by a shared mutex.

#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ossl.h"
#include "common/time.h"
#include "pki/ca.h"
#include "store/store.h"

namespace fg {

class OcspResponder {
 public:
  static constexpr size_t kMaxRequestBytes = 16 * 1024;
  static constexpr int kMaxCertIdsPerRequest = 16;

  struct Reply {
    std::string der;         // always a DER OCSPResponse
    bool malformed = false;  // malformedRequest: serve with HTTP 400
  };

  OcspResponder(Store& store, const CertificateAuthority& ca, int response_validity_s,
                size_t max_cached_entries = 2'000'000);
  OcspResponder(const OcspResponder&) = delete;
  OcspResponder& operator=(const OcspResponder&) = delete;

  Reply Respond(std::string_view request_der);

  // Re-reads the status of these serials and re-signs their cached responses.
  void Refresh(const std::vector<std::string>& serials);
  // Pre-produces responses (SHA-1 CertIDs, the default of strongSwan and
  // `openssl ocsp`) for every certificate in the store. Returns how many.
  size_t Prewarm();
  // Re-signs cached responses past half their validity. Returns how many.
  size_t RefreshStale();

  size_t CachedEntriesForTest() const;

 private:
  struct Entry {
    std::shared_ptr<const std::string> der;
    UnixMillis produced_ms = 0;
    int cert_status = V_OCSP_CERTSTATUS_GOOD;  // for metrics on cache hits
  };
  struct Status1 {
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    int reason = -1;
    UnixMillis revoked_ms = 0;
    bool non_issued = false;
    bool cacheable = true;
  };

  Status1 Lookup(OCSP_CERTID* cid, std::string* cache_key);
  Result<std::string> Sign(const std::vector<std::pair<OCSP_CERTID*, Status1>>& items, OCSP_REQUEST* nonce_from,
                           UnixMillis now);
  void Put(const std::string& key, std::string der, int cert_status, UnixMillis now);

  Store& store_;
  const CertificateAuthority& ca_;
  const int validity_s_;
  const size_t max_cached_;
  // Our issuer's CertID per hash algorithm (serial ignored), by NID.
  std::vector<std::pair<int, ossl::OcspCertIdPtr>> issuer_ids_;
  std::string malformed_der_;
  std::string internal_error_der_;

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, Entry> cache_;  // guarded by mutex_; key "<nid>/<serial hex>"
};

// Decodes the path suffix of a GET request (RFC 6960 A.1: base64 of the DER,
// then URL-encoded). Accepts base64url too.
Result<std::string> DecodeOcspGetSuffix(std::string_view suffix);

}  // namespace fg
