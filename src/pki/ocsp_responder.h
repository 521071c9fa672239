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
// Hottest path: a client asks the same question with the same bytes every
// time, so the exact request DER is looked up first, before any ASN.1
// parsing, in an index from request bytes to the cache entry that the
// parsing path served for those bytes (minimal requests only: one CertID,
// nothing else, strict DER; so its size stays proportional to the cache). An entry that Refresh replaces (or
// drops) is marked superseded under the cache's exclusive lock, and a
// superseded or half-expired entry is never served from the index: the
// request then takes the parsing path, which serves (and re-indexes) the
// current entry. So a revocation stops the old answer as soon as Refresh
// returns, on both paths.
//
// Several issuing CAs (after `ca rotate`: the current one and the retired
// ones, CertificateAuthority::issuers()): a CertID is matched to one by its
// issuerNameHash AND issuerKeyHash (the CAs share their subject name), and
// the answer is signed by a responder certificate that CA issued (RFC 6960
// §4.2.2.2), one in-memory signer per CA. A serial is "issued" by a CA only
// when the store's certificate names that CA (its AKI): an old-CA serial
// asked with the new CA's CertID is a serial that CA never issued. In one
// request with CertIDs of two CAs, those of the CA other than the first's
// are answered "unknown" (one signer per response).
//
// Answers: good (kValid), revoked with reason (kRevoked), revoked with
// certificateHold (kHold: suspended device), unknown (CertID of another CA),
// and for a serial this CA never issued, "revoked" with the extended-revoke
// extension as RFC 6960 §2.2 recommends, so a forged serial is never "good"
// nor merely "unknown".
//
// Thread-safety: thread-safe. The cache is guarded by a shared mutex.

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ossl.h"
#include "common/time.h"
#include "pki/ca.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg {

// A change-feed subscriber (store/change_subscriber.h): a certificate change
// re-signs that serial's cached responses (Refresh).
class OcspResponder final : public ChangeSubscriber {
 public:
  static constexpr size_t kMaxRequestBytes = 16 * 1024;
  static constexpr int kMaxCertIdsPerRequest = 16;

  struct Reply {
    std::string der;         // always a DER OCSPResponse
    bool malformed = false;  // malformedRequest: serve with HTTP 400
  };
  // The same without a copy: `der` is shared with the cache (never null).
  struct SharedReply {
    std::shared_ptr<const std::string> der;
    bool malformed = false;
    // thisUpdate / nextUpdate of a successful response (whole seconds, as
    // in the response), for RFC 5019 §6.2 caching headers; 0 for an error.
    UnixMillis this_update_ms = 0;
    UnixMillis next_update_ms = 0;
  };
  // Request DERs up to this size may be indexed by their bytes (the
  // minimal request, one CertID, is ~75 bytes with SHA-1, ~170 with SHA-512).
  static constexpr size_t kMaxIndexedRequestBytes = 256;

  OcspResponder(CertificateLedger& certs, const CertificateAuthority& ca, int response_validity_s,
                size_t max_cached_entries = 2'000'000);
  OcspResponder(const OcspResponder&) = delete;
  OcspResponder& operator=(const OcspResponder&) = delete;

  Reply Respond(std::string_view request_der);
  SharedReply RespondShared(std::string_view request_der);

  // Signs with a delegated responder certificate of its own (OCSPSigning,
  // id-pkix-ocsp-nocheck) valid `validity_s` from now, over a fresh key that
  // exists only in memory, instead of the CA's stored OCSP signer. A nocheck
  // signer cannot be revoked, so it must be short-lived (RFC 6960 §4.2.2.2.1).
  // No response's nextUpdate outlives the signer.
  Status UseOwnSigner(int validity_s);
  // With UseOwnSigner: past half of the signer's lifetime, makes a new one
  // and re-signs every cached response with it. True when it renewed.
  bool RenewSignerIfDue();
  // The certificate responses for issuers()[ca] are signed with now.
  ossl::X509Ptr SignerCertForTest(size_t ca = 0) const;

  // Re-reads the status of these serials and re-signs their cached responses.
  void Refresh(const std::vector<std::string>& serials);
  // ChangeSubscriber: Refresh of the page's kCertificate serials.
  std::string_view name() const override { return "ocsp"; }
  Status OnChanges(std::span<const Change> changes) override;
  // Pre-produces responses (SHA-1 CertIDs, the default of strongSwan and
  // `openssl ocsp`) for every certificate in the store. Returns how many.
  size_t Prewarm();
  // Re-signs cached responses past half their validity. Returns how many.
  size_t RefreshStale();

  size_t CachedEntriesForTest() const;
  size_t IndexedRequestsForTest() const;

 private:
  struct Entry {
    std::shared_ptr<const std::string> der;
    UnixMillis produced_ms = 0;
    int cert_status = V_OCSP_CERTSTATUS_GOOD;  // for metrics on cache hits
    size_t ca = 0;                             // index in issuers_
    // Set, under mutex_ held exclusively, once the entry is no longer the
    // one in cache_ (replaced or dropped). Read under mutex_ (shared).
    bool superseded = false;
  };
  // Heterogeneous lookup: the index is probed with the request's
  // string_view, without building a std::string.
  struct BytesHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Status1 {
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    int reason = -1;
    UnixMillis revoked_ms = 0;
    bool non_issued = false;
    bool cacheable = true;
    int ca = -1;  // index in issuers_, -1: none of ours
  };

  // The index in issuers_ of the CA `cid` names (name and key hash), or -1.
  int MatchIssuer(OCSP_CERTID* cid) const;
  // Whether the store's certificate `cert` was issued by issuers_[ca].
  bool IssuedBy(const Certificate& cert, size_t ca) const;
  Status1 Lookup(OCSP_CERTID* cid, std::string* cache_key);
  // Signed by the responder of issuers_[ca].
  Result<std::string> Sign(const std::vector<std::pair<OCSP_CERTID*, Status1>>& items, OCSP_REQUEST* nonce_from,
                           UnixMillis now, size_t ca);
  // Caches `der` under `key` (unless full); returns the entry, or null.
  std::shared_ptr<const Entry> Put(const std::string& key, std::shared_ptr<const std::string> der, int cert_status,
                                   UnixMillis now, size_t ca);
  // Drops `key` (e.g. the store could not be read): it must not be served.
  void Drop(const std::string& key);
  // Remembers that `request_der` is answered by `entry` (if it is a minimal
  // single request, see IsMinimalSingleRequest in the .cc).
  void Index(std::string_view request_der, std::shared_ptr<const Entry> entry);
  // The served reply for a cache entry, counted.
  SharedReply Hit(const Entry& entry);

  // A delegated signer (see UseOwnSigner).
  struct Signer {
    ossl::X509Ptr cert;
    ossl::EvpPkeyPtr key;
    UnixMillis made_ms = 0;  // notBefore is back-dated; the lifetime counts from here
    UnixMillis not_after_ms = 0;
  };
  Result<std::shared_ptr<const Signer>> MakeSigner(int validity_s, size_t ca) const;
  std::shared_ptr<const Signer> CurrentSigner(size_t ca) const;
  // nextUpdate for a response produced at `now`: validity, capped by the signer.
  UnixMillis NextUpdate(UnixMillis now, size_t ca) const;

  CertificateLedger& store_;
  const CertificateAuthority& ca_;
  const int validity_s_;
  mutable std::mutex signer_mutex_;
  // Guarded by signer_mutex_; one per issuers_ entry, or empty: the CA's
  // stored OCSP signer for the current CA, the CA key itself for retired ones.
  std::vector<std::shared_ptr<const Signer>> signers_;
  int signer_validity_s_ = 0;  // guarded by signer_mutex_
  const size_t max_cached_;
  // The issuing CAs answered for (constant after construction).
  const std::vector<CertificateAuthority::Issuer> issuers_;
  // Each issuer's CertID per hash algorithm (serial ignored).
  struct IssuerId {
    size_t ca;
    int nid;
    ossl::OcspCertIdPtr id;
  };
  std::vector<IssuerId> issuer_ids_;
  std::shared_ptr<const std::string> malformed_der_;
  std::shared_ptr<const std::string> internal_error_der_;

  mutable std::shared_mutex mutex_;
  // Guarded by mutex_; key "<nid>/<issuer index>/<serial hex>".
  std::unordered_map<std::string, std::shared_ptr<Entry>> cache_;
  // Guarded by mutex_: exact request DER -> the entry served for it (maybe
  // superseded since: then not served from here). At most max_cached_.
  std::unordered_map<std::string, std::shared_ptr<const Entry>, BytesHash, std::equal_to<>> by_request_;
};

// Decodes the path suffix of a GET request (RFC 6960 A.1: base64 of the DER,
// then URL-encoded). Accepts base64url too.
Result<std::string> DecodeOcspGetSuffix(std::string_view suffix);

}  // namespace fg
