#pragma once

// Keyed pseudonymization of subscriber identities (IMSI, IMEI, MSISDN).
// Raw identifiers go in, HMAC-SHA256 pseudonyms come out; the raw value is
// never kept. Thread-safe: immutable after construction.

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

  // Fresh random key material.
  static std::string GenerateKey();

 private:
  std::string key_;
};

}  // namespace fg
