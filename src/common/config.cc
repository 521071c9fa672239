#include "common/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <yaml-cpp/yaml.h>

#include "common/pki_tuning.h"
#include "common/ip.h"
#include "common/config_keys.h"
#include "common/schema.h"

namespace fg {
namespace {

// Every config.yaml key: type, default, range, meaning. The loader refuses a
// key not listed here; Validate() takes its ranges from here; docs/
// configuration.md shows this table (`femtoguard config keys`). A new key =
// one row here + its read in FromYaml + its line in ToYaml.
constexpr KeySpec kConfigKeys[] = {
    {"public_url", ValueType::kString, "http://127.0.0.1:8440", kNoMin, kNoMax,
     "base URL devices and SeGWs reach this node at (http:// or https://); CRL and OCSP URLs in certificates"},
    {"listen", ValueType::kString, "127.0.0.1:8440", kNoMin, kNoMax, "HOST:PORT of the plain HTTP listener"},
    {"tls_listen", ValueType::kString, "127.0.0.1:8443", kNoMin, kNoMax,
     "HOST:PORT of the TLS listener (EST, device config)"},
    {"store", ValueType::kString, "sqlite:store.db", kNoMin, kNoMax,
     "store URL; a relative sqlite path is inside the data dir"},
    {"ca.name", ValueType::kString, "femtoguard", kNoMin, kNoMax, "CA common name prefix"},
    {"ca.root_validity_days", ValueType::kInt, "7300", 365, 36500, "root CA certificate lifetime"},
    {"ca.issuing_validity_days", ValueType::kInt, "1825", 30, 36500,
     "issuing CA certificate lifetime (at most the root's)"},
    {"ca.ocsp_signer_validity_days", ValueType::kInt, "365", 1, 36500,
     "OCSP signer certificate lifetime (at most the issuing CA's)"},
    {"certificates.default_validity_days", ValueType::kInt, "30", 1, 365,
     "device certificate lifetime when the request names none (at most max_validity_days)"},
    {"certificates.max_validity_days", ValueType::kInt, "90", 1, 365, "longest device certificate lifetime"},
    {"certificates.renew_at_percent", ValueType::kInt, "67", 10, 95,
     "when a device should renew, as a percentage of its certificate's lifetime"},
    {"devices.dormancy_days", ValueType::kInt, "90", 0, 3650,
     "an active device not seen this long is suspended (0 = off); also admission's device.inactive"},
    {"ocsp.response_validity_s", ValueType::kInt, "3600", 60, 7 * 86400, "nextUpdate - thisUpdate of OCSP responses"},
    {"crl.validity_s", ValueType::kInt, "86400", 300, 30 * 86400, "nextUpdate - lastUpdate of the CRL"},
    {"http.max_connections", ValueType::kInt, "0", 0, 1 << 20,
     "anonymous connections on the plain listener (0 = 3/4 of the open-files budget)"},
    {"http.tls_max_connections", ValueType::kInt, "0", 0, 1 << 20,
     "anonymous connections on the TLS listener (0 = 1/4 of the open-files budget)"},
    {"http.max_connections_per_source", ValueType::kInt, "128", 1, 1 << 20, "connections from one source address"},
    {"http.header_timeout_s", ValueType::kInt, "5", 1, 300, "accept (or a request's first byte) to end of header"},
    {"http.idle_timeout_s", ValueType::kInt, "30", 1, 3600, "keep-alive idle timeout"},
    {"http.segw_sources", ValueType::kStringList, "[]", kNoMin, kNoMax,
     "CIDR prefixes of the SeGWs: they get connection slots of their own"},
    {"http.segw_connections", ValueType::kInt, "64", 0, 1 << 16, "those slots, per listener"},
    {"log.admission_max_mb", ValueType::kInt, "64", 0, 1 << 20,
     "rotate DIR/log/admission.jsonl at this size in MiB (0 = never)"},
    {"log.admission_keep", ValueType::kInt, "5", 0, 1000, "rotated admission logs kept"},
    {"api.plain_http", ValueType::kBool, "false", kNoMin, kNoMax,
     "also serve the bearer-token API on the plain listener (labs; refused unless it is on loopback)"},
    {"ca.passphrase_file", ValueType::kString, "(none)", kNoMin, kNoMax,
     "file (mode 600) holding the CA key passphrase, instead of secrets/ca.passphrase"},
    {"ca.hsm.uri", ValueType::kString, "(none)", kNoMin, kNoMax,
     "PKCS#11 URI of the issuing CA key in an HSM (pkcs11:token=...;object=...)"},
    {"ca.hsm.module", ValueType::kString, "(none)", kNoMin, kNoMax, "the HSM's PKCS#11 library"},
    {"ca.hsm.pin_file", ValueType::kString, "(none)", kNoMin, kNoMax, "file (mode 600) holding the HSM user PIN"},
    {"enrolment.retry_window_s", ValueType::kInt, "600", 0, 86400,
     "a used token retried with the same key within this window gets the same certificate again (0 = never)"},
    {"crl.root_validity_s", ValueType::kInt, "2592000", 3600, 365 * 86400,
     "nextUpdate - lastUpdate of the root CRL (/crl/root)"},
    {"ocsp.signer_validity_s", ValueType::kInt, "604800", 60, 90 * 86400,
     "lifetime of the OCSP responder's nocheck signer certificate (renewed by serve at half-life)"},
    {"cluster.heartbeat_s", ValueType::kInt, "5", 1, 3600,
     "seconds between a node's heartbeats in the store; `node list` shows a node silent for 3 of them as down"},
    {"bus.url", ValueType::kString, "(none)", kNoMin, kNoMax,
     "NATS JetStream servers (nats://h1:4222,nats://h2:4222,...): POST /v1/events publishes to the stream "
     "(docs/stream.md); none = the in-process bus"},
    {"bus.partitions", ValueType::kInt, "16", 1, 1024,
     "partitions of the event stream (fixed when the stream is created; the same on every node)"},
    {"bus.replicas", ValueType::kInt, "3", 1, 5, "JetStream replicas of the event stream (R3 survives one lost server)"},
};

Status CheckRange(const char* key, int v) { return CheckDeclaredRange(kConfigKeys, key, v, "config"); }

Status CheckMax(const char* key, int v, int max, const char* other) {
  if (v > max) {
    return Status::InvalidArgument(std::string("config: ") + key + " must be at most " + other + " (" +
                                   std::to_string(max) + "), got " + std::to_string(v));
  }
  return Status::Ok();
}

template <typename T>
Status ReadKey(const YAML::Node& node, const char* key, T* out, const std::string& path) {
  if (!node || !node[key]) return Status::Ok();
  try {
    *out = node[key].as<T>();
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("config: " + LineOf(node[key]) + path + key + ": wrong type");
  }
  return Status::Ok();
}

}  // namespace

std::span<const KeySpec> ConfigKeys() { return kConfigKeys; }

Status Config::Validate() const {
  if (public_url.rfind("http://", 0) != 0 && public_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("config: public_url must start with http:// or https://");
  }
  if (listen.find(':') == std::string::npos) {
    return Status::InvalidArgument("config: listen must be HOST:PORT");
  }
  FG_RETURN_IF_ERROR(CheckRange("certificates.max_validity_days", cert_max_validity_days));
  FG_RETURN_IF_ERROR(CheckRange("certificates.default_validity_days", cert_default_validity_days));
  FG_RETURN_IF_ERROR(CheckMax("certificates.default_validity_days", cert_default_validity_days,
                              cert_max_validity_days, "certificates.max_validity_days"));
  FG_RETURN_IF_ERROR(CheckRange("certificates.renew_at_percent", renew_at_percent));
  FG_RETURN_IF_ERROR(CheckRange("devices.dormancy_days", dormancy_days));
  if (tls_listen.find(':') == std::string::npos) {
    return Status::InvalidArgument("config: tls_listen must be HOST:PORT");
  }
  FG_RETURN_IF_ERROR(CheckRange("ca.root_validity_days", root_validity_days));
  FG_RETURN_IF_ERROR(CheckRange("ca.issuing_validity_days", issuing_validity_days));
  FG_RETURN_IF_ERROR(CheckMax("ca.issuing_validity_days", issuing_validity_days, root_validity_days,
                              "ca.root_validity_days"));
  FG_RETURN_IF_ERROR(CheckRange("ca.ocsp_signer_validity_days", ocsp_signer_validity_days));
  FG_RETURN_IF_ERROR(CheckMax("ca.ocsp_signer_validity_days", ocsp_signer_validity_days, issuing_validity_days,
                              "ca.issuing_validity_days"));
  FG_RETURN_IF_ERROR(CheckRange("ocsp.response_validity_s", ocsp_response_validity_s));
  FG_RETURN_IF_ERROR(CheckRange("crl.validity_s", crl_validity_s));
  FG_RETURN_IF_ERROR(CheckRange("http.max_connections", http.max_connections));
  FG_RETURN_IF_ERROR(CheckRange("http.tls_max_connections", http.tls_max_connections));
  FG_RETURN_IF_ERROR(CheckRange("http.max_connections_per_source", http.max_connections_per_source));
  FG_RETURN_IF_ERROR(CheckRange("http.header_timeout_s", http.header_timeout_s));
  FG_RETURN_IF_ERROR(CheckRange("http.idle_timeout_s", http.idle_timeout_s));
  FG_RETURN_IF_ERROR(CheckRange("http.segw_connections", http.segw_connections));
  for (size_t i = 0; i < http.segw_sources.size(); ++i) {
    if (!ParseIpPrefix(http.segw_sources[i])) {
      return Status::InvalidArgument("config: http.segw_sources[" + std::to_string(i) + "]: not an IP prefix: '" +
                                     http.segw_sources[i] + "'");
    }
  }
  FG_RETURN_IF_ERROR(CheckRange("log.admission_max_mb", log_admission_max_mb));
  FG_RETURN_IF_ERROR(CheckRange("log.admission_keep", log_admission_keep));
  FG_RETURN_IF_ERROR(CheckRange("cluster.heartbeat_s", cluster_heartbeat_s));
  FG_RETURN_IF_ERROR(CheckRange("bus.partitions", bus.partitions));
  FG_RETURN_IF_ERROR(CheckRange("bus.replicas", bus.replicas));
  // The full check (ports, no credentials) is bus::ParseBusUrl's, at serve.
  if (!bus.url.empty() && bus.url.rfind("nats://", 0) != 0) {
    return Status::InvalidArgument("config: bus.url must be nats://HOST[:PORT][,nats://...]");
  }
  if (!ca_hsm_uri.empty()) {
    if (ca_hsm_uri.rfind("pkcs11:", 0) != 0) {
      return Status::InvalidArgument("config: ca.hsm.uri: must be a PKCS#11 URI (pkcs11:token=...;object=...)");
    }
    if (ca_hsm_module.empty()) return Status::InvalidArgument("config: ca.hsm.module: required with ca.hsm.uri");
    if (ca_hsm_pin_file.empty()) return Status::InvalidArgument("config: ca.hsm.pin_file: required with ca.hsm.uri");
  }
  return Status::Ok();
}

std::string Config::ToYaml() const {
  const PkiTuning pki;  // its keys live in this file too (common/pki_tuning.h); init writes their defaults
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "public_url" << YAML::Value << public_url;
  e << YAML::Key << "listen" << YAML::Value << listen;
  e << YAML::Key << "tls_listen" << YAML::Value << tls_listen;
  e << YAML::Key << "store" << YAML::Value << store;
  e << YAML::Key << "ca" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << ca_name;
  e << YAML::Key << "root_validity_days" << YAML::Value << root_validity_days;
  e << YAML::Key << "issuing_validity_days" << YAML::Value << issuing_validity_days;
  e << YAML::Key << "ocsp_signer_validity_days" << YAML::Value << ocsp_signer_validity_days;
  if (!ca_passphrase_file.empty()) e << YAML::Key << "passphrase_file" << YAML::Value << ca_passphrase_file;
  if (!ca_hsm_uri.empty()) {
    e << YAML::Key << "hsm" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "uri" << YAML::Value << ca_hsm_uri;
    e << YAML::Key << "module" << YAML::Value << ca_hsm_module;
    e << YAML::Key << "pin_file" << YAML::Value << ca_hsm_pin_file;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  e << YAML::Key << "certificates" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "default_validity_days" << YAML::Value << cert_default_validity_days;
  e << YAML::Key << "max_validity_days" << YAML::Value << cert_max_validity_days;
  e << YAML::Key << "renew_at_percent" << YAML::Value << renew_at_percent;
  e << YAML::EndMap;
  e << YAML::Key << "devices" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "dormancy_days" << YAML::Value << dormancy_days;
  e << YAML::EndMap;
  e << YAML::Key << "ocsp" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "response_validity_s" << YAML::Value << ocsp_response_validity_s;
  e << YAML::Key << "signer_validity_s" << YAML::Value << pki.ocsp_signer_validity_s;
  e << YAML::EndMap;
  e << YAML::Key << "crl" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "validity_s" << YAML::Value << crl_validity_s;
  e << YAML::Key << "root_validity_s" << YAML::Value << pki.root_crl_validity_s;
  e << YAML::EndMap;
  e << YAML::Key << "enrolment" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "retry_window_s" << YAML::Value << pki.enrol_retry_window_s;
  e << YAML::EndMap;
  e << YAML::Key << "http" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "max_connections" << YAML::Value << http.max_connections;
  e << YAML::Key << "tls_max_connections" << YAML::Value << http.tls_max_connections;
  e << YAML::Key << "max_connections_per_source" << YAML::Value << http.max_connections_per_source;
  e << YAML::Key << "header_timeout_s" << YAML::Value << http.header_timeout_s;
  e << YAML::Key << "idle_timeout_s" << YAML::Value << http.idle_timeout_s;
  e << YAML::Key << "segw_sources" << YAML::Value << YAML::Flow << http.segw_sources;
  e << YAML::Key << "segw_connections" << YAML::Value << http.segw_connections;
  e << YAML::EndMap;
  e << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "admission_max_mb" << YAML::Value << log_admission_max_mb;
  e << YAML::Key << "admission_keep" << YAML::Value << log_admission_keep;
  e << YAML::EndMap;
  e << YAML::Key << "api" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "plain_http" << YAML::Value << api.plain_http;
  e << YAML::EndMap;
  e << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "heartbeat_s" << YAML::Value << cluster_heartbeat_s;
  e << YAML::EndMap;
  e << YAML::Key << "bus" << YAML::Value << YAML::BeginMap;
  if (!bus.url.empty()) e << YAML::Key << "url" << YAML::Value << bus.url;  // none: the in-process bus
  e << YAML::Key << "partitions" << YAML::Value << bus.partitions;
  e << YAML::Key << "replicas" << YAML::Value << bus.replicas;
  e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string("# femtoguard node configuration\n") + e.c_str() + "\n";
}

Result<Config> Config::FromYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("config: not valid YAML: ") + e.what());
  }
  Config c;
  if (!root.IsMap()) return Status::InvalidArgument("config: top level must be a mapping");
  if (Status s = ValidateKeys(root, kConfigKeys, ""); !s.ok()) {
    return Status::InvalidArgument("config: " + s.message());
  }
  FG_RETURN_IF_ERROR(ReadKey(root, "public_url", &c.public_url, ""));
  FG_RETURN_IF_ERROR(ReadKey(root, "listen", &c.listen, ""));
  FG_RETURN_IF_ERROR(ReadKey(root, "tls_listen", &c.tls_listen, ""));
  FG_RETURN_IF_ERROR(ReadKey(root, "store", &c.store, ""));
  FG_RETURN_IF_ERROR(ReadKey(root["certificates"], "renew_at_percent", &c.renew_at_percent, "certificates."));
  FG_RETURN_IF_ERROR(ReadKey(root["devices"], "dormancy_days", &c.dormancy_days, "devices."));
  FG_RETURN_IF_ERROR(ReadKey(root["ca"], "name", &c.ca_name, "ca."));
  FG_RETURN_IF_ERROR(ReadKey(root["ca"], "root_validity_days", &c.root_validity_days, "ca."));
  FG_RETURN_IF_ERROR(ReadKey(root["ca"], "issuing_validity_days", &c.issuing_validity_days, "ca."));
  FG_RETURN_IF_ERROR(ReadKey(root["ca"], "ocsp_signer_validity_days", &c.ocsp_signer_validity_days, "ca."));
  FG_RETURN_IF_ERROR(ReadKey(root["ca"], "passphrase_file", &c.ca_passphrase_file, "ca."));
  if (root["ca"] && root["ca"]["hsm"]) {
    const YAML::Node hsm = root["ca"]["hsm"];
    FG_RETURN_IF_ERROR(ReadKey(hsm, "uri", &c.ca_hsm_uri, "ca.hsm."));
    FG_RETURN_IF_ERROR(ReadKey(hsm, "module", &c.ca_hsm_module, "ca.hsm."));
    FG_RETURN_IF_ERROR(ReadKey(hsm, "pin_file", &c.ca_hsm_pin_file, "ca.hsm."));
  }
  FG_RETURN_IF_ERROR(
      ReadKey(root["certificates"], "default_validity_days", &c.cert_default_validity_days, "certificates."));
  FG_RETURN_IF_ERROR(ReadKey(root["certificates"], "max_validity_days", &c.cert_max_validity_days, "certificates."));
  FG_RETURN_IF_ERROR(ReadKey(root["ocsp"], "response_validity_s", &c.ocsp_response_validity_s, "ocsp."));
  FG_RETURN_IF_ERROR(ReadKey(root["crl"], "validity_s", &c.crl_validity_s, "crl."));
  for (auto [key, out] : {std::pair{"max_connections", &c.http.max_connections},
                          {"tls_max_connections", &c.http.tls_max_connections},
                          {"max_connections_per_source", &c.http.max_connections_per_source},
                          {"header_timeout_s", &c.http.header_timeout_s},
                          {"idle_timeout_s", &c.http.idle_timeout_s},
                          {"segw_connections", &c.http.segw_connections}}) {
    FG_RETURN_IF_ERROR(ReadKey(root["http"], key, out, "http."));
  }
  FG_RETURN_IF_ERROR(ReadKey(root["http"], "segw_sources", &c.http.segw_sources, "http."));
  FG_RETURN_IF_ERROR(ReadKey(root["log"], "admission_max_mb", &c.log_admission_max_mb, "log."));
  FG_RETURN_IF_ERROR(ReadKey(root["log"], "admission_keep", &c.log_admission_keep, "log."));
  FG_RETURN_IF_ERROR(ReadKey(root["api"], "plain_http", &c.api.plain_http, "api."));
  FG_RETURN_IF_ERROR(ReadKey(root["cluster"], "heartbeat_s", &c.cluster_heartbeat_s, "cluster."));
  FG_RETURN_IF_ERROR(ReadKey(root["bus"], "url", &c.bus.url, "bus."));
  FG_RETURN_IF_ERROR(ReadKey(root["bus"], "partitions", &c.bus.partitions, "bus."));
  FG_RETURN_IF_ERROR(ReadKey(root["bus"], "replicas", &c.bus.replicas, "bus."));
  FG_RETURN_IF_ERROR(c.Validate());
  return c;
}

namespace {

Result<YAML::Node> LoadMap(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("config: not valid YAML: ") + e.what());
  }
  if (!root.IsMap()) return Status::InvalidArgument("config: top level must be a mapping");
  return root;
}

std::string Emit(const YAML::Node& root) {
  YAML::Emitter e;
  e << root;
  return std::string("# femtoguard node configuration\n") + e.c_str() + "\n";
}

}  // namespace

Result<std::string> ClusterWideConfigYaml(const std::string& yaml) {
  FG_ASSIGN_OR_RETURN(YAML::Node root, LoadMap(yaml));
  for (const char* key : {"public_url", "listen", "tls_listen", "store"}) root.remove(key);
  if (root["ca"] && root["ca"].IsMap()) {
    root["ca"].remove("passphrase_file");
    if (root["ca"]["hsm"] && root["ca"]["hsm"].IsMap()) root["ca"]["hsm"].remove("pin_file");
  }
  return Emit(root);
}

Result<std::string> NodeConfigYaml(const std::string& cluster_yaml, const NodeLocalSettings& local) {
  FG_ASSIGN_OR_RETURN(YAML::Node root, LoadMap(cluster_yaml));
  for (const char* key : {"public_url", "listen", "tls_listen", "store"}) root.remove(key);
  YAML::Node out;  // the node-local keys first, as init writes them
  out["public_url"] = local.public_url;
  out["listen"] = local.listen;
  out["tls_listen"] = local.tls_listen;
  out["store"] = local.store;
  for (auto it = root.begin(); it != root.end(); ++it) out[it->first.as<std::string>()] = it->second;
  if (out["ca"] && out["ca"].IsMap()) {
    out["ca"].remove("passphrase_file");
    if (out["ca"]["hsm"] && out["ca"]["hsm"].IsMap()) out["ca"]["hsm"].remove("pin_file");
  }
  if (!local.ca_passphrase_file.empty()) out["ca"]["passphrase_file"] = local.ca_passphrase_file;
  if (!local.ca_hsm_pin_file.empty()) {
    if (!out["ca"] || !out["ca"]["hsm"]) return Status::InvalidArgument("an HSM PIN file, but no ca.hsm in the config");
    out["ca"]["hsm"]["pin_file"] = local.ca_hsm_pin_file;
  }
  std::string text = Emit(out);
  FG_RETURN_IF_ERROR(Config::FromYaml(text).status());
  return text;
}

Result<Config> DataDir::LoadConfig() const {
  auto text = ReadFile(ConfigPath());
  if (!text.ok()) {
    return Status::NotFound("no femtoguard data dir at " + root_.string() + " (run `femtoguard init --data " +
                            root_.string() + "`)");
  }
  auto config = Config::FromYaml(*text);
  if (!config.ok()) return Status::InvalidArgument(ConfigPath().string() + ": " + config.status().message());
  return config;
}

std::string DataDir::ResolveStoreUrl(const Config& config) const {
  const std::string prefix = "sqlite:";
  if (config.store.rfind(prefix, 0) == 0) {
    std::filesystem::path p = config.store.substr(prefix.size());
    if (p.is_relative()) p = root_ / p;
    return prefix + p.string();
  }
  return config.store;
}

Result<std::string> DataDir::LoadPseudonymKey() const {
  auto key = ReadFile(PseudonymKeyPath());
  if (!key.ok()) return Status::NotFound("pseudonymization key missing in " + root_.string());
  if (key->size() < 16) return Status::Internal("pseudonymization key too short");
  return key;
}

Result<std::string> DataDir::LoadOrCreateTokenKey() const {
  if (auto key = ReadFile(TokenKeyPath()); key.ok() && key->size() >= 16) return key;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::Internal("RAND_bytes failed");
  std::string key(reinterpret_cast<char*>(raw), sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  FG_RETURN_IF_ERROR(WriteFileAtomic(TokenKeyPath(), key, 0600));
  return key;
}

Result<std::string> ReadSecretFile(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound("cannot read secret file " + path.string());
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied("refusing secret file " + path.string() + " with mode " + mode +
                                    ": group or other may access it (chmod 600)");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::PermissionDenied("refusing secret file " + path.string() + ": not owned by this user");
  }
  FG_ASSIGN_OR_RETURN(std::string secret, ReadFile(path));
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) return Status::InvalidArgument("secret file " + path.string() + " is empty");
  return secret;
}

Result<std::string> DataDir::LoadCaPassphrase() const {
  if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) return std::string(env);
  if (const char* file = std::getenv("FEMTOGUARD_CA_PASSPHRASE_FILE"); file && *file) return ReadSecretFile(file);
  if (auto config = LoadConfig(); config.ok() && !config->ca_passphrase_file.empty()) {
    return ReadSecretFile(config->ca_passphrase_file);
  }
  auto pass = ReadFile(PassphrasePath());
  if (!pass.ok()) {
    return Status::PermissionDenied(
        "CA passphrase unavailable: pass --passphrase-file, set config ca.passphrase_file or "
        "FEMTOGUARD_CA_PASSPHRASE (the data dir has no generated passphrase file)");
  }
  return pass;
}

std::string ResolveDataDirArg(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* env = std::getenv("FEMTOGUARD_DATA"); env && *env) return env;
  return {};
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode) {
  // One temp name per process: two processes rewriting the same file (serve
  // and a CLI command re-encrypting an old CA key at the same moment) must not
  // rename each other's half-written temp file into place.
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot create " + tmp.string() + ": " + std::strerror(errno));
  ::fchmod(fd, mode);  // umask must not widen or narrow what we asked for
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());  // no partial file left behind (e.g. a full disk)
      return Status::Internal("write " + tmp.string() + ": " + why);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::Internal("fsync/close " + tmp.string() + ": " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::Internal("rename to " + path.string() + ": " + why);
  }
  return Status::Ok();
}

}  // namespace fg
