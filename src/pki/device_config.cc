#include "pki/device_config.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "pki/est_server.h"

namespace fg {
namespace {

Counter& Requests(const char* result) {
  return Metrics::Global().GetCounter("femtoguard_device_config_requests_total",
                                      std::string("result=\"") + result + "\"",
                                      "Device configuration documents requested, by result");
}

DeviceConfigService::Reply Text(int status, std::string text) {
  DeviceConfigService::Reply r;
  r.status = status;
  r.body = std::move(text);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
  return r;
}

void FreeCertStack(STACK_OF(X509) * s) { sk_X509_free(s); }  // the stack only, not the certificates

}  // namespace

DeviceConfigService::DeviceConfigService(Enrolment& enrolment, Options options)
    : enrolment_(enrolment), options_(std::move(options)), est_url_(options_.est_url) {}

void DeviceConfigService::SetEstUrl(std::string est_url) {
  std::lock_guard lock(mutex_);
  est_url_ = std::move(est_url);
}

DeviceConfigService::Reply DeviceConfigService::Handle(bool tls,
                                                       std::span<const std::string> peer_chain_der,
                                                       const std::string& source_ip) {
  if (!tls) {
    Requests("refused").Inc();
    return Text(403,
                "the device configuration is served over TLS only, with the device certificate");
  }
  PresentedCredential cred = CredentialFromPeerChain(enrolment_, peer_chain_der);
  if (cred.kind != EnrolmentKind::kRenewal) {
    Requests("unauthorized").Inc();
    return Text(401,
                "the device configuration needs the device's current femtoguard certificate as TLS "
                "client certificate");
  }
  if (!cred.refusal.empty()) {
    Requests("refused").Inc();
    // Unknown or cloned certificates are security events; a revoked or held
    // one is a device that is out, and says so by asking.
    if (!cred.refusal_rule.empty()) {
      enrolment_.RecordAlert(cred.refusal_rule, cred.device, cred.refusal, "device-config",
                             source_ip);
    }
    return Text(403, cred.refusal);
  }
  auto cert = enrolment_.store().GetCertificate(cred.credential);
  if (!cert.ok()) {
    Requests("error").Inc();
    spdlog::warn("device config: certificate {}: {}", cred.credential, cert.status().ToString());
    return Text(500, "internal error");
  }
  UnixMillis now = NowMillis();
  auto doc = Document(*cert, now);
  if (!doc.ok()) {
    Requests("error").Inc();
    spdlog::warn("device config for {}: {}", cred.device, doc.status().ToString());
    return Text(500, "internal error");
  }
  auto signed_doc = Sign(*doc);
  if (!signed_doc.ok()) {
    Requests("error").Inc();
    spdlog::warn("device config for {}: {}", cred.device, signed_doc.status().ToString());
    return Text(500, "internal error");
  }
  if (Status s = enrolment_.store().TouchDevice(cred.device, now); !s.ok()) {
    spdlog::warn("device config: touching {}: {}", cred.device, s.ToString());
  }
  Requests("ok").Inc();
  Reply r;
  r.content_type = "application/pkcs7-mime; smime-type=signed-data";
  r.body = std::move(signed_doc).value();
  return r;
}

Result<std::string> DeviceConfigService::Document(const Certificate& cert, UnixMillis now) {
  FG_ASSIGN_OR_RETURN(auto endpoints, enrolment_.store().ListEndpoints());
  nlohmann::json active = nlohmann::json::array(), draining = nlohmann::json::array();
  for (const Endpoint& e : endpoints) {
    if (e.status == EndpointStatus::kActive) active.push_back(e.address);
    if (e.status == EndpointStatus::kDraining) draining.push_back(e.address);
  }
  UnixMillis lifetime = cert.not_after_ms - cert.not_before_ms;
  UnixMillis renew_at = cert.not_before_ms + lifetime / 100 * options_.renew_at_percent +
                        lifetime % 100 * options_.renew_at_percent / 100;
  std::string est_url;
  {
    std::lock_guard lock(mutex_);
    est_url = est_url_;
  }
  // Every node of the cluster in url_order (docs/cluster.md), as in the
  // device's certificate; the single-URL keys name the first, so a device
  // that knows only them still reaches the cluster.
  std::vector<std::string> bases = enrolment_.ca().NodeUrls();
  if (bases.empty()) bases = {options_.public_url};
  nlohmann::json ocsp_urls = nlohmann::json::array(), crl_urls = nlohmann::json::array(),
                 cmp_urls = nlohmann::json::array();
  for (const std::string& base : bases) {
    ocsp_urls.push_back(base + "/ocsp");
    crl_urls.push_back(base + "/crl");
    cmp_urls.push_back(base + "/pkix/");
  }
  nlohmann::json doc = {
      {"device", cert.device},
      {"issued_at", FormatRfc3339(now)},
      {"certificate",
       {{"serial", cert.serial},
        {"not_after", FormatRfc3339(cert.not_after_ms)},
        {"renew_at", FormatRfc3339(renew_at)}}},
      {"endpoints", active},
      {"draining", draining},
      {"ocsp_url", bases.front() + "/ocsp"},
      {"crl_url", bases.front() + "/crl"},
      {"cmp_url", bases.front() + "/pkix/"},
      {"est_url", est_url},
      {"ocsp_urls", ocsp_urls},
      {"crl_urls", crl_urls},
      {"cmp_urls", cmp_urls},
  };
  return doc.dump();
}

Result<std::string> DeviceConfigService::Sign(std::string_view content) const {
  const CertificateAuthority& ca = enrolment_.ca();
  ossl::BioPtr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  ossl::Ptr<STACK_OF(X509), FreeCertStack> extra(sk_X509_new_null());
  if (!in || !extra || sk_X509_push(extra.get(), ca.issuing_cert()) <= 0)
    return ossl::Error("device config");
  // Attached content, binary (no MIME canonicalisation of the JSON).
  ossl::Ptr<CMS_ContentInfo, CMS_ContentInfo_free> cms(
      CMS_sign(ca.cmp_cert(), ca.cmp_key(), extra.get(), in.get(), CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) return ossl::Error("signing the device config");
  int n = i2d_CMS_ContentInfo(cms.get(), nullptr);
  if (n <= 0) return ossl::Error("encoding the device config");
  std::string der(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_CMS_ContentInfo(cms.get(), &p);
  return der;
}

}  // namespace fg
