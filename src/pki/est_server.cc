#include "pki/est_server.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/ids.h"
#include "common/metrics.h"

namespace fg {
namespace {

Counter& Requests(std::string_view operation, const char* result) {
  return Metrics::Global().GetCounter(
      "femtoguard_est_requests_total",
      "operation=\"" + std::string(operation) + "\",result=\"" + result + "\"",
      "EST requests handled, by operation and result");
}

const char* ResultOf(int status) {
  if (status < 300) return "ok";
  if (status == 401) return "unauthorized";
  if (status == 403) return "refused";
  if (status == 429) return "throttled";
  if (status >= 500) return "error";
  return "malformed";
}

EstReply Text(int status, std::string text) {
  EstReply r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(text);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
  return r;
}

EstReply Unauthorized(std::string why) {
  EstReply r = Text(401, std::move(why));
  r.headers.emplace_back("WWW-Authenticate",
                         std::string("Basic realm=\"") + EstServer::kRealm + "\"");
  return r;
}

EstReply Base64Body(std::string content_type, std::string_view der) {
  EstReply r;
  r.content_type = std::move(content_type);
  r.body = EncodeBase64(der);
  r.headers.emplace_back("Content-Transfer-Encoding", "base64");
  return r;
}

// The media type without parameters, lower case, trimmed.
std::string MediaType(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Tlv(unsigned char tag, std::string_view content) {
  std::string out(1, static_cast<char>(tag));
  size_t n = content.size();
  if (n < 0x80) {
    out += static_cast<char>(n);
  } else {
    std::string len;
    for (size_t v = n; v != 0; v >>= 8) len.insert(len.begin(), static_cast<char>(v & 0xFF));
    out += static_cast<char>(0x80 | len.size());
    out += len;
  }
  out.append(content);
  return out;
}

std::string OidDer(int nid) {
  const ASN1_OBJECT* obj = OBJ_nid2obj(nid);
  int n = i2d_ASN1_OBJECT(obj, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_ASN1_OBJECT(obj, &p);
  return out;
}

// CsrAttrs ::= SEQUENCE OF AttrOrOID (RFC 7030 §4.5.2): sign with
// ecdsa-with-SHA256, over an EC key on P-256 (the attribute form of RFC
// 7030's own example).
std::string CsrAttrsDer() {
  std::string ec_key_attr =
      Tlv(0x30, OidDer(NID_X9_62_id_ecPublicKey) + Tlv(0x31, OidDer(NID_X9_62_prime256v1)));
  return Tlv(0x30, OidDer(NID_ecdsa_with_SHA256) + ec_key_attr);
}

// "Basic base64(ref:secret)" -> {ref, secret}; false when not that shape.
bool ParseBasicAuth(std::string_view header, std::string* ref, std::string* secret) {
  constexpr std::string_view kScheme = "basic";
  if (header.size() <= kScheme.size() ||
      !EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme) ||
      !std::isspace(static_cast<unsigned char>(header[kScheme.size()]))) {
    return false;
  }
  auto decoded = DecodeBase64(header.substr(kScheme.size()));
  if (!decoded.ok()) return false;
  std::string& both = decoded.value();
  size_t colon = both.find(':');
  bool ok = colon != std::string::npos && colon > 0 && colon <= 128;
  if (ok) {
    *ref = both.substr(0, colon);
    *secret = both.substr(colon + 1);
  }
  OPENSSL_cleanse(both.data(), both.size());
  return ok;
}

}  // namespace

Result<std::string> DecodeBase64(std::string_view text) {
  static constexpr auto kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  size_t symbols = 0, padding = 0;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding != 0 || kTable[c] < 0) return Status::InvalidArgument("not base64");
    acc = (acc << 6) | static_cast<uint32_t>(kTable[c]);
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // A final group of 1 symbol is impossible; padding, if any, completes the group.
  if (symbols % 4 == 1 || padding > 2 || (padding != 0 && (symbols + padding) % 4 != 0)) {
    return Status::InvalidArgument("not base64 (truncated)");
  }
  return out;
}

std::string EncodeBase64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t i = 0; i < data.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    size_t n = std::min<size_t>(3, data.size() - i);
    if (n > 1) v |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    if (n > 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += n > 1 ? kAlphabet[(v >> 6) & 63] : '=';
    out += n > 2 ? kAlphabet[v & 63] : '=';
  }
  return out;
}

Result<std::string> CertsOnlyPkcs7(const std::vector<X509*>& certs) {
  ossl::Ptr<PKCS7, PKCS7_free> p7(PKCS7_new());
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1 ||
      PKCS7_content_new(p7.get(), NID_pkcs7_data) != 1) {
    return ossl::Error("PKCS#7");
  }
  // Degenerate: no content (encapContentInfo of type data, absent), no signers.
  PKCS7_set_detached(p7.get(), 1);
  for (X509* c : certs) {
    if (PKCS7_add_certificate(p7.get(), c) != 1) return ossl::Error("PKCS#7 certificate");
  }
  int n = i2d_PKCS7(p7.get(), nullptr);
  if (n <= 0) return ossl::Error("PKCS#7 encoding");
  std::string der(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_PKCS7(p7.get(), &p);
  return der;
}

PresentedCredential CredentialFromPeerChain(Enrolment& enrolment,
                                            std::span<const std::string> chain_der) {
  if (chain_der.empty()) return {};
  std::vector<ossl::X509Ptr> owned;
  for (const std::string& der : chain_der) {
    auto cert = ossl::CertFromDer(der);
    if (!cert.ok()) {
      if (owned.empty()) return {};  // the leaf must parse; a bad intermediate is simply left out
      continue;
    }
    owned.push_back(std::move(cert).value());
  }
  std::vector<X509*> rest;
  for (size_t i = 1; i < owned.size(); ++i) rest.push_back(owned[i].get());
  PresentedCredential cred = enrolment.FromCertificate(owned[0].get(), rest);
  ERR_clear_error();
  return cred;
}

EstServer::EstServer(Enrolment& enrolment) : enrolment_(enrolment) {
  const CertificateAuthority& ca = enrolment_.ca();
  auto p7 = CertsOnlyPkcs7({ca.issuing_cert(), ca.root_cert()});
  if (p7.ok()) {
    cacerts_body_ = EncodeBase64(*p7);
  } else {
    spdlog::error("EST: cannot build the cacerts response: {}", p7.status().ToString());
  }
  csrattrs_body_ = EncodeBase64(CsrAttrsDer());
}

EstReply EstServer::Handle(const EstRequest& request) {
  std::string_view op = request.operation;
  if (!op.empty() && op.back() == '/') op.remove_suffix(1);
  // RFC 7030 §3.2.2: an optional CA label segment before the operation.
  if (size_t slash = op.find('/'); slash != std::string_view::npos) {
    std::string_view label = op.substr(0, slash);
    op = op.substr(slash + 1);
    if (label.empty() || op.find('/') != std::string_view::npos) op = {};
  }
  const char* method = nullptr;
  if (op == "cacerts" || op == "csrattrs") method = "GET";
  if (op == "simpleenroll" || op == "simplereenroll") method = "POST";
  std::string_view counted = method != nullptr ? op : std::string_view("unknown");

  EstReply reply;
  const bool enrols = op == "simpleenroll" || op == "simplereenroll";
  if (enrols && request.tls && !enrolment_.AllowSource(request.source_ip, "est")) {
    // Too many refusals from this source this minute: not even parsed.
    reply = Text(429, "too many refused enrolment attempts from this address; try again later");
    reply.headers.emplace_back("Retry-After", std::to_string(enrolment_.RetryAfterSeconds()));
  } else if (!request.tls) {
    reply = Text(403, "EST requires TLS (RFC 7030 §3.3): use the TLS listener");
  } else if (method == nullptr) {
    reply = Text(404, "unknown or unsupported EST operation");
  } else if (request.method != method) {
    reply = Text(405, std::string("EST ") + std::string(op) + " takes " + method);
    reply.headers.emplace_back("Allow", method);
  } else if (op == "cacerts") {
    reply = CaCerts();
  } else if (op == "csrattrs") {
    reply = CsrAttrs();
  } else if (op == "simpleenroll") {
    reply = SimpleEnroll(request);
  } else {
    reply = SimpleReenroll(request);
  }
  Requests(counted, ResultOf(reply.status)).Inc();
  return reply;
}

EstReply EstServer::CaCerts() const {
  if (cacerts_body_.empty()) return Text(500, "CA certificates unavailable");
  EstReply r;
  r.content_type = "application/pkcs7-mime";
  r.body = cacerts_body_;
  r.headers.emplace_back("Content-Transfer-Encoding", "base64");
  return r;
}

EstReply EstServer::CsrAttrs() const {
  EstReply r;
  r.content_type = "application/csrattrs";
  r.body = csrattrs_body_;
  r.headers.emplace_back("Content-Transfer-Encoding", "base64");
  return r;
}

EstReply EstServer::SimpleEnroll(const EstRequest& request) {
  PresentedCredential cred;
  if (!request.authorization.empty()) {
    // HTTP Basic with a bootstrap token: user = reference, password = secret.
    std::string ref, secret;
    if (!ParseBasicAuth(request.authorization, &ref, &secret)) {
      enrolment_.RecordRefusal(RefusalReason::kUntrusted, "", "",
                               "EST Authorization header is not HTTP Basic", "est",
                               request.source_ip);
      return Unauthorized(
          "EST accepts HTTP Basic authentication with a bootstrap token (REF:SECRET)");
    }
    if (!IsValidIdentifier(IdKind::kToken, ref, 64)) {
      // Refused before it is looked up, logged or stored (docs/identifiers.md).
      OPENSSL_cleanse(secret.data(), secret.size());
      CountBadIdentifier("est", "reference");
      enrolment_.RecordRefusal(RefusalReason::kBadIdentifier, "", "",
                               "EST Basic-auth reference is not a valid reference", "est",
                               request.source_ip);
      return Unauthorized(
          "the bootstrap token reference is not a valid reference (docs/identifiers.md)");
    }
    std::string expected = enrolment_.secrets().SecretFor(ref);
    bool match = secret.size() == expected.size() &&
                 CRYPTO_memcmp(secret.data(), expected.data(), expected.size()) == 0;
    OPENSSL_cleanse(secret.data(), secret.size());
    OPENSSL_cleanse(expected.data(), expected.size());
    if (!match) {
      spdlog::info("EST: wrong bootstrap token secret for '{}' from {}", Printable(ref),
                   Printable(request.source_ip));
      enrolment_.RecordRefusal(RefusalReason::kTokenSecret, "", "",
                               "wrong bootstrap token secret for " + ref, "est", request.source_ip);
      return Unauthorized("bootstrap token reference or secret is wrong");
    }
    cred = enrolment_.FromToken(ref);
  } else {
    cred = CredentialFromPeerChain(enrolment_, request.peer_chain_der);
    if (cred.kind == EnrolmentKind::kOperator) {
      if (!request.peer_chain_der.empty()) {
        auto leaf = ossl::CertFromDer(request.peer_chain_der.front());
        enrolment_.RecordRefusal(
            RefusalReason::kUntrusted, "",
            leaf.ok() ? DeviceIdFromName(X509_get_subject_name(leaf->get())) : "",
            "EST client certificate not trusted for enrolment", "est", request.source_ip);
      } else {
        enrolment_.RecordRefusal(RefusalReason::kUntrusted, "", "",
                                 "EST simpleenroll without a credential", "est", request.source_ip);
      }
      return Unauthorized(
          "simpleenroll needs a trusted TLS client certificate or HTTP Basic authentication with a "
          "bootstrap "
          "token");
    }
  }
  // A used token goes on to Enrolment::Issue, which re-delivers the
  // certificate when the same key retries in time and refuses otherwise.
  if (!cred.refusal.empty() && cred.refusal_reason != RefusalReason::kTokenUsed) {
    enrolment_.RecordRefusal(cred.refusal_reason, cred.refusal_rule, cred.device, cred.refusal,
                             "est", request.source_ip);
    return Text(403, cred.refusal);
  }
  return IssueFromBody(request, cred, /*reenroll=*/false);
}

EstReply EstServer::SimpleReenroll(const EstRequest& request) {
  if (request.peer_chain_der.empty()) {
    return Text(401,
                "simplereenroll needs the device's current certificate as TLS client certificate");
  }
  PresentedCredential cred = CredentialFromPeerChain(enrolment_, request.peer_chain_der);
  if (cred.kind == EnrolmentKind::kOperator) {
    enrolment_.RecordRefusal(RefusalReason::kUntrusted, "", "",
                             "simplereenroll with a certificate not of this CA", "est",
                             request.source_ip);
    return Text(401, "the TLS client certificate is not a certificate of this CA");
  }
  if (cred.kind != EnrolmentKind::kRenewal) {
    return Text(403, "simplereenroll needs the device's current femtoguard certificate, not a " +
                         std::string(EnrolmentKindName(cred.kind)) + " (use simpleenroll)");
  }
  if (!cred.refusal.empty()) {
    enrolment_.RecordRefusal(cred.refusal_reason, cred.refusal_rule, cred.device, cred.refusal,
                             "est", request.source_ip);
    return Text(403, cred.refusal);
  }
  return IssueFromBody(request, cred, /*reenroll=*/true);
}

EstReply EstServer::IssueFromBody(const EstRequest& request, const PresentedCredential& cred,
                                  bool reenroll) {
  std::string media = MediaType(request.content_type);
  if (!media.empty() && media != "application/pkcs10") {
    return Text(415, "the request body must be application/pkcs10 (base64 PKCS#10)");
  }
  auto der = DecodeBase64(request.body);
  if (!der.ok()) return Text(400, "the request body is not base64");
  if (der->empty() || der->size() > kMaxCsrBytes)
    return Text(400, "the request body is not a PKCS#10 CSR");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  ossl::X509ReqPtr csr(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
  if (!csr || p != reinterpret_cast<const unsigned char*>(der->data()) + der->size()) {
    ERR_clear_error();
    return Text(400, "the request body is not a PKCS#10 CSR");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (key == nullptr) {
    ERR_clear_error();
    return Text(400, "the CSR has no usable public key");
  }
  if (X509_REQ_verify(csr.get(), key) != 1) {
    ERR_clear_error();
    return Text(400, "the CSR signature does not verify (no proof of possession)");
  }
  std::string cn = CommonName(X509_REQ_get_subject_name(csr.get()));
  if (!cn.empty() && !IsValidIdentifier(IdKind::kDeviceId, cn)) {
    // Never echoed, stored or logged (docs/identifiers.md).
    CountBadIdentifier("est", "subject");
    enrolment_.RecordRefusal(RefusalReason::kBadIdentifier, "", cred.device,
                             "the CSR subject CN is not a valid device id", "est",
                             request.source_ip);
    return Text(400, "the CSR subject CN is not a valid device id (docs/identifiers.md)");
  }
  if (reenroll && cn != cred.device) {
    // RFC 7030 §4.2.2: the subject of a re-enrolment is the one being renewed.
    std::string why = "simplereenroll: the CSR subject CN '" + cn +
                      "' must be the renewed device '" + cred.device + "'";
    enrolment_.RecordRefusal(RefusalReason::kSubjectMismatch, "", cred.device, why, "est",
                             request.source_ip);
    return Text(403, why);
  }

  auto spki = ossl::SpkiDer(X509_REQ_get_X509_PUBKEY(csr.get()));
  if (!spki.ok()) return Text(400, "the CSR has no usable public key");
  auto issued = enrolment_.Issue(cred, cn, key, 0, request.source_ip, "est", *spki);
  if (!issued.ok()) {
    const Status& s = issued.status();
    if (s.code() == StatusCode::kInternal) return Text(500, "internal error");
    if (s.code() == StatusCode::kUnavailable) return Text(503, s.message());
    return Text(403, s.message());
  }
  auto p7 = CertsOnlyPkcs7({issued->cert.get()});
  if (!p7.ok()) return Text(500, "internal error");
  spdlog::info("EST: {} issued {} to {} ({})", reenroll ? "simplereenroll" : "simpleenroll",
               issued->record.serial, issued->record.device, EnrolmentKindName(cred.kind));
  return Base64Body("application/pkcs7-mime; smime-type=certs-only", *p7);
}

}  // namespace fg
