#pragma once

// RAII handles for OpenSSL objects and the few conversions every module needs.
// OpenSSL never leaks out of a function without one of these owning it.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg::ossl {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
template <typename T, void (*F)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, F>>;

using BioPtr = Ptr<BIO, BIO_free_all>;
using X509Ptr = Ptr<X509, X509_free>;
using X509ReqPtr = Ptr<X509_REQ, X509_REQ_free>;
using X509CrlPtr = Ptr<X509_CRL, X509_CRL_free>;
using X509NamePtr = Ptr<X509_NAME, X509_NAME_free>;
using X509ExtPtr = Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using X509StorePtr = Ptr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509RevokedPtr = Ptr<X509_REVOKED, X509_REVOKED_free>;
using EvpPkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpMdCtxPtr = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Asn1IntegerPtr = Ptr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1TimePtr = Ptr<ASN1_TIME, ASN1_TIME_free>;
using Asn1OctetStringPtr = Ptr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using BignumPtr = Ptr<BIGNUM, BN_free>;
using GeneralNamesPtr = Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;
using OcspRequestPtr = Ptr<OCSP_REQUEST, OCSP_REQUEST_free>;
using OcspResponsePtr = Ptr<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using OcspBasicRespPtr = Ptr<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using OcspCertIdPtr = Ptr<OCSP_CERTID, OCSP_CERTID_free>;

// The OpenSSL error queue as one line (and clears it).
std::string LastError();
// Status::Internal(what + ": " + LastError()).
Status Error(std::string_view what);

// PEM / DER conversions.
Result<X509Ptr> CertFromPem(std::string_view pem);
Result<X509Ptr> CertFromDer(std::string_view der);
Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem);
Result<X509ReqPtr> CsrFromPem(std::string_view pem);  // PEM or DER accepted
std::string CertToPem(X509* cert);
std::string CertToDer(X509* cert);
std::string CrlToDer(X509_CRL* crl);
std::string CrlToPem(X509_CRL* crl);

// Private keys: PKCS#8, encrypted with AES-256-CBC when a passphrase is given.
Result<std::string> KeyToPkcs8Pem(EVP_PKEY* key, std::string_view passphrase);
Result<EvpPkeyPtr> KeyFromPem(std::string_view pem, std::string_view passphrase);
std::string PublicKeyToPem(EVP_PKEY* key);

// A fresh ECDSA P-256 key.
Result<EvpPkeyPtr> GenerateP256Key();

// "sha256:<64 lower hex>" of the DER SubjectPublicKeyInfo: the identity of a key.
Result<std::string> KeyFingerprint(EVP_PKEY* key);
std::string SpkiFingerprint(std::string_view spki_der);
// The DER SubjectPublicKeyInfo. From an EVP_PKEY OpenSSL 3.0 goes through its
// encoder framework (~100 us); from an X509_PUBKEY (CSR, certificate) it is
// a plain re-encoding: prefer that where one exists.
Result<std::string> SpkiDer(EVP_PKEY* key);
Result<std::string> SpkiDer(const X509_PUBKEY* key);
// Sets a certificate's public key straight from SPKI DER, without decoding
// the key into an EVP_PKEY (X509_set_pubkey costs ~180 us in OpenSSL 3.0).
Status SetCertPublicKey(X509* cert, std::string_view spki_der);
// "sha256:<64 lower hex>" of the certificate DER.
std::string CertFingerprint(X509* cert);

// Upper-case hex without leading zeros ("0" for zero) of a serial number.
std::string SerialToHex(const ASN1_INTEGER* serial);
// Parses hex (case-insensitive, optional "0x", optional ':' separators).
Result<Asn1IntegerPtr> SerialFromHex(std::string_view hex);
// Normalises user input to the SerialToHex form.
Result<std::string> NormalizeSerialHex(std::string_view hex);

std::string HexLower(const unsigned char* data, size_t len);
std::string Sha256(std::string_view data);  // raw 32 bytes

// Converts ASN1_TIME to Unix milliseconds.
Result<int64_t> Asn1TimeToMillis(const ASN1_TIME* t);

}  // namespace fg::ossl
