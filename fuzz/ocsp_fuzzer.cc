// OCSP requests (RFC 6960): the DER body of a POST through
// OcspResponder::Respond, and the GET path suffix through
// DecodeOcspGetSuffix (then Respond on what it decodes). Every input is
// tried both ways; the corpus holds DER requests and GET suffixes.
//
// The env's CA is new on every run, so no stored seed can name it. Seeds
// carry marker bytes where a CertID's issuerNameHash and issuerKeyHash go
// (fuzz/make-seeds puts them there); they are replaced here by this run's
// issuer hashes, so that mutations explore the path for our own CA (cache,
// signing, the never-issued answer) and not only "unknown".

#include <openssl/ocsp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_env.h"
#include "pki/ocsp_responder.h"

namespace {

fg::OcspResponder* g_ocsp = nullptr;
std::vector<std::pair<std::string, std::string>> g_markers;  // marker -> hash

void AddMarkers(const EVP_MD* md, const char* name_marker, const char* key_marker) {
  X509* issuer = fg::fuzz::GetEnv().ca->issuing_cert();
  OCSP_CERTID* id = OCSP_cert_to_id(md, nullptr, issuer);
  ASN1_OCTET_STRING* name_hash = nullptr;
  ASN1_OCTET_STRING* key_hash = nullptr;
  if (!id || !OCSP_id_get0_info(&name_hash, nullptr, &key_hash, nullptr, id)) std::abort();
  auto text = [](ASN1_OCTET_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
  };
  if (std::strlen(name_marker) != static_cast<size_t>(ASN1_STRING_length(name_hash))) std::abort();
  g_markers.emplace_back(name_marker, text(name_hash));
  g_markers.emplace_back(key_marker, text(key_hash));
  OCSP_CERTID_free(id);
}

void ReplaceMarkers(std::string& bytes) {
  for (const auto& [marker, hash] : g_markers) {
    for (size_t at = bytes.find(marker); at != std::string::npos; at = bytes.find(marker, at + hash.size())) {
      bytes.replace(at, marker.size(), hash);
    }
  }
}

void Check(std::string_view request) {
  auto reply = g_ocsp->Respond(request);
  if (reply.der.empty()) __builtin_trap();  // always an OCSPResponse
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fg::fuzz::QuietLogs();
  auto& env = fg::fuzz::GetEnv();
  g_ocsp = new fg::OcspResponder(*env.store, *env.ca, 3600, /*max_cached_entries=*/4096);
  AddMarkers(EVP_sha1(), "FG-FUZZ-ISSUER-NAME1", "FG-FUZZ-ISSUER-KEY-1");
  AddMarkers(EVP_sha256(), "FG-FUZZ-ISSUER-NAME-SHA256-MARK1", "FG-FUZZ-ISSUER-KEY--SHA256-MARK1");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4 * fg::OcspResponder::kMaxRequestBytes) return -1;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReplaceMarkers(bytes);
  Check(bytes);
  auto der = fg::DecodeOcspGetSuffix(std::string_view(reinterpret_cast<const char*>(data), size));
  if (der.ok()) {
    ReplaceMarkers(*der);
    Check(*der);
  }
  return 0;
}
