#include "common/ossl.h"

#include "common/der.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cctype>

namespace fg::ossl {

std::string LastError() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error" : out;
}

Status Error(std::string_view what) {
  return Status::Internal(std::string(what) + ": " + LastError());
}

namespace {

BioPtr MemBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<size_t>(n));
}

bool LooksLikePem(std::string_view s) { return s.find("-----BEGIN") != std::string_view::npos; }

}  // namespace

Result<X509Ptr> CertFromPem(std::string_view pem) {
  auto bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return Status::InvalidArgument("not a PEM certificate");
  }
  return cert;
}

Result<X509Ptr> CertFromDer(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ERR_clear_error();
    return Status::InvalidArgument("not a DER certificate");
  }
  return cert;
}

Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem) {
  auto bio = MemBio(pem);
  std::vector<X509Ptr> out;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(c);
  ERR_clear_error();
  if (out.empty()) return Status::InvalidArgument("no PEM certificate found");
  return out;
}

Result<X509ReqPtr> CsrFromPem(std::string_view data) {
  X509ReqPtr req;
  if (LooksLikePem(data)) {
    auto bio = MemBio(data);
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(data.size())));
  }
  if (!req) {
    ERR_clear_error();
    return Status::InvalidArgument("not a certificate signing request (PEM or DER PKCS#10)");
  }
  return req;
}

std::string CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return BioContents(bio.get());
}

std::string CertToDer(X509* cert) {
  int n = i2d_X509(cert, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(cert, &p);
  return out;
}

std::string CrlToDer(X509_CRL* crl) {
  int n = i2d_X509_CRL(crl, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509_CRL(crl, &p);
  return out;
}

std::string CrlToPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl);
  return BioContents(bio.get());
}

Result<std::string> KeyToPkcs8Pem(EVP_PKEY* key, std::string_view passphrase) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  int ok;
  if (passphrase.empty()) {
    ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    std::string pass(passphrase);
    ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), pass.data(),
                                       static_cast<int>(pass.size()), nullptr, nullptr);
    OPENSSL_cleanse(pass.data(), pass.size());
  }
  if (!ok) return Error("writing PKCS#8 key");
  return BioContents(bio.get());
}

Result<EvpPkeyPtr> KeyFromPem(std::string_view pem, std::string_view passphrase) {
  auto bio = MemBio(pem);
  std::string pass(passphrase);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, pass.empty() ? nullptr : pass.data()));
  OPENSSL_cleanse(pass.data(), pass.size());
  if (!key) {
    ERR_clear_error();
    return Status::PermissionDenied("cannot decrypt or parse private key (wrong passphrase?)");
  }
  return key;
}

std::string PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  return BioContents(bio.get());
}

Result<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Error("generating P-256 key");
  return key;
}

std::string HexLower(const unsigned char* data, size_t len) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string Sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

Result<std::string> SpkiDer(EVP_PKEY* key) {
  int n = i2d_PUBKEY(key, nullptr);
  if (n <= 0) return Error("encoding public key");
  std::string der(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_PUBKEY(key, &p);
  return der;
}

Result<std::string> SpkiDer(const X509_PUBKEY* key) {
  int n = i2d_X509_PUBKEY(key, nullptr);
  if (n <= 0) return Error("encoding public key");
  std::string der(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509_PUBKEY(key, &p);
  return der;
}

std::string SpkiFingerprint(std::string_view spki_der) {
  std::string md = Sha256(spki_der);
  return "sha256:" + HexLower(reinterpret_cast<const unsigned char*>(md.data()), md.size());
}

Result<std::string> KeyFingerprint(EVP_PKEY* key) {
  FG_ASSIGN_OR_RETURN(std::string der, SpkiDer(key));
  return SpkiFingerprint(der);
}

Status SetCertPublicKey(X509* cert, std::string_view spki_der) {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  FG_ASSIGN_OR_RETURN(der::Element spki, der::Parse(spki_der));
  FG_ASSIGN_OR_RETURN(auto parts, der::Children(spki.content));
  if (parts.size() != 2 || parts[1].tag != V_ASN1_BIT_STRING || parts[1].content.empty() ||
      parts[1].content[0] != 0) {
    return Status::InvalidArgument("malformed SubjectPublicKeyInfo");
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(parts[0].whole.data());
  Ptr<X509_ALGOR, X509_ALGOR_free> alg(d2i_X509_ALGOR(nullptr, &p, static_cast<long>(parts[0].whole.size())));
  if (!alg) return Error("public key algorithm");
  const ASN1_OBJECT* oid = nullptr;
  int ptype = V_ASN1_UNDEF;
  const void* pval = nullptr;
  X509_ALGOR_get0(&oid, &ptype, &pval, alg.get());
  void* pval_copy = nullptr;
  if (ptype == V_ASN1_OBJECT) {
    pval_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(pval));
  } else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING) {
    pval_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(pval));
  } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
    return Status::InvalidArgument("unsupported public key parameters");
  }
  std::string_view bits = parts[1].content.substr(1);
  auto* penc = static_cast<unsigned char*>(OPENSSL_memdup(bits.data(), bits.size()));
  if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_dup(oid), ptype, pval_copy, penc,
                              static_cast<int>(bits.size()))) {
    OPENSSL_free(penc);
    return Error("setting public key");
  }
  return Status::Ok();
}

std::string CertFingerprint(X509* cert) {
  std::string md = Sha256(CertToDer(cert));
  return "sha256:" + HexLower(reinterpret_cast<const unsigned char*>(md.data()), md.size());
}

std::string SerialToHex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

Result<std::string> NormalizeSerialHex(std::string_view in) {
  if (in.size() >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) in.remove_prefix(2);
  std::string digits;
  for (char c : in) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Status::InvalidArgument("serial must be hexadecimal");
    }
    digits += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (digits.empty() || digits.size() > 40) return Status::InvalidArgument("serial must be 1..40 hex digits");
  size_t nz = digits.find_first_not_of('0');
  return nz == std::string::npos ? std::string("0") : digits.substr(nz);
}

Result<Asn1IntegerPtr> SerialFromHex(std::string_view hex) {
  FG_ASSIGN_OR_RETURN(std::string norm, NormalizeSerialHex(hex));
  BIGNUM* raw = nullptr;
  if (!BN_hex2bn(&raw, norm.c_str())) return Status::InvalidArgument("bad serial");
  BignumPtr bn(raw);
  Asn1IntegerPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return Error("serial conversion");
  return out;
}

Result<int64_t> Asn1TimeToMillis(const ASN1_TIME* t) {
  struct tm tm {};
  if (!ASN1_TIME_to_tm(t, &tm)) return Status::InvalidArgument("bad ASN.1 time");
  time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1000;
}

}  // namespace fg::ossl
