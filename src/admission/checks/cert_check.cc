// certificate: the presented certificate (by serial and/or cert_fp) must be
// one femtoguard issued to this device, valid now, not on hold and not revoked.
//   neither serial nor cert_fp given            -> abstain "cert.none" (the SeGW
//                                                  verified the chain and OCSP)
//   unknown serial/fingerprint, or the two name
//   different certificates                      -> deny "cert.unknown"
//   issued (or registered) to another device    -> deny "cert.shared"
//   revoked / on hold                           -> deny "cert.revoked" / "cert.hold"
//   outside not_before..not_after               -> deny "cert.expired" / "cert.not_yet_valid"
// A fingerprint that the registry names as this device's expected
// certificate (registry.jsonl cert_fp, e.g. a vendor certificate) is allowed
// without a certificate record.

#include "admission/check.h"

namespace fg::admission {
namespace {

class CertCheck final : public Check {
 public:
  std::string_view name() const override { return "certificate"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    const AdmissionRequest& r = ctx.request;
    if (r.serial.empty() && r.cert_fp.empty()) return CheckAnswer::Abstain("cert.none");
    // Views of the request when already normal (the usual case), else of a normalised copy.
    std::string serial_copy, fp_copy;
    std::string_view serial = r.serial, fp = r.cert_fp;
    if (!serial.empty() && !IsNormalSerial(serial)) serial = serial_copy = NormalizeSerial(r.serial);
    if (!fp.empty() && !IsNormalFingerprint(fp)) fp = fp_copy = NormalizeFingerprint(r.cert_fp);
    if ((!serial.empty() && ctx.snapshot.CertStale(serial)) || (serial.empty() && ctx.snapshot.AnyCertStale())) {
      return Status::Unavailable("certificate state could not be re-read from the store");
    }
    const CertView* by_serial = serial.empty() ? nullptr : ctx.snapshot.FindCertBySerial(serial);
    const CertView* by_fp = fp.empty() ? nullptr : ctx.snapshot.FindCertByFp(fp);

    auto unknown = [&](const char* mismatch) {
      Evidence ev;
      if (!serial.empty()) ev.emplace_back("cert.serial", std::string(serial));
      if (!fp.empty()) ev.emplace_back("cert.fp", std::string(fp));
      if (mismatch) ev.emplace_back("cert.mismatch", mismatch);
      return CheckAnswer::Deny("cert.unknown", std::move(ev));
    };
    if (!fp.empty() && !by_fp) {
      // Not one of ours: maybe the registry's expected certificate of a device.
      const std::string* owner = ctx.snapshot.RegisteredFpOwner(fp);
      if (!owner) return unknown(nullptr);
      if (*owner != r.device) {
        return CheckAnswer::Deny("cert.shared", {{"cert.fp", std::string(fp)}, {"cert.registered_to", *owner}});
      }
      if (!serial.empty()) return unknown("serial and fingerprint name different certificates");
      return CheckAnswer::Allow({{"cert.registered_fp", "match"}});
    }
    if (!serial.empty() && !by_serial) return unknown(nullptr);
    if (by_serial && by_fp && by_serial != by_fp) return unknown("serial and fingerprint name different certificates");
    const CertView* cert = by_serial ? by_serial : by_fp;
    Evidence ev = {{"cert.serial", cert->serial}};
    if (cert->device != r.device) {
      ev.emplace_back("cert.issued_to", cert->device);
      return CheckAnswer::Deny("cert.shared", std::move(ev));
    }
    if (cert->status == CertStatus::kRevoked) return CheckAnswer::Deny("cert.revoked", std::move(ev));
    if (cert->status == CertStatus::kHold) return CheckAnswer::Deny("cert.hold", std::move(ev));
    if (ctx.now_ms > cert->not_after_ms) {
      ev.emplace_back("cert.not_after", FormatRfc3339(cert->not_after_ms));
      return CheckAnswer::Deny("cert.expired", std::move(ev));
    }
    if (ctx.now_ms < cert->not_before_ms) {
      ev.emplace_back("cert.not_before", FormatRfc3339(cert->not_before_ms));
      return CheckAnswer::Deny("cert.not_yet_valid", std::move(ev));
    }
    return CheckAnswer::Allow();
  }
};

}  // namespace

std::unique_ptr<Check> NewCertCheck(const AdmissionPolicy&) { return std::make_unique<CertCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr ReasonSpec kReasons[] = {
    {"cert.none", "the request named no certificate (abstain; deny only if verdicts says so)",
     "make the SeGW send the certificate serial or fingerprint"},
    {"cert.unknown", "the certificate was not issued by this CA",
     "a certificate from elsewhere: keep denying; check the SeGW's trust anchors"},
    {"cert.shared", "the certificate is registered to, or was issued for, another device",
     "the key has been copied: revoke it, re-enrol the genuine device"},
    {"cert.revoked", "the certificate is revoked",
     "the device must re-enrol: a new bootstrap token (`femtoguard device token`), then EST or CMP"},
    {"cert.hold", "the certificate is on hold",
     "release the hold or revoke for good"},
    {"cert.expired", "the certificate has expired",
     "the device failed to renew: check its clock and its enrolment logs, then re-enrol"},
    {"cert.not_yet_valid", "the certificate is not valid yet",
     "the device or the SeGW clock is wrong: fix NTP"},
};
}  // namespace
extern const CheckSpec kCertCheckSpec{"certificate", "the presented certificate: known, issued to this device, valid, not revoked", {}, kReasons};
}  // namespace fg::admission
