#include <gmock/gmock.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki_fixture.h"

namespace fg {
namespace {

using ::testing::HasSubstr;

class IssuanceTest : public PkiFixture {};

std::string MakeCsrPem(EVP_PKEY* key, const std::string& cn) {
  ossl::X509ReqPtr req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_REQ_set_pubkey(req.get(), key);
  X509_REQ_sign(req.get(), key, EVP_sha256());
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* p;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, n);
}

TEST_F(IssuanceTest, IssuesUniqueShortLivedCertificateWithIdentityAndUrls) {
  AddDevice("FG-1");
  auto key = NewKey();
  auto issued = policy_->IssueFromCsr(Request("FG-1"), MakeCsrPem(key.get(), "ignored"));
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto cert = ossl::CertFromPem(issued->pem);
  ASSERT_TRUE(cert.ok());

  // Subject CN = device id, whatever the CSR asked for.
  char cn[128];
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "FG-1");
  // SAN URI.
  ossl::GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(sans);
  ASSERT_EQ(sk_GENERAL_NAME_num(sans.get()), 1);
  GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), 0);
  ASSERT_EQ(gn->type, GEN_URI);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier))),
            "urn:femtoguard:device:FG-1");
  // CRL DP and AIA OCSP present.
  EXPECT_GE(X509_get_ext_by_NID(cert->get(), NID_crl_distribution_points, -1), 0);
  EXPECT_GE(X509_get_ext_by_NID(cert->get(), NID_info_access, -1), 0);
  // Default validity: 30 days (+ 5 min back-dating).
  int64_t span_days = (issued->record.not_after_ms - issued->record.not_before_ms) / kMillisPerDay;
  EXPECT_EQ(span_days, 30);
  // Chains to our CA.
  ossl::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca_->root_cert());
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  sk_X509_push(untrusted, ca_->issuing_cert());
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), untrusted);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1);
  sk_X509_free(untrusted);
  // Recorded, and the provisioned->active rule is exercised elsewhere.
  auto rec = store_->GetCertificate(issued->record.serial);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->device, "FG-1");
  EXPECT_EQ(rec->status, CertStatus::kValid);
}

TEST_F(IssuanceTest, KeyBoundToAnotherDeviceIsRefused) {
  AddDevice("FG-A");
  AddDevice("FG-B");
  auto key = NewKey();
  ASSERT_TRUE(policy_->IssueForKey(Request("FG-A"), key.get()).ok());
  auto second = policy_->IssueForKey(Request("FG-B"), key.get());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("FG-A"));
  auto certs = store_->ListCertificates(std::string_view("FG-B"));
  ASSERT_TRUE(certs.ok());
  EXPECT_TRUE(certs->empty());
}

TEST_F(IssuanceTest, KeyOfEarlierCertificateOfSameDeviceIsRefusedEvenAfterRevocation) {
  AddDevice("FG-A");
  auto key = NewKey();
  auto first = policy_->IssueForKey(Request("FG-A"), key.get());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->RevokeCertificate(first->record.serial, RevocationReason::kKeyCompromise, NowMillis(),
                                        {"test", "compromised"})
                  .ok());
  auto again = policy_->IssueForKey(Request("FG-A"), key.get());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  // A new key is fine.
  auto key2 = NewKey();
  EXPECT_TRUE(policy_->IssueForKey(Request("FG-A"), key2.get()).ok());
}

TEST_F(IssuanceTest, NewCertificateSupersedesThePrevious) {
  AddDevice("FG-A");
  auto k1 = NewKey(), k2 = NewKey();
  auto first = policy_->IssueForKey(Request("FG-A"), k1.get());
  auto second = policy_->IssueForKey(Request("FG-A"), k2.get());
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(second->superseded.size(), 1u);
  EXPECT_EQ(second->superseded[0], first->record.serial);
  auto old = store_->GetCertificate(first->record.serial);
  EXPECT_EQ(old->status, CertStatus::kRevoked);
  EXPECT_EQ(old->reason, RevocationReason::kSuperseded);
}

TEST_F(IssuanceTest, ValidityCapIsEnforced) {
  AddDevice("FG-A");
  auto key = NewKey();
  auto too_long = policy_->IssueForKey(Request("FG-A", 91), key.get());
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.status().message(), HasSubstr("cap of 90"));
  auto at_cap = policy_->IssueForKey(Request("FG-A", 90), key.get());
  ASSERT_TRUE(at_cap.ok());
  EXPECT_EQ((at_cap->record.not_after_ms - at_cap->record.not_before_ms) / kMillisPerDay, 90);
}

TEST_F(IssuanceTest, ConfigCannotRaiseCapAboveOneYear) {
  Config c;
  c.cert_max_validity_days = 366;
  EXPECT_FALSE(c.Validate().ok());
  c.cert_max_validity_days = 365;
  EXPECT_TRUE(c.Validate().ok());
}

TEST_F(IssuanceTest, InactiveAndUnknownDevicesAreRefused) {
  AddDevice("FG-SUSP", DeviceStatus::kSuspended);
  AddDevice("FG-DEAD", DeviceStatus::kDecommissioned);
  auto key = NewKey();
  auto s = policy_->IssueForKey(Request("FG-SUSP"), key.get());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  auto d = policy_->IssueForKey(Request("FG-DEAD"), key.get());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition);
  auto u = policy_->IssueForKey(Request("FG-NOBODY"), key.get());
  EXPECT_EQ(u.status().code(), StatusCode::kNotFound);
  // Nothing was recorded, and the refused key is still free.
  auto all = store_->ListCertificates(std::nullopt);
  EXPECT_TRUE(all->empty());
  auto fp = ossl::KeyFingerprint(key.get());
  EXPECT_FALSE(store_->FindKeyOwner(*fp)->has_value());
}

TEST_F(IssuanceTest, ProvisionedDeviceBecomesActiveOnFirstCertificate) {
  AddDevice("FG-NEW", DeviceStatus::kProvisioned);
  auto key = NewKey();
  ASSERT_TRUE(policy_->IssueForKey(Request("FG-NEW"), key.get()).ok());
  EXPECT_EQ(store_->GetDevice("FG-NEW")->status, DeviceStatus::kActive);
}

TEST_F(IssuanceTest, CsrWithBadSignatureIsRefused) {
  AddDevice("FG-A");
  auto key = NewKey();
  std::string pem = MakeCsrPem(key.get(), "FG-A");
  // Flip a byte inside the base64 body near the end (the signature).
  size_t pos = pem.find("-----END") - 10;
  pem[pos] = pem[pos] == 'A' ? 'B' : 'A';
  auto r = policy_->IssueFromCsr(Request("FG-A"), pem);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->ListCertificates(std::nullopt)->empty());
  EXPECT_FALSE(policy_->IssueFromCsr(Request("FG-A"), "not a csr").ok());
}

TEST_F(IssuanceTest, WeakKeysAreRefused) {
  AddDevice("FG-A");
  ossl::EvpPkeyPtr rsa1024(EVP_RSA_gen(1024));
  auto r = policy_->IssueForKey(Request("FG-A"), rsa1024.get());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  ossl::EvpPkeyPtr k1(EVP_EC_gen("secp256k1"));
  auto e = policy_->IssueForKey(Request("FG-A"), k1.get());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(IssuanceTest, CaKeysAreEncryptedAtRest) {
  std::string pem = testing::ReadAll((dir_->CaDir() / "issuing.key").string());
  EXPECT_THAT(pem, HasSubstr("BEGIN ENCRYPTED PRIVATE KEY"));
  EXPECT_FALSE(ossl::KeyFromPem(pem, "wrong").ok());
  EXPECT_TRUE(ossl::KeyFromPem(pem, "test-passphrase").ok());
  auto perms = std::filesystem::status(dir_->CaDir() / "issuing.key").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::group_all, std::filesystem::perms::none);
  EXPECT_EQ(perms & std::filesystem::perms::others_all, std::filesystem::perms::none);
}

}  // namespace
}  // namespace fg
