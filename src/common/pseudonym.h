#pragma once

// Keyed pseudonymization of subscriber identities (IMSI, IMEI, MSISDN).
// Raw identifiers go in, HMAC-SHA256 pseudonyms come out; the raw value is
// never kept. Thread-safe: immutable after construction.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fg {

class Pseudonymizer {
 public:
  static constexpr size_t kKeyBytes = 32;

  // `key` is raw key material (kKeyBytes bytes recommended).
  explicit Pseudonymizer(std::string key);
  ~Pseudonymizer();
  Pseudonymizer(const Pseudonymizer&) = delete;
  Pseudonymizer& operator=(const Pseudonymizer&) = delete;

  // "<kind>:<24 hex>" where kind is e.g. "imsi". Same key + kind + value ->
  // same pseudonym; the kind separates domains so an IMSI and an MSISDN
  // with equal digits do not collide.
  std::string Pseudonymize(std::string_view kind, std::string_view raw) const;

  // The 12 bytes that Pseudonymize's 24 hex digits carry, without building
  // strings: the event decoder's hot path. The HMAC key schedule (inner and
  // outer SHA-256 midstates) is computed once at construction; the scratch
  // state that saw `raw` is wiped before returning.
  static constexpr size_t kPseudonymBytes = 12;
  void PseudonymizeBytes(std::string_view kind, std::string_view raw, uint8_t out[kPseudonymBytes]) const;

  // Fresh random key material.
  static std::string GenerateKey();

 private:
  struct Midstates;  // HMAC-SHA256 ipad/opad states after the key block

  std::string key_;
  std::unique_ptr<Midstates> midstates_;
};

}  // namespace fg
