// PseudonymizeBytes keeps SHA-256 midstates, which only the low-level
// SHA256_* API can copy without an allocation per call (deprecated in
// OpenSSL 3 but present; EVP_MD_CTX_copy allocates a provider context).
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "common/pseudonym.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <stdexcept>

#include "common/ossl.h"

namespace fg {

struct Pseudonymizer::Midstates {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

Pseudonymizer::Pseudonymizer(std::string key) : key_(std::move(key)), midstates_(std::make_unique<Midstates>()) {
  // RFC 2104: K' = K (zero-padded to the block) or SHA-256(K) when longer.
  unsigned char block[SHA256_CBLOCK] = {};
  if (key_.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const unsigned char*>(key_.data()), key_.size(), block);
  } else {
    std::memcpy(block, key_.data(), key_.size());
  }
  unsigned char pad[SHA256_CBLOCK];
  for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&midstates_->inner);
  SHA256_Update(&midstates_->inner, pad, sizeof pad);
  for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&midstates_->outer);
  SHA256_Update(&midstates_->outer, pad, sizeof pad);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(block, sizeof block);
}

Pseudonymizer::~Pseudonymizer() {
  OPENSSL_cleanse(key_.data(), key_.size());
  OPENSSL_cleanse(midstates_.get(), sizeof(Midstates));
}

void Pseudonymizer::PseudonymizeBytes(std::string_view kind, std::string_view raw,
                                      uint8_t out[kPseudonymBytes]) const {
  SHA256_CTX ctx = midstates_->inner;
  SHA256_Update(&ctx, kind.data(), kind.size());
  SHA256_Update(&ctx, ":", 1);
  SHA256_Update(&ctx, raw.data(), raw.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &ctx);
  ctx = midstates_->outer;
  SHA256_Update(&ctx, digest, sizeof digest);
  SHA256_Final(digest, &ctx);
  std::memcpy(out, digest, kPseudonymBytes);
  // The context's block buffer held `raw`.
  OPENSSL_cleanse(&ctx, sizeof ctx);
  OPENSSL_cleanse(digest, sizeof digest);
}

std::string Pseudonymizer::Pseudonymize(std::string_view kind, std::string_view raw) const {
  // Same bytes as PseudonymizeBytes (a test holds them equal), through its
  // precomputed key schedule: the one-shot HMAC() fetched SHA-256 and
  // rebuilt the key pads per call, the bulk of a 189,000-device registry load.
  uint8_t md[kPseudonymBytes];
  PseudonymizeBytes(kind, raw, md);
  std::string out(kind);
  out += ':';
  out += ossl::HexLower(md, kPseudonymBytes);
  return out;
}

std::string Pseudonymizer::GenerateKey() {
  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return key;
}

}  // namespace fg
