// OpenSSL 3 keeps the ENGINE API (deprecated, not removed); libp11's engine
// is what Debian 12 packages for PKCS#11 keys (no pkcs11 provider in 12).
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "pki/hsm.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

namespace fg {
namespace {

constexpr const char* kEnginePath = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

// DER of the P-256 (prime256v1) OID: CKA_EC_PARAMS as namedCurve.
constexpr unsigned char kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::string Ckr(const char* what, CK_RV rv) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s failed: CKR 0x%lx", what, static_cast<unsigned long>(rv));
  return buf;
}

// A token label as PKCS#11 stores it: 32 bytes, blank padded.
std::string TrimLabel(const unsigned char* label, size_t n) {
  std::string s(reinterpret_cast<const char*>(label), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// The module, initialised, for the duration of one call.
class Pkcs11Module {
 public:
  ~Pkcs11Module() {
    if (session_ != CK_INVALID_HANDLE) {
      f_->C_Logout(session_);
      f_->C_CloseSession(session_);
    }
    if (initialized_) f_->C_Finalize(nullptr);
    if (handle_ != nullptr) dlclose(handle_);
  }

  Status Open(const std::string& path) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) return Status::InvalidArgument("cannot load PKCS#11 module " + path + ": " + dlerror());
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
    if (get == nullptr || get(&f_) != CKR_OK) return Status::InvalidArgument(path + " is not a PKCS#11 module");
    CK_RV rv = f_->C_Initialize(nullptr);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) return Status::Internal(Ckr("C_Initialize", rv));
    initialized_ = rv == CKR_OK;
    return Status::Ok();
  }

  Status OpenSession(const std::string& token, const std::string& pin) {
    CK_ULONG n = 0;
    CK_RV rv = f_->C_GetSlotList(CK_TRUE, nullptr, &n);
    if (rv != CKR_OK) return Status::Internal(Ckr("C_GetSlotList", rv));
    std::vector<CK_SLOT_ID> slots(n);
    rv = f_->C_GetSlotList(CK_TRUE, slots.data(), &n);
    if (rv != CKR_OK) return Status::Internal(Ckr("C_GetSlotList", rv));
    for (CK_ULONG i = 0; i < n; ++i) {
      CK_TOKEN_INFO info;
      if (f_->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
      if (TrimLabel(info.label, sizeof info.label) != token) continue;
      rv = f_->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session_);
      if (rv != CKR_OK) return Status::Internal(Ckr("C_OpenSession", rv));
      std::string p = pin;
      rv = f_->C_Login(session_, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(p.data()), p.size());
      OPENSSL_cleanse(p.data(), p.size());
      if (rv == CKR_PIN_INCORRECT) return Status::PermissionDenied("PKCS#11 token '" + token + "': wrong PIN");
      if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return Status::Internal(Ckr("C_Login", rv));
      return Status::Ok();
    }
    return Status::NotFound("no PKCS#11 token labelled '" + token + "' in the module");
  }

  Result<bool> HasPrivateKey(const std::string& label) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    std::string l = label;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, l.data(), l.size()}};
    CK_RV rv = f_->C_FindObjectsInit(session_, tmpl, 2);
    if (rv != CKR_OK) return Status::Internal(Ckr("C_FindObjectsInit", rv));
    CK_OBJECT_HANDLE obj;
    CK_ULONG found = 0;
    rv = f_->C_FindObjects(session_, &obj, 1, &found);
    f_->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return Status::Internal(Ckr("C_FindObjects", rv));
    return found > 0;
  }

  Status GenerateP256(const std::string& label) {
    unsigned char id[16];
    if (RAND_bytes(id, sizeof id) != 1) return Status::Internal("RAND_bytes");
    std::string l = label;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_EC_PARAMS, const_cast<unsigned char*>(kP256Params), sizeof kP256Params},
        {CKA_LABEL, l.data(), l.size()},
        {CKA_ID, id, sizeof id},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},      {CKA_LABEL, l.data(), l.size()},
        {CKA_ID, id, sizeof id},           {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},      {CKA_DERIVE, &no, sizeof no},
    };
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv = f_->C_GenerateKeyPair(session_, &mech, pub, sizeof pub / sizeof pub[0], priv,
                                     sizeof priv / sizeof priv[0], &hpub, &hpriv);
    if (rv != CKR_OK) return Status::Internal(Ckr("C_GenerateKeyPair", rv));
    return Status::Ok();
  }

 private:
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* f_ = nullptr;
  bool initialized_ = false;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

// The pkcs11 engine, loaded once and kept for the process: keys it returns
// use its PKCS#11 context, which ENGINE_finish would tear down.
std::mutex g_engine_mutex;
ENGINE* g_engine = nullptr;
std::string g_engine_module;

Result<ENGINE*> Engine(const std::string& module, const std::string& pin) {
  std::lock_guard lock(g_engine_mutex);
  if (g_engine != nullptr) {
    if (module != g_engine_module) {
      return Status::InvalidArgument("one PKCS#11 module per process: already using " + g_engine_module);
    }
    if (!ENGINE_ctrl_cmd_string(g_engine, "PIN", pin.c_str(), 0)) return ossl::Error("pkcs11 engine PIN");
    return g_engine;
  }
  ENGINE_load_dynamic();
  ENGINE* e = ENGINE_by_id("dynamic");
  if (e == nullptr) return ossl::Error("OpenSSL dynamic engine");
  if (!ENGINE_ctrl_cmd_string(e, "SO_PATH", kEnginePath, 0) || !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
      !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) || !ENGINE_ctrl_cmd_string(e, "LOAD", nullptr, 0)) {
    ENGINE_free(e);
    return ossl::Error(std::string("loading libp11's engine ") + kEnginePath +
                       " (package libengine-pkcs11-openssl)");
  }
  if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module.c_str(), 0) ||
      !ENGINE_ctrl_cmd_string(e, "PIN", pin.c_str(), 0) || !ENGINE_init(e)) {
    ENGINE_free(e);
    return ossl::Error("initialising the pkcs11 engine with " + module);
  }
  g_engine = e;  // structural + functional reference kept for the process
  g_engine_module = module;
  return g_engine;
}

}  // namespace

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri) {
  constexpr std::string_view kScheme = "pkcs11:";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return Status::InvalidArgument("not a PKCS#11 URI (pkcs11:token=...;object=...)");
  }
  std::string_view path = uri.substr(kScheme.size());
  path = path.substr(0, path.find('?'));
  Pkcs11Uri out;
  while (!path.empty()) {
    size_t semi = path.find(';');
    std::string_view attr = path.substr(0, semi);
    path = semi == std::string_view::npos ? std::string_view() : path.substr(semi + 1);
    size_t eq = attr.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = attr.substr(0, eq);
    if (name == "token") out.token = PercentDecode(attr.substr(eq + 1));
    if (name == "object") out.object = PercentDecode(attr.substr(eq + 1));
  }
  if (out.token.empty() || out.object.empty()) {
    return Status::InvalidArgument("PKCS#11 URI needs token= and object= (pkcs11:token=...;object=...)");
  }
  return out;
}

Result<bool> EnsureHsmKey(const std::string& module, const std::string& uri, const std::string& pin) {
  FG_ASSIGN_OR_RETURN(Pkcs11Uri parsed, ParsePkcs11Uri(uri));
  Pkcs11Module m;
  FG_RETURN_IF_ERROR(m.Open(module));
  FG_RETURN_IF_ERROR(m.OpenSession(parsed.token, pin));
  FG_ASSIGN_OR_RETURN(bool exists, m.HasPrivateKey(parsed.object));
  if (exists) return false;
  FG_RETURN_IF_ERROR(m.GenerateP256(parsed.object));
  return true;
}

Result<ossl::EvpPkeyPtr> LoadHsmKey(const std::string& module, const std::string& uri, const std::string& pin) {
  FG_RETURN_IF_ERROR(ParsePkcs11Uri(uri).status());
  FG_ASSIGN_OR_RETURN(ENGINE * e, Engine(module, pin));
  std::lock_guard lock(HsmSignLock());
  EVP_PKEY* key = ENGINE_load_private_key(e, uri.c_str(), nullptr, nullptr);
  if (key == nullptr) return ossl::Error("no private key at " + uri + " (token, object label or PIN wrong?)");
  return ossl::EvpPkeyPtr(key);
}

std::mutex& HsmSignLock() {
  static std::mutex mu;
  return mu;
}

}  // namespace fg
