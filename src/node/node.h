#pragma once

// One femtoguard node: every service of `femtoguard serve` wired together.
// On the plain listener: OCSP (/ocsp), CRL (/crl), CA certificates (/ca/...),
// CMP (/pkix/) and health. On the TLS listener: EST (/.well-known/est/), the
// signed device config document (/v1/device/config) and, behind bearer
// tokens, the API (metrics, /v1/admission, /v1/events, the payment check,
// alerts; node/api_routes.h), which the plain listener refuses with 403
// unless config api.plain_http keeps it there too (loopback only). EST and the
// device config use client-certificate authentication. The change follower
// (node/change_follower.h) hands every page of the store's change feed to its
// subscribers - the OCSP cache, the CRLs, the admission snapshot, the
// detection World and, with a SeGW, the session terminator and charon's OCSP
// cache flush - on a short poll and on demand through the control socket
// (node/control_socket.h), which the CLI pokes after each change so that a
// revocation is visible the moment `cert revoke` returns.
//
// Thread-safety: Start/Stop from one thread; the rest is internal.

#include <memory>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace fg {

class Node {
 public:
  struct Options {
    std::string data_dir;
    std::string listen;      // HOST:PORT; empty = from config
    std::string tls_listen;  // HOST:PORT; empty = from config; "off" = no TLS listener
    int threads = 0;     // HTTP worker threads; 0 = cores
    int poll_ms = 250;   // change-feed poll period
    // SeGW adapter, e.g. "vici:///run/charon.vici"; empty = none.
    std::string segw;
    // NATS JetStream servers for the event stream (docs/stream.md); empty =
    // config bus.url; both empty = the in-process bus.
    std::string bus_url;
    std::string rules_path;   // empty: DIR/rules.yaml if present, else built-in default
    std::string webhook_url;  // alert notifications (https://host:port/path); empty = none
    std::string webhook_ca_file;    // PEM CA(s) for the webhook's server; empty = system store
    int webhook_retry_max_ms = 60000;
    std::string siem_target;   // SIEM syslog export (tcp:// or tls://HOST:PORT); empty = none
    std::string siem_ca_file;  // PEM CA(s) for a tls:// collector; empty = system store
    int siem_retry_max_ms = 60000;
  };

  static Result<std::unique_ptr<Node>> Start(const Options& options);
  ~Node();

  uint16_t port() const;
  uint16_t tls_port() const;  // 0 when the TLS listener is off
  // Applies pending store changes to the OCSP cache and CRL now.
  Status Sync();
  // SIGHUP: reloads the rules file, the admission policy (admission.yaml)
  // and the cell database. Each is loaded and validated before it replaces
  // the running one; one that fails keeps the old one, is logged (event
  // "reload") and counted in femtoguard_reload_total{what,result}. The
  // error names every part that failed.
  Status Reload();
  void Stop();

 private:
  class Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The data-dir lock file (flock) that one `serve` holds for its whole life.
inline constexpr const char* kServeLockFile = "serve.lock";

// Asks a running `serve` on this data dir to Sync(). OK when no server runs
// (nothing to tell); an error only when a server is there but fails.
Status NotifyServe(const DataDir& dir, int timeout_ms = 5000);

}  // namespace fg
