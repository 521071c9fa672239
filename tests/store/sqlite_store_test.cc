// Backend-neutral names and the factory's refusals; the store's behaviour is
// tested on both backends by conformance_test.cc.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "store/store.h"

namespace fg {
namespace {

using ::testing::HasSubstr;

TEST(StoreNamesTest, RevocationReasonNamesRoundTrip) {
  for (auto r : {RevocationReason::kUnspecified, RevocationReason::kKeyCompromise,
                 RevocationReason::kCaCompromise, RevocationReason::kAffiliationChanged,
                 RevocationReason::kSuperseded, RevocationReason::kCessationOfOperation,
                 RevocationReason::kCertificateHold, RevocationReason::kPrivilegeWithdrawn,
                 RevocationReason::kAaCompromise}) {
    auto parsed = ParseRevocationReason(RevocationReasonName(r));
    ASSERT_TRUE(parsed.ok()) << RevocationReasonName(r);
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(RevocationReasonName(RevocationReason::kKeyCompromise), "keyCompromise");
}

TEST(StoreNamesTest, ParseRevocationReasonAcceptsCaseVariants) {
  for (const char* s : {"keyCompromise", "key-compromise", "key_compromise", "KEY_COMPROMISE"}) {
    auto r = ParseRevocationReason(s);
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(*r, RevocationReason::kKeyCompromise) << s;
  }
  EXPECT_EQ(*ParseRevocationReason("hold"), RevocationReason::kCertificateHold);
  EXPECT_EQ(*ParseRevocationReason("certificate-hold"), RevocationReason::kCertificateHold);
  EXPECT_EQ(*ParseRevocationReason("cessation_of_operation"),
            RevocationReason::kCessationOfOperation);
  EXPECT_EQ(*ParseRevocationReason("ca-compromise"), RevocationReason::kCaCompromise);
  auto bad = ParseRevocationReason("stolen");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("keyCompromise"));
  EXPECT_FALSE(ParseRevocationReason("").ok());
}

TEST(StoreNamesTest, CertStatusNames) {
  EXPECT_EQ(CertStatusName(CertStatus::kValid), "valid");
  EXPECT_EQ(CertStatusName(CertStatus::kHold), "hold");
  EXPECT_EQ(CertStatusName(CertStatus::kRevoked), "revoked");
}

TEST(StoreOpenTest, UnsupportedSchemesAreRefusedWithoutEchoingCredentials) {
  auto pg = Store::Open("mysql://admin:s3cret@db.example/fg");
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(pg.status().message(), HasSubstr("sqlite:"));
  EXPECT_THAT(pg.status().message(), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_FALSE(Store::Open("/tmp/x.db").ok());
  EXPECT_FALSE(Store::Open("sqlite:").ok());
}

TEST(StoreOpenTest, MissingDirectoryIsAnError) {
  auto s = Store::Open("sqlite:/nonexistent-fg-dir/sub/store.db");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("/nonexistent-fg-dir/sub/store.db"));
}

TEST(StoreNamesTest, EnrolmentKindNames) {
  EXPECT_EQ(EnrolmentKindName(EnrolmentKind::kOperator), "operator");
  EXPECT_EQ(EnrolmentKindName(EnrolmentKind::kBootstrapToken), "bootstrap_token");
  EXPECT_EQ(EnrolmentKindName(EnrolmentKind::kVendorCertificate), "vendor_certificate");
  EXPECT_EQ(EnrolmentKindName(EnrolmentKind::kLegacyCredential), "legacy_credential");
  EXPECT_EQ(EnrolmentKindName(EnrolmentKind::kRenewal), "renewal");
}

TEST(StoreNamesTest, EndpointStatusNamesRoundTrip) {
  for (auto s : {EndpointStatus::kActive, EndpointStatus::kDraining, EndpointStatus::kRetired}) {
    auto parsed = ParseEndpointStatus(EndpointStatusName(s));
    ASSERT_TRUE(parsed.ok()) << EndpointStatusName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(EndpointStatusName(EndpointStatus::kActive), "active");
  EXPECT_EQ(EndpointStatusName(EndpointStatus::kDraining), "draining");
  EXPECT_EQ(EndpointStatusName(EndpointStatus::kRetired), "retired");
  EXPECT_EQ(*ParseEndpointStatus("Retired"), EndpointStatus::kRetired);
  auto bad = ParseEndpointStatus("gone");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("draining"));
  EXPECT_FALSE(ParseEndpointStatus("").ok());
}

TEST(StoreNamesTest, ApiRolesRoundTripAndUnknownIsRefused) {
  for (ApiRole r : {ApiRole::kAdmin, ApiRole::kOperator, ApiRole::kSegw, ApiRole::kIngest, ApiRole::kPayments}) {
    auto parsed = ParseApiRole(ApiRoleName(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(ParseApiRole("root").ok());
}

}  // namespace
}  // namespace fg
