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

namespace {

void StoreBe32(unsigned char* p, uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

// FIPS 180-4 padding of a message that ends in `block` at `len` (< 56)
// after `prefix_bytes` already hashed: 0x80, zeros, the bit length.
void PadFinalBlock(unsigned char block[SHA256_CBLOCK], size_t len, uint64_t prefix_bytes) {
  block[len] = 0x80;
  const uint64_t bits = (prefix_bytes + len) * 8;
  for (int i = 0; i < 8; ++i) block[SHA256_CBLOCK - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
}

}  // namespace

void Pseudonymizer::PseudonymizeBytes(std::string_view kind, std::string_view raw,
                                      uint8_t out[kPseudonymBytes]) const {
  // Scratch that saw `raw` (the message block and the inner state after it)
  // in one place, wiped once at the end.
  struct Scratch {
    unsigned char block[SHA256_CBLOCK];
    SHA256_CTX ctx;
  } s;
  const size_t len = kind.size() + 1 + raw.size();
  if (len < SHA256_CBLOCK - 8) {
    // Identities are short ("imsi:" + 15 digits): the inner message fits
    // one block after the key block, the outer one too, so each hash is
    // one compression on the midstate (no Update/Final bookkeeping; the
    // decoder's hot path runs this for every identity of every event).
    std::memset(s.block, 0, sizeof s.block);
    std::memcpy(s.block, kind.data(), kind.size());
    s.block[kind.size()] = ':';
    std::memcpy(s.block + kind.size() + 1, raw.data(), raw.size());
    PadFinalBlock(s.block, len, SHA256_CBLOCK);
    s.ctx = midstates_->inner;
    SHA256_Transform(&s.ctx, s.block);
    std::memset(s.block, 0, sizeof s.block);
    for (int i = 0; i < 8; ++i) StoreBe32(s.block + 4 * i, s.ctx.h[i]);
    PadFinalBlock(s.block, SHA256_DIGEST_LENGTH, SHA256_CBLOCK);
    s.ctx = midstates_->outer;
    SHA256_Transform(&s.ctx, s.block);
    for (size_t i = 0; i < kPseudonymBytes / 4; ++i) StoreBe32(out + 4 * i, s.ctx.h[i]);
  } else {
    s.ctx = midstates_->inner;
    SHA256_Update(&s.ctx, kind.data(), kind.size());
    SHA256_Update(&s.ctx, ":", 1);
    SHA256_Update(&s.ctx, raw.data(), raw.size());
    unsigned char* digest = s.block;  // the inner digest, then the outer
    SHA256_Final(digest, &s.ctx);
    s.ctx = midstates_->outer;
    SHA256_Update(&s.ctx, digest, SHA256_DIGEST_LENGTH);
    SHA256_Final(digest, &s.ctx);
    std::memcpy(out, digest, kPseudonymBytes);
  }
  OPENSSL_cleanse(&s, sizeof s);
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
