#include "pki/ocsp_responder.h"

#include <gmock/gmock.h>

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
