#pragma once

// The node configuration (`config.yaml` in the data dir) and the layout of
// the data dir. Loaded once at start-up; validated on load with messages that
// name the offending key.

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace fg {

struct Config {
  // Base URL that devices and SeGWs reach this node at; the CRL distribution
  // point (<public_url>/crl) and OCSP AIA (<public_url>/ocsp) are built from it.
  std::string public_url = "http://127.0.0.1:8440";
  std::string listen = "127.0.0.1:8440";
  // TLS listener for EST (/.well-known/est/) and the device config document
  // (/v1/device/config), both with client-certificate authentication.
  std::string tls_listen = "127.0.0.1:8443";
  // Store URL; "sqlite:store.db" is relative to the data dir.
  std::string store = "sqlite:store.db";

  std::string ca_name = "femtoguard";
  int root_validity_days = 7300;
  int issuing_validity_days = 1825;
  int ocsp_signer_validity_days = 365;
  // CA custody (docs/pki.md, "CA custody"). `ca.passphrase_file`: the CA
  // key passphrase, outside the data dir (owner-only permissions, else
  // refused). `ca.hsm`: the issuing CA key in a PKCS#11 token instead of a
  // file: `uri` names it (pkcs11:token=...;object=...), `module` is the
  // PKCS#11 library and `pin_file` holds the user PIN (owner-only too).
  std::string ca_passphrase_file;
  std::string ca_hsm_uri;
  std::string ca_hsm_module;
  std::string ca_hsm_pin_file;

  int cert_default_validity_days = 30;
  int cert_max_validity_days = 90;  // never above 365 (enforced on load)
  // When a device should renew, as a percentage of its certificate's lifetime.
  int renew_at_percent = 67;
  // A device not seen (enrolment, renewal, session) for this many days is
  // suspended automatically; 0 turns the sweep off.
  int dormancy_days = 90;

  int ocsp_response_validity_s = 3600;  // nextUpdate - thisUpdate of OCSP responses
  int crl_validity_s = 86400;           // nextUpdate - lastUpdate of the CRL

  // Connection limits of serve's HTTP listeners (`http:`, docs/limits.md).
  struct Http {
    int max_connections = 0;      // anonymous, plain listener; 0 = 3/4 of the open-files budget
    int tls_max_connections = 0;  // anonymous, TLS listener; 0 = 1/4 of it
    int max_connections_per_source = 128;
    int header_timeout_s = 5;  // accept (or a request's first byte) to the end of its header
    int idle_timeout_s = 30;   // keep-alive idle
    std::vector<std::string> segw_sources;  // CIDRs of the SeGWs: slots of their own
    int segw_connections = 64;              // those slots, per listener
  } http;

  // The admission decision log (DIR/log/admission.jsonl) rotates by size:
  // at most admission_keep rotated files of admission_max_mb MiB each are
  // kept (max_mb 0: never rotate). serve's own log goes to stderr, for the
  // system's journal (docs/operations.md).
  int log_admission_max_mb = 64;
  int log_admission_keep = 5;

  // The bearer-token API (/v1/*, /metrics): served on the TLS listener only.
  // plain_http also keeps it on the plain listener, for labs and tests; serve
  // refuses it unless the plain listener is on loopback (docs/operations.md).
  struct Api {
    bool plain_http = false;
  } api;

  // Seconds between serve's heartbeats in the store's nodes table
  // (docs/cluster.md); a node silent for 3 of them is shown as down.
  int cluster_heartbeat_s = 5;

  // The event stream on NATS JetStream (docs/stream.md). Empty url: the
  // in-process bus (one node). partitions is fixed for the stream's life.
  struct Bus {
    std::string url;  // nats://h1:4222,nats://h2:4222,...
    int partitions = 16;
    int replicas = 3;
  } bus;

  Status Validate() const;
  std::string ToYaml() const;
  static Result<Config> FromYaml(const std::string& text);
};

// A cluster's nodes share one config but for what is each node's own
// (docs/cluster.md): where it listens, the URL devices reach it at, the
// store URL as it connects, and the paths of local secret files.
struct NodeLocalSettings {
  std::string public_url;
  std::string listen;
  std::string tls_listen;
  std::string store;
  std::string ca_passphrase_file;  // empty: none
  std::string ca_hsm_pin_file;     // empty: none
};
// config.yaml text without the node-local keys (what `node bundle` carries).
Result<std::string> ClusterWideConfigYaml(const std::string& yaml);
// A cluster-wide config.yaml text with this node's own settings put in;
// validated as a whole (Config::FromYaml), so a bad value is refused here.
Result<std::string> NodeConfigYaml(const std::string& cluster_yaml, const NodeLocalSettings& local);

// Paths inside a data dir.
class DataDir {
 public:
  explicit DataDir(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path ConfigPath() const { return root_ / "config.yaml"; }
  std::filesystem::path CaDir() const { return root_ / "ca"; }
  std::filesystem::path SecretsDir() const { return root_ / "secrets"; }
  std::filesystem::path PseudonymKeyPath() const { return SecretsDir() / "pseudonym.key"; }
  std::filesystem::path PassphrasePath() const { return SecretsDir() / "ca.passphrase"; }
  // Key from which one-time enrolment token secrets are derived.
  std::filesystem::path TokenKeyPath() const { return SecretsDir() / "token.key"; }
  std::filesystem::path ControlSocketPath() const { return root_ / "run" / "control.sock"; }
  std::filesystem::path RunDir() const { return root_ / "run"; }
  // This node's id in its cluster ("node-<8 hex>", docs/cluster.md), 0644.
  std::filesystem::path NodeIdPath() const { return root_ / "node.id"; }

  bool Exists() const { return std::filesystem::exists(ConfigPath()); }
  Result<Config> LoadConfig() const;
  // Store URL with a relative sqlite path resolved against the data dir.
  std::string ResolveStoreUrl(const Config& config) const;
  // The pseudonymization key (created by init).
  Result<std::string> LoadPseudonymKey() const;
  // The token key, created (0600) when missing.
  Result<std::string> LoadOrCreateTokenKey() const;
  // The CA key passphrase, from the first of: FEMTOGUARD_CA_PASSPHRASE;
  // the file named by FEMTOGUARD_CA_PASSPHRASE_FILE (`serve
  // --passphrase-file` sets it); config `ca.passphrase_file`; the
  // generated DIR/secrets/ca.passphrase. A named file must pass
  // ReadSecretFile.
  Result<std::string> LoadCaPassphrase() const;

 private:
  std::filesystem::path root_;
};

// A secret kept in a file of its own (CA passphrase, HSM PIN): a regular
// file owned by this user and neither readable nor writable by group or
// other (else PermissionDenied, naming the file and its mode), not empty.
// One trailing newline is dropped (`echo secret > file`).
Result<std::string> ReadSecretFile(const std::filesystem::path& path);

// Resolves --data / FEMTOGUARD_DATA. Empty when neither is given.
std::string ResolveDataDirArg(const std::string& flag_value);

// Whole-file helpers. WriteFileAtomic creates with `mode` (e.g. 0600) and
// renames into place; it refuses to follow an existing symlink.
Result<std::string> ReadFile(const std::filesystem::path& path);
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode);

}  // namespace fg
