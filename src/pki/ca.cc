#include "pki/ca.h"

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>

#include "pki/hsm.h"
#include "store/store.h"

namespace fg {
namespace {

namespace fs = std::filesystem;
using ossl::X509Ptr;

constexpr const char* kRootCert = "root.crt";
constexpr const char* kRootKey = "root.key";
constexpr const char* kIssuingCert = "issuing.crt";
constexpr const char* kIssuingKey = "issuing.key";
// Retired issuing CAs (ca rotate): retired/issuing-<serial>.{crt,key}.
constexpr const char* kRetiredDir = "retired";
// The serial of the issuing CA whose device certificates name "/crl" (the
// one init made), written by the first rotation.
constexpr const char* kLegacyCrl = "crl-legacy";

// The subject key identifier must exist before AKI can refer to it, and the
// conf-string extension API is the documented way to build both.
Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ossl::X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) return ossl::Error("building extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  if (!X509_add_ext(cert, ext.get(), -1)) return ossl::Error("adding extension");
  return Status::Ok();
}

Status SetTimes(X509* cert, UnixMillis not_before, UnixMillis not_after) {
  ossl::Asn1TimePtr nb(ASN1_TIME_set(nullptr, static_cast<time_t>(not_before / 1000)));
  ossl::Asn1TimePtr na(ASN1_TIME_set(nullptr, static_cast<time_t>(not_after / 1000)));
  if (!nb || !na || !X509_set1_notBefore(cert, nb.get()) || !X509_set1_notAfter(cert, na.get())) {
    return ossl::Error("setting validity");
  }
  return Status::Ok();
}

Result<ossl::X509NamePtr> MakeName(const std::string& cn, const std::string& org) {
  ossl::X509NamePtr name(X509_NAME_new());
  if (!org.empty() &&
      !X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0)) {
    return ossl::Error("subject O");
  }
  if (!X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0)) {
    return ossl::Error("subject CN");
  }
  return name;
}

struct CertSpec {
  std::string cn;
  std::string org;
  EVP_PKEY* subject_key = nullptr;  // public part used, unless subject_spki is set
  std::string_view subject_spki;    // SubjectPublicKeyInfo DER
  X509* issuer_cert = nullptr;      // nullptr = self-signed
  EVP_PKEY* issuer_key = nullptr;
  UnixMillis not_before = 0;
  UnixMillis not_after = 0;
  const ASN1_INTEGER* serial = nullptr;
  std::vector<std::pair<int, std::string>> extensions;  // after SKI/AKI
};

Result<X509Ptr> BuildCert(const CertSpec& spec) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return ossl::Error("X509_new");
  ossl::Asn1IntegerPtr own_serial;
  const ASN1_INTEGER* serial = spec.serial;
  if (serial == nullptr) {
    FG_ASSIGN_OR_RETURN(own_serial, CertificateAuthority::RandomSerial());
    serial = own_serial.get();
  }
  if (!X509_set_serialNumber(cert.get(), const_cast<ASN1_INTEGER*>(serial))) return ossl::Error("serial");
  FG_ASSIGN_OR_RETURN(auto subject, MakeName(spec.cn, spec.org));
  if (!X509_set_subject_name(cert.get(), subject.get())) return ossl::Error("subject");
  X509* issuer = spec.issuer_cert ? spec.issuer_cert : cert.get();
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer))) return ossl::Error("issuer");
  if (!spec.subject_spki.empty()) {
    FG_RETURN_IF_ERROR(ossl::SetCertPublicKey(cert.get(), spec.subject_spki));
  } else if (!X509_set_pubkey(cert.get(), spec.subject_key)) {
    return ossl::Error("public key");
  }
  FG_RETURN_IF_ERROR(SetTimes(cert.get(), spec.not_before, spec.not_after));
  FG_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  FG_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  for (const auto& [nid, value] : spec.extensions) FG_RETURN_IF_ERROR(AddExt(cert.get(), issuer, nid, value));
  if (X509_sign(cert.get(), spec.issuer_key, EVP_sha256()) <= 0) return ossl::Error("signing certificate");
  return cert;
}

Status WriteCert(const fs::path& path, X509* cert) {
  return WriteFileAtomic(path, ossl::CertToPem(cert), 0644);
}

// ---- keys at rest ----
//
// The root and issuing CA keys are PKCS#8 encrypted (PBES2, AES-256-CBC)
// under the operator's passphrase with scrypt N=2^14, r=8, p=5: OWASP's
// scrypt floor (128 MiB x 1 lane, or 16 MiB x 5 lanes; OpenSSL 3.0 decrypts
// PKCS#8 scrypt only up to 32 MiB, so N=2^14 with p=5). Keys written before
// (PBKDF2-SHA256, 2,048 iterations) still load and are re-encrypted on Load.
//
// The service keys (OCSP, CMP, TLS) are re-made by the CA and read on every
// Load: one scrypt each would cost a second per CLI call. They are encrypted
// under a 256-bit secret derived from the issuing CA key instead
// (HMAC-SHA256), which no guessing can reach, so their PBKDF2 (2,048
// iterations) needs no cost: whoever can derive it holds the issuing key.
// The operator's passphrase is still what a guess has to find, and it only
// ever meets scrypt.
constexpr uint64_t kScryptN = 1U << 14;
constexpr uint64_t kScryptR = 8;
constexpr uint64_t kScryptP = 5;

std::atomic<bool> g_fast_kdf_for_test{false};

Result<std::string> ScryptPkcs8Pem(EVP_PKEY* key, std::string_view passphrase) {
  using P8InfPtr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)>;
  using AlgorPtr = std::unique_ptr<X509_ALGOR, decltype(&X509_ALGOR_free)>;
  using SigPtr = std::unique_ptr<X509_SIG, decltype(&X509_SIG_free)>;
  P8InfPtr p8inf(EVP_PKEY2PKCS8(key), PKCS8_PRIV_KEY_INFO_free);
  if (!p8inf) return ossl::Error("PKCS#8 from key");
  AlgorPtr pbe(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), nullptr, 0, nullptr, kScryptN, kScryptR, kScryptP),
               X509_ALGOR_free);
  if (!pbe) return ossl::Error("PBES2 scrypt parameters");
  std::string pass(passphrase);
  SigPtr sig(PKCS8_set0_pbe(pass.data(), static_cast<int>(pass.size()), p8inf.get(), pbe.get()), X509_SIG_free);
  OPENSSL_cleanse(pass.data(), pass.size());
  if (!sig) return ossl::Error("encrypting PKCS#8 key");
  pbe.release();  // owned by sig now
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8(bio.get(), sig.get()) != 1) return ossl::Error("writing PKCS#8 key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// True when `pem` is an encrypted PKCS#8 key whose key derivation is scrypt.
bool IsScryptPkcs8(const std::string& pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509_SIG, decltype(&X509_SIG_free)> sig(
      PEM_read_bio_PKCS8(bio.get(), nullptr, nullptr, nullptr), X509_SIG_free);
  if (!sig) {
    ERR_clear_error();
    return false;
  }
  const X509_ALGOR* alg = nullptr;
  X509_SIG_get0(sig.get(), &alg, nullptr);
  const ASN1_OBJECT* oid = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&oid, &ptype, &pval, alg);
  if (OBJ_obj2nid(oid) != NID_pbes2 || ptype != V_ASN1_SEQUENCE) return false;
  std::unique_ptr<PBE2PARAM, decltype(&PBE2PARAM_free)> pbe2(
      static_cast<PBE2PARAM*>(ASN1_item_unpack(static_cast<const ASN1_STRING*>(pval), ASN1_ITEM_rptr(PBE2PARAM))),
      PBE2PARAM_free);
  return pbe2 && pbe2->keyfunc && OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_scrypt;
}

// A CA key under the operator's passphrase: scrypt.
Status WriteKey(const fs::path& path, EVP_PKEY* key, std::string_view passphrase) {
  if (passphrase.empty()) return Status::InvalidArgument("refusing to store a CA key without a passphrase");
  auto pem = g_fast_kdf_for_test.load() ? ossl::KeyToPkcs8Pem(key, passphrase) : ScryptPkcs8Pem(key, passphrase);
  if (!pem.ok()) return pem.status();
  Status s = WriteFileAtomic(path, *pem, 0600);
  OPENSSL_cleanse(pem->data(), pem->size());
  return s;
}

// A service key under a secret derived from the issuing CA key (see above).
Status WriteServiceKey(const fs::path& path, EVP_PKEY* key, std::string_view secret) {
  FG_ASSIGN_OR_RETURN(std::string pem, ossl::KeyToPkcs8Pem(key, secret));
  Status s = WriteFileAtomic(path, pem, 0600);
  OPENSSL_cleanse(pem.data(), pem.size());
  return s;
}

// hex(HMAC-SHA256(issuing key, label)): the passphrase of the service keys.
Result<std::string> ServiceKeySecret(EVP_PKEY* issuing_key) {
  unsigned char* der = nullptr;
  int n = i2d_PrivateKey(issuing_key, &der);
  if (n <= 0) return ossl::Error("encoding the issuing CA key");
  static constexpr char kLabel[] = "femtoguard ca service-key secret v1";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = HMAC(EVP_sha256(), der, n, reinterpret_cast<const unsigned char*>(kLabel), sizeof kLabel - 1, mac, &len) !=
            nullptr;
  OPENSSL_clear_free(der, static_cast<size_t>(n));
  if (!ok) return ossl::Error("HMAC");
  std::string secret = ossl::HexLower(mac, len);
  OPENSSL_cleanse(mac, sizeof mac);
  return secret;
}

// ---- the issuing key in an HSM (config ca.hsm, pki/hsm.h) ----

// The service keys' secret when the issuing key is in a token: 256 random
// bits in DIR/secrets, made by Create.
fs::path ServiceSecretPath(const DataDir& dir) { return dir.SecretsDir() / "service-keys.secret"; }

Result<std::string> HsmServiceKeySecret(const DataDir& dir, bool create) {
  fs::path path = ServiceSecretPath(dir);
  if (create) {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return ossl::Error("RAND_bytes");
    std::string secret = ossl::HexLower(raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    std::error_code ec;
    fs::create_directories(dir.SecretsDir(), ec);
    FG_RETURN_IF_ERROR(WriteFileAtomic(path, secret, 0600));
    return secret;
  }
  auto secret = ReadFile(path);
  if (!secret.ok()) return Status::NotFound("service key secret missing: " + path.string());
  return secret;
}

// The issuing key from the token named by config ca.hsm; with `create`, the
// key pair is made in the token first unless it is there already.
Result<ossl::EvpPkeyPtr> HsmIssuingKey(const Config& config, bool create) {
  FG_ASSIGN_OR_RETURN(std::string pin, ReadSecretFile(config.ca_hsm_pin_file));
  Result<ossl::EvpPkeyPtr> key = Status::Internal("unreached");
  if (create) {
    auto made = EnsureHsmKey(config.ca_hsm_module, config.ca_hsm_uri, pin);
    if (!made.ok()) {
      OPENSSL_cleanse(pin.data(), pin.size());
      return made.status();
    }
  }
  key = LoadHsmKey(config.ca_hsm_module, config.ca_hsm_uri, pin);
  OPENSSL_cleanse(pin.data(), pin.size());
  return key;
}

Result<X509Ptr> ReadCert(const fs::path& path) {
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return ossl::CertFromPem(pem);
}

Result<ossl::EvpPkeyPtr> ReadKey(const fs::path& path, std::string_view passphrase) {
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = ossl::KeyFromPem(pem, passphrase);
  OPENSSL_cleanse(pem.data(), pem.size());
  return key;
}

// A CA key, re-encrypted with scrypt when it was written the old way
// (PBKDF2, 2,048 iterations). A failed re-encryption changes nothing: the old
// file stays and still loads.
Result<ossl::EvpPkeyPtr> ReadCaKey(const fs::path& path, std::string_view passphrase) {
  FG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = ossl::KeyFromPem(pem, passphrase);
  bool old_kdf = key.ok() && !g_fast_kdf_for_test.load() && !IsScryptPkcs8(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (old_kdf) (void)WriteKey(path, key->get(), passphrase);
  return key;
}

// The root key is not needed to load the CA: it is decrypted (cheap, old
// KDF) and re-encrypted only when it was written the old way, so an old data
// dir has no key left under 2,048 iterations after one Load.
void UpgradeRootKey(const fs::path& path, std::string_view passphrase) {
  if (g_fast_kdf_for_test.load()) return;
  auto pem = ReadFile(path);
  if (!pem.ok() || IsScryptPkcs8(*pem)) return;
  auto key = ossl::KeyFromPem(*pem, passphrase);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (key.ok()) (void)WriteKey(path, key->get(), passphrase);
}

UnixMillis Days(int d) { return static_cast<UnixMillis>(d) * kMillisPerDay; }

// Service credentials (OCSP signer, CMP/RA signer, TLS server) are
// short-lived relative to the CA; each is re-made from the issuing CA
// whenever it is missing or within 30 days of expiry.
struct ServiceSpec {
  const char* file;  // base name under ca/
  std::string cn_suffix;
  std::vector<std::pair<int, std::string>> extensions;
};

std::string HostOf(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.rfind(':') == std::string::npos ? rest.size() : rest.rfind(':'));
}

std::vector<ServiceSpec> ServiceSpecs(const Config& config) {
  std::string host = HostOf(config.public_url);
  bool is_ip = !host.empty() && host.find_first_not_of("0123456789.:") == std::string::npos;
  std::string san = "IP:127.0.0.1,DNS:localhost";
  if (!host.empty() && host != "127.0.0.1" && host != "localhost") san += (is_ip ? ",IP:" : ",DNS:") + host;
  return {
      {"ocsp", " OCSP Responder",
       {{NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "OCSPSigning"},
        {NID_id_pkix_OCSP_noCheck, "ignored"}}},
      // Signs CMP responses (RFC 4210 RA role) and device config documents
      // (CMS; emailProtection is the EKU that CMS verifiers such as
      // `openssl cms -verify` expect of a signer by default).
      {"cmp", " RA",
       {{NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "cmcRA,emailProtection"}}},
      {"tls", " TLS",
       {{NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
        {NID_subject_alt_name, san}}},
  };
}

Result<std::pair<X509Ptr, ossl::EvpPkeyPtr>> MakeServiceCredential(const Config& config, const ServiceSpec& spec,
                                                                   X509* issuing_cert, EVP_PKEY* issuing_key) {
  FG_ASSIGN_OR_RETURN(auto key, ossl::GenerateP256Key());
  UnixMillis now = NowMillis();
  CertSpec cs;
  cs.cn = config.ca_name + spec.cn_suffix;
  cs.org = config.ca_name;
  cs.subject_key = key.get();
  cs.issuer_cert = issuing_cert;
  cs.issuer_key = issuing_key;
  cs.not_before = now - 3600 * 1000;
  cs.not_after = now + Days(config.ocsp_signer_validity_days);
  cs.extensions = spec.extensions;
  FG_ASSIGN_OR_RETURN(auto cert, BuildCert(cs));
  return std::make_pair(std::move(cert), std::move(key));
}

// Loads a service credential, re-making it when missing, unreadable or near expiry.
Result<std::pair<X509Ptr, ossl::EvpPkeyPtr>> LoadServiceCredential(const fs::path& ca, const Config& config,
                                                                   const ServiceSpec& spec, X509* issuing_cert,
                                                                   EVP_PKEY* issuing_key,
                                                                   std::string_view passphrase,
                                                                   std::string secret) {
  fs::path crt = ca / (std::string(spec.file) + ".crt");
  fs::path key = ca / (std::string(spec.file) + ".key");
  auto cert = ReadCert(crt);
  auto pkey = ReadKey(key, secret);
  if (!pkey.ok()) {
    // Written before issue 13: under the operator's passphrase. Kept (same
    // key and certificate), re-encrypted under the derived secret.
    pkey = ReadKey(key, passphrase);
    if (pkey.ok()) (void)WriteServiceKey(key, pkey->get(), secret);
  }
  bool renew = !cert.ok() || !pkey.ok();
  if (!renew) {
    auto not_after = ossl::Asn1TimeToMillis(X509_get0_notAfter(cert->get()));
    renew = !not_after.ok() || *not_after < NowMillis() + Days(30) ||
            X509_check_private_key(cert->get(), pkey->get()) != 1;
  }
  if (!renew) return std::make_pair(std::move(cert).value(), std::move(pkey).value());
  FG_ASSIGN_OR_RETURN(auto made, MakeServiceCredential(config, spec, issuing_cert, issuing_key));
  FG_RETURN_IF_ERROR(WriteServiceKey(key, made.second.get(), secret));
  FG_RETURN_IF_ERROR(WriteCert(crt, made.first.get()));
  OPENSSL_cleanse(secret.data(), secret.size());
  return made;
}

}  // namespace

void CertificateAuthority::UseFastKdfForTest(bool fast) { g_fast_kdf_for_test.store(fast); }

Result<ossl::Asn1IntegerPtr> CertificateAuthority::RandomSerial() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return ossl::Error("RAND_bytes");
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7F) | 0x40);  // positive, 16 significant bytes
  ossl::BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  ossl::Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return ossl::Error("serial");
  return serial;
}

std::string CertificateAuthority::DeviceUri(std::string_view device_id) {
  return "urn:femtoguard:device:" + std::string(device_id);
}

namespace {

// The extensions of an issuing CA certificate. The CDP names the root CRL, so
// strict relying parties (RFC 5280 §6.3, strongSwan `revocation = strict`)
// can decide the issuing CA's status.
std::vector<std::pair<int, std::string>> IssuingCaExtensions(const std::string& root_crl_url) {
  std::vector<std::pair<int, std::string>> out = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                                  {NID_key_usage, "critical,keyCertSign,cRLSign"}};
  if (!root_crl_url.empty()) out.emplace_back(NID_crl_distribution_points, "URI:" + root_crl_url);
  return out;
}

// Creates `ca` (0700) and refuses when any of `taken` is already there.
Status PrepareCaDir(const fs::path& ca, std::initializer_list<const char*> taken) {
  std::error_code ec;
  fs::create_directories(ca, ec);
  if (ec) return Status::Internal("cannot create " + ca.string() + ": " + ec.message());
  fs::permissions(ca, fs::perms::owner_all, ec);
  for (const char* f : taken) {
    if (fs::exists(ca / f)) return Status::AlreadyExists("CA file exists: " + (ca / f).string());
  }
  return Status::Ok();
}

// A new self-signed root CA: its key and certificate.
Result<std::pair<ossl::EvpPkeyPtr, X509Ptr>> MakeRootCa(const Config& config, UnixMillis now) {
  FG_ASSIGN_OR_RETURN(auto root_key, ossl::GenerateP256Key());
  CertSpec root;
  root.cn = config.ca_name + " Root CA";
  root.org = config.ca_name;
  root.subject_key = root_key.get();
  root.issuer_key = root_key.get();
  root.not_before = now - 3600 * 1000;
  root.not_after = now + Days(config.root_validity_days);
  root.extensions = {{NID_basic_constraints, "critical,CA:TRUE"}, {NID_key_usage, "critical,keyCertSign,cRLSign"}};
  FG_ASSIGN_OR_RETURN(auto root_cert, BuildCert(root));
  return std::make_pair(std::move(root_key), std::move(root_cert));
}

// An issuing CA certificate for `subject_key`, signed by the root, valid
// until `not_after`, its CDP `root_crl_url` (IssuingCaExtensions).
Result<X509Ptr> MakeIssuingCa(const Config& config, EVP_PKEY* subject_key, X509* root_cert, EVP_PKEY* root_key,
                              UnixMillis now, UnixMillis not_after, const std::string& root_crl_url) {
  CertSpec issuing;
  issuing.cn = config.ca_name + " Issuing CA";
  issuing.org = config.ca_name;
  issuing.subject_key = subject_key;
  issuing.issuer_cert = root_cert;
  issuing.issuer_key = root_key;
  issuing.not_before = now - 3600 * 1000;
  issuing.not_after = not_after;
  issuing.extensions = IssuingCaExtensions(root_crl_url);
  return BuildCert(issuing);
}

}  // namespace

Status CertificateAuthority::Create(const DataDir& dir, const Config& config, std::string_view passphrase) {
  fs::path ca = dir.CaDir();
  FG_RETURN_IF_ERROR(PrepareCaDir(ca, {kRootCert, kRootKey, kIssuingCert, kIssuingKey}));
  const bool hsm = !config.ca_hsm_uri.empty();
  UnixMillis now = NowMillis();
  FG_ASSIGN_OR_RETURN(auto root, MakeRootCa(config, now));
  auto& [root_key, root_cert] = root;

  // In a token: made there (or found there), never in this process's memory.
  FG_ASSIGN_OR_RETURN(auto issuing_key, hsm ? HsmIssuingKey(config, /*create=*/true) : ossl::GenerateP256Key());
  FG_ASSIGN_OR_RETURN(auto issuing_cert,
                      MakeIssuingCa(config, issuing_key.get(), root_cert.get(), root_key.get(), now,
                                    now + Days(config.issuing_validity_days), config.public_url + "/crl/root"));

  FG_RETURN_IF_ERROR(WriteKey(ca / kRootKey, root_key.get(), passphrase));
  FG_RETURN_IF_ERROR(WriteCert(ca / kRootCert, root_cert.get()));
  if (!hsm) FG_RETURN_IF_ERROR(WriteKey(ca / kIssuingKey, issuing_key.get(), passphrase));
  FG_RETURN_IF_ERROR(WriteCert(ca / kIssuingCert, issuing_cert.get()));
  FG_ASSIGN_OR_RETURN(std::string secret,
                      hsm ? HsmServiceKeySecret(dir, /*create=*/true) : ServiceKeySecret(issuing_key.get()));
  for (const ServiceSpec& spec : ServiceSpecs(config)) {
    FG_ASSIGN_OR_RETURN(auto made, MakeServiceCredential(config, spec, issuing_cert.get(), issuing_key.get()));
    FG_RETURN_IF_ERROR(WriteServiceKey(ca / (std::string(spec.file) + ".key"), made.second.get(), secret));
    FG_RETURN_IF_ERROR(WriteCert(ca / (std::string(spec.file) + ".crt"), made.first.get()));
  }
  return Status::Ok();
}

// ---- offline root ----

namespace {


// The node's issuing key: the token's, or the file's under `passphrase`.
Result<ossl::EvpPkeyPtr> NodeIssuingKey(const fs::path& ca, const Config& config, std::string_view passphrase) {
  if (!config.ca_hsm_uri.empty()) return HsmIssuingKey(config, /*create=*/false);
  return ReadCaKey(ca / kIssuingKey, passphrase);
}

}  // namespace

Status CertificateAuthority::CreateRoot(const DataDir& root_dir, const Config& config, std::string_view passphrase) {
  fs::path ca = root_dir.CaDir();
  FG_RETURN_IF_ERROR(PrepareCaDir(ca, {kRootCert, kRootKey}));
  FG_ASSIGN_OR_RETURN(auto root, MakeRootCa(config, NowMillis()));
  FG_RETURN_IF_ERROR(WriteKey(ca / kRootKey, root.first.get(), passphrase));
  return WriteCert(ca / kRootCert, root.second.get());
}

Result<std::string> CertificateAuthority::CreateIssuingRequest(const DataDir& dir, const Config& config,
                                                               std::string_view passphrase) {
  fs::path ca = dir.CaDir();
  FG_RETURN_IF_ERROR(PrepareCaDir(ca, {kRootKey, kIssuingCert, kIssuingKey}));
  const bool hsm = !config.ca_hsm_uri.empty();
  FG_ASSIGN_OR_RETURN(auto key, hsm ? HsmIssuingKey(config, /*create=*/true) : ossl::GenerateP256Key());
  if (!hsm) FG_RETURN_IF_ERROR(WriteKey(ca / kIssuingKey, key.get(), passphrase));
  ossl::Ptr<X509_REQ, X509_REQ_free> req(X509_REQ_new());
  FG_ASSIGN_OR_RETURN(auto subject, MakeName(config.ca_name + " Issuing CA", config.ca_name));
  if (!req || !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_subject_name(req.get(), subject.get()) ||
      !X509_REQ_set_pubkey(req.get(), key.get())) {
    return ossl::Error("issuing CA request");
  }
  {
    std::unique_lock hsm_lock(HsmSignLock(), std::defer_lock);
    if (hsm) hsm_lock.lock();
    if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return ossl::Error("signing the issuing CA request");
  }
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return ossl::Error("writing the request");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> CertificateAuthority::SignIssuing(const DataDir& root_dir, const Config& config,
                                                      std::string_view passphrase, std::string_view csr_pem,
                                                      int validity_days, const std::string& root_crl_url) {
  fs::path ca = root_dir.CaDir();
  FG_ASSIGN_OR_RETURN(X509Ptr root_cert, ReadCert(ca / kRootCert));
  FG_ASSIGN_OR_RETURN(auto root_key, ReadCaKey(ca / kRootKey, passphrase));
  ossl::BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ossl::Ptr<X509_REQ, X509_REQ_free> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return Status::InvalidArgument("not a PEM certificate request");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the certificate request's signature does not verify");
  }
  UnixMillis now = NowMillis();
  UnixMillis root_end = 0;
  FG_ASSIGN_OR_RETURN(root_end, ossl::Asn1TimeToMillis(X509_get0_notAfter(root_cert.get())));
  FG_ASSIGN_OR_RETURN(auto cert, MakeIssuingCa(config, pub, root_cert.get(), root_key.get(), now,
                                               std::min(now + Days(validity_days), root_end),  // never past the root
                                               root_crl_url));
  return ossl::CertToPem(cert.get());
}

Status CertificateAuthority::InstallIssuing(const DataDir& dir, const Config& config, std::string_view passphrase,
                                            std::string_view issuing_pem, std::string_view root_pem) {
  fs::path ca = dir.CaDir();
  if (fs::exists(ca / kRootKey)) {
    return Status::FailedPrecondition("this data dir holds a root key: it was not made for an offline root");
  }
  auto issuing = ossl::CertFromPem(issuing_pem);
  auto root = ossl::CertFromPem(root_pem);
  if (!issuing.ok()) return Status::InvalidArgument("issuing CA certificate: not PEM");
  if (!root.ok()) return Status::InvalidArgument("root CA certificate: not PEM");
  // The root is self-signed and a CA; the issuing certificate verifies under it.
  ossl::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root->get());
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), issuing->get(), nullptr) != 1) {
    return ossl::Error("verification context");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    std::string why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return Status::InvalidArgument("the issuing CA certificate does not verify under the root: " + why);
  }
  if (X509_check_ca(issuing->get()) < 1) return Status::InvalidArgument("the issuing certificate is not a CA");
  FG_ASSIGN_OR_RETURN(auto key, NodeIssuingKey(ca, config, passphrase));
  if (X509_check_private_key(issuing->get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the issuing CA certificate is not for this node's issuing key");
  }
  const bool hsm = !config.ca_hsm_uri.empty();
  FG_ASSIGN_OR_RETURN(std::string secret,
                      hsm ? HsmServiceKeySecret(dir, /*create=*/true) : ServiceKeySecret(key.get()));
  for (const ServiceSpec& spec : ServiceSpecs(config)) {
    FG_ASSIGN_OR_RETURN(auto made, MakeServiceCredential(config, spec, issuing->get(), key.get()));
    FG_RETURN_IF_ERROR(WriteServiceKey(ca / (std::string(spec.file) + ".key"), made.second.get(), secret));
    FG_RETURN_IF_ERROR(WriteCert(ca / (std::string(spec.file) + ".crt"), made.first.get()));
  }
  OPENSSL_cleanse(secret.data(), secret.size());
  FG_RETURN_IF_ERROR(WriteCert(ca / kRootCert, root->get()));
  return WriteCert(ca / kIssuingCert, issuing->get());
}

Result<std::string> CertificateAuthority::SignRootCrl(const DataDir& root_dir, std::string_view passphrase,
                                                      const std::vector<std::string>& revoked_serials,
                                                      int64_t crl_number, UnixMillis this_update,
                                                      UnixMillis next_update) {
  fs::path ca = root_dir.CaDir();
  FG_ASSIGN_OR_RETURN(X509Ptr root_cert, ReadCert(ca / kRootCert));
  FG_ASSIGN_OR_RETURN(auto root_key, ReadCaKey(ca / kRootKey, passphrase));
  ossl::X509CrlPtr crl(X509_CRL_new());
  if (!crl || !X509_CRL_set_version(crl.get(), 1) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(root_cert.get()))) {
    return ossl::Error("root CRL header");
  }
  ossl::Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(this_update / 1000)));
  ossl::Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(next_update / 1000)));
  if (!X509_CRL_set1_lastUpdate(crl.get(), last.get()) || !X509_CRL_set1_nextUpdate(crl.get(), next.get())) {
    return ossl::Error("root CRL times");
  }
  for (const std::string& hex : revoked_serials) {
    ossl::X509RevokedPtr entry(X509_REVOKED_new());
    FG_ASSIGN_OR_RETURN(auto serial, ossl::SerialFromHex(hex));
    if (!X509_REVOKED_set_serialNumber(entry.get(), serial.get()) ||
        !X509_REVOKED_set_revocationDate(entry.get(), last.get()) || !X509_CRL_add0_revoked(crl.get(), entry.get())) {
      return ossl::Error("root CRL entry");
    }
    entry.release();
  }
  ossl::Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!ASN1_INTEGER_set_int64(number.get(), crl_number) ||
      !X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0)) {
    return ossl::Error("root CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, root_cert.get(), nullptr, nullptr, crl.get(), 0);
  ossl::X509ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1)) return ossl::Error("root CRL AKI");
  if (!X509_CRL_sort(crl.get()) || X509_CRL_sign(crl.get(), root_key.get(), EVP_sha256()) <= 0) {
    return ossl::Error("signing the root CRL");
  }
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  if (n <= 0) return ossl::Error("encoding the root CRL");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Load(const DataDir& dir, const Config& config,
                                                                         std::string_view passphrase) {
  fs::path ca = dir.CaDir();
  std::unique_ptr<CertificateAuthority> out(new CertificateAuthority());
  out->config_ = config;
  FG_ASSIGN_OR_RETURN(out->root_cert_, ReadCert(ca / kRootCert));
  FG_ASSIGN_OR_RETURN(out->issuing_cert_, ReadCert(ca / kIssuingCert));
  out->issuing_in_hsm_ = !config.ca_hsm_uri.empty();
  if (out->issuing_in_hsm_) {
    FG_ASSIGN_OR_RETURN(out->issuing_key_, HsmIssuingKey(config, /*create=*/false));
  } else {
    FG_ASSIGN_OR_RETURN(out->issuing_key_, ReadCaKey(ca / kIssuingKey, passphrase));
  }
  UpgradeRootKey(ca / kRootKey, passphrase);
  if (X509_check_private_key(out->issuing_cert_.get(), out->issuing_key_.get()) != 1) {
    return ossl::Error("issuing CA key does not match its certificate");
  }
  FG_ASSIGN_OR_RETURN(std::string secret, out->issuing_in_hsm_ ? HsmServiceKeySecret(dir, /*create=*/false)
                                                               : ServiceKeySecret(out->issuing_key_.get()));
  for (const ServiceSpec& spec : ServiceSpecs(config)) {
    FG_ASSIGN_OR_RETURN(auto cred, LoadServiceCredential(ca, config, spec, out->issuing_cert_.get(),
                                                         out->issuing_key_.get(), passphrase, secret));
    std::string file = spec.file;
    if (file == "ocsp") {
      out->ocsp_cert_ = std::move(cred.first);
      out->ocsp_key_ = std::move(cred.second);
    } else if (file == "cmp") {
      out->cmp_cert_ = std::move(cred.first);
      out->cmp_key_ = std::move(cred.second);
    } else {
      out->tls_cert_ = std::move(cred.first);
      out->tls_key_ = std::move(cred.second);
    }
  }
  if (auto legacy = ReadFile(ca / kLegacyCrl); legacy.ok()) {
    std::string serial = *legacy;
    while (!serial.empty() && (serial.back() == '\n' || serial.back() == ' ')) serial.pop_back();
    out->legacy_serial_ = serial;
  }
  // Retired issuing CAs still inside their validity: their certificates are
  // answered for (OCSP, CRL) and renewed until they expire.
  std::error_code ec;
  if (fs::is_directory(ca / kRetiredDir, ec)) {
    std::vector<std::pair<UnixMillis, Retired>> found;
    for (const auto& entry : fs::directory_iterator(ca / kRetiredDir, ec)) {
      const fs::path& crt = entry.path();
      if (crt.extension() != ".crt" || crt.filename().string().rfind("issuing-", 0) != 0) continue;
      FG_ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(crt));
      auto not_after = ossl::Asn1TimeToMillis(X509_get0_notAfter(cert.get()));
      if (!not_after.ok() || *not_after <= NowMillis()) continue;  // expired: nothing it issued verifies
      fs::path key_path = crt;
      key_path.replace_extension(".key");
      auto key = ReadCaKey(key_path, passphrase);
      if (!key.ok()) return Status::Internal("retired issuing CA " + crt.string() + ": " + key.status().message());
      if (X509_check_private_key(cert.get(), key->get()) != 1) {
        ERR_clear_error();
        return Status::Internal("retired issuing CA " + crt.string() + ": the key does not match");
      }
      auto not_before = ossl::Asn1TimeToMillis(X509_get0_notBefore(cert.get()));
      found.emplace_back(not_before.ok() ? *not_before : 0, Retired{std::move(cert), std::move(key).value()});
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& f : found) out->retired_.push_back(std::move(f.second));
  }
  return out;
}

namespace {

// The CDP path of an issuing CA's device certificates: "/crl" for the CA
// init made (certificates issued before any rotation name it), else
// "/crl/<serial>".
std::string CrlPathOf(const std::string& serial, const std::string& legacy_serial, bool current) {
  if (legacy_serial.empty() ? current : serial == legacy_serial) return "/crl";
  return "/crl/" + serial;
}

}  // namespace

std::vector<CertificateAuthority::Issuer> CertificateAuthority::issuers() const {
  std::vector<Issuer> out;
  auto add = [&](X509* cert, EVP_PKEY* key, bool current) {
    Issuer i;
    i.cert = cert;
    i.key = key;
    i.serial = ossl::SerialToHex(X509_get0_serialNumber(cert));
    i.crl_path = CrlPathOf(i.serial, legacy_serial_, current);
    out.push_back(std::move(i));
  };
  add(issuing_cert_.get(), issuing_key_.get(), true);
  for (const Retired& r : retired_) add(r.cert.get(), r.key.get(), false);
  return out;
}

int CertificateAuthority::IssuerIndexOf(X509* leaf) const {
  if (leaf == nullptr) return -1;
  // Name and authority key identifier: both CAs have the same subject, the
  // key identifier tells them apart.
  if (X509_check_issued(issuing_cert_.get(), leaf) == X509_V_OK) return 0;
  for (size_t i = 0; i < retired_.size(); ++i) {
    if (X509_check_issued(retired_[i].cert.get(), leaf) == X509_V_OK) return static_cast<int>(i + 1);
  }
  ERR_clear_error();
  return -1;
}

namespace {

constexpr const char* kNextIssuingKey = "issuing.next.key";  // offline rotation, between the two steps

Status RefuseHsmRotation(const Config& config) {
  if (config.ca_hsm_uri.empty()) return Status::Ok();
  return Status::FailedPrecondition(
      "ca rotate: the issuing key is in an HSM (config ca.hsm); rotating an HSM key is not supported yet "
      "(docs/pki.md); nothing was changed");
}

// The second half of every rotation: `new_cert` (already checked: a CA
// under this node's root, for `new_key`) becomes the issuing CA, the old one
// is retired, the service credentials are re-made. Everything is made
// first; the retired copy is written before the new files, so a failure
// never loses the old CA.
Result<std::string> InstallRotated(const DataDir& dir, const Config& config, std::string_view passphrase,
                                   X509* new_cert, EVP_PKEY* new_key) {
  fs::path ca = dir.CaDir();
  FG_ASSIGN_OR_RETURN(X509Ptr old_cert, ReadCert(ca / kIssuingCert));
  {
    // The passphrase opens the old key and the key is the certificate's:
    // the retired copy must load again later.
    FG_ASSIGN_OR_RETURN(auto old_key, ReadCaKey(ca / kIssuingKey, passphrase));
    if (X509_check_private_key(old_cert.get(), old_key.get()) != 1) {
      ERR_clear_error();
      return Status::FailedPrecondition("ca rotate: the issuing key does not match the issuing certificate");
    }
  }
  if (X509_cmp(old_cert.get(), new_cert) == 0) {
    return Status::InvalidArgument("ca rotate: this issuing CA certificate is already the current one");
  }
  FG_ASSIGN_OR_RETURN(std::string old_key_pem, ReadFile(ca / kIssuingKey));  // as ReadCaKey left it
  const std::string old_serial = ossl::SerialToHex(X509_get0_serialNumber(old_cert.get()));
  FG_ASSIGN_OR_RETURN(std::string secret, ServiceKeySecret(new_key));
  std::vector<std::pair<X509Ptr, ossl::EvpPkeyPtr>> services;
  const auto specs = ServiceSpecs(config);
  for (const ServiceSpec& spec : specs) {
    FG_ASSIGN_OR_RETURN(auto made, MakeServiceCredential(config, spec, new_cert, new_key));
    services.push_back(std::move(made));
  }
  std::error_code ec;
  fs::create_directories(ca / kRetiredDir, ec);
  if (ec) return Status::Internal("cannot create " + (ca / kRetiredDir).string() + ": " + ec.message());
  fs::permissions(ca / kRetiredDir, fs::perms::owner_all, ec);
  const fs::path retired = ca / kRetiredDir / ("issuing-" + old_serial);
  Status s = WriteFileAtomic(retired.string() + ".key", old_key_pem, 0600);
  OPENSSL_cleanse(old_key_pem.data(), old_key_pem.size());
  FG_RETURN_IF_ERROR(s);
  FG_RETURN_IF_ERROR(WriteCert(retired.string() + ".crt", old_cert.get()));
  if (!fs::exists(ca / kLegacyCrl)) FG_RETURN_IF_ERROR(WriteFileAtomic(ca / kLegacyCrl, old_serial + "\n", 0644));
  FG_RETURN_IF_ERROR(WriteKey(ca / kIssuingKey, new_key, passphrase));
  FG_RETURN_IF_ERROR(WriteCert(ca / kIssuingCert, new_cert));
  for (size_t i = 0; i < specs.size(); ++i) {
    FG_RETURN_IF_ERROR(WriteServiceKey(ca / (std::string(specs[i].file) + ".key"), services[i].second.get(), secret));
    FG_RETURN_IF_ERROR(WriteCert(ca / (std::string(specs[i].file) + ".crt"), services[i].first.get()));
  }
  OPENSSL_cleanse(secret.data(), secret.size());
  return ossl::SerialToHex(X509_get0_serialNumber(new_cert));
}

}  // namespace

Result<std::string> CertificateAuthority::Rotate(const DataDir& dir, const Config& config,
                                                 std::string_view passphrase, int validity_days) {
  fs::path ca = dir.CaDir();
  FG_RETURN_IF_ERROR(RefuseHsmRotation(config));
  if (!fs::exists(ca / kRootKey)) {
    return Status::FailedPrecondition(
        "ca rotate needs the root key online (" + (ca / kRootKey).string() +
        "); with the root kept elsewhere use `ca rotate --csr-out`, `ca sign-issuing` where the root is, then "
        "`ca rotate --install` (docs/pki.md, \"Issuing CA rotation\"); nothing was changed");
  }
  if (validity_days < 1) return Status::InvalidArgument("ca rotate: validity must be at least one day");
  FG_ASSIGN_OR_RETURN(X509Ptr root_cert, ReadCert(ca / kRootCert));
  FG_ASSIGN_OR_RETURN(auto root_key, ReadCaKey(ca / kRootKey, passphrase));
  if (X509_check_private_key(root_cert.get(), root_key.get()) != 1) {
    ERR_clear_error();
    return Status::FailedPrecondition("ca rotate: " + (ca / kRootKey).string() + " is not the root certificate's key");
  }
  UnixMillis now = NowMillis();
  UnixMillis root_end = 0;
  FG_ASSIGN_OR_RETURN(root_end, ossl::Asn1TimeToMillis(X509_get0_notAfter(root_cert.get())));
  FG_ASSIGN_OR_RETURN(auto new_key, ossl::GenerateP256Key());
  FG_ASSIGN_OR_RETURN(auto new_cert,
                      MakeIssuingCa(config, new_key.get(), root_cert.get(), root_key.get(), now,
                                    std::min(now + Days(validity_days), root_end), config.public_url + "/crl/root"));
  return InstallRotated(dir, config, passphrase, new_cert.get(), new_key.get());
}

Result<std::string> CertificateAuthority::RotateRequest(const DataDir& dir, const Config& config,
                                                        std::string_view passphrase) {
  fs::path ca = dir.CaDir();
  FG_RETURN_IF_ERROR(RefuseHsmRotation(config));
  if (!fs::exists(ca / kIssuingCert)) return Status::FailedPrecondition("ca rotate: no issuing CA to rotate");
  if (fs::exists(ca / kNextIssuingKey)) {
    return Status::AlreadyExists("ca rotate: a rotation is already pending (" + (ca / kNextIssuingKey).string() +
                                 "); install its certificate with `ca rotate --install`, or delete that file to "
                                 "start over");
  }
  // The passphrase must open the current key, or the new one would be
  // written under a passphrase nobody can use with the old.
  FG_ASSIGN_OR_RETURN(auto current, ReadCaKey(ca / kIssuingKey, passphrase));
  FG_ASSIGN_OR_RETURN(auto key, ossl::GenerateP256Key());
  ossl::Ptr<X509_REQ, X509_REQ_free> req(X509_REQ_new());
  FG_ASSIGN_OR_RETURN(auto subject, MakeName(config.ca_name + " Issuing CA", config.ca_name));
  if (!req || !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_subject_name(req.get(), subject.get()) ||
      !X509_REQ_set_pubkey(req.get(), key.get()) || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return ossl::Error("issuing CA request");
  }
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return ossl::Error("writing the request");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(n));
  FG_RETURN_IF_ERROR(WriteKey(ca / kNextIssuingKey, key.get(), passphrase));
  return pem;
}

Result<std::string> CertificateAuthority::RotateInstall(const DataDir& dir, const Config& config,
                                                        std::string_view passphrase, std::string_view issuing_pem) {
  fs::path ca = dir.CaDir();
  FG_RETURN_IF_ERROR(RefuseHsmRotation(config));
  if (!fs::exists(ca / kNextIssuingKey)) {
    return Status::FailedPrecondition("ca rotate --install: no pending rotation (" + (ca / kNextIssuingKey).string() +
                                      " is missing; make the request with `ca rotate --csr-out` first)");
  }
  auto issuing = ossl::CertFromPem(issuing_pem);
  if (!issuing.ok()) return Status::InvalidArgument("new issuing CA certificate: not PEM");
  // It must chain to THIS node's root: devices trust that one.
  FG_ASSIGN_OR_RETURN(X509Ptr root, ReadCert(ca / kRootCert));
  ossl::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root.get());
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), issuing->get(), nullptr) != 1) {
    return ossl::Error("verification context");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    std::string why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return Status::InvalidArgument("the new issuing CA certificate does not verify under this node's root: " + why);
  }
  if (X509_check_ca(issuing->get()) < 1) return Status::InvalidArgument("the new issuing certificate is not a CA");
  FG_ASSIGN_OR_RETURN(auto key, ReadCaKey(ca / kNextIssuingKey, passphrase));
  if (X509_check_private_key(issuing->get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the new issuing CA certificate is not for the key of the pending rotation");
  }
  FG_ASSIGN_OR_RETURN(std::string serial, InstallRotated(dir, config, passphrase, issuing->get(), key.get()));
  std::error_code ec;
  fs::remove(ca / kNextIssuingKey, ec);
  return serial;
}

std::string CertificateAuthority::RootPem() const { return ossl::CertToPem(root_cert_.get()); }
std::string CertificateAuthority::IssuingPem() const { return ossl::CertToPem(issuing_cert_.get()); }
std::string CertificateAuthority::ChainPem() const { return IssuingPem() + RootPem(); }

Result<X509Ptr> CertificateAuthority::SignDeviceCertificate(std::string_view device_id, std::string_view spki_der,
                                                            UnixMillis not_before, UnixMillis not_after,
                                                            const ASN1_INTEGER* serial) const {
  CertSpec spec;
  spec.cn = std::string(device_id);
  spec.subject_spki = spki_der;
  spec.issuer_cert = issuing_cert_.get();
  spec.issuer_key = issuing_key_.get();
  spec.not_before = not_before;
  spec.not_after = not_after;
  spec.serial = serial;
  // A rotated CA's certificates name its own CRL and certificate (docs/pki.md).
  const std::string ca_serial = ossl::SerialToHex(X509_get0_serialNumber(issuing_cert_.get()));
  const std::string crl_path = CurrentCrlPath();
  const std::string ca_path = crl_path == "/crl" ? "/ca/issuing.crt" : "/ca/issuing-" + ca_serial + ".crt";
  // Every node of the cluster, in url_order (docs/cluster.md): a relying
  // party that cannot reach the first tries the next. caIssuers names the
  // first only: the CA certificate is the same on every node.
  std::vector<std::string> bases = NodeUrls();
  if (bases.empty()) bases = {config_.public_url};
  std::string cdp, aia;
  for (const std::string& base : bases) {
    cdp += (cdp.empty() ? "" : ",") + std::string("URI:") + base + crl_path;
    aia += (aia.empty() ? "" : ",") + std::string("OCSP;URI:") + base + "/ocsp";
  }
  aia += ",caIssuers;URI:" + bases.front() + ca_path;
  std::unique_lock hsm_lock(HsmSignLock(), std::defer_lock);
  if (issuing_in_hsm_) hsm_lock.lock();
  spec.extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      // clientAuth for TLS (EST re-enrolment, device config), ipsecIKE for IKEv2.
      {NID_ext_key_usage, "clientAuth,ipsecIKE"},
      {NID_subject_alt_name, "URI:" + DeviceUri(device_id)},
      {NID_crl_distribution_points, cdp},
      {NID_info_access, aia},
  };
  return BuildCert(spec);
}

void CertificateAuthority::SetNodeUrls(std::vector<std::string> base_urls) {
  std::vector<std::string> kept;
  for (std::string& url : base_urls) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    // A comma would split the extension's value list (`node join` and
    // `node set` refuse such a URL; a row written otherwise is skipped).
    if (url.empty() || url.find(',') != std::string::npos) continue;
    if (std::find(kept.begin(), kept.end(), url) == kept.end()) kept.push_back(std::move(url));
  }
  std::lock_guard lock(node_urls_mutex_);
  node_urls_ = std::move(kept);
}

std::vector<std::string> CertificateAuthority::NodeUrls() const {
  std::lock_guard lock(node_urls_mutex_);
  return node_urls_;
}

std::string CertificateAuthority::CurrentCrlPath() const {
  const std::string ca_serial = ossl::SerialToHex(X509_get0_serialNumber(issuing_cert_.get()));
  return CrlPathOf(ca_serial, legacy_serial_, /*current=*/true);
}

Result<ossl::X509CrlPtr> CertificateAuthority::SignCrl(const std::vector<Certificate>& revoked, int64_t crl_number,
                                                       UnixMillis this_update, UnixMillis next_update,
                                                       size_t issuer) const {
  if (issuer > retired_.size()) return Status::InvalidArgument("SignCrl: no such issuing CA");
  X509* ca_cert = issuer == 0 ? issuing_cert_.get() : retired_[issuer - 1].cert.get();
  EVP_PKEY* ca_key = issuer == 0 ? issuing_key_.get() : retired_[issuer - 1].key.get();
  const bool in_hsm = issuer == 0 && issuing_in_hsm_;
  ossl::X509CrlPtr crl(X509_CRL_new());
  if (!crl || !X509_CRL_set_version(crl.get(), 1) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert))) {
    return ossl::Error("CRL header");
  }
  ossl::Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(this_update / 1000)));
  ossl::Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(next_update / 1000)));
  if (!X509_CRL_set1_lastUpdate(crl.get(), last.get()) || !X509_CRL_set1_nextUpdate(crl.get(), next.get())) {
    return ossl::Error("CRL times");
  }
  for (const Certificate& c : revoked) {
    ossl::X509RevokedPtr entry(X509_REVOKED_new());
    FG_ASSIGN_OR_RETURN(auto serial, ossl::SerialFromHex(c.serial));
    ossl::Asn1TimePtr when(ASN1_TIME_set(nullptr, static_cast<time_t>(c.revoked_ms / 1000)));
    if (!X509_REVOKED_set_serialNumber(entry.get(), serial.get()) ||
        !X509_REVOKED_set_revocationDate(entry.get(), when.get())) {
      return ossl::Error("CRL entry");
    }
    RevocationReason reason = c.status == CertStatus::kHold ? RevocationReason::kCertificateHold : c.reason;
    // RFC 5280 §5.3.1: the reasonCode extension is omitted for unspecified.
    if (reason != RevocationReason::kUnspecified) {
      ossl::Ptr<ASN1_ENUMERATED, ASN1_ENUMERATED_free> code(ASN1_ENUMERATED_new());
      if (!ASN1_ENUMERATED_set(code.get(), static_cast<long>(reason)) ||
          !X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, code.get(), 0, 0)) {
        return ossl::Error("CRL reason");
      }
    }
    if (!X509_CRL_add0_revoked(crl.get(), entry.get())) return ossl::Error("CRL add entry");
    entry.release();
  }
  ossl::Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!ASN1_INTEGER_set_int64(number.get(), crl_number) ||
      !X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0)) {
    return ossl::Error("CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert, nullptr, nullptr, crl.get(), 0);
  ossl::X509ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1)) return ossl::Error("CRL AKI");
  std::unique_lock hsm_lock(HsmSignLock(), std::defer_lock);
  if (in_hsm) hsm_lock.lock();
  if (!X509_CRL_sort(crl.get()) || X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) <= 0) {
    return ossl::Error("signing CRL");
  }
  return crl;
}

}  // namespace fg
