#include "pki/crl.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "common/metrics.h"
#include "common/pki_tuning.h"

namespace fg {

Status CrlPublisher::OnChanges(std::span<const Change> changes) {
  for (const Change& c : changes) {
    if (c.kind != ChangeKind::kCertificate) continue;
    // Revoked or held now, or listed and maybe released: either way the
    // CRL changes. A certificate that cannot be read counts as changed.
    auto cert = store_.GetCertificate(c.key);
    if (!cert.ok() || cert->status != CertStatus::kValid || Lists(c.key)) return Regenerate();
  }
  return Status::Ok();
}

Status CrlPublisher::Regenerate() {
  UnixMillis now = NowMillis();
  FG_ASSIGN_OR_RETURN(auto all_revoked, store_.ListRevokedCertificates(now));
  // Only the certificates this CA issued (after `ca rotate` there are two).
  std::vector<Certificate> revoked;
  const bool one_ca = ca_.issuers().size() == 1;  // never rotated: all are its own
  for (Certificate& c : all_revoked) {
    int by = 0;  // no DER kept: the current CA's
    if (!one_ca && !c.der.empty()) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(c.der.data());
      ossl::X509Ptr leaf(d2i_X509(nullptr, &p, static_cast<long>(c.der.size())));
      ERR_clear_error();
      by = leaf ? ca_.IssuerIndexOf(leaf.get()) : -1;
    }
    if (by == static_cast<int>(issuer_)) revoked.push_back(std::move(c));
  }
  // One counter for every CA: each CA's CRL numbers still only grow.
  FG_ASSIGN_OR_RETURN(int64_t number, store_.NextCounter("crl_number"));
  UnixMillis next = now + static_cast<UnixMillis>(validity_s_) * kMillisPerSecond;
  FG_ASSIGN_OR_RETURN(auto crl, ca_.SignCrl(revoked, number, now, next, issuer_));
  auto der = std::make_shared<const std::string>(ossl::CrlToDer(crl.get()));
  std::unordered_set<std::string> listed;
  for (const Certificate& c : revoked) listed.insert(c.serial);
  {
    std::lock_guard lock(mutex_);
    der_ = std::move(der);
    this_update_ = now;
    listed_ = std::move(listed);
  }
  Metrics::Global().GetCounter("femtoguard_crl_generated_total", {}, "CRLs signed").Inc();
  return Status::Ok();
}

Status CrlPublisher::RegenerateIfAging() {
  UnixMillis last;
  {
    std::lock_guard lock(mutex_);
    last = der_ ? this_update_ : 0;
  }
  if (last != 0 && NowMillis() < last + static_cast<UnixMillis>(validity_s_) * kMillisPerSecond / 2) {
    return Status::Ok();
  }
  return Regenerate();
}

std::shared_ptr<const std::string> CrlPublisher::Der() const {
  std::lock_guard lock(mutex_);
  return der_;
}

bool CrlPublisher::Lists(const std::string& serial) const {
  std::lock_guard lock(mutex_);
  return listed_.count(serial) > 0;
}

UnixMillis CrlPublisher::this_update() const {
  std::lock_guard lock(mutex_);
  return this_update_;
}

namespace {

Result<ossl::X509CrlPtr> CrlFromDer(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ERR_clear_error();
    return Status::InvalidArgument("not a DER CRL");
  }
  return crl;
}

Counter& RootCrlSigned() {
  return Metrics::Global().GetCounter("femtoguard_root_crl_generated_total", {},
                                      "Root CRLs signed");
}

}  // namespace

Result<ossl::X509CrlPtr> SignRootCrl(X509* root_cert, EVP_PKEY* root_key,
                                     const std::vector<Certificate>& revoked_cas,
                                     UnixMillis this_update, UnixMillis next_update) {
  if (root_cert == nullptr || root_key == nullptr) {
    return Status::InvalidArgument("root CRL: no root certificate or key");
  }
  if (X509_check_private_key(root_cert, root_key) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("root CRL: the key is not the root certificate's");
  }
  ossl::X509CrlPtr crl(X509_CRL_new());
  if (!crl || !X509_CRL_set_version(crl.get(), 1) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(root_cert))) {
    return ossl::Error("root CRL header");
  }
  ossl::Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(this_update / 1000)));
  ossl::Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(next_update / 1000)));
  if (!last || !next || !X509_CRL_set1_lastUpdate(crl.get(), last.get()) ||
      !X509_CRL_set1_nextUpdate(crl.get(), next.get())) {
    return ossl::Error("root CRL times");
  }
  for (const Certificate& c : revoked_cas) {
    ossl::X509RevokedPtr entry(X509_REVOKED_new());
    FG_ASSIGN_OR_RETURN(auto serial, ossl::SerialFromHex(c.serial));
    ossl::Asn1TimePtr when(ASN1_TIME_set(nullptr, static_cast<time_t>(c.revoked_ms / 1000)));
    if (!entry || !when || !X509_REVOKED_set_serialNumber(entry.get(), serial.get()) ||
        !X509_REVOKED_set_revocationDate(entry.get(), when.get())) {
      return ossl::Error("root CRL entry");
    }
    if (c.reason != RevocationReason::kUnspecified) {  // RFC 5280 §5.3.1
      ossl::Ptr<ASN1_ENUMERATED, ASN1_ENUMERATED_free> code(ASN1_ENUMERATED_new());
      if (!code || !ASN1_ENUMERATED_set(code.get(), static_cast<long>(c.reason)) ||
          !X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, code.get(), 0, 0)) {
        return ossl::Error("root CRL reason");
      }
    }
    if (!X509_CRL_add0_revoked(crl.get(), entry.get())) return ossl::Error("root CRL entry");
    entry.release();
  }
  ossl::Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || !ASN1_INTEGER_set_int64(number.get(), this_update / 1000) ||
      !X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0)) {
    return ossl::Error("root CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, root_cert, nullptr, nullptr, crl.get(), 0);
  ossl::X509ExtPtr aki(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1)) return ossl::Error("root CRL AKI");
  if (!X509_CRL_sort(crl.get()) || X509_CRL_sign(crl.get(), root_key, EVP_sha256()) <= 0) {
    return ossl::Error("signing the root CRL");
  }
  RootCrlSigned().Inc();
  return crl;
}

std::filesystem::path RootCrlPath(const DataDir& dir) { return dir.CaDir() / "root.crl"; }

Result<ossl::EvpPkeyPtr> LoadOnlineRootKey(const DataDir& dir, std::string_view passphrase) {
  std::filesystem::path path = dir.CaDir() / "root.key";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::NotFound("no online root key (" + path.string() + ")");
  }
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = ossl::KeyFromPem(pem, passphrase);
  OPENSSL_cleanse(pem.data(), pem.size());
  return key;
}

Status WriteRootCrl(const DataDir& dir, X509* root_cert, EVP_PKEY* root_key, int validity_s) {
  const UnixMillis now = NowMillis();
  FG_ASSIGN_OR_RETURN(auto crl,
                      SignRootCrl(root_cert, root_key, {}, now,
                                  now + static_cast<UnixMillis>(validity_s) * kMillisPerSecond));
  return WriteFileAtomic(RootCrlPath(dir), ossl::CrlToDer(crl.get()), 0644);
}

Status WriteRootCrlFromDataDir(const DataDir& dir, std::string_view passphrase) {
  FG_ASSIGN_OR_RETURN(PkiTuning tuning, LoadPkiTuning(dir));
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(dir.CaDir() / "root.crt"));
  FG_ASSIGN_OR_RETURN(auto root_cert, ossl::CertFromPem(pem));
  FG_ASSIGN_OR_RETURN(auto root_key, LoadOnlineRootKey(dir, passphrase));
  return WriteRootCrl(dir, root_cert.get(), root_key.get(), tuning.root_crl_validity_s);
}

Status RootCrlPublisher::Refresh() {
  return RefreshOnce(/*may_sign=*/true);
}

Status RootCrlPublisher::RefreshOnce(bool may_sign) {
  const UnixMillis now = NowMillis();
  // The file first: whoever holds the root may have put a new one there.
  UnixMillis this_update = 0, next_update = 0;
  std::shared_ptr<const std::string> der;
  if (auto text = ReadFile(RootCrlPath(dir_)); text.ok()) {
    auto crl = CrlFromDer(*text);
    EVP_PKEY* root_pub = X509_get0_pubkey(root_cert_);
    if (crl.ok() && root_pub != nullptr && X509_CRL_verify(crl->get(), root_pub) == 1 &&
        X509_CRL_get0_nextUpdate(crl->get()) != nullptr) {
      auto tu = ossl::Asn1TimeToMillis(X509_CRL_get0_lastUpdate(crl->get()));
      auto nu = ossl::Asn1TimeToMillis(X509_CRL_get0_nextUpdate(crl->get()));
      if (tu.ok() && nu.ok()) {
        this_update = *tu;
        next_update = *nu;
        der = std::make_shared<const std::string>(std::move(text).value());
      }
    } else {
      spdlog::warn("root CRL: {} is not a CRL signed by the root; not served",
                   RootCrlPath(dir_).string());
    }
    ERR_clear_error();
  }
  const bool aging = !der || now >= this_update + (next_update - this_update) / 2;
  if (aging && may_sign) {
    auto key = root_key_ ? root_key_() : Result<ossl::EvpPkeyPtr>(Status::NotFound("no root key"));
    if (key.ok()) {
      FG_RETURN_IF_ERROR(WriteRootCrl(dir_, root_cert_, key->get(), validity_s_));
      return RefreshOnce(/*may_sign=*/false);  // serve exactly what is on disk
    }
    if (!key.status().IsNotFound()) {
      spdlog::warn("root CRL: cannot load the root key: {}", key.status().ToString());
    } else if (der && now + 86400 * kMillisPerSecond >= next_update) {
      spdlog::warn(
          "root CRL: nextUpdate {} is near and the root key is offline: sign a new root CRL "
          "(docs/pki.md)",
          FormatRfc3339(next_update));
    }
  }
  std::lock_guard lock(mutex_);
  der_ = std::move(der);
  this_update_ = this_update;
  next_update_ = next_update;
  return der_ ? Status::Ok() : Status::Unavailable("no root CRL (" + RootCrlPath(dir_).string() + ")");
}

std::shared_ptr<const std::string> RootCrlPublisher::Der() const {
  std::lock_guard lock(mutex_);
  return der_;
}

UnixMillis RootCrlPublisher::this_update() const {
  std::lock_guard lock(mutex_);
  return this_update_;
}

UnixMillis RootCrlPublisher::next_update() const {
  std::lock_guard lock(mutex_);
  return next_update_;
}

}  // namespace fg
