#include "pki/node_bundle.h"

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/ossl.h"
#include "common/time.h"

namespace fg {
namespace {

namespace fs = std::filesystem;
using CmsPtr = ossl::Ptr<CMS_ContentInfo, CMS_ContentInfo_free>;

constexpr char kFormat[] = "femtoguard-node-bundle/1";
// Secrets every node of a cluster must share: the same pseudonyms, the same
// enrolment token secrets, the same webhook signatures, and (HSM) the key
// under which the service keys are encrypted.
constexpr const char* kSharedSecrets[] = {"pseudonym.key", "token.key", "webhook.key", "service-keys.secret"};

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

Result<std::string> FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) return Status::InvalidArgument("node bundle: bad base64");
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return Status::InvalidArgument("node bundle: bad base64");
  size_t pad = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && pad < 2; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// Only ca/... and secrets/..., relative, no "..": a bundle never writes
// outside the new data dir.
bool SafeBundlePath(const std::string& path) {
  if (path.rfind("ca/", 0) != 0 && path.rfind("secrets/", 0) != 0) return false;
  fs::path p(path);
  if (p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == ".." || part == "." || part.empty()) return false;
  }
  return p.has_filename() && path.find('\0') == std::string::npos && path.back() != '/';
}

Status AddFile(NodeBundle& bundle, const fs::path& root, const fs::path& file) {
  FG_ASSIGN_OR_RETURN(std::string data, ReadFile(file));
  std::error_code ec;
  auto perms = fs::status(file, ec).permissions();
  NodeBundle::File f;
  f.path = fs::relative(file, root, ec).generic_string();
  if (ec || !SafeBundlePath(f.path)) return Status::Internal("node bundle: unexpected path " + file.string());
  // Keys and secrets stay owner-only; certificates stay world-readable.
  f.mode = (perms & (fs::perms::group_read | fs::perms::others_read)) != fs::perms::none ? 0644 : 0600;
  f.data = std::move(data);
  bundle.files.push_back(std::move(f));
  return Status::Ok();
}

}  // namespace

NodeBundle::~NodeBundle() {
  for (File& f : files) OPENSSL_cleanse(f.data.data(), f.data.size());
}

Result<NodeBundle> CollectNodeBundle(const DataDir& dir, const Config& config) {
  NodeBundle bundle;
  bundle.created = FormatRfc3339(NowMillis());
  bundle.ca_name = config.ca_name;
  bundle.hsm_uri = config.ca_hsm_uri;
  bundle.hsm_module = config.ca_hsm_module;
  std::error_code ec;
  bundle.passphrase_generated = config.ca_passphrase_file.empty() && fs::exists(dir.PassphrasePath(), ec);
  FG_ASSIGN_OR_RETURN(std::string config_text, ReadFile(dir.ConfigPath()));
  FG_ASSIGN_OR_RETURN(bundle.config_yaml, ClusterWideConfigYaml(config_text));

  const fs::path root = dir.root();
  std::vector<fs::path> ca_files;
  for (auto it = fs::recursive_directory_iterator(dir.CaDir(), ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) ca_files.push_back(it->path());
  }
  if (ec) return Status::Internal("node bundle: cannot read " + dir.CaDir().string() + ": " + ec.message());
  std::sort(ca_files.begin(), ca_files.end());
  bool has_root = false;
  for (const fs::path& f : ca_files) {
    FG_RETURN_IF_ERROR(AddFile(bundle, root, f));
    if (f.filename() == "root.crt") has_root = true;
  }
  if (!has_root) return Status::FailedPrecondition("node bundle: no root CA certificate in " + dir.CaDir().string());
  FG_ASSIGN_OR_RETURN(std::string root_pem, ReadFile(dir.CaDir() / "root.crt"));
  FG_ASSIGN_OR_RETURN(ossl::X509Ptr root_cert, ossl::CertFromPem(root_pem));
  bundle.root_fp = ossl::CertFingerprint(root_cert.get());
  for (const char* name : kSharedSecrets) {
    const fs::path p = dir.SecretsDir() / name;
    if (fs::is_regular_file(p, ec)) FG_RETURN_IF_ERROR(AddFile(bundle, root, p));
  }
  return bundle;
}

Result<std::string> SealNodeBundle(const NodeBundle& bundle, std::string_view passphrase, int iterations) {
  if (passphrase.empty()) return Status::InvalidArgument("node bundle: an empty CA passphrase");
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["created"] = bundle.created;
  j["ca_name"] = bundle.ca_name;
  j["root_fp"] = bundle.root_fp;
  j["passphrase_generated"] = bundle.passphrase_generated;
  j["issuing_key"] = bundle.hsm_uri.empty() ? "file" : "hsm";
  if (!bundle.hsm_uri.empty()) {
    j["hsm"] = {{"uri", bundle.hsm_uri},
                {"module", bundle.hsm_module},
                {"note", "the issuing CA key stays in the HSM: this bundle carries its URI and module only; the "
                         "joining node needs the same token and its PIN"}};
  }
  j["config"] = bundle.config_yaml;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const NodeBundle::File& f : bundle.files) {
    files.push_back({{"path", f.path}, {"mode", f.mode}, {"base64", Base64(f.data)}});
  }
  j["files"] = std::move(files);
  std::string text = j.dump();
  j = nullptr;

  ossl::BioPtr in(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  CmsPtr cms(in ? CMS_encrypt(nullptr, in.get(), EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL) : nullptr);
  if (!cms) {
    OPENSSL_cleanse(text.data(), text.size());
    return ossl::Error("node bundle: CMS EnvelopedData");
  }
  // The recipient info owns (and wipes on free) its copy of the password.
  // NID_hmacWithSHA256: the PRF asked for; OpenSSL 3.0 ignores it (SHA-1).
  auto* pass = static_cast<unsigned char*>(OPENSSL_memdup(passphrase.data(), passphrase.size()));
  if (pass == nullptr || CMS_add0_recipient_password(cms.get(), iterations, -1, NID_hmacWithSHA256, pass,
                                                     static_cast<ossl_ssize_t>(passphrase.size()), nullptr) == nullptr) {
    if (pass != nullptr) OPENSSL_clear_free(pass, passphrase.size());
    OPENSSL_cleanse(text.data(), text.size());
    return ossl::Error("node bundle: password recipient");
  }
  const bool sealed = CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) == 1;
  OPENSSL_cleanse(text.data(), text.size());
  if (!sealed) return ossl::Error("node bundle: encrypting");
  int n = i2d_CMS_ContentInfo(cms.get(), nullptr);
  if (n <= 0) return ossl::Error("node bundle: encoding");
  std::string der(static_cast<size_t>(n), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_CMS_ContentInfo(cms.get(), &p);
  return der;
}

Result<NodeBundle> OpenNodeBundle(std::string_view der, std::string_view passphrase) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms || OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_enveloped) {
    ERR_clear_error();
    return Status::InvalidArgument("not a node bundle (expected CMS EnvelopedData, DER)");
  }
  ossl::BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) return ossl::Error("node bundle");
  if (CMS_decrypt_set1_password(cms.get(),
                                reinterpret_cast<unsigned char*>(const_cast<char*>(passphrase.data())),
                                static_cast<ossl_ssize_t>(passphrase.size())) != 1 ||
      CMS_decrypt(cms.get(), nullptr, nullptr, nullptr, out.get(), CMS_BINARY) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(
        "cannot open the node bundle: wrong CA passphrase (or a damaged bundle)");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  std::string text(data, static_cast<size_t>(len > 0 ? len : 0));
  OPENSSL_cleanse(data, static_cast<size_t>(len > 0 ? len : 0));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  OPENSSL_cleanse(text.data(), text.size());
  const auto bad = [](const std::string& why) { return Status::InvalidArgument("node bundle: " + why); };
  if (!j.is_object() || !j.contains("format") || j["format"] != kFormat) {
    return bad("not a femtoguard node bundle (format)");
  }
  NodeBundle b;
  try {
    b.created = j.value("created", "");
    b.ca_name = j.at("ca_name").get<std::string>();
    b.root_fp = j.at("root_fp").get<std::string>();
    b.passphrase_generated = j.value("passphrase_generated", false);
    if (j.contains("hsm")) {
      b.hsm_uri = j["hsm"].at("uri").get<std::string>();
      b.hsm_module = j["hsm"].at("module").get<std::string>();
    }
    b.config_yaml = j.at("config").get<std::string>();
    for (const auto& f : j.at("files")) {
      NodeBundle::File file;
      file.path = f.at("path").get<std::string>();
      if (!SafeBundlePath(file.path)) return bad("a file outside ca/ and secrets/");
      file.mode = f.at("mode").get<unsigned>() == 0644 ? 0644 : 0600;
      FG_ASSIGN_OR_RETURN(file.data, FromBase64(f.at("base64").get<std::string>()));
      b.files.push_back(std::move(file));
    }
  } catch (const nlohmann::json::exception&) {
    return bad("missing or mistyped fields");
  }
  // Wipe the clear contents the parse left behind.
  for (auto& f : j["files"]) {
    if (f.contains("base64") && f["base64"].is_string()) {
      auto& s = f["base64"].get_ref<std::string&>();
      OPENSSL_cleanse(s.data(), s.size());
    }
  }
  if (b.root_fp.rfind("sha256:", 0) != 0) return bad("no root CA fingerprint");
  return b;
}

}  // namespace fg
