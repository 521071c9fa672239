#pragma once

// The issuing CA key in a PKCS#11 token (an HSM; SoftHSM2 in tests).
// Signing goes through an EVP_PKEY from libp11's OpenSSL engine
// (libengine-pkcs11-openssl), so every signer in ca.cc works unchanged; the
// key pair is made inside the token (sensitive, not extractable) through the
// PKCS#11 C API, and its private half never leaves the token.
//
// Thread-safety: the engine is loaded once per process (one module per
// process); EnsureHsmKey and LoadHsmKey may be called from any thread.
// Signing with the returned key is serialised by HsmSignLock().

#include <mutex>
#include <string>
#include <string_view>

#include "common/ossl.h"
#include "common/status.h"

namespace fg {

// The parts of an RFC 7512 PKCS#11 URI that name a key: the token label and
// the object label (percent-decoded). Other attributes are accepted and
// ignored; a URI without token or object is InvalidArgument.
struct Pkcs11Uri {
  std::string token;
  std::string object;
};
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri);

// Makes a P-256 key pair labelled `uri`'s object in `uri`'s token unless
// the token already holds a private key with that label. Returns true when
// it made one. The PIN is the token's user PIN.
Result<bool> EnsureHsmKey(const std::string& module, const std::string& uri, const std::string& pin);

// The token's private key (public half included) as an EVP_PKEY.
Result<ossl::EvpPkeyPtr> LoadHsmKey(const std::string& module, const std::string& uri, const std::string& pin);

// Held while signing with an HSM key: libp11 shares one PKCS#11 session
// pool per engine, so signers take turns (a token signs one at a time anyway).
std::mutex& HsmSignLock();

}  // namespace fg
