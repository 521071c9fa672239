#include "common/pseudonym.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "common/ossl.h"

namespace fg {

Pseudonymizer::Pseudonymizer(std::string key) : key_(std::move(key)) {}

Pseudonymizer::~Pseudonymizer() { OPENSSL_cleanse(key_.data(), key_.size()); }

std::string Pseudonymizer::Pseudonymize(std::string_view kind, std::string_view raw) const {
  std::string msg;
  msg.reserve(kind.size() + 1 + raw.size());
  msg.append(kind).append(1, ':').append(raw);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  OPENSSL_cleanse(msg.data(), msg.size());
  std::string out(kind);
  out += ':';
  out += ossl::HexLower(md, 12);
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
