#pragma once

// The CRL, regenerated from the store on every revocation and before its
// nextUpdate. Served as DER at a stable URL.
//
// Thread-safety: thread-safe; readers get an immutable snapshot.

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/config.h"
#include "common/ossl.h"
#include "common/time.h"
#include "pki/ca.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg {

// A change-feed subscriber: regenerates when a page revokes, holds or
// releases a certificate; a new certificate (issuance, the common case)
// leaves the CRL as it is.
class CrlPublisher final : public ChangeSubscriber {
 public:
  // The CRL of ca.issuers()[issuer] (0: the current CA): it lists the
  // revoked and held certificates that CA issued, and is signed by it.
  CrlPublisher(CertificateLedger& certs, const CertificateAuthority& ca, int validity_s, size_t issuer = 0)
      : store_(certs), ca_(ca), validity_s_(validity_s), issuer_(issuer),
        name_(issuer == 0 ? "crl" : "crl-retired-" + std::to_string(issuer)) {}

  std::string_view name() const override { return name_; }
  Status OnChanges(std::span<const Change> changes) override;

  // Builds and signs a new CRL with the next CRL number.
  Status Regenerate();
  // Regenerates when past half of the current CRL's validity (or none yet).
  Status RegenerateIfAging();

  std::shared_ptr<const std::string> Der() const;
  // Whether the current CRL lists `serial` (so releasing a hold changes it).
  bool Lists(const std::string& serial) const;
  UnixMillis this_update() const;

 private:
  CertificateLedger& store_;
  const CertificateAuthority& ca_;
  const int validity_s_;
  const size_t issuer_;
  const std::string name_;

  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> der_;  // guarded by mutex_
  UnixMillis this_update_ = 0;              // guarded by mutex_
  std::unordered_set<std::string> listed_;  // guarded by mutex_
};

// ---- The root CRL ----
//
// The root CA's own CRL (RFC 5280 §5), served at /crl/root and named by the
// CRL distribution point of the issuing CA certificate, so that a strict
// relying party (strongSwan `revocation = strict`, RFC 5280 §6.3) can decide
// the issuing CA's status. It lists the CA certificates the root revoked
// (none until an issuing CA is revoked). Kept as DER in ca/root.crl, so that
// a root key held elsewhere can sign it and the file be copied in.

// The one place a root CRL is signed; `root_key` may live anywhere (file,
// offline machine, HSM). CRL number = thisUpdate in Unix seconds, so that it
// grows whoever signs it, without shared state. Entries: `revoked_cas`
// (serial, revoked_ms, reason of each revoked CA certificate).
Result<ossl::X509CrlPtr> SignRootCrl(X509* root_cert, EVP_PKEY* root_key,
                                     const std::vector<Certificate>& revoked_cas,
                                     UnixMillis this_update, UnixMillis next_update);

// ca/root.crl in the data dir.
std::filesystem::path RootCrlPath(const DataDir& dir);
// The root key of a data dir whose root is online (ca/root.key); NotFound
// when the file is absent (the root kept offline).
Result<ossl::EvpPkeyPtr> LoadOnlineRootKey(const DataDir& dir, std::string_view passphrase);
// Signs a root CRL valid for `validity_s` from now and writes it to
// RootCrlPath (used by init and by RootCrlPublisher).
Status WriteRootCrl(const DataDir& dir, X509* root_cert, EVP_PKEY* root_key, int validity_s);
// WriteRootCrl with the data dir's root certificate, online root key and
// crl.root_validity_s (init, right after the CA is created).
Status WriteRootCrlFromDataDir(const DataDir& dir, std::string_view passphrase);

// Serves ca/root.crl and keeps it current: Refresh() (at start and every
// minute from serve) re-reads the file, and when it is missing, does not
// verify under the root, or is past half of its validity, signs a new one
// with the key `root_key` yields (NotFound: no online root; the file is
// served as it is until someone with the root signs a new one, and a
// warning says so once its nextUpdate is near).
//
// Thread-safety: thread-safe; readers get an immutable snapshot.
class RootCrlPublisher {
 public:
  using KeySource = std::function<Result<ossl::EvpPkeyPtr>()>;
  RootCrlPublisher(DataDir dir, X509* root_cert, KeySource root_key, int validity_s)
      : dir_(std::move(dir)),
        root_cert_(root_cert),
        root_key_(std::move(root_key)),
        validity_s_(validity_s) {}

  Status Refresh();
  // DER, or null when there is no root CRL at all.
  std::shared_ptr<const std::string> Der() const;
  UnixMillis this_update() const;
  UnixMillis next_update() const;

 private:
  Status RefreshOnce(bool may_sign);

  // Constant after construction.
  const DataDir dir_;
  X509* const root_cert_;
  const KeySource root_key_;
  const int validity_s_;

  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> der_;  // guarded by mutex_
  UnixMillis this_update_ = 0;              // guarded by mutex_
  UnixMillis next_update_ = 0;              // guarded by mutex_
};

}  // namespace fg
