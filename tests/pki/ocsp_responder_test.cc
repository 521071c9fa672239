#include "pki/ocsp_responder.h"

#include <gmock/gmock.h>
#include <openssl/x509v3.h>

#include "common/metrics.h"
#include "pki_fixture.h"

namespace fg {
namespace {

class OcspResponderTest : public PkiFixture {
 protected:
  void SetUp() override {
    PkiFixture::SetUp();
    responder_ = std::make_unique<OcspResponder>(*store_, *ca_, 3600);
  }

  // Issues a certificate to a new active device; returns it.
  ossl::X509Ptr Issue(const std::string& device) {
    AddDevice(device);
    auto key = NewKey();
    auto issued = policy_->IssueForKey(Request(device), key.get());
    EXPECT_TRUE(issued.ok()) << issued.status().ToString();
    return std::move(ossl::CertFromPem(issued->pem)).value();
  }

  std::string RequestFor(X509* cert, bool nonce, const EVP_MD* md = EVP_sha1()) {
    ossl::OcspRequestPtr req(OCSP_REQUEST_new());
    OCSP_CERTID* id = OCSP_cert_to_id(md, cert, ca_->issuing_cert());
    OCSP_request_add0_id(req.get(), id);
    if (nonce) OCSP_request_add1_nonce(req.get(), nullptr, -1);
    int n = i2d_OCSP_REQUEST(req.get(), nullptr);
    std::string der(n, '\0');
    unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_OCSP_REQUEST(req.get(), &p);
    const unsigned char* q = reinterpret_cast<const unsigned char*>(der.data());
    last_request_.reset(d2i_OCSP_REQUEST(nullptr, &q, n));
    return der;
  }

  struct Parsed {
    int response_status = -1;
    int cert_status = -1;
    int reason = -1;
    bool verified = false;
    bool nonce_ok = false;
  };

  Parsed Parse(const std::string& der, X509* cert) {
    Parsed out;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
    if (!resp) return out;
    out.response_status = OCSP_response_status(resp.get());
    if (out.response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) return out;
    ossl::OcspBasicRespPtr bs(OCSP_response_get1_basic(resp.get()));
    ossl::X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), ca_->root_cert());
    STACK_OF(X509)* chain = sk_X509_new_null();
    sk_X509_push(chain, ca_->issuing_cert());
    out.verified = OCSP_basic_verify(bs.get(), chain, store.get(), 0) == 1;
    sk_X509_free(chain);
    out.nonce_ok = last_request_ && OCSP_check_nonce(last_request_.get(), bs.get()) == 1;
    ossl::OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha1(), cert, ca_->issuing_cert()));
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
    if (OCSP_resp_find_status(bs.get(), id.get(), &status, &reason, &rev, &thisupd, &nextupd)) {
      out.cert_status = status;
      out.reason = reason;
    }
    return out;
  }

  std::unique_ptr<OcspResponder> responder_;
  ossl::OcspRequestPtr last_request_;
};

TEST_F(OcspResponderTest, GoodFromCacheWithoutSigning) {
  auto cert = Issue("FG-1");
  EXPECT_EQ(responder_->Prewarm(), 1u);
  auto& hits = Metrics::Global().GetCounter("femtoguard_ocsp_cache_total", "result=\"hit\"");
  uint64_t before = hits.Value();
  auto reply = responder_->Respond(RequestFor(cert.get(), false));
  EXPECT_FALSE(reply.malformed);
  Parsed p = Parse(reply.der, cert.get());
  EXPECT_EQ(p.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
  EXPECT_TRUE(p.verified);
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(hits.Value(), before + 1);
  // The same bytes again: it was not re-signed (ECDSA signatures differ each time).
  EXPECT_EQ(responder_->Respond(RequestFor(cert.get(), false)).der, reply.der);
}

TEST_F(OcspResponderTest, NonceIsHonoured) {
  auto cert = Issue("FG-1");
  auto reply = responder_->Respond(RequestFor(cert.get(), true));
  Parsed p = Parse(reply.der, cert.get());
  EXPECT_TRUE(p.verified);
  EXPECT_TRUE(p.nonce_ok);
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_GOOD);
}

TEST_F(OcspResponderTest, RefreshAfterRevocationReplacesCachedGood) {
  auto cert = Issue("FG-1");
  responder_->Prewarm();
  std::string serial = ossl::SerialToHex(X509_get0_serialNumber(cert.get()));
  ASSERT_TRUE(store_->RevokeCertificate(serial, RevocationReason::kKeyCompromise, NowMillis(), {"t", "t"}).ok());
  // Before Refresh the cache would still say good; Refresh must fix it.
  responder_->Refresh({serial});
  Parsed p = Parse(responder_->Respond(RequestFor(cert.get(), false)).der, cert.get());
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(p.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
}

// The exact-bytes index (no parsing on a repeated request) must follow a
// revocation as soon as Refresh returns, like the parsing path.
TEST_F(OcspResponderTest, RefreshAfterRevocationReplacesIndexedGood) {
  auto cert = Issue("FG-1");
  responder_->Prewarm();
  std::string serial = ossl::SerialToHex(X509_get0_serialNumber(cert.get()));
  const std::string request = RequestFor(cert.get(), false);
  auto& hits = Metrics::Global().GetCounter("femtoguard_ocsp_cache_total", "result=\"hit\"");

  // First ask: parsed, served from the cache, indexed by its bytes.
  auto first = responder_->RespondShared(request);
  EXPECT_EQ(Parse(*first.der, cert.get()).cert_status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 1u);
  // Second ask: the same cached response, not a copy, counted as a hit.
  uint64_t before = hits.Value();
  auto second = responder_->RespondShared(request);
  EXPECT_EQ(second.der.get(), first.der.get());
  EXPECT_EQ(hits.Value(), before + 1);

  ASSERT_TRUE(store_->RevokeCertificate(serial, RevocationReason::kKeyCompromise, NowMillis(), {"t", "t"}).ok());
  responder_->Refresh({serial});
  // The very next request with the same bytes gets the new status...
  auto third = responder_->RespondShared(request);
  Parsed p = Parse(*third.der, cert.get());
  EXPECT_TRUE(p.verified);
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(p.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
  // ...and so does every later one (the index now points at the new entry).
  auto fourth = responder_->RespondShared(request);
  EXPECT_EQ(fourth.der.get(), third.der.get());
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 1u);
  EXPECT_EQ(responder_->Respond(request).der, *third.der);
}

// A response signed on a miss (nothing prewarmed) is indexed too, and a
// later revocation replaces it the same way.
TEST_F(OcspResponderTest, IndexedMissFollowsRevocation) {
  auto cert = Issue("FG-1");
  std::string serial = ossl::SerialToHex(X509_get0_serialNumber(cert.get()));
  const std::string request = RequestFor(cert.get(), false);
  auto first = responder_->RespondShared(request);
  EXPECT_EQ(Parse(*first.der, cert.get()).cert_status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 1u);
  EXPECT_EQ(responder_->RespondShared(request).der.get(), first.der.get());

  ASSERT_TRUE(store_->RevokeCertificate(serial, RevocationReason::kCessationOfOperation, NowMillis(), {"t", "t"}).ok());
  responder_->Refresh({serial});
  Parsed p = Parse(responder_->Respond(request).der, cert.get());
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(p.reason, OCSP_REVOKED_STATUS_CESSATIONOFOPERATION);
}

// Other bytes for the same certificate (another hash) get their own index
// entry; requests with a nonce are never indexed nor served from the index.
TEST_F(OcspResponderTest, IndexIsPerRequestBytesAndSkipsNonces) {
  auto cert = Issue("FG-1");
  responder_->Prewarm();
  responder_->Respond(RequestFor(cert.get(), false));
  responder_->Respond(RequestFor(cert.get(), false, EVP_sha256()));
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 2u);
  const std::string with_nonce = RequestFor(cert.get(), true);
  auto a = responder_->Respond(with_nonce);
  Parsed p = Parse(a.der, cert.get());
  EXPECT_TRUE(p.nonce_ok);
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_GOOD);
  // Signed again for the same nonce (ECDSA: a different signature).
  EXPECT_NE(responder_->Respond(with_nonce).der, a.der);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 2u);
}

// Only the minimal request (one CertID, nothing else, DER) is indexed by its
// bytes: other encodings of the same question are answered the same way
// (from the cache, by parsing) but cannot grow the index without bound.
TEST_F(OcspResponderTest, OnlyMinimalRequestsAreIndexed) {
  auto cert = Issue("FG-1");
  responder_->Prewarm();
  auto& hits = Metrics::Global().GetCounter("femtoguard_ocsp_cache_total", "result=\"hit\"");

  ossl::OcspRequestPtr named(OCSP_REQUEST_new());
  OCSP_request_add0_id(named.get(), OCSP_cert_to_id(EVP_sha1(), cert.get(), ca_->issuing_cert()));
  ASSERT_EQ(OCSP_request_set1_name(named.get(), X509_get_subject_name(cert.get())), 1);
  int n = i2d_OCSP_REQUEST(named.get(), nullptr);
  std::string with_name(static_cast<size_t>(n), '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(with_name.data());
  i2d_OCSP_REQUEST(named.get(), &out);

  const std::string minimal = RequestFor(cert.get(), false);
  ASSERT_LT(minimal.size(), 0x80u);
  ASSERT_EQ(static_cast<unsigned char>(minimal[1]), minimal.size() - 2);
  // The same request with the outer length in a (non-DER) long form.
  std::string long_form = std::string("\x30\x81", 2) + minimal.substr(1);

  uint64_t before = hits.Value();
  for (int i = 0; i < 2; ++i) {
    Parsed p = Parse(responder_->Respond(with_name).der, cert.get());
    EXPECT_TRUE(p.verified);
    EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_GOOD);
    responder_->Respond(long_form);  // whatever OpenSSL makes of it
  }
  EXPECT_GE(hits.Value(), before + 2);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 0u);

  EXPECT_EQ(Parse(responder_->Respond(minimal).der, cert.get()).cert_status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 1u);
}

TEST_F(OcspResponderTest, Sha256CertIdWorks) {
  auto cert = Issue("FG-1");
  auto reply = responder_->Respond(RequestFor(cert.get(), false, EVP_sha256()));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(reply.der.data());
  ossl::OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(reply.der.size())));
  ossl::OcspBasicRespPtr bs(OCSP_response_get1_basic(resp.get()));
  ossl::OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha256(), cert.get(), ca_->issuing_cert()));
  int status = -1, reason = -1;
  ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
  ASSERT_EQ(OCSP_resp_find_status(bs.get(), id.get(), &status, &reason, &rev, &thisupd, &nextupd), 1);
  EXPECT_EQ(status, V_OCSP_CERTSTATUS_GOOD);
}

TEST_F(OcspResponderTest, SuspendedDeviceIsOnHold) {
  auto cert = Issue("FG-1");
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, {"t", "t"}).ok());
  Parsed p = Parse(responder_->Respond(RequestFor(cert.get(), true)).der, cert.get());
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(p.reason, OCSP_REVOKED_STATUS_CERTIFICATEHOLD);
}

TEST_F(OcspResponderTest, MalformedInputIsRefusedAndCounted) {
  auto& malformed = Metrics::Global().GetCounter("femtoguard_ocsp_responses_total", "status=\"malformedRequest\"");
  uint64_t before = malformed.Value();
  for (std::string bad : {std::string(), std::string("garbage"), std::string(20000, '\x30'),
                          std::string("\x30\x03\x02\x01\x01", 5)}) {
    auto reply = responder_->Respond(bad);
    EXPECT_TRUE(reply.malformed);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(reply.der.data());
    ossl::OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(reply.der.size())));
    ASSERT_TRUE(resp);
    EXPECT_EQ(OCSP_response_status(resp.get()), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  }
  EXPECT_EQ(malformed.Value(), before + 4);
  EXPECT_EQ(responder_->CachedEntriesForTest(), 0u);
  EXPECT_EQ(responder_->IndexedRequestsForTest(), 0u);
}

TEST(OcspGetDecode, DecodesUrlEncodedBase64AndRejectsJunk) {
  auto ok = DecodeOcspGetSuffix("MAMCAQE%3D");  // "MAMCAQE=" -> 30 03 02 01 01
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, std::string("\x30\x03\x02\x01\x01", 5));
  EXPECT_FALSE(DecodeOcspGetSuffix("%zz").ok());
  EXPECT_FALSE(DecodeOcspGetSuffix("").ok());
  EXPECT_FALSE(DecodeOcspGetSuffix("%4").ok());
}

}  // namespace
}  // namespace fg

namespace fg {
namespace {

// The own, short-lived signer (issue 14): a nocheck OCSPSigning certificate
// from the issuing CA, not the stored one; no response outlives it.
class OcspOwnSignerTest : public OcspResponderTest {};

TEST_F(OcspOwnSignerTest, SignsWithAShortLivedNocheckCertificateAndCapsNextUpdate) {
  EXPECT_FALSE(responder_->UseOwnSigner(59).ok());  // below the floor: refused
  ASSERT_TRUE(responder_->UseOwnSigner(120).ok());
  auto signer = responder_->SignerCertForTest();
  ASSERT_TRUE(signer);
  EXPECT_NE(X509_cmp(signer.get(), ca_->ocsp_cert()), 0);
  EXPECT_EQ(X509_check_issued(ca_->issuing_cert(), signer.get()), X509_V_OK);
  EXPECT_GE(X509_get_ext_by_NID(signer.get(), NID_id_pkix_OCSP_noCheck, -1), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(signer.get()) & XKU_OCSP_SIGN);
  auto not_after = ossl::Asn1TimeToMillis(X509_get0_notAfter(signer.get()));
  ASSERT_TRUE(not_after.ok());
  EXPECT_LE(*not_after, NowMillis() + 121 * 1000);

  auto cert = Issue("FG-1");
  auto reply = responder_->RespondShared(RequestFor(cert.get(), false));
  ASSERT_FALSE(reply.malformed);
  Parsed p = Parse(*reply.der, cert.get());
  EXPECT_TRUE(p.verified);
  EXPECT_EQ(p.cert_status, V_OCSP_CERTSTATUS_GOOD);
  // Response validity is an hour, but the signer lives two minutes.
  EXPECT_EQ(reply.next_update_ms, *not_after);
  EXPECT_LE(reply.this_update_ms, NowMillis());
  // Not yet due: nothing renewed.
  EXPECT_FALSE(responder_->RenewSignerIfDue());
  EXPECT_EQ(X509_cmp(responder_->SignerCertForTest().get(), signer.get()), 0);
}

TEST_F(OcspOwnSignerTest, WithoutOwnSignerTheStoredOneSignsAndNothingRenews) {
  EXPECT_FALSE(responder_->RenewSignerIfDue());
  EXPECT_EQ(X509_cmp(responder_->SignerCertForTest().get(), ca_->ocsp_cert()), 0);
  auto cert = Issue("FG-1");
  auto reply = responder_->RespondShared(RequestFor(cert.get(), false));
  EXPECT_EQ(reply.next_update_ms - reply.this_update_ms, 3600 * 1000);
}

}  // namespace
}  // namespace fg
