// Every node's URLs in device certificates (docs/cluster.md): the AIA OCSP
// URIs and the CDP URIs name every node of the cluster, in url_order; and
// the node bundle's container opens with the right passphrase only.

#include <gmock/gmock.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <string>
#include <vector>

#include "pki/node_bundle.h"
#include "pki_fixture.h"

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string UriOf(const GENERAL_NAME* name) {
  if (name->type != GEN_URI) return "(not a URI)";
  const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
}

std::vector<std::string> OcspUris(X509* cert) {
  std::vector<std::string> out;
  auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr));
  for (int i = 0; aia != nullptr && i < sk_ACCESS_DESCRIPTION_num(aia); ++i) {
    ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia, i);
    if (OBJ_obj2nid(ad->method) == NID_ad_OCSP) out.push_back(UriOf(ad->location));
  }
  AUTHORITY_INFO_ACCESS_free(aia);
  return out;
}

std::vector<std::string> CrlUris(X509* cert) {
  std::vector<std::string> out;
  auto* cdp = static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr));
  for (int i = 0; cdp != nullptr && i < sk_DIST_POINT_num(cdp); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(cdp, i);
    if (dp->distpoint == nullptr || dp->distpoint->type != 0) continue;
    GENERAL_NAMES* names = dp->distpoint->name.fullname;
    for (int k = 0; k < sk_GENERAL_NAME_num(names); ++k) out.push_back(UriOf(sk_GENERAL_NAME_value(names, k)));
  }
  CRL_DIST_POINTS_free(cdp);
  return out;
}

class ClusterUrlsTest : public PkiFixture {
 protected:
  ossl::X509Ptr Sign() {
    auto key = NewKey();
    unsigned char* der = nullptr;
    int n = i2d_PUBKEY(key.get(), &der);
    std::string spki_der(reinterpret_cast<char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
    auto serial = CertificateAuthority::RandomSerial();
    EXPECT_TRUE(serial.ok());
    auto cert = ca_->SignDeviceCertificate("FG-0000001", spki_der, NowMillis(), NowMillis() + 86400000,
                                           serial->get());
    EXPECT_TRUE(cert.ok()) << cert.status().ToString();
    return std::move(cert).value();
  }
};

TEST_F(ClusterUrlsTest, ASingleNodeNamesItsPublicUrlOnly) {
  auto cert = Sign();
  EXPECT_THAT(OcspUris(cert.get()), ElementsAre(config_.public_url + "/ocsp"));
  EXPECT_THAT(CrlUris(cert.get()), ElementsAre(config_.public_url + "/crl"));
}

TEST_F(ClusterUrlsTest, EveryNodeInUrlOrder) {
  // The order is the operator's (B before A), not the alphabet's or the joining order.
  ca_->SetNodeUrls({"http://b.example:8440", "http://a.example:8440"});
  auto cert = Sign();
  EXPECT_THAT(OcspUris(cert.get()), ElementsAre("http://b.example:8440/ocsp", "http://a.example:8440/ocsp"));
  EXPECT_THAT(CrlUris(cert.get()), ElementsAre("http://b.example:8440/crl", "http://a.example:8440/crl"));
}

TEST_F(ClusterUrlsTest, DuplicatesTrailingSlashesAndCommasAreDropped) {
  ca_->SetNodeUrls({"http://b.example/", "http://b.example", "", "http://x,y", "http://a.example"});
  EXPECT_THAT(ca_->NodeUrls(), ElementsAre("http://b.example", "http://a.example"));
  auto cert = Sign();
  EXPECT_THAT(OcspUris(cert.get()), ElementsAre("http://b.example/ocsp", "http://a.example/ocsp"));
}

TEST_F(ClusterUrlsTest, AnEmptyListFallsBackToThePublicUrl) {
  ca_->SetNodeUrls({"http://b.example"});
  ca_->SetNodeUrls({});
  auto cert = Sign();
  EXPECT_THAT(OcspUris(cert.get()), ElementsAre(config_.public_url + "/ocsp"));
}

TEST_F(ClusterUrlsTest, TheBundleOpensWithTheRightPassphraseOnly) {
  // The data dir's shared secrets, as init makes them.
  std::filesystem::create_directories(dir_->SecretsDir());
  ASSERT_TRUE(WriteFileAtomic(dir_->PseudonymKeyPath(), std::string(32, '\x07'), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_->ConfigPath(), config_.ToYaml(), 0644).ok());
  auto bundle = CollectNodeBundle(*dir_, config_);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_THAT(bundle->root_fp, HasSubstr("sha256:"));
  bool has_key = false, has_pseudonym = false;
  for (const auto& f : bundle->files) {
    if (f.path == "ca/issuing.key") has_key = f.mode == 0600;
    if (f.path == "secrets/pseudonym.key") has_pseudonym = f.data == std::string(32, '\x07');
    EXPECT_NE(f.path, "secrets/ca.passphrase");
  }
  EXPECT_TRUE(has_key);
  EXPECT_TRUE(has_pseudonym);
  // Node-local keys stay home.
  EXPECT_THAT(bundle->config_yaml, Not(HasSubstr("listen")));
  EXPECT_THAT(bundle->config_yaml, Not(HasSubstr("public_url")));
  EXPECT_THAT(bundle->config_yaml, HasSubstr("heartbeat_s"));

  auto sealed = SealNodeBundle(*bundle, "right passphrase", 1000);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  // No secret in clear in the container.
  EXPECT_EQ(sealed->find("BEGIN"), std::string::npos);
  EXPECT_EQ(sealed->find(std::string(32, '\x07')), std::string::npos);

  auto wrong = OpenNodeBundle(*sealed, "wrong passphrase");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("wrong CA passphrase"));

  auto opened = OpenNodeBundle(*sealed, "right passphrase");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->root_fp, bundle->root_fp);
  ASSERT_EQ(opened->files.size(), bundle->files.size());
  for (size_t i = 0; i < opened->files.size(); ++i) {
    EXPECT_EQ(opened->files[i].path, bundle->files[i].path);
    EXPECT_EQ(opened->files[i].data, bundle->files[i].data) << opened->files[i].path;
    EXPECT_EQ(opened->files[i].mode, bundle->files[i].mode) << opened->files[i].path;
  }

  // Not a container at all: a clear error, not a crash.
  auto junk = OpenNodeBundle("not DER", "right passphrase");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), StatusCode::kInvalidArgument);
  // Truncated.
  auto cut = OpenNodeBundle(sealed->substr(0, sealed->size() / 2), "right passphrase");
  EXPECT_FALSE(cut.ok());
}

}  // namespace
}  // namespace fg
