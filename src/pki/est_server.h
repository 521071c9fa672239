#pragma once

// EST, Enrollment over Secure Transport (RFC 7030), below /.well-known/est/,
// on the credential logic CMP uses (Enrolment). No HTTP library types here:
// the server layer turns its request into an EstRequest and the EstReply
// back into a response.
//
// Operations (an optional CA label segment before the name is ignored):
//   GET  cacerts        certs-only PKCS#7 (issuing CA, root), base64
//   POST simpleenroll   base64 PKCS#10; authenticated by
//                         - a TLS client certificate Enrolment accepts
//                           (vendor certificate, legacy credential, or the
//                           device's current certificate), or
//                         - HTTP Basic "REF:SECRET" with a one-time
//                           bootstrap token (when an Authorization header
//                           is present, it is the credential);
//                       certs-only PKCS#7 with the new certificate, base64
//   POST simplereenroll base64 PKCS#10; only with the device's current, valid
//                       femtoguard certificate as TLS client certificate; the
//                       CSR subject CN must name that device (RFC 7030 §4.2.2)
//                       and the key must be new (issuance policy)
//   GET  csrattrs       CsrAttrs: ecdsa-with-SHA256 on a P-256 key
//
// Status codes: 401 no (or an unrecognised) credential, wrong token secret;
// 403 recognised but refused (the reason is the body), and EST over plain
// HTTP; 400 undecodable base64 / PKCS#10 or a bad CSR signature; 404 unknown
// operation; 405 wrong method; 415 wrong Content-Type.
//
// Thread-safety: thread-safe (Enrolment is).

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pki/enrolment.h"

namespace fg {

struct EstRequest {
  std::string_view method;  // "GET", "POST"
  std::string_view
      operation;  // path below /.well-known/est/, e.g. "simpleenroll" or "label/cacerts"
  std::string_view content_type;   // request Content-Type, may be empty
  std::string_view authorization;  // Authorization header, may be empty
  std::string_view body;
  bool tls = false;                             // arrived over TLS
  std::span<const std::string> peer_chain_der;  // TLS client chain, leaf first; unverified
  std::string source_ip;
};

struct EstReply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The credential behind a TLS client certificate chain (DER, leaf first), as
// Enrolment::FromCertificate judges it. kOperator (trusted for nothing) when
// there is no chain or it does not parse. The TLS handshake has proved
// possession of the leaf's key; nothing else about the chain is assumed.
PresentedCredential CredentialFromPeerChain(Enrolment& enrolment,
                                            std::span<const std::string> chain_der);

// Base64 (RFC 4648 alphabet, '=' padding; whitespace and line breaks
// ignored, as RFC 2045 bodies have them). Error on anything else.
Result<std::string> DecodeBase64(std::string_view text);
// RFC 4648 base64 in one line, no line break at all: RFC 8951 §3 amends
// RFC 7030 so that EST bodies carry no MIME line breaks (strongSwan's `pki
// --est` rejects wrapped bodies).
std::string EncodeBase64(std::string_view data);

// DER of a certs-only PKCS#7 SignedData (RFC 5652 degenerate case) with `certs`.
Result<std::string> CertsOnlyPkcs7(const std::vector<X509*>& certs);

class EstServer {
 public:
  static constexpr size_t kMaxCsrBytes = 16 * 1024;
  static constexpr const char* kRealm = "femtoguard EST";

  explicit EstServer(Enrolment& enrolment);
  EstServer(const EstServer&) = delete;
  EstServer& operator=(const EstServer&) = delete;

  EstReply Handle(const EstRequest& request);

 private:
  EstReply CaCerts() const;
  EstReply CsrAttrs() const;
  EstReply SimpleEnroll(const EstRequest& request);
  EstReply SimpleReenroll(const EstRequest& request);
  // Parses and checks the CSR, then issues with `cred`.
  EstReply IssueFromBody(const EstRequest& request, const PresentedCredential& cred, bool reenroll);

  Enrolment& enrolment_;
  // Constant after construction.
  std::string cacerts_body_;   // base64 certs-only PKCS#7
  std::string csrattrs_body_;  // base64 DER CsrAttrs
};

}  // namespace fg
