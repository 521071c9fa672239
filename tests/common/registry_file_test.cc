#include "common/registry_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// DESIGN.md §3.2, on one line.
constexpr char kExampleLine[] =
    R"({"device":"FG-0000001","status":"active","owner":"acct-81723","mode":"closed",)"
    R"("site":{"lat":37.4786,"lon":126.8647,"radius_m":150},)"
    R"("prefixes":["211.36.128.0/20"],"csg":["450081234567890"],)"
    R"("cert_fp":"sha256:9f86d0...","max_ues":8})";
constexpr char kRawImsi[] = "450081234567890";

class RegistryLineTest : public ::testing::Test {
 protected:
  Pseudonymizer pseudonymizer_{std::string(Pseudonymizer::kKeyBytes, 'k')};

  // The error message for `line`, which must be refused.
  std::string ErrorFor(const std::string& line) {
    auto d = ParseRegistryLine(line, pseudonymizer_);
    EXPECT_FALSE(d.ok()) << "accepted: " << line;
    if (d.ok()) return "";
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    return d.status().message();
  }
};

TEST_F(RegistryLineTest, DesignExampleParses) {
  auto d = ParseRegistryLine(kExampleLine, pseudonymizer_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "FG-0000001");
  EXPECT_EQ(d->status, DeviceStatus::kActive);
  EXPECT_EQ(d->owner, "acct-81723");
  EXPECT_EQ(d->mode, AccessMode::kClosed);
  ASSERT_TRUE(d->site.has_value());
  EXPECT_DOUBLE_EQ(d->site->lat, 37.4786);
  EXPECT_DOUBLE_EQ(d->site->lon, 126.8647);
  EXPECT_DOUBLE_EQ(d->site->radius_m, 150);
  EXPECT_THAT(d->prefixes, ElementsAre("211.36.128.0/20"));
  EXPECT_EQ(d->cert_fp, "sha256:9f86d0...");
  EXPECT_EQ(d->max_ues, 8);
}

TEST_F(RegistryLineTest, CsgImsisArePseudonymizedAndTheRawValueIsGone) {
  auto d = ParseRegistryLine(kExampleLine, pseudonymizer_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->csg, ElementsAre(pseudonymizer_.Pseudonymize("imsi", kRawImsi)));
  // Nowhere in the Device, not even as a substring.
  std::string all = d->id + "|" + d->owner + "|" + d->cert_fp;
  for (const auto& p : d->prefixes) all += "|" + p;
  for (const auto& m : d->csg) all += "|" + m;
  EXPECT_THAT(all, Not(HasSubstr(kRawImsi)));
}

TEST_F(RegistryLineTest, OptionalFieldsMayBeAbsent) {
  auto d = ParseRegistryLine(R"({"device":"FG-2"})", pseudonymizer_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->status, DeviceStatus::kProvisioned);
  EXPECT_EQ(d->mode, AccessMode::kClosed);
  EXPECT_FALSE(d->site.has_value());
  EXPECT_TRUE(d->prefixes.empty());
  EXPECT_TRUE(d->csg.empty());
  EXPECT_EQ(d->max_ues, 0);
}

TEST_F(RegistryLineTest, PrefixesAreCanonicalised) {
  auto d = ParseRegistryLine(R"({"device":"FG-2","prefixes":["211.36.130.7/20"]})", pseudonymizer_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->prefixes, ElementsAre("211.36.128.0/20"));
}

TEST_F(RegistryLineTest, ErrorsNameTheField) {
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1",)"), HasSubstr("JSON"));
  EXPECT_THAT(ErrorFor("not json at all"), HasSubstr("JSON"));
  EXPECT_THAT(ErrorFor(R"(["FG-1"])"), HasSubstr("object"));
  EXPECT_THAT(ErrorFor(R"({"status":"active"})"), HasSubstr("device"));
  EXPECT_THAT(ErrorFor(R"({"device":42})"), HasSubstr("device"));
  EXPECT_THAT(ErrorFor(R"({"device":"bad id"})"), HasSubstr("device"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","status":"enabled"})"), HasSubstr("status"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","mode":"csg"})"), HasSubstr("mode"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","prefixes":["211.36.128.0"]})"), HasSubstr("prefixes"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","prefixes":["300.1.1.1/8"]})"), HasSubstr("prefixes"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","prefixes":"10.0.0.0/8"})"), HasSubstr("prefixes"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","site":{"lat":91,"lon":0}})"), HasSubstr("site.lat"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","site":{"lat":1}})"), HasSubstr("site.lon"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","cert_fp":"md5:00"})"), HasSubstr("cert_fp"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","max_ues":-1})"), HasSubstr("max_ues"));
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","max_ues":"8"})"), HasSubstr("max_ues"));
}

TEST_F(RegistryLineTest, BadImsiIsRefusedWithoutEchoingIt) {
  for (const char* imsi : {"45008123456789X", "4500812345678901234", "123", ""}) {
    const std::string line = std::string(R"({"device":"FG-1","csg":[")") + imsi + R"("]})";
    const std::string msg = ErrorFor(line);
    EXPECT_THAT(msg, HasSubstr("csg")) << imsi;
    if (*imsi != '\0') {
      EXPECT_THAT(msg, Not(HasSubstr(imsi)));
    }
  }
  EXPECT_THAT(ErrorFor(R"({"device":"FG-1","csg":[450081234567890]})"), HasSubstr("csg"));
}

TEST(CanonicalCidrTest, ClearsHostBits) {
  EXPECT_EQ(*CanonicalCidr("211.36.130.7/20"), "211.36.128.0/20");
  EXPECT_EQ(*CanonicalCidr("10.1.2.3/8"), "10.0.0.0/8");
  EXPECT_EQ(*CanonicalCidr("10.1.2.3/32"), "10.1.2.3/32");
  EXPECT_EQ(*CanonicalCidr("10.1.2.3/0"), "0.0.0.0/0");
  EXPECT_EQ(*CanonicalCidr("192.168.1.255/25"), "192.168.1.128/25");
  EXPECT_EQ(*CanonicalCidr("2001:db8:1:2::1/32"), "2001:db8::/32");
  EXPECT_EQ(*CanonicalCidr("2001:DB8::1/128"), "2001:db8::1/128");
}

TEST(CanonicalCidrTest, RefusesMalformedPrefixes) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0/8",
                          "10.0.0.0/8x", "x/8", "/8", "2001:db8::/129", "10.0.0.0/ 8"}) {
    auto c = CanonicalCidr(bad);
    EXPECT_FALSE(c.ok()) << "accepted '" << bad << "' as " << (c.ok() ? *c : "");
  }
}

}  // namespace
}  // namespace fg
