#include "pki/ocsp_responder.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "common/metrics.h"

namespace fg {
namespace {

std::string ResponseDer(OCSP_RESPONSE* resp) {
  int n = i2d_OCSP_RESPONSE(resp, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_OCSP_RESPONSE(resp, &p);
  return out;
}

std::string StatusOnlyDer(int status) {
  ossl::OcspResponsePtr resp(OCSP_response_create(status, nullptr));
  return ResponseDer(resp.get());
}

ossl::Ptr<ASN1_GENERALIZEDTIME, ASN1_GENERALIZEDTIME_free> GenTime(UnixMillis t) {
  return ossl::Ptr<ASN1_GENERALIZEDTIME, ASN1_GENERALIZEDTIME_free>(
      ASN1_GENERALIZEDTIME_set(nullptr, static_cast<time_t>(t / 1000)));
}

Counter& Answered(const char* status) {
  return Metrics::Global().GetCounter("femtoguard_ocsp_responses_total", std::string("status=\"") + status + "\"",
                                      "OCSP responses by certificate status or error");
}

struct Counters {
  Counter& good = Answered("good");
  Counter& revoked = Answered("revoked");
  Counter& unknown = Answered("unknown");
  Counter& malformed = Answered("malformedRequest");
  Counter& internal = Answered("internalError");
  Counter& cache_hit = Metrics::Global().GetCounter("femtoguard_ocsp_cache_total", "result=\"hit\"",
                                                    "OCSP pre-produced response cache lookups");
  Counter& cache_miss = Metrics::Global().GetCounter("femtoguard_ocsp_cache_total", "result=\"miss\"");
};

Counters& C() {
  static Counters* c = new Counters();
  return *c;
}

const int kHashNids[] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};

// One DER TLV from the front of `in`: low tag number, definite length in
// its shortest form (the bytes of a value have one encoding only).
bool ReadTlv(std::string_view& in, unsigned char* tag, std::string_view* value) {
  if (in.size() < 2) return false;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(in[i]); };
  if ((byte(0) & 0x1f) == 0x1f) return false;
  size_t len = byte(1);
  size_t header = 2;
  if (len & 0x80) {
    const size_t n = len & 0x7f;
    if (n == 0 || n > 2 || in.size() < 2 + n) return false;  // indefinite, or far too long
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | byte(2 + i);
    if (len < 0x80 || (n == 2 && len < 0x100)) return false;  // not the shortest form
    header = 2 + n;
  }
  if (in.size() - header < len) return false;
  *tag = byte(0);
  *value = in.substr(header, len);
  in.remove_prefix(header + len);
  return true;
}

// Whether `der` is the minimal RFC 5019 request: exactly one CertID, and
// nothing else (no version, requestorName, extensions, signature), in DER,
// hash parameters absent or NULL. Only such requests go into the
// request-bytes index: a certificate then has at most two index entries per
// hash algorithm, however many encodings of the same question a client can
// invent (the parsing path ignores the rest, so they are still served).
bool IsMinimalSingleRequest(std::string_view der) {
  unsigned char tag;
  std::string_view in = der, v, alg, serial;
  const auto one_sequence = [&](std::string_view& outer) {  // SEQUENCE, nothing after
    return ReadTlv(outer, &tag, &v) && tag == 0x30 && outer.empty();
  };
  if (!one_sequence(in)) return false;  // OCSPRequest
  in = v;
  if (!one_sequence(in)) return false;  // tbsRequest; no optionalSignature
  in = v;
  if (!one_sequence(in)) return false;  // requestList; no version, requestorName, extensions
  in = v;
  if (!one_sequence(in)) return false;  // the only Request
  in = v;
  if (!one_sequence(in)) return false;  // its CertID; no singleRequestExtensions
  in = v;
  if (!ReadTlv(in, &tag, &alg) || tag != 0x30) return false;     // hashAlgorithm
  if (!ReadTlv(in, &tag, &v) || tag != 0x04) return false;       // issuerNameHash
  if (!ReadTlv(in, &tag, &v) || tag != 0x04) return false;       // issuerKeyHash
  if (!ReadTlv(in, &tag, &serial) || tag != 0x02 || !in.empty()) return false;
  if (serial.empty()) return false;
  if (serial.size() > 1) {
    const auto b0 = static_cast<unsigned char>(serial[0]), b1 = static_cast<unsigned char>(serial[1]);
    if ((b0 == 0x00 && !(b1 & 0x80)) || (b0 == 0xff && (b1 & 0x80))) return false;  // padded
  }
  if (!ReadTlv(alg, &tag, &v) || tag != 0x06) return false;  // the hash OID
  return alg.empty() || alg == std::string_view("\x05\x00", 2);
}

}  // namespace

OcspResponder::OcspResponder(CertificateLedger& store, const CertificateAuthority& ca, int response_validity_s,
                             size_t max_cached_entries)
    : store_(store),
      ca_(ca),
      validity_s_(response_validity_s),
      max_cached_(max_cached_entries),
      issuers_(ca.issuers()) {
  ossl::Asn1IntegerPtr zero(ASN1_INTEGER_new());
  for (size_t i = 0; i < issuers_.size(); ++i) {
    X509* issuer = issuers_[i].cert;
    for (int nid : kHashNids) {
      const EVP_MD* md = EVP_get_digestbynid(nid);
      ossl::OcspCertIdPtr id(
          OCSP_cert_id_new(md, X509_get_subject_name(issuer), X509_get0_pubkey_bitstr(issuer), zero.get()));
      if (id) issuer_ids_.push_back({i, nid, std::move(id)});
    }
  }
  malformed_der_ = std::make_shared<const std::string>(StatusOnlyDer(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST));
  internal_error_der_ = std::make_shared<const std::string>(StatusOnlyDer(OCSP_RESPONSE_STATUS_INTERNALERROR));
  C();
}

int OcspResponder::MatchIssuer(OCSP_CERTID* cid) const {
  ASN1_OBJECT* md_oid = nullptr;
  OCSP_id_get0_info(nullptr, &md_oid, nullptr, nullptr, cid);
  const int nid = md_oid ? OBJ_obj2nid(md_oid) : NID_undef;
  // OCSP_id_issuer_cmp compares the hash algorithm, the name hash and the key hash.
  for (const IssuerId& ours : issuer_ids_) {
    if (ours.nid == nid && OCSP_id_issuer_cmp(cid, ours.id.get()) == 0) return static_cast<int>(ours.ca);
  }
  return -1;
}

bool OcspResponder::IssuedBy(const Certificate& cert, size_t ca) const {
  // One CA (never rotated): everything in the store is its; no parsing on
  // the path every node takes.
  if (issuers_.size() == 1) return true;
  if (cert.der.empty()) return false;  // cannot tell which of two
  const unsigned char* p = reinterpret_cast<const unsigned char*>(cert.der.data());
  ossl::X509Ptr leaf(d2i_X509(nullptr, &p, static_cast<long>(cert.der.size())));
  if (!leaf) {
    ERR_clear_error();
    return false;
  }
  bool issued = X509_check_issued(issuers_[ca].cert, leaf.get()) == X509_V_OK;
  ERR_clear_error();
  return issued;
}

OcspResponder::Status1 OcspResponder::Lookup(OCSP_CERTID* cid, std::string* cache_key) {
  Status1 st;
  ASN1_OBJECT* md_oid = nullptr;
  ASN1_INTEGER* serial = nullptr;
  OCSP_id_get0_info(nullptr, &md_oid, nullptr, &serial, cid);
  int nid = md_oid ? OBJ_obj2nid(md_oid) : NID_undef;
  const int ca = serial == nullptr ? -1 : MatchIssuer(cid);
  if (ca < 0) {
    // Not our CA (or a hash we do not speak): we cannot vouch either way.
    st.status = V_OCSP_CERTSTATUS_UNKNOWN;
    st.cacheable = false;
    return st;
  }
  st.ca = ca;
  std::string hex = ossl::SerialToHex(serial);
  if (cache_key) *cache_key = std::to_string(nid) + "/" + std::to_string(ca) + "/" + hex;
  auto cert = store_.GetCertificate(hex);
  if (cert.ok() && !IssuedBy(*cert, static_cast<size_t>(ca))) {
    // Ours, but another of our CAs issued it: for this CA the serial was
    // never issued (never "good" under the wrong issuer).
    cert = Status::NotFound("not issued by this CA");
  }
  if (!cert.ok()) {
    if (cert.status().IsNotFound()) {
      st.status = V_OCSP_CERTSTATUS_REVOKED;
      st.reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
      st.revoked_ms = 0;  // 1970-01-01, RFC 6960 §2.2
      st.non_issued = true;
      return st;
    }
    st.status = -1;  // store failure: internalError, never a guess
    st.cacheable = false;
    return st;
  }
  switch (cert->status) {
    case CertStatus::kValid:
      st.status = V_OCSP_CERTSTATUS_GOOD;
      break;
    case CertStatus::kHold:
      st.status = V_OCSP_CERTSTATUS_REVOKED;
      st.reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
      st.revoked_ms = cert->revoked_ms;
      break;
    case CertStatus::kRevoked:
      st.status = V_OCSP_CERTSTATUS_REVOKED;
      st.reason = static_cast<int>(cert->reason);
      st.revoked_ms = cert->revoked_ms;
      break;
  }
  return st;
}

Result<std::string> OcspResponder::Sign(const std::vector<std::pair<OCSP_CERTID*, Status1>>& items,
                                        OCSP_REQUEST* nonce_from, UnixMillis now, size_t ca) {
  ossl::OcspBasicRespPtr bs(OCSP_BASICRESP_new());
  auto this_update = GenTime(now);
  std::shared_ptr<const Signer> signer = CurrentSigner(ca);
  auto next_update = GenTime(NextUpdate(now, ca));
  bool non_issued = false;
  for (const auto& [cid, st] : items) {
    auto revtime = GenTime(st.revoked_ms);
    OCSP_SINGLERESP* single = OCSP_basic_add1_status(
        bs.get(), cid, st.status, st.status == V_OCSP_CERTSTATUS_REVOKED ? st.reason : 0,
        st.status == V_OCSP_CERTSTATUS_REVOKED ? revtime.get() : nullptr, this_update.get(),
        next_update.get());
    if (single == nullptr) return ossl::Error("OCSP_basic_add1_status");
    non_issued = non_issued || st.non_issued;
  }
  if (non_issued) {
    // id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8), value NULL.
    static const unsigned char kNull[] = {0x05, 0x00};
    ossl::Ptr<ASN1_OBJECT, ASN1_OBJECT_free> oid(OBJ_txt2obj("1.3.6.1.5.5.7.48.1.9", 1));
    ossl::Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
    ASN1_OCTET_STRING_set(value.get(), kNull, sizeof kNull);
    ossl::X509ExtPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()));
    if (!ext || !OCSP_BASICRESP_add_ext(bs.get(), ext.get(), -1)) return ossl::Error("extended revoke");
  }
  if (nonce_from != nullptr && OCSP_copy_nonce(bs.get(), nonce_from) <= 0) return ossl::Error("copy nonce");
  // Without an own signer: the CA's stored OCSP signer for the current CA,
  // the retired CA's own key for a retired one (both authorized, §4.2.2.2).
  X509* signer_cert = signer ? signer->cert.get() : ca == 0 ? ca_.ocsp_cert() : issuers_[ca].cert;
  EVP_PKEY* signer_key = signer ? signer->key.get() : ca == 0 ? ca_.ocsp_key() : issuers_[ca].key;
  if (!OCSP_basic_sign(bs.get(), signer_cert, signer_key, EVP_sha256(), nullptr, OCSP_RESPID_KEY)) {
    return ossl::Error("signing OCSP response");
  }
  ossl::OcspResponsePtr resp(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs.get()));
  if (!resp) return ossl::Error("OCSP_response_create");
  return ResponseDer(resp.get());
}

std::shared_ptr<const OcspResponder::Entry> OcspResponder::Put(const std::string& key,
                                                               std::shared_ptr<const std::string> der,
                                                               int cert_status, UnixMillis now, size_t ca) {
  auto entry = std::make_shared<Entry>();
  entry->der = std::move(der);
  entry->produced_ms = now;
  entry->cert_status = cert_status;
  entry->ca = ca;
  std::unique_lock lock(mutex_);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    if (cache_.size() >= max_cached_) return nullptr;  // bounded: sign per request instead
    cache_.emplace(key, entry);
  } else {
    it->second->superseded = true;  // the request-bytes index must not serve it any more
    it->second = entry;
  }
  return entry;
}

void OcspResponder::Drop(const std::string& key) {
  std::unique_lock lock(mutex_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return;
  it->second->superseded = true;
  cache_.erase(it);
}

void OcspResponder::Index(std::string_view request_der, std::shared_ptr<const Entry> entry) {
  if (request_der.size() > kMaxIndexedRequestBytes || !IsMinimalSingleRequest(request_der)) return;
  std::unique_lock lock(mutex_);
  auto it = by_request_.find(request_der);
  if (it != by_request_.end()) {
    it->second = std::move(entry);
  } else if (by_request_.size() < max_cached_) {
    by_request_.emplace(std::string(request_der), std::move(entry));
  }
}

OcspResponder::SharedReply OcspResponder::Hit(const Entry& entry) {
  Counters& c = C();
  c.cache_hit.Inc();
  (entry.cert_status == V_OCSP_CERTSTATUS_GOOD ? c.good : c.revoked).Inc();
  return {entry.der, false, entry.produced_ms / 1000 * 1000,
          NextUpdate(entry.produced_ms, entry.ca) / 1000 * 1000};
}

OcspResponder::Reply OcspResponder::Respond(std::string_view request_der) {
  SharedReply r = RespondShared(request_der);
  return {*r.der, r.malformed};
}

OcspResponder::SharedReply OcspResponder::RespondShared(std::string_view request_der) {
  static Histogram& latency = Metrics::Global().GetHistogram(
      "femtoguard_ocsp_response_seconds", {}, "OCSP answer latency (cache hits, signing and malformed requests)");
  ScopedTimer timer(latency);
  Counters& c = C();
  if (request_der.empty() || request_der.size() > kMaxRequestBytes) {
    c.malformed.Inc();
    return {malformed_der_, true};
  }
  UnixMillis now = NowMillis();
  const UnixMillis fresh_for = validity_s_ * kMillisPerSecond / 2;

  // The same bytes as a request answered from the cache before: no parsing.
  if (request_der.size() <= kMaxIndexedRequestBytes) {
    std::shared_lock lock(mutex_);
    auto it = by_request_.find(request_der);
    if (it != by_request_.end()) {
      const Entry& e = *it->second;
      if (!e.superseded && now < e.produced_ms + fresh_for) return Hit(e);
    }
  }

  const unsigned char* p = reinterpret_cast<const unsigned char*>(request_der.data());
  const unsigned char* end = p + request_der.size();
  ossl::OcspRequestPtr req(d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(request_der.size())));
  if (!req || p != end) {
    ERR_clear_error();
    c.malformed.Inc();
    return {malformed_der_, true};
  }
  int n = OCSP_request_onereq_count(req.get());
  if (n < 1 || n > kMaxCertIdsPerRequest) {
    c.malformed.Inc();
    return {malformed_der_, true};
  }
  bool has_nonce = OCSP_REQUEST_get_ext_by_NID(req.get(), NID_id_pkix_OCSP_Nonce, -1) >= 0;

  std::string cache_key;
  if (n == 1 && !has_nonce) {
    OCSP_CERTID* cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), 0));
    ASN1_OBJECT* md_oid = nullptr;
    ASN1_INTEGER* serial = nullptr;
    OCSP_id_get0_info(nullptr, &md_oid, nullptr, &serial, cid);
    // The issuer (name and key hash) picks the CA; the key holds its index.
    const int ca = serial != nullptr && md_oid != nullptr ? MatchIssuer(cid) : -1;
    if (ca >= 0) {
      std::string key = std::to_string(OBJ_obj2nid(md_oid)) + "/" + std::to_string(ca) + "/" +
                        ossl::SerialToHex(serial);
      std::shared_ptr<const Entry> entry;
      {
        std::shared_lock lock(mutex_);
        auto it = cache_.find(key);
        if (it != cache_.end() && now < it->second->produced_ms + fresh_for) entry = it->second;
      }
      if (entry) {
        Index(request_der, entry);
        return Hit(*entry);
      }
    }
    c.cache_miss.Inc();
  }

  std::vector<std::pair<OCSP_CERTID*, Status1>> items;
  bool cacheable = n == 1 && !has_nonce;
  for (int i = 0; i < n; ++i) {
    OCSP_CERTID* cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), i));
    Status1 st = Lookup(cid, i == 0 ? &cache_key : nullptr);
    if (st.status < 0) {
      c.internal.Inc();
      return {internal_error_der_, false};
    }
    cacheable = cacheable && st.cacheable;
    switch (st.status) {
      case V_OCSP_CERTSTATUS_GOOD: c.good.Inc(); break;
      case V_OCSP_CERTSTATUS_REVOKED: c.revoked.Inc(); break;
      default: c.unknown.Inc(); break;
    }
    items.emplace_back(cid, st);
  }
  // One signer per response: the CA of the first CertID that is ours. A
  // CertID of another of our CAs in the same request cannot be vouched for
  // by that signer: "unknown".
  size_t signer_ca = 0;
  for (const auto& item : items) {
    if (item.second.ca >= 0) {
      signer_ca = static_cast<size_t>(item.second.ca);
      break;
    }
  }
  for (auto& item : items) {
    if (item.second.ca >= 0 && static_cast<size_t>(item.second.ca) != signer_ca) {
      item.second = Status1{};
      cacheable = false;
    }
  }
  auto der = Sign(items, has_nonce ? req.get() : nullptr, now, signer_ca);
  if (!der.ok()) {
    c.internal.Inc();
    return {internal_error_der_, false};
  }
  auto shared = std::make_shared<const std::string>(std::move(der).value());
  if (cacheable && !cache_key.empty()) {
    auto entry = Put(cache_key, shared, items[0].second.status, now, signer_ca);
    if (entry) Index(request_der, std::move(entry));
  }
  return {std::move(shared), false, now / 1000 * 1000, NextUpdate(now, signer_ca) / 1000 * 1000};
}

Status OcspResponder::OnChanges(std::span<const Change> changes) {
  std::vector<std::string> serials;
  for (const Change& c : changes) {
    if (c.kind == ChangeKind::kCertificate) serials.push_back(c.key);
  }
  if (!serials.empty()) Refresh(serials);
  return Status::Ok();
}

void OcspResponder::Refresh(const std::vector<std::string>& serials) {
  UnixMillis now = NowMillis();
  for (const std::string& hex : serials) {
    auto serial = ossl::SerialFromHex(hex);
    if (!serial.ok()) continue;
    // The CA that issued it gets a SHA-1 entry kept warm.
    int issued_by = issuers_.size() == 1 ? 0 : -1;
    if (auto cert = issued_by == 0 ? Result<Certificate>(Status::NotFound("one CA")) : store_.GetCertificate(hex);
        cert.ok()) {
      for (size_t i = 0; i < issuers_.size() && issued_by < 0; ++i) {
        if (IssuedBy(*cert, i)) issued_by = static_cast<int>(i);
      }
    }
    for (const IssuerId& ours : issuer_ids_) {
      const int nid = ours.nid;
      X509* issuer = issuers_[ours.ca].cert;
      std::string key = std::to_string(nid) + "/" + std::to_string(ours.ca) + "/" + hex;
      bool present;
      {
        std::shared_lock lock(mutex_);
        present = cache_.count(key) > 0;
      }
      // SHA-1 is always kept warm for the issuing CA; other hashes and other
      // CAs only when someone asked.
      if (!present && (nid != NID_sha1 || static_cast<int>(ours.ca) != issued_by)) continue;
      ossl::OcspCertIdPtr cid(OCSP_cert_id_new(EVP_get_digestbynid(nid), X509_get_subject_name(issuer),
                                               X509_get0_pubkey_bitstr(issuer), serial->get()));
      Status1 st = Lookup(cid.get(), nullptr);
      if (st.status < 0) {
        // Cannot read the store: drop the entry so nobody is served a stale "good".
        Drop(key);
        continue;
      }
      auto der = Sign({{cid.get(), st}}, nullptr, now, ours.ca);
      if (der.ok()) {
        Put(key, std::make_shared<const std::string>(std::move(der).value()), st.status, now, ours.ca);
      } else {
        Drop(key);
      }
    }
  }
}

size_t OcspResponder::Prewarm() {
  auto certs = store_.ListCertificates(std::nullopt);
  if (!certs.ok()) return 0;
  std::vector<std::string> serials;
  UnixMillis now = NowMillis();
  for (const auto& c : *certs) {
    if (c.not_after_ms > now) serials.push_back(c.serial);
  }
  Refresh(serials);
  return serials.size();
}

size_t OcspResponder::RefreshStale() {
  UnixMillis now = NowMillis();
  std::vector<std::string> stale;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [key, entry] : cache_) {
      if (now >= entry->produced_ms + validity_s_ * kMillisPerSecond / 4) {
        stale.push_back(key.substr(key.rfind('/') + 1));
      }
    }
  }
  std::sort(stale.begin(), stale.end());
  stale.erase(std::unique(stale.begin(), stale.end()), stale.end());
  Refresh(stale);
  {
    // Index entries of replaced responses are never served; let them go
    // (the next request with those bytes re-indexes the current one).
    std::unique_lock lock(mutex_);
    std::erase_if(by_request_, [](const auto& kv) { return kv.second->superseded; });
  }
  return stale.size();
}

std::shared_ptr<const OcspResponder::Signer> OcspResponder::CurrentSigner(size_t ca) const {
  std::lock_guard lock(signer_mutex_);
  return ca < signers_.size() ? signers_[ca] : nullptr;
}

UnixMillis OcspResponder::NextUpdate(UnixMillis now, size_t ca) const {
  UnixMillis next = now + static_cast<UnixMillis>(validity_s_) * kMillisPerSecond;
  if (auto signer = CurrentSigner(ca)) next = std::min(next, signer->not_after_ms);
  return next;
}

Result<std::shared_ptr<const OcspResponder::Signer>> OcspResponder::MakeSigner(int validity_s,
                                                                              size_t ca) const {
  FG_ASSIGN_OR_RETURN(auto key, ossl::GenerateP256Key());
  FG_ASSIGN_OR_RETURN(auto serial, CertificateAuthority::RandomSerial());
  X509* issuer = issuers_[ca].cert;
  ossl::X509Ptr cert(X509_new());
  const UnixMillis now = NowMillis();
  // Back-dated a little for relying parties whose clock runs behind.
  const UnixMillis not_before = (now - 5 * 60 * kMillisPerSecond) / 1000 * 1000;
  const UnixMillis not_after =
      (now + static_cast<UnixMillis>(validity_s) * kMillisPerSecond) / 1000 * 1000;
  ossl::Asn1TimePtr nb(ASN1_TIME_set(nullptr, static_cast<time_t>(not_before / 1000)));
  ossl::Asn1TimePtr na(ASN1_TIME_set(nullptr, static_cast<time_t>(not_after / 1000)));
  ossl::X509NamePtr name(X509_NAME_new());
  const std::string org = ca_.config().ca_name;
  const std::string cn = org + " OCSP Responder";
  if (!cert || !nb || !na || !name || !X509_set_version(cert.get(), 2) ||
      !X509_set_serialNumber(cert.get(), serial.get()) ||
      !X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) ||
      !X509_set_subject_name(cert.get(), name.get()) ||
      !X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) ||
      !X509_set_pubkey(cert.get(), key.get()) || !X509_set1_notBefore(cert.get(), nb.get()) ||
      !X509_set1_notAfter(cert.get(), na.get())) {
    return ossl::Error("OCSP signer certificate");
  }
  const std::pair<int, const char*> extensions[] = {
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "OCSPSigning"},
      {NID_id_pkix_OCSP_noCheck, "ignored"},
  };
  for (const auto& [nid, value] : extensions) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
    ossl::X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || !X509_add_ext(cert.get(), ext.get(), -1)) {
      return ossl::Error(std::string("OCSP signer extension ") + OBJ_nid2sn(nid));
    }
  }
  if (X509_sign(cert.get(), issuers_[ca].key, EVP_sha256()) <= 0) {
    return ossl::Error("signing the OCSP signer certificate");
  }
  auto signer = std::make_shared<Signer>();
  signer->cert = std::move(cert);
  signer->key = std::move(key);
  signer->made_ms = now;
  signer->not_after_ms = not_after;
  return std::shared_ptr<const Signer>(std::move(signer));
}

Status OcspResponder::UseOwnSigner(int validity_s) {
  if (validity_s < 60) return Status::InvalidArgument("OCSP signer validity below 60 s");
  std::vector<std::shared_ptr<const Signer>> signers;
  for (size_t ca = 0; ca < issuers_.size(); ++ca) {
    FG_ASSIGN_OR_RETURN(auto signer, MakeSigner(validity_s, ca));
    signers.push_back(std::move(signer));
  }
  std::lock_guard lock(signer_mutex_);
  signers_ = std::move(signers);
  signer_validity_s_ = validity_s;
  return Status::Ok();
}

bool OcspResponder::RenewSignerIfDue() {
  int validity_s;
  {
    std::lock_guard lock(signer_mutex_);
    if (signers_.empty()) return false;
    // All are made together: the first one's age speaks for all.
    const Signer& first = *signers_.front();
    const UnixMillis half = first.made_ms + (first.not_after_ms - first.made_ms) / 2;
    if (NowMillis() < half) return false;
    validity_s = signer_validity_s_;
  }
  std::vector<std::shared_ptr<const Signer>> signers;
  for (size_t ca = 0; ca < issuers_.size(); ++ca) {
    auto signer = MakeSigner(validity_s, ca);
    if (!signer.ok()) {
      spdlog::error("OCSP: cannot renew the responder certificate: {}", signer.status().ToString());
      return false;
    }
    signers.push_back(std::move(signer).value());
  }
  {
    std::lock_guard lock(signer_mutex_);
    signers_ = std::move(signers);
  }
  // Every cached answer is re-signed by the new signer before the old expires.
  std::vector<std::string> serials;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [key, entry] : cache_) serials.push_back(key.substr(key.rfind('/') + 1));
  }
  std::sort(serials.begin(), serials.end());
  serials.erase(std::unique(serials.begin(), serials.end()), serials.end());
  Refresh(serials);
  {
    std::unique_lock lock(mutex_);
    std::erase_if(by_request_, [](const auto& kv) { return kv.second->superseded; });
  }
  Metrics::Global()
      .GetCounter("femtoguard_ocsp_signer_renewed_total", {},
                  "OCSP responder certificates renewed before expiry")
      .Inc();
  spdlog::info("OCSP: responder certificate renewed; {} responses re-signed", serials.size());
  return true;
}

ossl::X509Ptr OcspResponder::SignerCertForTest(size_t ca) const {
  auto signer = CurrentSigner(ca);
  X509* c = signer ? signer->cert.get() : ca == 0 ? ca_.ocsp_cert() : issuers_[ca].cert;
  X509_up_ref(c);
  return ossl::X509Ptr(c);
}

size_t OcspResponder::CachedEntriesForTest() const {
  std::shared_lock lock(mutex_);
  return cache_.size();
}

size_t OcspResponder::IndexedRequestsForTest() const {
  std::shared_lock lock(mutex_);
  return by_request_.size();
}

Result<std::string> DecodeOcspGetSuffix(std::string_view suffix) {
  std::string b64;
  b64.reserve(suffix.size());
  for (size_t i = 0; i < suffix.size(); ++i) {
    char ch = suffix[i];
    if (ch == '%') {
      auto hexval = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      if (i + 2 >= suffix.size()) return Status::InvalidArgument("bad %-escape");
      int hi = hexval(suffix[i + 1]), lo = hexval(suffix[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("bad %-escape");
      ch = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (ch == '-') ch = '+';
    if (ch == '_') ch = '/';
    b64.push_back(ch);
  }
  while (b64.size() % 4 != 0) b64.push_back('=');
  if (b64.empty() || b64.size() > OcspResponder::kMaxRequestBytes * 2) {
    return Status::InvalidArgument("bad OCSP GET length");
  }
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return Status::InvalidArgument("OCSP GET is not base64");
  size_t pad = 0;
  if (b64.size() >= 1 && b64[b64.size() - 1] == '=') ++pad;
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace fg
