#include "pki/cmp_server.h"

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "common/der.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/security_log.h"

namespace fg {

struct CmpServer::Transaction {
  Enrolment* enrolment = nullptr;
  ossl::Ptr<OSSL_CMP_SRV_CTX, OSSL_CMP_SRV_CTX_free> srv;
  std::mutex mutex;  // one message of a transaction at a time
  PresentedCredential cred;
  std::string source_ip;
  std::string issued_serial;
  std::string issued_der;
  RevocationReason rr_reason = RevocationReason::kUnspecified;
  UnixMillis created_ms = 0;
  bool refusal_recorded = false;  // for the message being processed (under `mutex`)
};

namespace {

using Tx = CmpServer::Transaction;

// PKIBody CHOICE indexes (RFC 4210 §5.1.2); OpenSSL 3.0 keeps its names private.
enum Body : int {
  kIr = 0, kIp = 1, kCr = 2, kCp = 3, kP10cr = 4, kKur = 7, kKup = 8, kRr = 11, kRp = 12,
  kPkiConf = 19, kGenm = 21, kGenp = 22, kError = 23, kCertConf = 24, kPollReq = 25,
};

constexpr const char* kPbmOid = "1.2.840.113533.7.66.13";
constexpr const char* kCaCertsOid = "1.3.6.1.5.5.7.4.17";  // id-it-caCerts (RFC 9480)

Counter& Requests(const char* result) {
  return Metrics::Global().GetCounter("femtoguard_cmp_requests_total", std::string("result=\"") + result + "\"",
                                      "CMP messages handled");
}

Tx* TxOf(OSSL_CMP_SRV_CTX* srv) { return static_cast<Tx*>(OSSL_CMP_SRV_CTX_get0_custom_ctx(srv)); }

OSSL_CMP_PKISI* Accepted() { return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, nullptr); }

OSSL_CMP_PKISI* Rejected(int failinfo_bit, const std::string& text) {
  return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection, 1 << failinfo_bit, text.c_str());
}

int FailInfoFor(const Status& s, const PresentedCredential& cred) {
  if (cred.kind == EnrolmentKind::kRenewal && !cred.refusal.empty() &&
      cred.refusal.find("revoked") != std::string::npos) {
    return OSSL_CMP_PKIFAILUREINFO_certRevoked;
  }
  switch (s.code()) {
    case StatusCode::kAlreadyExists: return OSSL_CMP_PKIFAILUREINFO_duplicateCertReq;
    case StatusCode::kInvalidArgument: return OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    case StatusCode::kPermissionDenied:
    case StatusCode::kFailedPrecondition: return OSSL_CMP_PKIFAILUREINFO_notAuthorized;
    case StatusCode::kNotFound: return OSSL_CMP_PKIFAILUREINFO_badRequest;
    default: return OSSL_CMP_PKIFAILUREINFO_systemFailure;
  }
}

template <typename T, int (*I2D)(const T*, unsigned char**)>
std::string ToDer(const T* obj) {
  int n = I2D(obj, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  I2D(obj, &p);
  return out;
}

// The public key of a CRMF certificate template (OpenSSL 3.0 has no getter):
// publicKey [6] IMPLICIT SubjectPublicKeyInfo, re-tagged as a SEQUENCE.
ossl::EvpPkeyPtr TemplatePublicKey(const OSSL_CRMF_CERTTEMPLATE* tmpl, std::string* spki_out) {
  std::string der = ToDer<OSSL_CRMF_CERTTEMPLATE, i2d_OSSL_CRMF_CERTTEMPLATE>(tmpl);
  auto top = der::Parse(der);
  if (!top.ok()) return nullptr;
  auto fields = der::Children(top->content);
  if (!fields.ok()) return nullptr;
  const der::Element* pk = der::FindContext(*fields, 6);
  if (pk == nullptr || !pk->constructed) return nullptr;
  std::string spki(pk->whole);
  spki[0] = 0x30;  // [6] constructed (0xA6) -> SEQUENCE; length encoding unchanged
  *spki_out = spki;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(spki.data());
  return ossl::EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
}

OSSL_CMP_PKISI* OnCertRequest(OSSL_CMP_SRV_CTX* srv, const OSSL_CMP_MSG* req, int /*cert_req_id*/,
                              const OSSL_CRMF_MSG* crm, const X509_REQ* p10cr, X509** cert_out,
                              STACK_OF(X509)** chain_out, STACK_OF(X509)** ca_pubs) {
  Tx* tx = TxOf(srv);
  int body = OSSL_CMP_MSG_get_bodytype(req);
  if (body == kKur && tx->cred.kind != EnrolmentKind::kRenewal) {
    return Rejected(OSSL_CMP_PKIFAILUREINFO_notAuthorized,
                    "kur must be signed with the device's current femtoguard certificate");
  }
  ossl::EvpPkeyPtr key_owned;
  EVP_PKEY* key = nullptr;
  std::string requested;
  std::string spki;
  if (p10cr != nullptr) {
    key = X509_REQ_get0_pubkey(const_cast<X509_REQ*>(p10cr));
    requested = CommonName(X509_REQ_get_subject_name(p10cr));
    if (auto der = ossl::SpkiDer(X509_REQ_get_X509_PUBKEY(const_cast<X509_REQ*>(p10cr))); der.ok()) spki = *der;
  } else if (crm != nullptr) {
    const OSSL_CRMF_CERTTEMPLATE* tmpl = OSSL_CRMF_MSG_get0_tmpl(crm);
    key_owned = TemplatePublicKey(tmpl, &spki);
    key = key_owned.get();
    requested = CommonName(OSSL_CRMF_CERTTEMPLATE_get0_subject(tmpl));
  }
  if (key == nullptr) return Rejected(OSSL_CMP_PKIFAILUREINFO_badCertTemplate, "no public key in the request");

  auto issued = tx->enrolment->Issue(tx->cred, requested, key, 0, tx->source_ip, "cmp", spki);
  if (!issued.ok()) {
    tx->refusal_recorded = true;  // Issue records its refusals
    return Rejected(FailInfoFor(issued.status(), tx->cred), issued.status().message());
  }

  tx->issued_serial = issued->record.serial;
  tx->issued_der = issued->record.der;
  X509_up_ref(issued->cert.get());
  *cert_out = issued->cert.get();
  const CertificateAuthority& ca = tx->enrolment->ca();
  *chain_out = sk_X509_new_null();
  X509_up_ref(ca.issuing_cert());
  sk_X509_push(*chain_out, ca.issuing_cert());
  if (body == kIr) {
    *ca_pubs = sk_X509_new_null();
    X509_up_ref(ca.root_cert());
    sk_X509_push(*ca_pubs, ca.root_cert());
  }
  return Accepted();
}

OSSL_CMP_PKISI* OnRevocation(OSSL_CMP_SRV_CTX* srv, const OSSL_CMP_MSG* /*req*/, const X509_NAME* issuer,
                             const ASN1_INTEGER* serial) {
  Tx* tx = TxOf(srv);
  Enrolment& e = *tx->enrolment;
  if (tx->cred.kind != EnrolmentKind::kRenewal || !tx->cred.refusal.empty()) {
    std::string why = tx->cred.refusal.empty() ? "rr must be signed with the device's own certificate"
                                               : tx->cred.refusal;
    return Rejected(OSSL_CMP_PKIFAILUREINFO_notAuthorized, why);
  }
  if (serial == nullptr || issuer == nullptr ||
      X509_NAME_cmp(issuer, X509_get_subject_name(e.ca().issuing_cert())) != 0) {
    return Rejected(OSSL_CMP_PKIFAILUREINFO_badCertId, "not a certificate of this CA");
  }
  std::string hex = ossl::SerialToHex(serial);
  auto rec = e.store().GetCertificate(hex);
  if (!rec.ok() || rec->device != tx->cred.device) {
    return Rejected(OSSL_CMP_PKIFAILUREINFO_badCertId, "a device may only revoke its own certificates");
  }
  Status s = e.store().RevokeCertificate(hex, tx->rr_reason, NowMillis(),
                                         {"cmp:" + tx->cred.device, "revocation requested by the device (rr)"});
  if (!s.ok()) return Rejected(OSSL_CMP_PKIFAILUREINFO_badRequest, s.message());
  seclog::CertificateRevoked(hex, tx->cred.device, RevocationReasonName(tx->rr_reason), "cmp:" + tx->cred.device);
  e.NotifyChanged();
  return Accepted();
}

int OnGenm(OSSL_CMP_SRV_CTX* srv, const OSSL_CMP_MSG* /*req*/, const STACK_OF(OSSL_CMP_ITAV)* /*in*/,
           STACK_OF(OSSL_CMP_ITAV)** out) {
  const CertificateAuthority& ca = TxOf(srv)->enrolment->ca();
  // caCerts: SEQUENCE OF Certificate (issuing CA, root).
  std::string content = ossl::CertToDer(ca.issuing_cert()) + ossl::CertToDer(ca.root_cert());
  int total = ASN1_object_size(1, static_cast<int>(content.size()), V_ASN1_SEQUENCE);
  std::string seq(static_cast<size_t>(total), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(seq.data());
  ASN1_put_object(&p, 1, static_cast<int>(content.size()), V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
  std::memcpy(p, content.data(), content.size());
  ASN1_STRING* str = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
  ASN1_STRING_set(str, seq.data(), static_cast<int>(seq.size()));
  ASN1_TYPE* value = ASN1_TYPE_new();
  ASN1_TYPE_set(value, V_ASN1_SEQUENCE, str);
  OSSL_CMP_ITAV* itav = OSSL_CMP_ITAV_create(OBJ_txt2obj(kCaCertsOid, 1), value);
  *out = sk_OSSL_CMP_ITAV_new_null();
  sk_OSSL_CMP_ITAV_push(*out, itav);
  return 1;
}

void OnError(OSSL_CMP_SRV_CTX* srv, const OSSL_CMP_MSG* /*req*/, const OSSL_CMP_PKISI* /*status*/,
             const ASN1_INTEGER* /*code*/, const OSSL_CMP_PKIFREETEXT* /*details*/) {
  Tx* tx = TxOf(srv);
  tx->refusal_recorded = true;
  tx->enrolment->RecordRefusal(RefusalReason::kClientError, "", tx->cred.device,
                               "the device reported a CMP error", "cmp", tx->source_ip);
}

// PKIStatusInfo ::= SEQUENCE { status INTEGER, ... } (no 3.0 accessor).
int PkiStatusOf(const OSSL_CMP_PKISI* si) {
  std::string der = ToDer<OSSL_CMP_PKISI, i2d_OSSL_CMP_PKISI>(si);
  auto top = der::Parse(der);
  if (!top.ok()) return -1;
  auto fields = der::Children(top->content);
  if (!fields.ok() || fields->empty()) return -1;
  const unsigned char* p = reinterpret_cast<const unsigned char*>((*fields)[0].whole.data());
  ossl::Asn1IntegerPtr i(d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>((*fields)[0].whole.size())));
  return i ? static_cast<int>(ASN1_INTEGER_get(i.get())) : -1;
}

int OnCertConf(OSSL_CMP_SRV_CTX* srv, const OSSL_CMP_MSG* /*req*/, int /*cert_req_id*/,
               const ASN1_OCTET_STRING* cert_hash, const OSSL_CMP_PKISI* si) {
  Tx* tx = TxOf(srv);
  if (tx->issued_der.empty()) return 0;
  // The certificate's own signature hash (SHA-256 for ours).
  std::string expected = ossl::Sha256(tx->issued_der);
  if (cert_hash == nullptr || static_cast<size_t>(ASN1_STRING_length(cert_hash)) != expected.size() ||
      std::memcmp(ASN1_STRING_get0_data(cert_hash), expected.data(), expected.size()) != 0) {
    ERR_raise_data(ERR_LIB_CMP, CMP_R_CERTHASH_UNMATCHED, "certConf hash does not match the issued certificate");
    return 0;
  }
  if (si != nullptr && PkiStatusOf(si) != OSSL_CMP_PKISTATUS_accepted) {
    // The device refused its certificate: it must not stay valid.
    Status s = tx->enrolment->store().RevokeCertificate(
        tx->issued_serial, RevocationReason::kCessationOfOperation, NowMillis(),
        {"cmp:" + tx->cred.device, "certificate rejected by the device in certConf"});
    if (s.ok()) seclog::CertificateRevoked(tx->issued_serial, tx->cred.device, "cessationOfOperation", "cmp:" + tx->cred.device);
    if (s.ok()) tx->enrolment->NotifyChanged();
  }
  return 1;
}

int SilentLog(const char* /*func*/, const char* /*file*/, int /*line*/, OSSL_CMP_severity level, const char* msg) {
  if (level <= OSSL_CMP_LOG_WARNING) spdlog::debug("cmp: {}", msg);
  return 1;
}

std::string Hex(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return {};
  return ossl::HexLower(ASN1_STRING_get0_data(s), static_cast<size_t>(ASN1_STRING_length(s)));
}

}  // namespace

CmpServer::CmpServer(Enrolment& enrolment) : enrolment_(enrolment) {}
CmpServer::~CmpServer() = default;

std::shared_ptr<CmpServer::Transaction> CmpServer::NewTransaction(const std::string& source_ip) {
  auto tx = std::make_shared<Transaction>();
  tx->enrolment = &enrolment_;
  tx->source_ip = source_ip;
  tx->created_ms = NowMillis();
  tx->srv.reset(OSSL_CMP_SRV_CTX_new(nullptr, nullptr));
  if (!tx->srv) return nullptr;
  OSSL_CMP_SRV_CTX_init(tx->srv.get(), tx.get(), OnCertRequest, OnRevocation, OnGenm, OnError, OnCertConf,
                        nullptr);
  OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(tx->srv.get(), 1);
  OSSL_CMP_SRV_CTX_set_accept_unprotected(tx->srv.get(), 0);
  OSSL_CMP_SRV_CTX_set_accept_raverified(tx->srv.get(), 0);
  OSSL_CMP_SRV_CTX_set_send_unprotected_errors(tx->srv.get(), 0);
  OSSL_CMP_CTX* ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(tx->srv.get());
  OSSL_CMP_CTX_set_log_cb(ctx, SilentLog);
  const CertificateAuthority& ca = enrolment_.ca();
  OSSL_CMP_CTX_set1_cert(ctx, ca.cmp_cert());
  OSSL_CMP_CTX_set1_pkey(ctx, ca.cmp_key());
  STACK_OF(X509)* extra = sk_X509_new_null();
  sk_X509_push(extra, ca.issuing_cert());
  OSSL_CMP_CTX_set1_extraCertsOut(ctx, extra);
  sk_X509_free(extra);
  // Until Authenticate() pins a credential nothing verifies: an empty trust
  // store makes signature validation fail closed.
  OSSL_CMP_CTX_set0_trustedStore(ctx, X509_STORE_new());
  return tx;
}

void CmpServer::Authenticate(Transaction& tx, std::string_view der) {
  OSSL_CMP_CTX* ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(tx.srv.get());
  auto top = der::Parse(der);
  if (!top.ok()) return;
  auto parts = der::Children(top->content);  // header, body, [0] protection, [1] extraCerts
  if (!parts.ok() || parts->size() < 2) return;
  auto header = der::Children((*parts)[0].content);  // pvno, sender, recipient, [0].. optional
  if (!header.ok() || header->size() < 3) return;
  std::vector<der::Element> optional(header->begin() + 3, header->end());

  std::string alg_oid;
  if (const der::Element* alg = der::FindContext(optional, 1)) {
    auto algid = der::Parse(alg->content);
    if (algid.ok()) {
      auto algfields = der::Children(algid->content);
      if (algfields.ok() && !algfields->empty()) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>((*algfields)[0].whole.data());
        ossl::Ptr<ASN1_OBJECT, ASN1_OBJECT_free> obj(
            d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>((*algfields)[0].whole.size())));
        char buf[80];
        if (obj && OBJ_obj2txt(buf, sizeof buf, obj.get(), 1) > 0) alg_oid = buf;
      }
    }
  }
  if (alg_oid.empty()) return;  // unprotected: refused by OpenSSL (accept_unprotected = 0)

  if (alg_oid == kPbmOid) {
    const der::Element* kid = der::FindContext(optional, 2);
    if (kid == nullptr) return;
    auto octets = der::Parse(kid->content);
    if (!octets.ok() || octets->content.empty() || octets->content.size() > 128) return;
    std::string ref(octets->content);
    tx.cred = enrolment_.FromToken(ref);
    if (tx.cred.refusal_reason == RefusalReason::kBadIdentifier) {
      // No secret is derived for it: protection fails, counted per field.
      CountBadIdentifier("cmp", "reference");
      return;
    }
    std::string secret = enrolment_.secrets().SecretFor(ref);
    OSSL_CMP_CTX_set1_referenceValue(ctx, reinterpret_cast<const unsigned char*>(ref.data()), ref.size());
    OSSL_CMP_CTX_set1_secretValue(ctx, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    OPENSSL_cleanse(secret.data(), secret.size());
    return;
  }

  // Signature: the protecting certificate comes first in extraCerts.
  std::vector<ossl::X509Ptr> certs;
  for (size_t i = 2; i < parts->size(); ++i) {
    const der::Element& e = (*parts)[i];
    if (e.cls != V_ASN1_CONTEXT_SPECIFIC || e.tag != 1) continue;
    auto seq = der::Parse(e.content);
    if (!seq.ok()) return;
    auto certs_der = der::Children(seq->content);
    if (!certs_der.ok()) return;
    for (const der::Element& c : *certs_der) {
      auto cert = ossl::CertFromDer(c.whole);
      if (cert.ok()) certs.push_back(std::move(cert).value());
    }
  }
  if (certs.empty()) {
    // Clients leave a self-signed protection certificate out of extraCerts;
    // a shared legacy credential may well be one. Find it by senderKID.
    const der::Element* kid = der::FindContext(optional, 2);
    auto octets = kid ? der::Parse(kid->content) : Result<der::Element>(Status::NotFound("no senderKID"));
    auto legacy = enrolment_.store().ListLegacyCredentials();
    if (octets.ok() && legacy.ok()) {
      for (const LegacyCredential& l : *legacy) {
        auto cert = ossl::CertFromPem(l.pem);
        if (!cert.ok()) continue;
        const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert->get());
        if (ski != nullptr && static_cast<size_t>(ASN1_STRING_length(ski)) == octets->content.size() &&
            std::memcmp(ASN1_STRING_get0_data(ski), octets->content.data(), octets->content.size()) == 0) {
          certs.push_back(std::move(cert).value());
          break;
        }
      }
    }
  }
  if (certs.empty()) return;
  std::vector<X509*> rest;
  for (size_t i = 1; i < certs.size(); ++i) rest.push_back(certs[i].get());
  tx.cred = enrolment_.FromCertificate(certs[0].get(), rest);
  if (tx.cred.kind != EnrolmentKind::kOperator) {
    // Trust exactly this certificate for the message signature; the chain
    // was judged by FromCertificate.
    OSSL_CMP_CTX_set1_srvCert(ctx, certs[0].get());
  } else {
    tx.refusal_recorded = true;
    enrolment_.RecordRefusal(RefusalReason::kUntrusted, "",
                             DeviceIdFromName(X509_get_subject_name(certs[0].get())),
                             "CMP message signed by an untrusted certificate", "cmp", tx.source_ip);
  }

  // rr: the reason code in crlEntryDetails, if any.
  if ((*parts)[1].tag == kRr) {
    auto content = der::Parse((*parts)[1].content);
    if (!content.ok()) return;
    auto details = der::Children(content->content);
    if (!details.ok() || details->empty()) return;
    auto fields = der::Children((*details)[0].content);
    if (!fields.ok() || fields->size() < 2) return;
    const unsigned char* p = reinterpret_cast<const unsigned char*>((*fields)[1].whole.data());
    STACK_OF(X509_EXTENSION)* exts = d2i_X509_EXTENSIONS(nullptr, &p, static_cast<long>((*fields)[1].whole.size()));
    if (exts != nullptr) {
      auto* code = static_cast<ASN1_ENUMERATED*>(X509V3_get_d2i(exts, NID_crl_reason, nullptr, nullptr));
      if (code != nullptr) {
        long r = ASN1_ENUMERATED_get(code);
        if (r >= 0 && r <= 10 && r != 7 && r != 8) tx.rr_reason = static_cast<RevocationReason>(r);
        ASN1_ENUMERATED_free(code);
      }
      sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
  }
  ERR_clear_error();
}

void CmpServer::Reap(UnixMillis now) {
  for (auto it = open_.begin(); it != open_.end();) {
    if (now - it->second->created_ms > kTransactionTtlMs) {
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
}

CmpServer::Reply CmpServer::Handle(std::string_view request_der, const std::string& source_ip) {
  if (!enrolment_.AllowSource(source_ip, "cmp")) {
    // Too many refusals from this source this minute: not even decoded.
    Requests("throttled").Inc();
    return {429, {}};
  }
  auto malformed = [&] {
    Requests("malformed").Inc();
    enrolment_.RecordRefusal(RefusalReason::kMalformed, "", "", "not a CMP message", "cmp",
                             source_ip);
    return Reply{400, {}};
  };
  if (request_der.empty() || request_der.size() > kMaxMessageBytes) return malformed();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(request_der.data());
  ossl::Ptr<OSSL_CMP_MSG, OSSL_CMP_MSG_free> req(
      d2i_OSSL_CMP_MSG(nullptr, &p, static_cast<long>(request_der.size())));
  if (!req || p != reinterpret_cast<const unsigned char*>(request_der.data()) + request_der.size()) {
    ERR_clear_error();
    return malformed();
  }
  int type = OSSL_CMP_MSG_get_bodytype(req.get());
  std::string tid = Hex(OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req.get())));

  std::shared_ptr<Transaction> tx;
  if (type == kCertConf || type == kPollReq || type == kError) {
    std::lock_guard lock(mutex_);
    auto it = open_.find(tid);
    if (it != open_.end()) tx = it->second;
  }
  bool fresh = false;
  if (!tx) {
    tx = NewTransaction(source_ip);
    if (!tx) return {500, {}};
    fresh = true;
  }

  std::string out;
  bool keep_open = false;
  {
    std::lock_guard lock(tx->mutex);
    tx->refusal_recorded = false;
    if (fresh) Authenticate(*tx, request_der);
    ossl::Ptr<OSSL_CMP_MSG, OSSL_CMP_MSG_free> rsp(OSSL_CMP_SRV_process_request(tx->srv.get(), req.get()));
    ERR_clear_error();
    if (!rsp) {
      Requests("internal").Inc();
      return {500, {}};
    }
    int rsp_type = OSSL_CMP_MSG_get_bodytype(rsp.get());
    OSSL_CMP_CTX* ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(tx->srv.get());
    keep_open = (rsp_type == kIp || rsp_type == kCp ||
                 rsp_type == kKup) &&
                !tx->issued_serial.empty() && OSSL_CMP_CTX_get_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM) == 0;
    Requests(rsp_type == kError ? "error" : "ok").Inc();
    if (rsp_type == kError && !tx->refusal_recorded) {
      // OpenSSL refused it before our callbacks: protection (a wrong PBM
      // secret, a bad signature) or the message's shape.
      RefusalReason reason =
          !tx->cred.refusal.empty() ? tx->cred.refusal_reason : RefusalReason::kProtection;
      enrolment_.RecordRefusal(reason, "", tx->cred.device,
                               "CMP message refused (protection or format)", "cmp", tx->source_ip);
    }
    out = ToDer<OSSL_CMP_MSG, i2d_OSSL_CMP_MSG>(rsp.get());
  }
  {
    std::lock_guard lock(mutex_);
    if (type == kCertConf) open_.erase(tid);
    if (keep_open && !tid.empty()) {
      if (open_.size() >= kMaxOpenTransactions) Reap(NowMillis());
      if (open_.size() < kMaxOpenTransactions) open_[tid] = tx;
    }
  }
  return {200, std::move(out)};
}

}  // namespace fg
