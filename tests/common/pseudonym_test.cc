#include "common/pseudonym.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace fg {
namespace {

using ::testing::MatchesRegex;

const std::string kKeyA(Pseudonymizer::kKeyBytes, 'a');
const std::string kKeyB(Pseudonymizer::kKeyBytes, 'b');

TEST(PseudonymizerTest, IsStableForOneKey) {
  Pseudonymizer p(kKeyA);
  Pseudonymizer same_key(kKeyA);
  const std::string first = p.Pseudonymize("imsi", "450081234567890");
  EXPECT_EQ(p.Pseudonymize("imsi", "450081234567890"), first);
  EXPECT_EQ(same_key.Pseudonymize("imsi", "450081234567890"), first);
  EXPECT_NE(p.Pseudonymize("imsi", "450081234567891"), first);
}

TEST(PseudonymizerTest, HasTheDocumentedShapeAndHidesTheValue) {
  Pseudonymizer p(kKeyA);
  const std::string ps = p.Pseudonymize("imsi", "450081234567890");
  EXPECT_THAT(ps, MatchesRegex("imsi:[0-9a-f]{24}"));
  EXPECT_EQ(ps.find("450081234567890"), std::string::npos);
}

TEST(PseudonymizerTest, DependsOnTheKey) {
  Pseudonymizer a(kKeyA);
  Pseudonymizer b(kKeyB);
  EXPECT_NE(a.Pseudonymize("imsi", "450081234567890"), b.Pseudonymize("imsi", "450081234567890"));
}

TEST(PseudonymizerTest, SeparatesKinds) {
  Pseudonymizer p(kKeyA);
  const std::string imsi = p.Pseudonymize("imsi", "821012345678");
  const std::string msisdn = p.Pseudonymize("msisdn", "821012345678");
  EXPECT_THAT(msisdn, MatchesRegex("msisdn:[0-9a-f]{24}"));
  // Same digits, different domains: the hashes differ, not just the labels.
  EXPECT_NE(imsi.substr(imsi.find(':') + 1), msisdn.substr(msisdn.find(':') + 1));
}

// Known answers, computed independently (Python's hmac module): HMAC-SHA256
// of "<kind>:<value>", first 12 bytes. Pseudonyms already stored in a data
// dir must never change with the implementation.
TEST(PseudonymizerTest, IsHmacSha256OfKindAndValue) {
  EXPECT_EQ(Pseudonymizer(kKeyA).Pseudonymize("imsi", "450081234567890"), "imsi:0d70c21a6969b03eed5b806c");
  // A key longer than SHA-256's block is hashed first (RFC 2104).
  EXPECT_EQ(Pseudonymizer(std::string(100, 'k')).Pseudonymize("msisdn", "821012345678"),
            "msisdn:f58aac8be9c372a3b5090be6");
  uint8_t bytes[Pseudonymizer::kPseudonymBytes];
  Pseudonymizer(kKeyA).PseudonymizeBytes("imsi", "450081234567890", bytes);
  EXPECT_EQ(bytes[0], 0x0d);
  EXPECT_EQ(bytes[11], 0x6c);
}

// PseudonymizeBytes hashes short messages as one padded block on the key's
// midstates and longer ones through SHA256_Update: both must be HMAC, on
// either side of the one-block boundary (55 message bytes) and beyond.
TEST(PseudonymizerTest, AgreesWithOneShotHmacForEveryMessageLength) {
  const std::string key = kKeyA;
  Pseudonymizer p(key);
  for (size_t n = 0; n <= 140; ++n) {
    std::string raw;
    for (size_t i = 0; i < n; ++i) raw.push_back(static_cast<char>('0' + (i * 7 + n) % 10));
    const std::string message = "imsi:" + raw;
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int expected_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), expected, &expected_len);
    ASSERT_EQ(expected_len, 32u);
    uint8_t got[Pseudonymizer::kPseudonymBytes];
    p.PseudonymizeBytes("imsi", raw, got);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(got), sizeof got),
              std::string(reinterpret_cast<char*>(expected), Pseudonymizer::kPseudonymBytes))
        << "message of " << message.size() << " bytes";
  }
}

TEST(PseudonymizerTest, GeneratedKeysAreFreshAndFullLength) {
  const std::string k1 = Pseudonymizer::GenerateKey();
  const std::string k2 = Pseudonymizer::GenerateKey();
  EXPECT_EQ(k1.size(), Pseudonymizer::kKeyBytes);
  EXPECT_NE(k1, k2);
}

}  // namespace
}  // namespace fg
