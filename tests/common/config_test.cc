#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace fg {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, DefaultsValidate) {
  Config c;
  Status s = c.Validate();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_LE(c.cert_max_validity_days, 365);
}

TEST(ConfigTest, MaxValidityAboveAYearIsRejectedNamingTheKey) {
  Config c;
  c.cert_max_validity_days = 366;
  Status s = c.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("max_validity_days"));

  auto loaded = Config::FromYaml("certificates:\n  max_validity_days: 3650\n");
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("certificates.max_validity_days"));

  c.cert_max_validity_days = 365;
  EXPECT_TRUE(c.Validate().ok());
}

TEST(ConfigTest, DefaultValidityMayNotExceedTheMaximum) {
  Config c;
  c.cert_max_validity_days = 30;
  c.cert_default_validity_days = 31;
  Status s = c.Validate();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("default_validity_days"));
}

TEST(ConfigTest, YamlRoundTrip) {
  Config c;
  c.public_url = "https://ca.example.net:8443";
  c.listen = "0.0.0.0:8443";
  c.store = "sqlite:/var/lib/femtoguard/store.db";
  c.ca_name = "Example Femto CA";
  c.root_validity_days = 3650;
  c.issuing_validity_days = 730;
  c.ocsp_signer_validity_days = 30;
  c.cert_default_validity_days = 14;
  c.cert_max_validity_days = 60;
  c.ocsp_response_validity_s = 600;
  c.crl_validity_s = 3600;

  auto back = Config::FromYaml(c.ToYaml());
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << c.ToYaml();
  EXPECT_EQ(back->public_url, c.public_url);
  EXPECT_EQ(back->listen, c.listen);
  EXPECT_EQ(back->store, c.store);
  EXPECT_EQ(back->ca_name, c.ca_name);
  EXPECT_EQ(back->root_validity_days, c.root_validity_days);
  EXPECT_EQ(back->issuing_validity_days, c.issuing_validity_days);
  EXPECT_EQ(back->ocsp_signer_validity_days, c.ocsp_signer_validity_days);
  EXPECT_EQ(back->cert_default_validity_days, c.cert_default_validity_days);
  EXPECT_EQ(back->cert_max_validity_days, c.cert_max_validity_days);
  EXPECT_EQ(back->ocsp_response_validity_s, c.ocsp_response_validity_s);
  EXPECT_EQ(back->crl_validity_s, c.crl_validity_s);
}

TEST(ConfigTest, ApiPlainHttpIsOffByDefaultRoundTripsAndIsTyped) {
  Config c;
  EXPECT_FALSE(c.api.plain_http) << "the API is TLS only unless an operator says otherwise";
  EXPECT_NE(c.ToYaml().find("plain_http: false"), std::string::npos) << c.ToYaml();
  auto absent = Config::FromYaml("listen: 127.0.0.1:8440\n");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->api.plain_http);
  c.api.plain_http = true;
  auto back = Config::FromYaml(c.ToYaml());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->api.plain_http);
  auto bad = Config::FromYaml("api:\n  plain_http: sometimes\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("api.plain_http"), std::string::npos) << bad.status().message();
}

TEST(ConfigTest, HttpLimitsRoundTripAndAreChecked) {
  Config c;
  c.http.max_connections = 5000;
  c.http.header_timeout_s = 3;
  c.http.segw_sources = {"10.20.0.0/24", "2001:db8::/48"};
  auto back = Config::FromYaml(c.ToYaml());
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << c.ToYaml();
  EXPECT_EQ(back->http.max_connections, 5000);
  EXPECT_EQ(back->http.header_timeout_s, 3);
  EXPECT_EQ(back->http.segw_sources, c.http.segw_sources);
  EXPECT_EQ(back->http.segw_connections, 64);

  auto bad = Config::FromYaml("http:\n  header_timeout_s: 0\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("http.header_timeout_s"));
}

TEST(ConfigTest, MissingKeysKeepDefaults) {
  auto c = Config::FromYaml("listen: 127.0.0.1:9000\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:9000");
  EXPECT_EQ(c->cert_max_validity_days, Config{}.cert_max_validity_days);
}

TEST(ConfigTest, BadYamlIsRefusedWithTheKey) {
  EXPECT_FALSE(Config::FromYaml("listen: [unclosed\n").ok());
  EXPECT_FALSE(Config::FromYaml("- just\n- a list\n").ok());
  auto wrong_type = Config::FromYaml("crl:\n  validity_s: daily\n");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("crl.validity_s"));
  auto bad_url = Config::FromYaml("public_url: ftp://x\n");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_THAT(bad_url.status().message(), HasSubstr("public_url"));
}

TEST(DataDirTest, ResolvesRelativeSqliteStoreAgainstTheDataDir) {
  DataDir dir("/srv/fg");
  Config c;
  EXPECT_EQ(dir.ResolveStoreUrl(c), "sqlite:/srv/fg/store.db");
  c.store = "sqlite:/abs/store.db";
  EXPECT_EQ(dir.ResolveStoreUrl(c), "sqlite:/abs/store.db");
}

}  // namespace
}  // namespace fg
