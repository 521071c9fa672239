#include "pki/issuance.h"

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "common/metrics.h"

namespace fg {
namespace {

Counter& Refused(const char* why) {
  return Metrics::Global().GetCounter("femtoguard_issuance_refused_total", std::string("reason=\"") + why + "\"",
                                      "Certificate requests refused by the issuance policy");
}

}  // namespace

Status IssuancePolicy::CheckKeyType(EVP_PKEY* key) const {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len)) {
      return Status::InvalidArgument("EC key without a named curve");
    }
    std::string g(group, len);
    if (g != "prime256v1" && g != "P-256" && g != "secp384r1" && g != "P-384") {
      return Status::InvalidArgument("EC curve " + g + " not accepted (P-256 or P-384)");
    }
    return Status::Ok();
  }
  if (id == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(key) < 2048) return Status::InvalidArgument("RSA key shorter than 2048 bits");
    return Status::Ok();
  }
  if (id == EVP_PKEY_ED25519) return Status::Ok();
  return Status::InvalidArgument("key type not accepted (EC P-256/P-384, RSA >= 2048, Ed25519)");
}

Status IssuancePolicy::Check(const IssueRequest& request, EVP_PKEY* public_key) {
  FG_ASSIGN_OR_RETURN(std::string key_fp, ossl::KeyFingerprint(public_key));
  return CheckWithFingerprint(request, public_key, key_fp);
}

Status IssuancePolicy::CheckWithFingerprint(const IssueRequest& request, EVP_PKEY* public_key,
                                            const std::string& key_fp) {
  if (auto s = ValidateDeviceId(request.device); !s.ok()) {
    Refused("bad_device_id").Inc();
    return s;
  }
  const Config& config = ca_.config();
  if (request.validity_days < 0 || request.validity_days > config.cert_max_validity_days) {
    Refused("validity").Inc();
    return Status::InvalidArgument("validity of " + std::to_string(request.validity_days) +
                                   " days exceeds the cap of " + std::to_string(config.cert_max_validity_days) +
                                   " days");
  }
  if (auto s = CheckKeyType(public_key); !s.ok()) {
    Refused("key_type").Inc();
    return s;
  }
  auto device = store_.GetDevice(request.device);
  if (!device.ok()) {
    Refused("unknown_device").Inc();
    if (device.status().IsNotFound()) {
      return Status::NotFound("device " + request.device + " is not registered");
    }
    return device.status();
  }
  if (device->status != DeviceStatus::kProvisioned && device->status != DeviceStatus::kActive) {
    Refused("inactive_device").Inc();
    return Status::FailedPrecondition("device " + request.device + " is " +
                                      std::string(DeviceStatusName(device->status)) +
                                      "; only provisioned or active devices get certificates");
  }
  FG_ASSIGN_OR_RETURN(auto owner, store_.FindKeyOwner(key_fp));
  if (owner.has_value()) {
    Refused("key_reuse").Inc();
    if (*owner == request.device) {
      return Status::AlreadyExists("public key " + key_fp + " was already certified for device " + *owner +
                                   "; a new certificate needs a new key");
    }
    return Status::AlreadyExists("public key " + key_fp + " is bound to another device (" + *owner +
                                 "); one key belongs to one device");
  }
  return Status::Ok();
}

Result<IssuedCertificate> IssuancePolicy::IssueFromCsr(const IssueRequest& request, std::string_view csr) {
  auto req = ossl::CsrFromPem(csr);
  if (!req.ok()) {
    Refused("bad_csr").Inc();
    return req.status();
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req->get());
  if (key == nullptr) {
    Refused("bad_csr").Inc();
    return Status::InvalidArgument("CSR has no usable public key");
  }
  if (X509_REQ_verify(req->get(), key) != 1) {
    ERR_clear_error();
    Refused("bad_csr").Inc();
    return Status::InvalidArgument("CSR signature does not verify (no proof of possession)");
  }
  auto spki = ossl::SpkiDer(X509_REQ_get_X509_PUBKEY(req->get()));
  if (!spki.ok()) return spki.status();
  return IssueForKey(request, key, *spki);
}

Result<IssuedCertificate> IssuancePolicy::IssueForKey(const IssueRequest& request, EVP_PKEY* public_key,
                                                      std::string_view spki_der) {
  std::string spki_owned;
  if (spki_der.empty()) {
    FG_ASSIGN_OR_RETURN(spki_owned, ossl::SpkiDer(public_key));
    spki_der = spki_owned;
  }
  const std::string key_fp = ossl::SpkiFingerprint(spki_der);
  FG_RETURN_IF_ERROR(CheckWithFingerprint(request, public_key, key_fp));
  const Config& config = ca_.config();
  int days = request.validity_days > 0 ? request.validity_days : config.cert_default_validity_days;
  UnixMillis now = NowMillis();
  // Back-date a little so that a device whose clock runs behind still
  // accepts its fresh certificate.
  UnixMillis not_before = now - 5 * 60 * kMillisPerSecond;
  UnixMillis not_after = now + static_cast<UnixMillis>(days) * kMillisPerDay;

  FG_ASSIGN_OR_RETURN(auto serial, CertificateAuthority::RandomSerial());
  FG_ASSIGN_OR_RETURN(auto cert, ca_.SignDeviceCertificate(request.device, spki_der, not_before, not_after,
                                                           serial.get()));
  IssuedCertificate out;
  Certificate& rec = out.record;
  rec.serial = ossl::SerialToHex(serial.get());
  rec.device = request.device;
  rec.key_fp = key_fp;
  rec.cert_fp = ossl::CertFingerprint(cert.get());
  rec.issued_ms = now;
  rec.status = CertStatus::kValid;
  rec.der = ossl::CertToDer(cert.get());
  // Seconds precision, as in the certificate itself.
  rec.not_before_ms = (not_before / 1000) * 1000;
  rec.not_after_ms = (not_after / 1000) * 1000;
  FG_ASSIGN_OR_RETURN(out.superseded, store_.RecordIssuedCertificate(rec, request.audit, request.auth));
  out.pem = ossl::CertToPem(cert.get());
  out.cert = std::shared_ptr<X509>(cert.release(), X509_free);
  Metrics::Global().GetCounter("femtoguard_certificates_issued_total", {}, "Certificates issued").Inc();
  return out;
}

}  // namespace fg
