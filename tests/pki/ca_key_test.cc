// CA keys at rest (issue 13): the root and issuing keys use scrypt, the
// service keys a secret derived from the issuing key; keys written the old
// way (PBKDF2, 2,048 iterations, every key under the passphrase) still load,
// keep their identity and are re-encrypted.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/config.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "testing/harness.h"

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadAll;
using testing::Run;

constexpr const char* kPass = "ca-key-test-passphrase";

// `openssl asn1parse` of a PEM key file: shows the PBES2 key derivation.
std::string Asn1(const std::string& path) { return Run({"openssl", "asn1parse", "-in", path}).out; }

// Whether `openssl pkey` decrypts `path` with `pass` (output discarded: it
// would be the key in clear).
bool Decrypts(const std::string& path, const std::string& pass) {
  return Run({"openssl", "pkey", "-in", path, "-passin", "pass:" + pass, "-noout"}).exit_code == 0;
}

class CaKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<DataDir>(tmp_.path()); }
  void TearDown() override { CertificateAuthority::UseFastKdfForTest(false); }
  std::string Ca(const std::string& file) const { return (dir_->CaDir() / file).string(); }

  testing::TempDir tmp_;
  std::unique_ptr<DataDir> dir_;
  Config config_;
};

TEST_F(CaKeyTest, CaKeysUseScryptAndServiceKeysADerivedSecret) {
  CertificateAuthority::UseFastKdfForTest(false);
  ASSERT_TRUE(CertificateAuthority::Create(*dir_, config_, kPass).ok());
  for (const char* f : {"root.key", "issuing.key"}) {
    std::string pem = ReadAll(Ca(f));
    EXPECT_THAT(pem, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----")) << f;
    EXPECT_THAT(Asn1(Ca(f)), HasSubstr(":scrypt")) << f;
    EXPECT_THAT(Asn1(Ca(f)), HasSubstr("INTEGER           :4000")) << f;  // N = 2^14
    EXPECT_TRUE(Decrypts(Ca(f), kPass)) << f;
  }
  for (const char* f : {"ocsp.key", "cmp.key", "tls.key"}) {
    EXPECT_THAT(ReadAll(Ca(f)), HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----")) << f;
    EXPECT_FALSE(Decrypts(Ca(f), kPass)) << f << ": not under the operator's passphrase";
  }
  auto ca = CertificateAuthority::Load(*dir_, config_, kPass);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  EXPECT_FALSE(CertificateAuthority::Load(*dir_, config_, "wrong passphrase").ok());
}

TEST_F(CaKeyTest, KeysWrittenTheOldWayStillLoadAndAreReEncrypted) {
  // The old layout: every key PKCS#8 under the passphrase, PBKDF2-SHA256 with
  // 2,048 iterations (PEM_write_bio_PKCS8PrivateKey's default), which is what
  // ossl::KeyToPkcs8Pem writes.
  CertificateAuthority::UseFastKdfForTest(true);
  ASSERT_TRUE(CertificateAuthority::Create(*dir_, config_, kPass).ok());
  std::string ocsp_cert_before;
  {
    auto ca = CertificateAuthority::Load(*dir_, config_, kPass);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    for (auto [file, key] : {std::pair{"ocsp.key", (*ca)->ocsp_key()}, std::pair{"cmp.key", (*ca)->cmp_key()},
                             std::pair{"tls.key", (*ca)->tls_key()}}) {
      auto pem = ossl::KeyToPkcs8Pem(key, kPass);
      ASSERT_TRUE(pem.ok());
      ASSERT_TRUE(WriteFileAtomic(Ca(file), *pem, 0600).ok());
    }
    ocsp_cert_before = ReadAll(Ca("ocsp.crt"));
  }
  for (const char* f : {"root.key", "issuing.key", "ocsp.key", "cmp.key", "tls.key"}) {
    ASSERT_THAT(Asn1(Ca(f)), HasSubstr("PBKDF2")) << f;
    ASSERT_THAT(Asn1(Ca(f)), Not(HasSubstr(":scrypt"))) << f;
    ASSERT_TRUE(Decrypts(Ca(f), kPass)) << f;
  }

  CertificateAuthority::UseFastKdfForTest(false);
  auto ca = CertificateAuthority::Load(*dir_, config_, kPass);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  // Same service credentials (not re-made), re-encrypted.
  EXPECT_EQ(ReadAll(Ca("ocsp.crt")), ocsp_cert_before);
  EXPECT_THAT(Asn1(Ca("issuing.key")), HasSubstr(":scrypt"));
  EXPECT_TRUE(Decrypts(Ca("issuing.key"), kPass));
  for (const char* f : {"ocsp.key", "cmp.key", "tls.key"}) EXPECT_FALSE(Decrypts(Ca(f), kPass)) << f;
  // The root key is not needed by Load, but is upgraded too.
  EXPECT_THAT(Asn1(Ca("root.key")), HasSubstr(":scrypt"));
  EXPECT_TRUE(Decrypts(Ca("root.key"), kPass));

  auto again = CertificateAuthority::Load(*dir_, config_, kPass);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ReadAll(Ca("ocsp.crt")), ocsp_cert_before);
}

}  // namespace
}  // namespace fg
