#pragma once

// The certificate authority: a long-lived root, an issuing CA that signs
// device certificates and CRLs, and short-lived service credentials issued
// by it: a delegated OCSP signer (OCSPSigning EKU, id-pkix-ocsp-nocheck) so
// the issuing key signs nothing on the OCSP hot path, a CMP RA signer, and a
// TLS server certificate (EST, device config).
// Private keys are PKCS#8 encrypted at rest (AES-256-CBC): the root and
// issuing keys under the operator's passphrase with scrypt (N=2^14, r=8,
// p=5), the service keys under a secret derived from the issuing key (ca.cc
// says why). Keys written with the old PBKDF2 (2,048 iterations) still load
// and are re-encrypted on Load. Nothing here ever writes or prints a private
// key in clear.
//
// The issuing CA key is either such a file or, with config `ca.hsm`, a key
// in a PKCS#11 token (pki/hsm.h): then it is an engine-backed EVP_PKEY, the
// token signs, and no file holds it; every signer below works the same. The
// service keys are then encrypted under a random secret in
// DIR/secrets/service-keys.secret instead (nothing can be derived from a key
// that cannot be read).
//
// Thread-safety: immutable after Load() but for the cluster's URL list
// (SetNodeUrls, guarded by a mutex); signing calls are safe to make
// concurrently (OpenSSL 3 keys are safe for concurrent signing; an HSM key
// signs under HsmSignLock()).

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/ossl.h"
#include "common/status.h"
#include "common/time.h"

namespace fg {

struct Certificate;  // store/store.h

class CertificateAuthority {
 public:
  // Creates root, issuing CA and OCSP signer under dir.CaDir(), keys
  // encrypted with `passphrase`. Fails if any CA file already exists.
  static Status Create(const DataDir& dir, const Config& config, std::string_view passphrase);
  static Result<std::unique_ptr<CertificateAuthority>> Load(const DataDir& dir, const Config& config,
                                                            std::string_view passphrase);

  // ---- offline root (docs/pki.md, "Offline root") ----
  // A root-only data dir: ROOT/ca/root.crt and root.key (under
  // `passphrase`), nothing else. Fails if either exists.
  static Status CreateRoot(const DataDir& root_dir, const Config& config, std::string_view passphrase);
  // A node whose root is elsewhere, step 1: makes the issuing key (a file
  // under `passphrase`, or in the token of config ca.hsm) and returns a
  // PKCS#10 request for it, PEM. No root key is made or needed.
  static Result<std::string> CreateIssuingRequest(const DataDir& dir, const Config& config,
                                                  std::string_view passphrase);
  // In the root data dir: an issuing CA certificate for `csr_pem` (its
  // signature checked; the subject and extensions are ours, not the
  // request's), valid `validity_days`, its CRL distribution point
  // `root_crl_url` (where the root CRL is published; empty: none). PEM.
  static Result<std::string> SignIssuing(const DataDir& root_dir, const Config& config, std::string_view passphrase,
                                         std::string_view csr_pem, int validity_days,
                                         const std::string& root_crl_url);
  // Step 2: installs the issuing certificate signed by the root and the
  // root certificate; the issuing certificate must verify under the root
  // and match the key of step 1. Makes the service credentials.
  static Status InstallIssuing(const DataDir& dir, const Config& config, std::string_view passphrase,
                               std::string_view issuing_pem, std::string_view root_pem);
  // In the root data dir: the root's CRL listing `revoked_serials` (hex),
  // DER.
  static Result<std::string> SignRootCrl(const DataDir& root_dir, std::string_view passphrase,
                                         const std::vector<std::string>& revoked_serials, int64_t crl_number,
                                         UnixMillis this_update, UnixMillis next_update);

  // ---- rotation (docs/pki.md, "Issuing CA rotation") ----
  // With the root key online in DIR/ca/root.key: a new issuing key (a file
  // under `passphrase`) and certificate signed by the root, valid
  // `validity_days` (never past the root). The old issuing CA moves to
  // DIR/ca/retired/issuing-<serial>.{crt,key} (its key file as it was) and
  // stays loaded (retired()) for OCSP, its CRL and renewals. The service
  // credentials are re-made under the new CA. FailedPrecondition (nothing
  // written) without the root key, or with the issuing key in an HSM.
  // Returns the new issuing CA certificate's serial (hex).
  static Result<std::string> Rotate(const DataDir& dir, const Config& config, std::string_view passphrase,
                                    int validity_days);
  // The same with the root elsewhere, step 1: a new issuing key in
  // DIR/ca/issuing.next.key (under `passphrase`) and its PKCS#10 request,
  // PEM, for `ca sign-issuing` where the root is. Nothing else changes.
  static Result<std::string> RotateRequest(const DataDir& dir, const Config& config, std::string_view passphrase);
  // Step 2: `issuing_pem` must verify under this node's root, be a CA and
  // be for the pending key; then as Rotate. Returns the new serial.
  static Result<std::string> RotateInstall(const DataDir& dir, const Config& config, std::string_view passphrase,
                                           std::string_view issuing_pem);

  // An issuing CA this node answers for: the current one (index 0 of
  // issuers()) or a retired one kept until its certificates expire.
  struct Issuer {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
    std::string serial;    // hex, of the CA certificate
    std::string crl_path;  // "/crl" or "/crl/<serial>": the CDP path of its certificates
  };
  // Current first, then retired ones (newest first).
  std::vector<Issuer> issuers() const;
  // The index in issuers() of the CA that issued `leaf` (name and key
  // identifier match, and the signature verifies), or -1.
  int IssuerIndexOf(X509* leaf) const;

  X509* root_cert() const { return root_cert_.get(); }
  X509* issuing_cert() const { return issuing_cert_.get(); }
  EVP_PKEY* issuing_key() const { return issuing_key_.get(); }
  X509* ocsp_cert() const { return ocsp_cert_.get(); }
  EVP_PKEY* ocsp_key() const { return ocsp_key_.get(); }
  // Signs CMP responses and device config documents (EKU cmcRA).
  X509* cmp_cert() const { return cmp_cert_.get(); }
  EVP_PKEY* cmp_key() const { return cmp_key_.get(); }
  // TLS server credential for EST and the device config endpoint.
  X509* tls_cert() const { return tls_cert_.get(); }
  EVP_PKEY* tls_key() const { return tls_key_.get(); }
  const Config& config() const { return config_; }
  // True when the issuing CA key is in a PKCS#11 token (config ca.hsm).
  bool issuing_key_in_hsm() const { return issuing_in_hsm_; }

  std::string RootPem() const;
  std::string IssuingPem() const;
  std::string ChainPem() const;  // issuing then root

  // Signs a device certificate for `device_id` over `public_key`. No policy
  // here: IssuancePolicy decides whether this may happen.
  // `spki_der` is the device's SubjectPublicKeyInfo, DER.
  Result<ossl::X509Ptr> SignDeviceCertificate(std::string_view device_id, std::string_view spki_der,
                                              UnixMillis not_before, UnixMillis not_after,
                                              const ASN1_INTEGER* serial) const;

  // Signs a CRL listing `revoked` (kHold entries carry reason certificateHold).
  // `issuer` indexes issuers() (0: the current CA).
  Result<ossl::X509CrlPtr> SignCrl(const std::vector<Certificate>& revoked, int64_t crl_number,
                                   UnixMillis this_update, UnixMillis next_update, size_t issuer = 0) const;

  // Tests only: CA keys written from now on use PBKDF2 with 2,048 iterations
  // (the old cost) instead of scrypt, so that fixtures making a CA per test
  // stay fast. femtoguard itself never calls it.
  static void UseFastKdfForTest(bool fast);

  // 128 random bits, positive, fixed length.
  static Result<ossl::Asn1IntegerPtr> RandomSerial();

  // "urn:femtoguard:device:<id>"
  static std::string DeviceUri(std::string_view device_id);

  // ---- cluster (docs/cluster.md) ----
  // The base URL of every node of the cluster, in the operator's url_order.
  // Device certificates signed from now on carry, in AIA, <base>/ocsp of
  // each and, in the CDP, the CRL URL of each, in this order (strongSwan
  // tries OCSP URIs in order); the device config lists them too. Empty (a
  // single node, or no node registered yet): config public_url alone.
  // Duplicates and empty entries are dropped. Safe to call while signing.
  void SetNodeUrls(std::vector<std::string> base_urls);
  // What SetNodeUrls set (empty: not a cluster yet; callers fall back to
  // their node's public_url).
  std::vector<std::string> NodeUrls() const;
  // The CDP path ("/crl" or "/crl/<serial>") and caIssuers path of the
  // certificates the current issuing CA signs.
  std::string CurrentCrlPath() const;

 private:
  CertificateAuthority() = default;

  Config config_;
  bool issuing_in_hsm_ = false;
  ossl::X509Ptr root_cert_;
  ossl::X509Ptr issuing_cert_;
  ossl::EvpPkeyPtr issuing_key_;
  ossl::X509Ptr ocsp_cert_;
  ossl::EvpPkeyPtr ocsp_key_;
  ossl::X509Ptr cmp_cert_;
  ossl::EvpPkeyPtr cmp_key_;
  ossl::X509Ptr tls_cert_;
  ossl::EvpPkeyPtr tls_key_;
  struct Retired {
    ossl::X509Ptr cert;
    ossl::EvpPkeyPtr key;
  };
  std::vector<Retired> retired_;  // newest first
  // Serial (hex) of the issuing CA whose certificates name "/crl" (the CA
  // made by init); empty: the current one (never rotated). ca/crl-legacy.
  std::string legacy_serial_;

  mutable std::mutex node_urls_mutex_;
  std::vector<std::string> node_urls_;  // guarded by node_urls_mutex_
};

}  // namespace fg
