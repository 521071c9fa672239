#include "pki/enrolment.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "common/net.h"

namespace fg {

TokenSecrets::~TokenSecrets() { OPENSSL_cleanse(key_.data(), key_.size()); }

std::string TokenSecrets::SecretFor(std::string_view ref) const {
  std::string msg = "femtoguard-bootstrap-token:" + std::string(ref);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  std::string out = ossl::HexLower(md, 16);
  OPENSSL_cleanse(md, sizeof md);
  return out;
}

std::string TokenSecrets::NewRef() {
  unsigned char raw[8];
  RAND_bytes(raw, sizeof raw);
  return "tok-" + ossl::HexLower(raw, sizeof raw);
}

std::string CommonName(const X509_NAME* name) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string DeviceIdFromName(const X509_NAME* name) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
  if (idx >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n > 0) {
      std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
      return out;
    }
  }
  return CommonName(name);
}

Enrolment::Enrolment(Store& store, const CertificateAuthority& ca, IssuancePolicy& policy, TokenSecrets secrets,
                     std::function<void()> on_change)
    : store_(store), ca_(ca), policy_(policy), secrets_(std::move(secrets)), on_change_(std::move(on_change)) {}

PresentedCredential Enrolment::FromToken(std::string_view ref) {
  PresentedCredential c;
  c.kind = EnrolmentKind::kBootstrapToken;
  c.credential = std::string(ref);
  auto token = store_.GetBootstrapToken(ref);
  if (!token.ok()) {
    c.refusal = token.status().IsNotFound() ? "unknown bootstrap token" : token.status().ToString();
    return c;
  }
  c.device = token->device;
  if (token->used_ms != 0) {
    c.refusal = "bootstrap token already used";
  } else if (token->expires_ms <= NowMillis()) {
    c.refusal = "bootstrap token expired";
  }
  return c;
}

namespace {

// Verifies `leaf` against `anchors` (+ `intermediates`) at the current time.
int VerifyChain(X509* leaf, const std::vector<X509*>& anchors, const std::vector<X509*>& intermediates) {
  ossl::X509StorePtr store(X509_STORE_new());
  for (X509* a : anchors) X509_STORE_add_cert(store.get(), a);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (X509* i : intermediates) sk_X509_push(untrusted, i);
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  int err = X509_V_ERR_UNSPECIFIED;
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted) == 1) {
    err = X509_verify_cert(ctx.get()) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  }
  sk_X509_free(untrusted);
  ERR_clear_error();
  return err;
}

}  // namespace

PresentedCredential Enrolment::FromCertificate(X509* leaf, const std::vector<X509*>& chain) {
  PresentedCredential c;
  if (leaf == nullptr) return c;
  std::string fp = ossl::CertFingerprint(leaf);
  UnixMillis now = NowMillis();

  // 1. The shared legacy credential: trusted by exact fingerprint only.
  if (auto legacy = store_.ListLegacyCredentials(); legacy.ok()) {
    for (const LegacyCredential& l : *legacy) {
      if (l.fp != fp) continue;
      c.kind = EnrolmentKind::kLegacyCredential;
      c.credential = fp;
      if (now >= l.cutoff_ms) {
        c.refusal = "legacy shared credential used after its cutoff (" + FormatRfc3339(l.cutoff_ms) + ")";
        c.refusal_rule = "cert.legacy";
      }
      return c;
    }
  }

  // 2. One of our own device certificates: renewal / revocation requests.
  if (X509_check_issued(ca_.issuing_cert(), leaf) == X509_V_OK) {
    c.kind = EnrolmentKind::kRenewal;
    std::string serial = ossl::SerialToHex(X509_get0_serialNumber(leaf));
    c.credential = serial;
    int err = VerifyChain(leaf, {ca_.root_cert()}, {ca_.issuing_cert()});
    auto rec = store_.GetCertificate(serial);
    if (!rec.ok()) {
      c.refusal = "certificate " + serial + " is not known to this CA's store";
      c.refusal_rule = "device.unknown";
      return c;
    }
    c.device = rec->device;
    if (rec->cert_fp != fp) {
      c.refusal = "certificate does not match the issued one (serial reuse)";
      c.refusal_rule = "cert.clone";
    } else if (rec->status == CertStatus::kRevoked) {
      c.refusal = "certificate " + serial + " is revoked (" + std::string(RevocationReasonName(rec->reason)) + ")";
    } else if (rec->status == CertStatus::kHold) {
      c.refusal = "certificate " + serial + " is on hold (device suspended)";
    } else if (err != X509_V_OK) {
      c.refusal = std::string("certificate does not verify: ") + X509_verify_cert_error_string(err);
    }
    return c;
  }

  // 3. A manufacturer certificate (TS 33.310 initial enrolment).
  auto vendors = store_.ListVendorCas();
  if (!vendors.ok()) return c;
  std::vector<ossl::X509Ptr> anchors_owned;
  std::vector<X509*> anchors;
  for (const VendorCa& v : *vendors) {
    auto cert = ossl::CertFromPem(v.pem);
    if (cert.ok()) {
      anchors.push_back(cert->get());
      anchors_owned.push_back(std::move(cert).value());
    }
  }
  if (anchors.empty() || VerifyChain(leaf, anchors, chain) != X509_V_OK) return c;  // untrusted
  c.kind = EnrolmentKind::kVendorCertificate;
  c.credential = fp;
  c.device = DeviceIdFromName(X509_get_subject_name(leaf));
  auto device = store_.GetDevice(c.device);
  if (!device.ok()) {
    c.refusal = "device '" + c.device + "' named by the vendor certificate is not pre-registered";
    c.refusal_rule = "device.unknown";
    return c;
  }
  if (auto used = store_.FindVendorCertificateUse(fp); used.ok() && used->has_value()) {
    c.refusal = "vendor certificate already used to enrol device " + **used + "; a second box carries it";
    c.refusal_rule = "cert.clone";
    return c;
  }
  if (auto certs = store_.ListCertificates(std::string_view(c.device)); certs.ok() && !certs->empty()) {
    c.refusal = "device " + c.device + " has already enrolled; vendor bootstrap is for the first enrolment only";
    c.refusal_rule = "cert.clone";
  }
  return c;
}

void Enrolment::RecordAlert(const std::string& rule, const std::string& device, const std::string& why,
                            const std::string& protocol, const std::string& source_ip) {
  Metrics::Global()
      .GetCounter("femtoguard_enrolment_refused_total", "rule=\"" + (rule.empty() ? "none" : rule) + "\"",
                  "Enrolment requests refused, by the rule they raise")
      .Inc();
  AuditEntry e;
  e.ts_ms = NowMillis();
  e.actor = protocol;
  e.action = rule.empty() ? "enrol.refused" : "alert";
  e.subject = device;
  e.reason = why;
  nlohmann::json detail = {{"protocol", protocol}};
  if (!rule.empty()) detail["rule"] = rule;
  if (!source_ip.empty()) detail["source_ip"] = source_ip;
  e.detail = detail.dump();
  (void)store_.AppendAudit(e);
}

Result<IssuedCertificate> Enrolment::Issue(const PresentedCredential& cred, std::string device_from_request,
                                           EVP_PKEY* public_key, int validity_days, const std::string& source_ip,
                                           const std::string& protocol, std::string_view spki_der) {
  auto refuse = [&](Status s, const std::string& rule, const std::string& device) -> Status {
    RecordAlert(rule, device, s.message(), protocol, source_ip);
    return s;
  };
  if (cred.kind == EnrolmentKind::kOperator) {
    return refuse(Status::PermissionDenied("no trusted credential (unknown signer, vendor CA not trusted)"), "",
                  device_from_request);
  }
  if (!cred.refusal.empty()) {
    return refuse(Status::PermissionDenied(cred.refusal), cred.refusal_rule,
                  cred.device.empty() ? device_from_request : cred.device);
  }
  std::string device = cred.device;
  if (cred.kind == EnrolmentKind::kLegacyCredential) {
    device = device_from_request;
    if (device.empty()) {
      return refuse(Status::InvalidArgument("a legacy-credential enrolment must name its device in the subject CN"),
                    "cert.legacy", "");
    }
    auto d = store_.GetDevice(device);
    if (!d.ok()) {
      return refuse(Status::PermissionDenied("device '" + device + "' is not pre-registered"), "device.unknown",
                    device);
    }
    auto used = store_.LegacyCredentialUsed(cred.credential, device);
    if (!used.ok()) return used.status();
    if (*used) {
      return refuse(Status::AlreadyExists("the legacy credential was already used once for device " + device +
                                          "; a second use means a copy"),
                    "cert.clone", device);
    }
    if (!d->prefixes.empty() && !IpInAnyPrefix(source_ip, d->prefixes)) {
      return refuse(Status::PermissionDenied("legacy credential used for " + device + " from " +
                                             (source_ip.empty() ? std::string("an unknown address") : source_ip) +
                                             ", outside its registered prefixes"),
                    "cert.legacy", device);
    }
  } else if (!device_from_request.empty() && device_from_request != device) {
    return refuse(Status::InvalidArgument("requested subject '" + device_from_request +
                                          "' does not match the credential's device '" + device + "'"),
                  "", device);
  }

  IssueRequest request;
  request.device = device;
  request.validity_days = validity_days;
  request.audit = {protocol + ":" + device, std::string("enrolment (") + std::string(EnrolmentKindName(cred.kind)) + ")"};
  request.auth = {cred.kind, cred.credential, source_ip};
  auto issued = policy_.IssueForKey(request, public_key, spki_der);
  if (!issued.ok()) {
    std::string rule;
    if (issued.status().IsAlreadyExists() && cred.kind == EnrolmentKind::kVendorCertificate) rule = "cert.clone";
    if (issued.status().IsAlreadyExists() && cred.kind == EnrolmentKind::kLegacyCredential) rule = "cert.clone";
    return refuse(issued.status(), rule, device);
  }
  NotifyChanged();
  return issued;
}

}  // namespace fg
