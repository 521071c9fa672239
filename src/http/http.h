#pragma once

// A small HTTP/1.1 server (Boost.Beast inside, invisible outside): handlers
// are plain functions from HttpRequest to HttpResponse, so that modules that
// serve HTTP (pki's OCSP/CRL, later admission, events, API) never include
// Beast. Keep-alive, request size limits, timeouts and connection limits
// are handled here.
//
// Thread-safety: routes are registered before Start(); handlers are called
// concurrently from the server's worker threads and must be thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fg {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw request target, e.g. "/ocsp/MEow..." (percent-encoding kept)
  std::string path;    // target without the query string
  std::string query;   // after '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;  // peer IP address as text
  bool tls = false;         // arrived over the TLS listener
  // The client's certificate chain as presented in the TLS handshake, DER,
  // leaf first; empty without TLS or without a client certificate. NOT
  // verified by the server: handlers decide whom to trust (the trust set,
  // e.g. vendor CAs, changes at run time).
  std::vector<std::string> peer_chain_der;

  // Case-insensitive header lookup; empty when absent.
  std::string_view Header(std::string_view name) const;
};

// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT": the
// Date header every response carries, and Last-Modified / Expires.
std::string FormatHttpDate(int64_t unix_seconds);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Alternative to `body` for a payload owned elsewhere, e.g. a pre-produced
  // OCSP response in a cache: when set, it is sent instead of `body`,
  // without a copy, and kept alive until it is written.
  std::shared_ptr<const std::string> shared_body;
  // Set by a handler that authenticated the request as a SeGW's (or another
  // peer that must never be crowded out): the connection moves to the
  // listener's trusted pool, where it is neither evicted nor counted
  // against the anonymous caps (docs/limits.md).
  bool trusted_peer = false;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 8440;  // 0 = pick a free port
    int threads = 0;       // 0 = hardware concurrency
    size_t max_body_bytes = 1 << 20;
    size_t max_header_bytes = 16 << 10;
    // Keep-alive idle time between requests, and the longest pause in a
    // body or in the peer's reading of an answer.
    int idle_timeout_s = 30;
    // From accept to the end of the first request's header (the TLS
    // handshake included), and from the first byte of each later request
    // to the end of its header: a client that connects and says nothing,
    // or trickles a header or a handshake, is cut here. Capped by
    // idle_timeout_s.
    int header_timeout_s = 5;

    // Connection limits (docs/limits.md). Anonymous connections: at most
    // max_connections (0 = ConnectionBudget() less trusted_connections); at
    // the cap a new one evicts the least recently active anonymous
    // connection instead of being refused, so that a newcomer is always read
    // far enough to show who it is (a SeGW's token). At most
    // max_connections_per_source from one address (one /64 for IPv6); the
    // excess is refused at once.
    size_t max_connections = 0;
    size_t max_connections_per_source = 128;
    // Connections from these sources (CIDRs, e.g. "10.20.0.0/24": the
    // SeGWs) use a pool of their own of trusted_connections slots that
    // anonymous load cannot take; they are never evicted. Beyond it they
    // count as anonymous.
    std::vector<std::string> trusted_sources;
    size_t trusted_connections = 64;
    // The "listener" label of the connection metrics; empty: "http" or
    // "https".
    std::string name;
    // When set, this server speaks TLS only (1.2+; in 1.2 ECDHE with
    // AES-GCM or ChaCha20-Poly1305 only), with this certificate chain (leaf
    // first) and key, PEM. The client is asked for a certificate but not
    // required to send one.
    struct Tls {
      std::string cert_chain_pem;
      std::string key_pem;
    };
    std::optional<Tls> tls;
  };

  // Connections this process can hold open: the open-files limit (soft)
  // less a reserve for everything else the process opens. Callers running
  // several listeners split it between them.
  static size_t ConnectionBudget();

  explicit HttpServer(Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for `method` and a path. A path ending in '/' is a
  // prefix match ("/ocsp/" matches "/ocsp/MEow..."); otherwise exact. The
  // longest matching route wins. Unknown path -> 404, known path with
  // another method -> 405.
  void Route(std::string method, std::string path, HttpHandler handler);

  // Binds and starts the worker threads. Returns once listening.
  Status Start();
  // The bound port (useful with port 0).
  uint16_t port() const;
  // Stops accepting, closes connections, joins the threads. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fg
