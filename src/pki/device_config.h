#pragma once

// The device configuration document (GET /v1/device/config on the TLS
// listener): the only channel by which a femtocell learns its
// authentication endpoints, and when to renew. The device authenticates
// with its current femtoguard certificate (TLS client certificate); the
// answer is JSON signed as CMS SignedData (attached, DER) by the RA
// credential, with the issuing CA certificate included, so that
//   openssl cms -verify -inform DER -CAfile chain.pem
// checks it against the CA chain the device already trusts:
//
//   {"device": "FG-1", "issued_at": RFC 3339,
//    "certificate": {"serial", "not_after", "renew_at"},   // of the presented certificate
//    "endpoints": [active addresses], "draining": [draining addresses],
//    "ocsp_url", "crl_url", "cmp_url", "est_url",
//    "ocsp_urls", "crl_urls", "cmp_urls"}
//
// The *_urls arrays name every node of the cluster in the operator's
// url_order (CertificateAuthority::NodeUrls, docs/cluster.md); ocsp_url,
// crl_url and cmp_url are their first entries (older devices read only them).
//
// renew_at = not_before + renew_at_percent % of the certificate's lifetime.
// Each successful fetch touches the device (it was seen).
//
// Status codes: 401 without a client certificate or with one this CA did not
// issue; 403 with a revoked, held, superseded or unknown one, or over plain
// HTTP; 500 when the document cannot be built or signed.
//
// Thread-safety: thread-safe.

#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "pki/enrolment.h"

namespace fg {

class DeviceConfigService {
 public:
  struct Options {
    std::string public_url;  // base of ocsp_url, crl_url, cmp_url on a single node (else the CA's NodeUrls)
    std::string est_url;     // "https://HOST:PORT/.well-known/est"; empty = no EST
    int renew_at_percent = 67;
  };
  struct Reply {
    int status = 200;
    std::string content_type = "text/plain";
    std::string body;
  };

  DeviceConfigService(Enrolment& enrolment, Options options);
  DeviceConfigService(const DeviceConfigService&) = delete;
  DeviceConfigService& operator=(const DeviceConfigService&) = delete;

  Reply Handle(bool tls, std::span<const std::string> peer_chain_der, const std::string& source_ip);

  // The JSON document for `cert` (the device's current certificate) at `now`.
  Result<std::string> Document(const Certificate& cert, UnixMillis now);
  // CMS SignedData (DER, attached content) over `content`.
  Result<std::string> Sign(std::string_view content) const;

  // Once the TLS listener knows its port (it may have been 0 = any).
  void SetEstUrl(std::string est_url);

 private:
  Enrolment& enrolment_;
  const Options options_;  // constant after construction
  mutable std::mutex mutex_;
  std::string est_url_;  // guarded by mutex_
};

}  // namespace fg
