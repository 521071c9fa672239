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

  Status Validate() const;
  std::string ToYaml() const;
  static Result<Config> FromYaml(const std::string& text);
};

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

  bool Exists() const { return std::filesystem::exists(ConfigPath()); }
  Result<Config> LoadConfig() const;
  // Store URL with a relative sqlite path resolved against the data dir.
  std::string ResolveStoreUrl(const Config& config) const;
  // The pseudonymization key (created by init).
  Result<std::string> LoadPseudonymKey() const;
  // The token key, created (0600) when missing.
  Result<std::string> LoadOrCreateTokenKey() const;
  // FEMTOGUARD_CA_PASSPHRASE if set, else the generated passphrase file.
  Result<std::string> LoadCaPassphrase() const;

 private:
  std::filesystem::path root_;
};

// Resolves --data / FEMTOGUARD_DATA. Empty when neither is given.
std::string ResolveDataDirArg(const std::string& flag_value);

// Whole-file helpers. WriteFileAtomic creates with `mode` (e.g. 0600) and
// renames into place; it refuses to follow an existing symlink.
Result<std::string> ReadFile(const std::filesystem::path& path);
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode);

}  // namespace fg
