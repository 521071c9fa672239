// HttpServer: HTTP/1.1 with Beast's HTTP parser, plain and TLS on an epoll
// loop of our own. Beast and Asio (used only to open the listening socket)
// stay inside this translation unit (they are slow to compile and nobody
// else needs them).
//
// Shape:
//   - one worker per thread, owning its connections: a connection lives on
//     one thread for its whole life, so nothing on the per-connection path
//     needs a strand or a lock;
//   - one listening socket (no SO_REUSEPORT), accepted on worker 0, which
//     hands the connections round-robin to the workers;
//   - per connection: parse a request straight into a reused HttpRequest (a
//     beast::http::basic_parser whose callbacks fill it: no Beast message,
//     no allocation per header field), call the handler, serialize the
//     status line and header fields into a reused string and send them with
//     the body; loop while keep-alive (pipelined requests already in the
//     buffer are answered in the same loop). `Expect: 100-continue` clients
//     get their interim answer once the header is in. Nothing on the request
//     path takes a contended lock or logs;
//   - timeouts without a timer per operation: each connection carries a
//     deadline in ticks of its worker's clock, and the worker closes, every
//     kTick, the connections whose deadline has passed.
//
// Transport (Worker, Conn): each worker thread runs an epoll loop;
// connections are registered once, edge-triggered, and read only when epoll
// reports input; responses are written at once with one sendmsg() (head and
// body gathered), falling back to EPOLLOUT when the socket buffer is full.
// About two system calls per request (recv, sendmsg) plus a shared
// epoll_wait(); see Conn for why not Asio.
//
// TLS (EST with mutual TLS) is OpenSSL on the same loop, SSL_read/SSL_write
// straight on the socket; an SSL object is made on the client's first byte
// and its record buffers are released while idle, so a silent or idle TLS
// connection costs a few KB. 1.2 minimum, ECDHE with AEAD only in 1.2; the
// client is asked for a certificate but neither required to send one nor
// verified here (the verify callback accepts everything): handlers verify
// HttpRequest::peer_chain_der against a trust set that changes at run time.
// Session resumption and renegotiation are off, so that the chain a
// connection carries is always the one presented in a full handshake on
// that very connection.
//
// Limits (ConnectionLimits, docs/limits.md): per listener, anonymous
// connections are capped (at the cap the least recently active one is
// evicted for the newcomer) and so are connections per source; trusted
// sources (the SeGWs) have slots of their own; a connection has
// header_timeout_s from accept to its first request header, handshake
// included.

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/ossl.h"
#include "http/http.h"

namespace fg {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using SslCtxPtr = ossl::Ptr<SSL_CTX, SSL_CTX_free>;

// After an error response the peer may still be sending (an oversized body):
// closing with unread data makes the kernel send RST, which can destroy the
// response before the client reads it. So we half-close and discard input
// for a bounded time and amount first (nginx's lingering_close).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 16u << 20;
constexpr size_t kLingerChunk = 16u << 10;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool AsciiIEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
    if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
    if (x != y) return false;
  }
  return true;
}

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Never prompts for a passphrase (OpenSSL's default callback would read the
// terminal): an encrypted key simply fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Accepts any client certificate: the TLS layer only collects the chain.
int AcceptAnyPeer(int, X509_STORE_CTX*) { return 1; }

// The TLS server context for Options::tls. Errors never quote the key.
Result<SslCtxPtr> MakeTlsContext(const HttpServer::Options::Tls& tls) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return ossl::Error("http: cannot create a TLS context");
  SSL_CTX* native = ctx.get();
  // Partial writes: Conn::Transmit writes as much as the socket takes and
  // retries the rest. RELEASE_BUFFERS: an idle connection keeps no record
  // buffers (~34 KB) between requests.
  SSL_CTX_set_mode(native, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);

  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return ossl::Error("http: cannot set the minimum TLS version");
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  // No resumption: a resumed session would carry the leaf but not the rest
  // of the chain, and nothing of a later change of the client's certificate.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 0);
  static constexpr unsigned char kSessionIdContext[] = "femtoguard-http";
  SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_dh_auto(native, 1);
  // TLS 1.2: forward secrecy and AEAD only (no CBC, no SHA-1 MACs, no static
  // RSA key exchange), ECDSA and RSA server keys alike. TLS 1.3 keeps
  // OpenSSL's defaults, which are all AEAD.
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return ossl::Error("http: cannot set the TLS 1.2 cipher suites");
  }
  // Ask for a client certificate; accept any (or none).
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, AcceptAnyPeer);

  // Certificate chain, leaf first.
  {
    ossl::BioPtr bio(
        BIO_new_mem_buf(tls.cert_chain_pem.data(), static_cast<int>(tls.cert_chain_pem.size())));
    std::vector<ossl::X509Ptr> certs;
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
      certs.emplace_back(c);
    }
    ERR_clear_error();
    if (certs.empty()) {
      return Status::InvalidArgument("http: TLS certificate chain: no PEM certificate found");
    }
    if (SSL_CTX_use_certificate(native, certs[0].get()) != 1) {
      return Status::InvalidArgument("http: TLS certificate chain: cannot use the leaf: " +
                                     ossl::LastError());
    }
    for (size_t i = 1; i < certs.size(); ++i) {
      if (SSL_CTX_add1_chain_cert(native, certs[i].get()) != 1) {
        return Status::InvalidArgument("http: TLS certificate chain: cannot add certificate #" +
                                       std::to_string(i + 1) + ": " + ossl::LastError());
      }
    }
  }

  // Private key (unencrypted PEM: the caller decrypts).
  {
    ossl::BioPtr bio(BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size())));
    ossl::EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
    // The error queue may hold parser details of the key: drop them unread.
    ERR_clear_error();
    if (!key) {
      return Status::InvalidArgument("http: TLS private key: not an unencrypted PEM private key");
    }
    if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
      ERR_clear_error();
      return Status::InvalidArgument(
          "http: TLS private key does not match the certificate (the first of the chain)");
    }
  }
  return ctx;
}

}  // namespace

// ---------------------------------------------------------------------------
// HttpRequest / HttpResponse

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (AsciiIEquals(key, name)) return value;
  }
  return {};
}

std::string FormatHttpDate(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm g {};
  if (::gmtime_r(&t, &g) == nullptr) return {};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[g.tm_wday % 7],
                g.tm_mday, kMonths[g.tm_mon % 12], g.tm_year + 1900, g.tm_hour, g.tm_min,
                g.tm_sec);
  return buf;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

// ---------------------------------------------------------------------------
// ServerCore: routing, limits and counters shared by all sessions.

namespace {

// ---------------------------------------------------------------------------
// Connection limits (docs/limits.md).

// Where a connection comes from, for the per-source cap: an IPv4 address,
// or the /64 of an IPv6 one (one subscriber line usually owns a /64).
struct SourceKey {
  std::array<uint8_t, 8> bytes{};
  uint8_t family = 0;
  bool operator==(const SourceKey&) const = default;
};

struct SourceKeyHash {
  size_t operator()(const SourceKey& k) const {
    uint64_t v;
    std::memcpy(&v, k.bytes.data(), sizeof v);
    return static_cast<size_t>((v ^ k.family) * 0x9E3779B97F4A7C15ull);
  }
};

// An address as 16 bytes (IPv4 as IPv4-mapped IPv6) and its family.
struct Address16 {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;
};

Address16 ToAddress16(const sockaddr_storage& ss) {
  Address16 a;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &in->sin_addr, 4);
    a.v4 = true;
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::memcpy(a.bytes.data(), &in6->sin6_addr, 16);
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    a.v4 = std::memcmp(a.bytes.data(), kMapped, sizeof kMapped) == 0;
  }
  return a;
}

SourceKey KeyOf(const Address16& a) {
  SourceKey k;
  if (a.v4) {
    k.family = 4;
    std::memcpy(k.bytes.data(), a.bytes.data() + 12, 4);
  } else {
    k.family = 6;
    std::memcpy(k.bytes.data(), a.bytes.data(), 8);
  }
  return k;
}

// "10.0.0.0/8", "2001:db8::/32", or a single address.
struct Cidr {
  Address16 net;
  int bits = 128;  // over the 16-byte form
};

Result<Cidr> ParseCidr(std::string_view text) {
  std::string addr(text);
  int bits = -1;
  if (size_t slash = addr.find('/'); slash != std::string::npos) {
    std::string_view b = std::string_view(addr).substr(slash + 1);
    auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (ec != std::errc() || end != b.data() + b.size() || b.empty()) bits = -2;
    addr.resize(slash);
  }
  Cidr c;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    if (bits == -1) bits = 32;
    if (bits < 0 || bits > 32)
      return Status::InvalidArgument("http: bad prefix length in '" + std::string(text) + "'");
    c.net.bytes[10] = c.net.bytes[11] = 0xff;
    std::memcpy(c.net.bytes.data() + 12, &v4, 4);
    c.net.v4 = true;
    c.bits = 96 + bits;
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (bits == -1) bits = 128;
    if (bits < 0 || bits > 128)
      return Status::InvalidArgument("http: bad prefix length in '" + std::string(text) + "'");
    std::memcpy(c.net.bytes.data(), &v6, 16);
    c.bits = bits;
  } else {
    return Status::InvalidArgument("http: not an address or CIDR: '" + std::string(text) + "'");
  }
  return c;
}

bool CidrContains(const Cidr& c, const Address16& a) {
  int bits = c.bits;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((c.net.bytes[i] & mask) != (a.bytes[i] & mask)) return false;
  }
  return true;
}

enum class Pool : uint8_t { kAnonymous, kTrusted };

// What accept decided for a new connection.
struct Admission {
  bool admitted = false;
  Pool pool = Pool::kAnonymous;
  // The anonymous pool is over its cap: the worker that takes this
  // connection first evicts its least recently active anonymous one.
  bool evict = false;
};

// The counts behind the caps of one listener. Thread-safety: every member
// function takes mutex_; they run at accept, close and promotion only,
// never per request.
class ConnectionLimits {
 public:
  // Before the workers start.
  void Configure(const HttpServer::Options& options, size_t max_anonymous,
                 std::vector<Cidr> trusted_sources, const std::string& listener) {
    max_anonymous_ = std::max<size_t>(max_anonymous, 1);
    max_per_source_ = std::max<size_t>(options.max_connections_per_source, 1);
    max_trusted_ = options.trusted_connections;
    trusted_sources_ = std::move(trusted_sources);
    auto& m = Metrics::Global();
    constexpr std::string_view kGauge = "femtoguard_http_connections";
    constexpr std::string_view kGaugeHelp = "Open HTTP connections, by listener and pool";
    anonymous_gauge_ =
        &m.GetGauge(kGauge, "listener=\"" + listener + "\",pool=\"anonymous\"", kGaugeHelp);
    trusted_gauge_ =
        &m.GetGauge(kGauge, "listener=\"" + listener + "\",pool=\"trusted\"", kGaugeHelp);
    refused_per_source_ = &m.GetCounter("femtoguard_http_rejected_total", "reason=\"per_source\"",
                                        "HTTP requests refused before reaching a handler");
  }

  Admission OnAccept(const Address16& addr, const SourceKey& key) {
    bool trusted_source = false;
    for (const Cidr& c : trusted_sources_) {
      if (CidrContains(c, addr)) {
        trusted_source = true;
        break;
      }
    }
    std::lock_guard lock(mutex_);
    if (trusted_source && trusted_ < max_trusted_) {
      ++trusted_;
      trusted_gauge_->Add();
      return {true, Pool::kTrusted, false};
    }
    uint32_t& n = per_source_[key];
    if (n >= max_per_source_) {
      refused_per_source_->Inc();
      return {};
    }
    ++n;
    ++anonymous_;
    anonymous_gauge_->Add();
    return {true, Pool::kAnonymous, anonymous_ > max_anonymous_};
  }

  void OnClose(const SourceKey& key, Pool pool) {
    std::lock_guard lock(mutex_);
    if (pool == Pool::kTrusted) {
      --trusted_;
      trusted_gauge_->Sub();
      return;
    }
    --anonymous_;
    anonymous_gauge_->Sub();
    ReleaseSource(key);
  }

  // Anonymous -> trusted, when the trusted pool has room.
  bool Promote(const SourceKey& key) {
    std::lock_guard lock(mutex_);
    if (trusted_ >= max_trusted_) return false;
    --anonymous_;
    anonymous_gauge_->Sub();
    ReleaseSource(key);
    ++trusted_;
    trusted_gauge_->Add();
    return true;
  }

  size_t max_anonymous() const { return max_anonymous_; }

  // Connections over the cap wait for their worker to evict one; while
  // more than kEvictionSlack wait, the acceptor stops accepting (they stay
  // in the kernel's backlog) rather than open descriptors faster than a
  // busy worker closes them, which would end in EMFILE.
  bool Saturated() {
    std::lock_guard lock(mutex_);
    return anonymous_ > max_anonymous_ + kEvictionSlack;
  }
  static constexpr size_t kEvictionSlack = 32;

 private:
  void ReleaseSource(const SourceKey& key) {
    auto it = per_source_.find(key);
    if (it == per_source_.end()) return;
    if (--it->second == 0) per_source_.erase(it);
  }

  // Constant after Configure().
  size_t max_anonymous_ = 1;
  size_t max_per_source_ = 1;
  size_t max_trusted_ = 0;
  std::vector<Cidr> trusted_sources_;
  Gauge* anonymous_gauge_ = nullptr;
  Gauge* trusted_gauge_ = nullptr;
  Counter* refused_per_source_ = nullptr;

  std::mutex mutex_;
  size_t anonymous_ = 0;  // guarded by mutex_
  size_t trusted_ = 0;    // guarded by mutex_
  // Anonymous connections by source; guarded by mutex_.
  std::unordered_map<SourceKey, uint32_t, SourceKeyHash> per_source_;
};

// What the process keeps for itself out of the open-files limit: the store,
// logs, the control socket, vici, the workers' epoll and event descriptors,
// a webhook. Accepting must never be the thing that hits EMFILE.
size_t ReservedFds(size_t soft_limit) { return std::clamp<size_t>(soft_limit / 8, 64, 1024); }

// Thread-safety: Route() only before Freeze(); after it every member is
// constant (the counters are atomics), so Dispatch() and the counters are
// used concurrently by the worker threads without a lock.
struct ParseRejection {
  unsigned status;
  const char* text;
};

class ServerCore {
 public:
  // The TLS private key is moved out of the options at once: Start() uses it
  // to build the TLS context and then wipes it, so no copy of the unencrypted
  // key lives on in the server for its lifetime.
  explicit ServerCore(HttpServer::Options options)
      : tls_key_pem_(TakeTlsKey(options)), options_(std::move(options)) {}
  ~ServerCore() { WipeTlsKey(); }

  const std::string& tls_key_pem() const { return tls_key_pem_; }
  void WipeTlsKey() {
    OPENSSL_cleanse(tls_key_pem_.data(), tls_key_pem_.size());
    tls_key_pem_.clear();
    tls_key_pem_.shrink_to_fit();
  }

  void Route(std::string method, std::string path, HttpHandler handler);
  // Sorts the routes and registers the counters; no Route() after it.
  void Freeze();
  bool frozen() const { return frozen_; }

  const HttpServer::Options& options() const { return options_; }
  HttpResponse Dispatch(const HttpRequest& req) const;
  void CountResponse(unsigned status) { CounterForCode(status).Inc(); }
  Counter& rejected_too_large() { return *rejected_too_large_; }
  Counter& rejected_header_too_large() { return *rejected_header_too_large_; }
  Counter& rejected_bad_request() { return *rejected_bad_request_; }
  Counter& rejected_tls_handshake() { return *rejected_tls_handshake_; }
  Counter& rejected_full() { return *rejected_full_; }
  Counter& closed_timeout() { return *closed_timeout_; }
  Counter& closed_evicted() { return *closed_evicted_; }
  ConnectionLimits& limits() { return limits_; }
  // The answer to a request that failed to parse, counted by reason.
  ParseRejection RejectParseError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      rejected_too_large_->Inc();
      return {413, "request body too large"};
    }
    if (ec == http::error::header_limit) {
      rejected_header_too_large_->Inc();
      return {431, "request header fields too large"};
    }
    rejected_bad_request_->Inc();
    return {400, "bad request"};
  }

 private:
  struct RouteEntry {
    std::string path;
    bool prefix = false;
    std::vector<std::pair<std::string, HttpHandler>> methods;
    std::string allow;  // "GET, POST", for 405 answers
  };

  Counter& CounterForCode(unsigned status);

  static std::string TakeTlsKey(HttpServer::Options& options) {
    if (!options.tls) return {};
    std::string key = std::move(options.tls->key_pem);
    options.tls->key_pem.clear();
    return key;
  }

  std::string tls_key_pem_;  // until Start() has built the TLS context

  // Constant after construction.
  const HttpServer::Options options_;

  // Constant after Freeze().
  std::vector<RouteEntry> routes_;  // sorted by path length, longest first
  bool frozen_ = false;
  Counter* rejected_too_large_ = nullptr;
  Counter* rejected_header_too_large_ = nullptr;
  Counter* rejected_bad_request_ = nullptr;
  Counter* rejected_tls_handshake_ = nullptr;
  Counter* rejected_full_ = nullptr;
  Counter* closed_timeout_ = nullptr;
  Counter* closed_evicted_ = nullptr;
  Counter* handler_errors_ = nullptr;

  ConnectionLimits limits_;  // configured before Freeze(); thread-safe

  // Response counters by status code, filled lazily: the registry mutex is
  // taken only for the first response with a given code.
  std::array<std::atomic<Counter*>, 1000> by_code_{};
};

// ---------------------------------------------------------------------------
// Deadlines and the list of a worker's connections (both transports).

// Deadlines are counted in ticks of the worker's clock rather than kept in
// a timer per operation: arming and cancelling a steady_timer for every
// read and write was a large share of the per-request cost. Every kTick the
// worker closes the connections whose deadline has passed.
constexpr auto kTick = std::chrono::milliseconds(250);
constexpr uint64_t kNoDeadline = std::numeric_limits<uint64_t>::max();

class SessionList;

// The part of a connection its worker knows: an intrusive list node and a
// deadline. Touched only on the worker's thread (or after it was joined).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // The deadline passed: close the transport (a pending operation then
  // completes with an error and the connection winds down).
  virtual void OnDeadline() = 0;

 protected:
  friend class SessionList;
  uint64_t deadline_ = kNoDeadline;  // in SessionList ticks
  SessionBase* prev_ = nullptr;
  SessionBase* next_ = nullptr;
  bool linked_ = false;
};

// Thread-safety: used on one worker thread only.
class SessionList {
 public:
  // Newest (or most recently active) at the head, the longest inactive at
  // the tail: the order in which connections are evicted.
  void Link(SessionBase* s) {
    if (s->linked_) return;
    s->prev_ = nullptr;
    s->next_ = head_;
    if (head_ != nullptr) head_->prev_ = s;
    head_ = s;
    if (tail_ == nullptr) tail_ = s;
    s->linked_ = true;
  }
  void Unlink(SessionBase* s) {
    if (!s->linked_) return;
    if (s->prev_ != nullptr) {
      s->prev_->next_ = s->next_;
    } else {
      head_ = s->next_;
    }
    if (s->next_ != nullptr) {
      s->next_->prev_ = s->prev_;
    } else {
      tail_ = s->prev_;
    }
    s->prev_ = s->next_ = nullptr;
    s->linked_ = false;
  }
  // `s` was active: to the head.
  void Touch(SessionBase* s) {
    if (!s->linked_ || head_ == s) return;
    Unlink(s);
    Link(s);
  }
  SessionBase* head() const { return head_; }
  SessionBase* tail() const { return tail_; }
  static SessionBase* Next(const SessionBase* s) { return s->next_; }
  static SessionBase* Prev(const SessionBase* s) { return s->prev_; }

  uint64_t tick() const { return tick_; }
  // Sets a deadline at least `d` from now (and at most one tick more).
  void ExpireAfter(SessionBase& s, std::chrono::milliseconds d) const {
    const int64_t ms = std::max<int64_t>(d.count(), 0);
    s.deadline_ = tick_ + static_cast<uint64_t>((ms + kTick.count() - 1) / kTick.count()) + 1;
  }
  static void ExpireNever(SessionBase& s) { s.deadline_ = kNoDeadline; }

  // A pseudo-random share of `d`, up to a quarter: connections a flood
  // opened together then time out over a spread, not in one tick, and the
  // flood's reconnections do not arrive as one burst either.
  std::chrono::milliseconds Jitter(std::chrono::milliseconds d) {
    jitter_state_ ^= jitter_state_ << 13;
    jitter_state_ ^= jitter_state_ >> 7;
    jitter_state_ ^= jitter_state_ << 17;
    const uint64_t quarter = static_cast<uint64_t>(std::max<int64_t>(d.count() / 4, 1));
    return std::chrono::milliseconds(static_cast<int64_t>(jitter_state_ % quarter));
  }

  // One tick passed: OnDeadline() for the connections whose deadline has
  // come. OnDeadline() must not destroy the connection synchronously.
  void Tick() {
    ++tick_;
    for (SessionBase* s = head_; s != nullptr;) {
      SessionBase* next = s->next_;
      if (s->deadline_ <= tick_) {
        s->deadline_ = kNoDeadline;
        s->OnDeadline();
      }
      s = next;
    }
  }

 private:
  SessionBase* head_ = nullptr;
  SessionBase* tail_ = nullptr;
  uint64_t tick_ = 0;
  uint64_t jitter_state_ = 0x9E3779B97F4A7C15ull;
};

// ---------------------------------------------------------------------------
// RequestParser: Beast's HTTP/1.x parser writing straight into a reused
// HttpRequest (strings and the header vector keep their capacity across the
// requests of a connection). A parser parses one message; the Session makes
// a new one (cheap: no allocation) for each request.
class RequestParser final : public http::basic_parser<true> {
 public:
  RequestParser(HttpRequest& req, size_t max_body_bytes, size_t max_header_bytes) : req_(req) {
    body_limit(max_body_bytes);
    header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    eager(true);
    req_.body.clear();
  }

  unsigned version() const { return version_; }
  bool expect_continue() const { return expect_continue_; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code&) override {
    version_ = static_cast<unsigned>(version);
    req_.method.assign(method.data(), method.size());
    std::string_view t(target.data(), target.size());
    req_.target.assign(t);
    size_t q = t.find('?');
    if (q == std::string_view::npos) {
      req_.path.assign(t);
      req_.query.clear();
    } else {
      req_.path.assign(t.substr(0, q));
      req_.query.assign(t.substr(q + 1));
    }
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = http::error::bad_version;  // never called for a request parser
  }

  void on_field_impl(http::field f, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    auto& headers = req_.headers;
    if (fields_ < headers.size()) {
      headers[fields_].first.assign(name.data(), name.size());
      headers[fields_].second.assign(value.data(), value.size());
    } else {
      headers.emplace_back(std::string(name.data(), name.size()),
                           std::string(value.data(), value.size()));
    }
    ++fields_;
    if (f == http::field::expect && AsciiIEquals(View(value), "100-continue")) {
      expect_continue_ = true;
    }
  }

  void on_header_impl(beast::error_code&) override {
    req_.headers.resize(fields_);
    if (version_ < 11) expect_continue_ = false;
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         beast::error_code&) override {
    // The parser has checked the length against the body limit already.
    if (content_length) req_.body.reserve(static_cast<size_t>(*content_length));
  }

  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}

  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {}

  HttpRequest& req_;
  unsigned version_ = 11;
  size_t fields_ = 0;
  bool expect_continue_ = false;
};

// ---------------------------------------------------------------------------
// Response serialization (what Beast's serializer wrote for a
// string_body response after prepare_payload() and keep_alive()).

bool IsFramingHeader(std::string_view name) {
  return AsciiIEquals(name, "content-length") || AsciiIEquals(name, "transfer-encoding") ||
         AsciiIEquals(name, "connection");
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

void AppendUnsigned(std::string& out, uint64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, end);
}

// RFC 9110 §6.6.1: an origin server with a clock sends Date in every
// response. Formatted once per second per thread.
std::string_view DateNow() {
  thread_local int64_t cached_s = -1;
  thread_local std::string cached;
  const int64_t now_s = static_cast<int64_t>(::time(nullptr));
  if (now_s != cached_s) {
    cached = FormatHttpDate(now_s);
    cached_s = now_s;
  }
  return cached;
}

// The status line and header fields of `r`, into `out` (cleared first).
// Returns whether the response carries a body (not for 1xx, 204, 304).
bool SerializeHead(std::string& out, unsigned version, unsigned status, std::string_view ctype,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   size_t body_size, bool keep_alive) {
  out.clear();
  out += "HTTP/";
  out += static_cast<char>('0' + (version / 10) % 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
  out += ' ';
  AppendUnsigned(out, status);
  out += ' ';
  auto reason = http::obsolete_reason(http::int_to_status(status));
  out.append(reason.data(), reason.size());
  out += "\r\nServer: femtoguard\r\nDate: ";
  out += DateNow();
  out += "\r\n";
  if (!ctype.empty() && !HasLineBreak(ctype)) {
    out += "Content-Type: ";
    out += ctype;
    out += "\r\n";
  }
  for (const auto& [name, value] : headers) {
    // Framing is ours; a header that would split the response is dropped.
    if (name.empty() || IsFramingHeader(name) || HasLineBreak(name) || HasLineBreak(value) ||
        AsciiIEquals(name, "date")) {  // one Date, ours
      continue;
    }
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  const bool bodiless = status < 200 || status == 204 || status == 304;
  if (!bodiless) {
    out += "Content-Length: ";
    AppendUnsigned(out, body_size);
    out += "\r\n";
  }
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  return !bodiless;
}

// Buffers larger than this are given back after the request that needed
// them, so that an idle keep-alive connection does not hold a large POST.
constexpr size_t kKeepCapacity = 64u << 10;
// Read size per receive.
constexpr size_t kReadChunk = 16u << 10;
// Pipelined requests answered in a row before yielding to other
// connections of the same worker.
constexpr int kMaxInARow = 16;

// ---------------------------------------------------------------------------
// The transport: one epoll loop per worker thread, without Asio, for plain
// HTTP and TLS alike (TLS is OpenSSL straight on the socket).
//
// Why not Asio: its reactor tries a read at once whenever one is started,
// i.e. right after every response, before the client has had a chance to
// send its next request; that recv() returns EAGAIN, a wasted system call
// per request (a third of them), and system calls are the most expensive
// thing this server does per request (on a VM even more so). For TLS,
// asio::ssl::stream also keeps ~70 KB of fixed buffers per connection (its
// own 17 KB input and output vectors and a 2 x 17 KB BIO pair), idle or
// not: 10,000 idle TLS connections cost 867 MB. This loop reads when epoll
// says there is something to read (edge-triggered, readiness tracked per
// connection), writes at once, has no per-operation allocation, handler
// queue or shared_ptr, and creates a TLS connection's SSL object only once
// the client has sent its first byte.

class Worker;

// Receives in a row on one connection before the others of its worker.
constexpr int kMaxReadsInARow = 64;
// The first read of a request: most requests (OCSP, admission) fit, and an
// idle keep-alive connection keeps no more than this (kIdleBufferBytes).
constexpr size_t kFirstReadChunk = 2048;
constexpr size_t kIdleBufferBytes = 4096;

// epoll_event.data.u64 values that are not connections.
constexpr uint64_t kListenTag = 1;
constexpr uint64_t kWakeTag = 2;

using SslPtr = ossl::Ptr<SSL, SSL_free>;

// Text form of a peer address (like asio's address::to_string()).
std::string AddressText(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) return text;
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text) != nullptr) {
      std::string out = text;
      if (in6->sin6_scope_id != 0) out += "%" + std::to_string(in6->sin6_scope_id);
      return out;
    }
  }
  return {};
}

// A connection accepted and admitted by the limits, on its way to a worker.
struct Accepted {
  int fd = -1;
  std::string remote_addr;
  SourceKey source;
  Admission admission;
};

// One connection, owned by its Worker; everything runs on the worker's
// thread. A small state machine: handshaking (TLS only: no SSL object until
// the client's first byte), reading (and answering what was read, while the
// answers can be written at once), writing (the socket buffer was full: wait
// for EPOLLOUT, read nothing meanwhile), lingering (after an error answer:
// drain input for a while, see kLingerTimeout), closed (waiting to be
// deleted at the end of the loop iteration).
class Conn final : public SessionBase {
 public:
  Conn(ServerCore& server, Worker& worker, Accepted&& a, SSL_CTX* tls)
      : server_(server),
        worker_(worker),
        fd_(a.fd),
        tls_ctx_(tls),
        source_(a.source),
        pool_(a.admission.pool) {
    req_.remote_addr = std::move(a.remote_addr);
    req_.tls = tls != nullptr;
  }
  ~Conn() override;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  bool closed() const { return state_ == State::kClosed; }
  bool evictable() const { return pool_ == Pool::kAnonymous && state_ != State::kClosed; }

  void Start() {
    // Handshake (TLS) and first request header, from now on (plus a
    // jitter of up to a quarter, see SessionList::Jitter).
    ExpireAfter(HeaderTimeout() + worker_sessions().Jitter(HeaderTimeout()));
    header_armed_ = true;
    if (tls_ctx_ != nullptr) {
      state_ = State::kHandshake;
      return;  // epoll reports the first byte (registration reports what is there)
    }
    StartRequest(false);
    readable_ = true;  // the request may be there already
    Resume();
  }

  // epoll reported `events` for this connection.
  void OnEvents(uint32_t events) {
    if (state_ == State::kClosed) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_done_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      writable_ = true;
      if (read_wants_write_) {
        read_wants_write_ = false;
        readable_ = true;
      }
    }
    Resume();
  }

  // Continues whatever the connection was doing.
  void Resume();

  void OnDeadline() override {
    if (state_ == State::kHandshake) server_.rejected_tls_handshake().Inc();
    server_.closed_timeout().Inc();
    Close();
  }

  // Closed to make room for a newer connection (the listener is full).
  void Evict() {
    server_.closed_evicted().Inc();
    Close();
  }

  // Marks for Worker: queued in its "again" list.
  bool in_again_ = false;

 private:
  enum class State { kHandshake, kReading, kWriting, kLingering, kClosed };
  // What to do once the pending output is written.
  enum class After { kNextRequest, kKeepReading, kClose, kLinger };
  enum class Progress { kNeedData, kStopped, kYield };

  std::chrono::milliseconds HeaderTimeout() const {
    const auto& opt = server_.options();
    return std::chrono::seconds(std::max(1, std::min(opt.header_timeout_s, opt.idle_timeout_s)));
  }
  std::chrono::milliseconds IdleTimeout() const {
    return std::chrono::seconds(server_.options().idle_timeout_s);
  }

  // A fresh parser for the next request. `idle`: a keep-alive wait starts
  // (the idle timeout, then the header timeout from its first byte).
  void StartRequest(bool idle);

  void ExpireAfter(std::chrono::milliseconds d);
  SessionList& worker_sessions();
  void Handshake();
  void CollectPeerChain();
  void ReadLoop();
  Progress ProcessBuffered(int& budget);
  // recv() or SSL_read: > 0 bytes, 0 end of stream, < 0 with errno set
  // (EAGAIN: wait for epoll).
  ssize_t Receive(void* data, size_t size);
  // sendmsg() or SSL_write, same convention.
  ssize_t Transmit();
  // Writes pending_ as far as the socket takes it: true when all is out;
  // false when blocked (state kWriting, `after` remembered) or closed.
  bool Send(After after);
  void AfterFlush();
  void WriteError(unsigned status, std::string_view body);
  void OnParseError(beast::error_code ec);
  void StartLinger();
  void Drain();
  // Our close_notify (TLS), our FIN, close.
  void GracefulClose() {
    SendCloseNotify();
    ::shutdown(fd_, SHUT_WR);
    Close();
  }
  void SendCloseNotify() {
    if (ssl_ && SSL_is_init_finished(ssl_.get())) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_.get());  // not waiting for the peer's
      ERR_clear_error();
    }
  }
  void Close();

  ServerCore& server_;
  Worker& worker_;
  int fd_;
  SSL_CTX* const tls_ctx_;  // null: plain HTTP
  SslPtr ssl_;              // made on the client's first byte
  const SourceKey source_;
  Pool pool_;
  State state_ = State::kReading;
  After after_ = After::kNextRequest;
  bool readable_ = false;          // epoll said readable since the last EAGAIN / short read
  bool writable_ = true;           // no EAGAIN on a send since the last EPOLLOUT
  bool peer_done_ = false;         // the peer shut down its side (or errored)
  bool read_wants_write_ = false;  // SSL_read must write first (TLS 1.3 key update)
  bool continue_sent_ = false;
  bool header_armed_ = false;  // the header timeout runs for this request
  bool header_seen_ = false;   // its header is in
  beast::flat_buffer buffer_;  // reused for every request of the connection
  std::optional<RequestParser> parser_;
  HttpRequest req_;   // reused: its strings keep their capacity across requests
  HttpResponse res_;  // the answer being written (owns the body)
  std::string head_;  // its status line and header fields (and, for TLS, body)
  std::array<std::string_view, 2> pending_;  // not yet written: in head_/res_/kContinue
  size_t drained_ = 0;
};

// Thread-safety: Hand() and RequestStop() are called from other threads
// (the inbox is guarded by inbox_mutex_); everything else runs on the
// worker's own thread, in Run(), or after that thread was joined.
class Worker {
 public:
  Worker(ServerCore& server, SSL_CTX* tls) : server_(server), tls_(tls) {}
  ~Worker() {
    for (Conn* c : dead_) delete c;  // unlinks them
    while (SessionBase* s = sessions_.head()) delete static_cast<Conn*>(s);
    for (auto& a : inbox_) Refuse(a);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Status Init() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0)
      return Status::Internal(std::string("http: epoll_create1: ") + std::strerror(errno));
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0)
      return Status::Internal(std::string("http: eventfd: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      return Status::Internal(std::string("http: epoll_ctl: ") + std::strerror(errno));
    }
    return Status::Ok();
  }

  // Makes this worker the acceptor for `listen_fd` (non-blocking), handing
  // connections round-robin to `workers` (this one included).
  Status Listen(int listen_fd, std::vector<Worker*> workers) {
    listen_fd_ = listen_fd;
    peers_ = std::move(workers);
    return WatchListener();
  }

  // The worker's loop; returns after RequestStop().
  void Run();

  void RequestStop() {
    stop_.store(true, std::memory_order_release);
    Wake();
  }

  // From the acceptor's thread: serve this connection.
  void Hand(Accepted&& a) {
    bool was_empty;
    {
      std::lock_guard lock(inbox_mutex_);
      was_empty = inbox_.empty();
      inbox_.push_back(std::move(a));
    }
    if (was_empty) Wake();
  }

  // For Conn.
  SessionList& sessions() { return sessions_; }
  int epoll_fd() const { return epoll_fd_; }
  // `c` has more to do but yielded: Resume() it after this round of events.
  void Again(Conn* c) {
    if (c->in_again_) return;
    c->in_again_ = true;
    again_.push_back(c);
  }
  // `c` is closed: delete it at the end of this loop iteration.
  void Retire(Conn* c) {
    if (!c->in_again_) dead_.push_back(c);  // else the again round retires it
  }

 private:
  Status WatchListener() {
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: accept a bounded batch per wakeup
    ev.data.u64 = kListenTag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      return Status::Internal(std::string("http: epoll_ctl(listen): ") + std::strerror(errno));
    }
    return Status::Ok();
  }

  void Wake() {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }

  void AcceptSome();
  void TakeInbox();
  void Adopt(Accepted&& a);
  // Closes the least recently active anonymous connection; false when
  // there is none.
  bool EvictOne();
  // Closes an admitted connection that will not be served.
  void Refuse(Accepted& a) {
    ::close(a.fd);
    server_.limits().OnClose(a.source, a.admission.pool);
  }
  void MaybeTrim();

  ServerCore& server_;
  SSL_CTX* const tls_;  // null: plain HTTP
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;             // owned by HttpServer::Impl; -1 unless the acceptor
  std::vector<Worker*> peers_;     // acceptor only
  size_t next_peer_ = 0;           // acceptor only
  bool accept_paused_ = false;     // acceptor only: after EMFILE and the like
  bool accept_saturated_ = false;  // acceptor only: evictions lag (ConnectionLimits::Saturated)
  uint64_t accept_resume_tick_ = 0;

  std::atomic<bool> stop_{false};
  std::mutex inbox_mutex_;
  std::vector<Accepted> inbox_;  // guarded by inbox_mutex_

  SessionList sessions_;
  size_t live_ = 0;       // connections of this worker
  size_t peak_live_ = 0;  // since the last trim
  std::vector<Conn*> again_;
  std::vector<Conn*> dead_;
};

Conn::~Conn() {
  worker_.sessions().Unlink(this);
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
  server_.limits().OnClose(source_, pool_);
}

void Conn::ExpireAfter(std::chrono::milliseconds d) { worker_.sessions().ExpireAfter(*this, d); }

SessionList& Conn::worker_sessions() { return worker_.sessions(); }

void Conn::StartRequest(bool idle) {
  const auto& opt = server_.options();
  if (req_.body.capacity() > kKeepCapacity) std::string().swap(req_.body);
  parser_.emplace(req_, opt.max_body_bytes, opt.max_header_bytes);
  continue_sent_ = false;
  header_seen_ = false;
  if (idle) {
    ExpireAfter(IdleTimeout());
    header_armed_ = false;
    worker_.sessions().Touch(this);  // it answered: last in line for eviction
  }
}

void Conn::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  SessionList::ExpireNever(*this);
  // Explicitly: a copy of the descriptor in a forked child would keep the
  // registration (and its events for a deleted connection) alive.
  ::epoll_ctl(worker_.epoll_fd(), EPOLL_CTL_DEL, fd_, nullptr);
  // The SSL object (and its buffers) go now, not at the end of the round.
  ssl_.reset();
  ::close(fd_);
  fd_ = -1;
  worker_.Retire(this);
}

void Conn::Resume() {
  switch (state_) {
    case State::kHandshake:
      return Handshake();
    case State::kReading:
      return ReadLoop();
    case State::kWriting:
      if (!writable_) return;
      if (!Send(after_)) return;
      return AfterFlush();
    case State::kLingering:
      return Drain();
    case State::kClosed:
      return;
  }
}

void Conn::Handshake() {
  if (!ssl_) {
    if (!readable_) return;
    ssl_.reset(SSL_new(tls_ctx_));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1) {
      ERR_clear_error();
      server_.rejected_tls_handshake().Inc();
      return Close();
    }
    SSL_set_accept_state(ssl_.get());
  }
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    CollectPeerChain();
    state_ = State::kReading;
    StartRequest(false);  // the header timeout runs on from accept
    return ReadLoop();
  }
  switch (SSL_get_error(ssl_.get(), r)) {
    case SSL_ERROR_WANT_READ:
      readable_ = false;
      return;
    case SSL_ERROR_WANT_WRITE:
      writable_ = false;
      read_wants_write_ = true;  // EPOLLOUT resumes the handshake
      return;
    default:
      ERR_clear_error();
      server_.rejected_tls_handshake().Inc();
      spdlog::debug("http: TLS handshake with {} failed", req_.remote_addr);
      return Close();
  }
}

// The client's chain as presented, leaf first, into req_ (which keeps it
// for every request of the connection).
void Conn::CollectPeerChain() {
  req_.peer_chain_der.clear();
  SSL* ssl = ssl_.get();
  ossl::X509Ptr leaf(SSL_get1_peer_certificate(ssl));
  if (!leaf) return;
  req_.peer_chain_der.push_back(ossl::CertToDer(leaf.get()));
  // On the server side this chain does not include the leaf; skip it
  // anyway should it ever be there.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  const int n = chain == nullptr ? 0 : sk_X509_num(chain);
  for (int i = 0; i < n; ++i) {
    X509* cert = sk_X509_value(chain, i);
    if (i == 0 && X509_cmp(cert, leaf.get()) == 0) continue;
    req_.peer_chain_der.push_back(ossl::CertToDer(cert));
  }
}

ssize_t Conn::Receive(void* data, size_t size) {
  if (!ssl_) return ::recv(fd_, data, size, 0);
  ERR_clear_error();
  errno = 0;
  size_t got = 0;
  if (SSL_read_ex(ssl_.get(), data, size, &got) == 1) return static_cast<ssize_t>(got);
  const int err = SSL_get_error(ssl_.get(), 0);
  const int saved = errno;
  ERR_clear_error();
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return 0;
    case SSL_ERROR_WANT_READ:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      read_wants_write_ = true;
      writable_ = false;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_SYSCALL:
      if (saved == 0) return 0;  // end of stream without close_notify
      errno = saved == EAGAIN ? ECONNRESET : saved;
      return -1;
    default:
      errno = ECONNRESET;
      return -1;
  }
}

ssize_t Conn::Transmit() {
  if (!ssl_) {
    iovec iov[2];
    int count = 0;
    for (std::string_view part : pending_) {
      if (part.empty()) continue;
      iov[count].iov_base = const_cast<char*>(part.data());
      iov[count].iov_len = part.size();
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    return ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  }
  // One part at a time; with SSL_MODE_ENABLE_PARTIAL_WRITE a retry after
  // WANT_WRITE passes the same (remaining) part again.
  std::string_view part = pending_[0].empty() ? pending_[1] : pending_[0];
  ERR_clear_error();
  size_t written = 0;
  if (SSL_write_ex(ssl_.get(), part.data(), part.size(), &written) == 1) {
    return static_cast<ssize_t>(written);
  }
  const int err = SSL_get_error(ssl_.get(), 0);
  ERR_clear_error();
  errno = err == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
  return -1;
}

// Reads while epoll said there is something, answering what it can.
void Conn::ReadLoop() {
  int budget = kMaxInARow;
  for (int reads = 0;; ++reads) {
    switch (ProcessBuffered(budget)) {
      case Progress::kStopped:
        return;
      case Progress::kYield:
        return worker_.Again(this);
      case Progress::kNeedData:
        break;
    }
    if (!readable_) {
      // Idle between requests: give back a read buffer a large request grew.
      if (buffer_.size() == 0 && buffer_.capacity() > kIdleBufferBytes) buffer_.shrink_to_fit();
      return;  // epoll will tell
    }
    if (reads >= kMaxReadsInARow) return worker_.Again(this);  // a fast sender: others first
    if (buffer_.size() >= kReadChunk + server_.options().max_header_bytes) {
      // Only a pathological chunked body gets here (the header limit bounds
      // the header, the body is consumed as it comes).
      server_.rejected_bad_request().Inc();
      return WriteError(400, "bad request");
    }
    auto space = buffer_.prepare(buffer_.size() == 0 ? kFirstReadChunk : kReadChunk);
    ssize_t n = Receive(space.data(), space.size());
    if (n > 0) {
      // A short read drained the socket: new data brings a new edge. Unless
      // the peer is done: then read on to see the end of stream. (Not for
      // TLS: one SSL_read returns one record, the socket may hold more.)
      if (static_cast<size_t>(n) < space.size() && !peer_done_ && !ssl_) readable_ = false;
      buffer_.commit(static_cast<size_t>(n));
      if (!header_armed_) {
        // The first byte of a keep-alive request: its header has
        // header_timeout_s from now.
        header_armed_ = true;
        ExpireAfter(HeaderTimeout());
      }
      continue;
    }
    if (n == 0) {
      // The peer closed: cleanly between requests (answer its close), or
      // mid-message.
      if (!parser_->got_some()) return GracefulClose();
      return Close();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      readable_ = false;
      continue;  // the idle branch above
    }
    return Close();  // reset and the like
  }
}

// Parses what is buffered and answers every complete request (at most
// `budget`) whose answer can be written at once.
Conn::Progress Conn::ProcessBuffered(int& budget) {
  for (;;) {
    beast::error_code ec;
    while (!parser_->is_done() && buffer_.size() > 0) {
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) {
        OnParseError(ec);
        return Progress::kStopped;
      }
      if (n == 0) break;
    }
    if (!header_seen_ && parser_->is_header_done()) {
      // The body (if any) may take its time, within the idle timeout.
      header_seen_ = true;
      ExpireAfter(IdleTimeout());
    }
    if (!parser_->is_done()) {
      if (parser_->is_header_done() && parser_->expect_continue() && !continue_sent_) {
        continue_sent_ = true;
        pending_ = {kContinue, std::string_view()};
        if (!Send(After::kKeepReading)) return Progress::kStopped;
      }
      return Progress::kNeedData;
    }
    if (budget-- <= 0) return Progress::kYield;  // a long pipeline: others first

    const bool keep_alive = parser_->keep_alive();
    res_ = server_.Dispatch(req_);
    if (res_.trusted_peer && pool_ == Pool::kAnonymous && server_.limits().Promote(source_)) {
      pool_ = Pool::kTrusted;
    }
    const unsigned status = static_cast<unsigned>(res_.status);
    const std::string& body = res_.shared_body ? *res_.shared_body : res_.body;
    const bool with_body = SerializeHead(head_, parser_->version(), status, res_.content_type,
                                         res_.headers, body.size(), keep_alive);
    server_.CountResponse(status);
    if (ssl_ && with_body) {
      head_.append(body);  // one TLS record for small answers
      pending_ = {head_, std::string_view()};
    } else {
      pending_ = {head_, with_body ? std::string_view(body) : std::string_view()};
    }
    if (!Send(keep_alive ? After::kNextRequest : After::kClose)) return Progress::kStopped;
    if (!keep_alive) {
      GracefulClose();
      return Progress::kStopped;
    }
    if (head_.capacity() > kKeepCapacity) std::string().swap(head_);
    if (res_.body.capacity() > kKeepCapacity || res_.shared_body) res_ = HttpResponse();
    StartRequest(true);
  }
}

bool Conn::Send(After after) {
  while (!pending_[0].empty() || !pending_[1].empty()) {
    ssize_t n = Transmit();
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writable_ = false;
        state_ = State::kWriting;
        after_ = after;
        ExpireAfter(IdleTimeout());
        return false;
      }
      Close();
      return false;
    }
    size_t done = static_cast<size_t>(n);
    for (std::string_view& part : pending_) {
      size_t k = std::min(done, part.size());
      part.remove_prefix(k);
      done -= k;
    }
  }
  return true;
}

// The output pending in kWriting is out.
void Conn::AfterFlush() {
  state_ = State::kReading;
  switch (after_) {
    case After::kNextRequest:
      if (head_.capacity() > kKeepCapacity) std::string().swap(head_);
      if (res_.body.capacity() > kKeepCapacity || res_.shared_body) res_ = HttpResponse();
      StartRequest(true);
      return ReadLoop();
    case After::kKeepReading:
      return ReadLoop();
    case After::kClose:
      return GracefulClose();
    case After::kLinger:
      return StartLinger();
  }
}

void Conn::OnParseError(beast::error_code ec) {
  ParseRejection r = server_.RejectParseError(ec);
  WriteError(r.status, r.text);
}

// Answers a request we refuse to read further, then lingers and closes.
void Conn::WriteError(unsigned status, std::string_view body) {
  unsigned version = 11;
  if (parser_ && parser_->is_header_done()) version = parser_->version();
  res_ = HttpResponse();
  SerializeHead(head_, version, status, "text/plain", {}, body.size(), false);
  head_.append(body);
  server_.CountResponse(status);
  pending_ = {head_, std::string_view()};
  if (Send(After::kLinger)) StartLinger();
}

// After an error response the peer may still be sending (an oversized
// body): closing with unread data makes the kernel send RST, which can
// destroy the response before the client reads it. So we half-close and
// discard input (TLS records undecrypted) for a bounded time and amount
// first (nginx's lingering_close).
void Conn::StartLinger() {
  SendCloseNotify();
  ::shutdown(fd_, SHUT_WR);
  state_ = State::kLingering;
  buffer_.consume(buffer_.size());
  ExpireAfter(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTimeout));
  readable_ = true;
  Drain();
}

void Conn::Drain() {
  while (readable_) {
    auto space = buffer_.prepare(kLingerChunk);
    ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n > 0) {
      drained_ += static_cast<size_t>(n);
      if (drained_ > kLingerMaxBytes) return Close();
      if (static_cast<size_t>(n) < space.size() && !peer_done_) readable_ = false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      readable_ = false;
      return;
    }
    return Close();  // end of stream or error: the peer is done
  }
}

void Worker::Run() {
  auto now = std::chrono::steady_clock::now();
  auto next_tick = now + kTick;
  std::array<epoll_event, 128> events;
  std::vector<Conn*> again;
  while (!stop_.load(std::memory_order_acquire)) {
    int timeout_ms = 0;
    if (again_.empty()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next_tick - now).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, kTick.count()));
    }
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
      if (errno != EINTR) spdlog::error("http: epoll_wait: {}", std::strerror(errno));
      n = 0;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        AcceptSome();
      } else if (tag == kWakeTag) {
        TakeInbox();
      } else {
        auto* c = static_cast<Conn*>(events[i].data.ptr);
        try {
          c->OnEvents(events[i].events);
        } catch (const std::exception& e) {
          // Our code does not throw (handlers' exceptions are caught in
          // Dispatch); bad_alloc and the like: drop this connection only.
          spdlog::error("http: dropping a connection: {}", e.what());
          c->OnDeadline();
        }
      }
    }
    if (!again_.empty()) {
      again.swap(again_);
      for (Conn* c : again) {
        c->in_again_ = false;
        if (c->closed()) {
          dead_.push_back(c);
          continue;
        }
        try {
          c->Resume();
        } catch (const std::exception& e) {
          spdlog::error("http: dropping a connection: {}", e.what());
          c->OnDeadline();
        }
      }
      again.clear();
    }
    now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      next_tick = now + kTick;
      sessions_.Tick();
      if (accept_paused_ && sessions_.tick() >= accept_resume_tick_ && WatchListener().ok()) {
        accept_paused_ = false;
      }
    }
    if (accept_saturated_ && !server_.limits().Saturated() && !accept_paused_ &&
        WatchListener().ok()) {
      accept_saturated_ = false;
    }
    if (!dead_.empty()) {
      live_ -= dead_.size();
      for (Conn* c : dead_) delete c;
      dead_.clear();
      MaybeTrim();
    }
  }
}

// After a burst of connections is gone, hand the memory it took back to
// the system: glibc keeps freed chunks in this thread's arena, and a
// process that once held 10,000 connections would otherwise stay that big.
void Worker::MaybeTrim() {
  constexpr size_t kBurst = 1024;
  if (peak_live_ >= kBurst && live_ <= peak_live_ / 4) {
    peak_live_ = live_;
    ::malloc_trim(0);
  }
}

void Worker::AcceptSome() {
  for (int i = 0; i < 64; ++i) {
    if (server_.limits().Saturated()) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      accept_saturated_ = true;
      return;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
      // Typically EMFILE/ENFILE: stop watching the listener for a tick
      // instead of spinning on it (it stays readable).
      spdlog::warn("http: accept failed: {}", std::strerror(errno));
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      accept_paused_ = true;
      accept_resume_tick_ = sessions_.tick() + 1;
      return;
    }
    Accepted a;
    a.fd = fd;
    const Address16 a16 = ToAddress16(addr);
    a.source = KeyOf(a16);
    a.admission = server_.limits().OnAccept(a16, a.source);
    if (!a.admission.admitted) {
      ::close(fd);  // over the per-source cap: refused at once
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    a.remote_addr = AddressText(addr);
    Worker* to = peers_[next_peer_];
    next_peer_ = (next_peer_ + 1) % peers_.size();
    if (to == this) {
      Adopt(std::move(a));
    } else {
      to->Hand(std::move(a));
    }
  }
}

void Worker::TakeInbox() {
  uint64_t count;
  (void)!::read(wake_fd_, &count, sizeof count);
  std::vector<Accepted> taken;
  {
    std::lock_guard lock(inbox_mutex_);
    taken.swap(inbox_);
  }
  for (auto& a : taken) Adopt(std::move(a));
}

bool Worker::EvictOne() {
  // The list is kept in order of activity: the tail is the connection that
  // has done nothing for the longest time (a silent or trickling client
  // before a keep-alive one that answered recently).
  for (SessionBase* s = sessions_.tail(); s != nullptr; s = SessionList::Prev(s)) {
    auto* c = static_cast<Conn*>(s);
    if (c->evictable()) {
      c->Evict();
      return true;
    }
  }
  return false;
}

void Worker::Adopt(Accepted&& a) {
  if (stop_.load(std::memory_order_acquire)) return Refuse(a);
  if (a.admission.evict && !EvictOne() && a.admission.pool == Pool::kAnonymous) {
    // Full, and nothing here to make room with.
    server_.rejected_full().Inc();
    return Refuse(a);
  }
  const int fd = a.fd;
  auto* c = new Conn(server_, *this, std::move(a), tls_);
  sessions_.Link(c);
  ++live_;
  peak_live_ = std::max(peak_live_, live_);
  epoll_event ev{};
  // Edge-triggered, both directions, registered once for the connection's
  // life: no epoll_ctl per request.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = c;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    spdlog::warn("http: epoll_ctl(add): {}", std::strerror(errno));
    --live_;
    delete c;  // closes fd
    return;
  }
  c->Start();
}

}  // namespace

namespace {

void ServerCore::Route(std::string method, std::string path, HttpHandler handler) {
  assert(!frozen_ && "HttpServer::Route after Start");
  if (frozen_) {
    spdlog::error("http: route {} {} registered after Start(), ignored", method, path);
    return;
  }
  auto it = std::find_if(routes_.begin(), routes_.end(),
                         [&](const RouteEntry& e) { return e.path == path; });
  if (it == routes_.end()) {
    RouteEntry e;
    e.prefix = !path.empty() && path.back() == '/';
    e.path = std::move(path);
    routes_.push_back(std::move(e));
    it = routes_.end() - 1;
  }
  for (auto& [m, h] : it->methods) {
    if (m == method) {
      h = std::move(handler);  // re-registration replaces
      return;
    }
  }
  if (!it->allow.empty()) it->allow += ", ";
  it->allow += method;
  it->methods.emplace_back(std::move(method), std::move(handler));
}

void ServerCore::Freeze() {
  if (frozen_) return;
  // Longest first, so that the first match in Dispatch() is the longest one.
  std::stable_sort(routes_.begin(), routes_.end(), [](const RouteEntry& a, const RouteEntry& b) {
    return a.path.size() > b.path.size();
  });
  auto& metrics = Metrics::Global();
  constexpr std::string_view kRejected = "femtoguard_http_rejected_total";
  constexpr std::string_view kRejectedHelp = "HTTP requests refused before reaching a handler";
  rejected_too_large_ = &metrics.GetCounter(kRejected, "reason=\"too_large\"", kRejectedHelp);
  rejected_header_too_large_ =
      &metrics.GetCounter(kRejected, "reason=\"header_too_large\"", kRejectedHelp);
  rejected_bad_request_ = &metrics.GetCounter(kRejected, "reason=\"bad_request\"", kRejectedHelp);
  rejected_tls_handshake_ =
      &metrics.GetCounter(kRejected, "reason=\"tls_handshake\"", kRejectedHelp);
  rejected_full_ = &metrics.GetCounter(kRejected, "reason=\"listener_full\"", kRejectedHelp);
  constexpr std::string_view kClosed = "femtoguard_http_closed_total";
  constexpr std::string_view kClosedHelp =
      "HTTP connections closed by the server before the client was done";
  closed_timeout_ = &metrics.GetCounter(kClosed, "reason=\"timeout\"", kClosedHelp);
  closed_evicted_ = &metrics.GetCounter(kClosed, "reason=\"evicted\"", kClosedHelp);
  handler_errors_ = &metrics.GetCounter("femtoguard_http_handler_errors_total", {},
                                        "HTTP handlers that threw or returned a bad status");
  for (unsigned code : {200u, 400u, 404u, 405u, 413u, 431u, 500u}) CounterForCode(code);
  frozen_ = true;
}

HttpResponse ServerCore::Dispatch(const HttpRequest& req) const {
  const std::string_view path = req.path;
  const RouteEntry* match = nullptr;
  for (const auto& e : routes_) {  // longest first: the first match wins
    if (e.prefix ? path.starts_with(e.path) : path == e.path) {
      match = &e;
      break;
    }
  }
  if (match == nullptr) return HttpResponse::Text(404, "not found");
  const HttpHandler* handler = nullptr;
  for (const auto& [m, h] : match->methods) {
    if (m == req.method) {
      handler = &h;
      break;
    }
  }
  if (handler == nullptr) {
    HttpResponse r = HttpResponse::Text(405, "method not allowed");
    r.headers.emplace_back("Allow", match->allow);
    return r;
  }
  try {
    HttpResponse r = (*handler)(req);
    if (r.status >= 100 && r.status <= 599) return r;
    handler_errors_->Inc();
    spdlog::error("http: handler for {} {} returned invalid status {}", req.method, req.path,
                  r.status);
  } catch (const std::exception& e) {
    handler_errors_->Inc();
    spdlog::error("http: handler for {} {} threw: {}", req.method, req.path, e.what());
  } catch (...) {
    handler_errors_->Inc();
    spdlog::error("http: handler for {} {} threw a non-std exception", req.method, req.path);
  }
  return HttpResponse::Text(500, "internal error");
}

Counter& ServerCore::CounterForCode(unsigned status) {
  if (status >= by_code_.size()) status = 0;
  Counter* c = by_code_[status].load(std::memory_order_acquire);
  if (c == nullptr) {
    // The registry hands the same Counter to every racing thread, so a
    // plain store is enough.
    std::string label = "code=\"" + std::to_string(status) + "\"";
    c = &Metrics::Global().GetCounter("femtoguard_http_requests_total", label,
                                      "HTTP responses sent, by status code");
    by_code_[status].store(c, std::memory_order_release);
  }
  return *c;
}

}  // namespace

// ---------------------------------------------------------------------------
// HttpServer::Impl: the listening socket, the workers and their threads.

// Thread-safety: Start()/Stop() serialize on lifecycle_mutex_. While
// running, each worker is touched by its own thread only (except
// Worker::Hand()/RequestStop(), which are thread-safe). Stop() tears it all
// down after the threads are joined.
class HttpServer::Impl {
 public:
  explicit Impl(Options options) : core_(std::move(options)) {}
  ~Impl() { Stop(); }

  void Route(std::string method, std::string path, HttpHandler handler) {
    core_.Route(std::move(method), std::move(path), std::move(handler));
  }
  Status Start();
  void Stop();
  uint16_t port() const { return port_.load(std::memory_order_acquire); }

 private:
  ServerCore core_;
  std::atomic<uint16_t> port_{0};
  // Set in Start() when options.tls is set; constant afterwards, outlives
  // the connections (declared before the workers, reset after them).
  SslCtxPtr tls_context_;

  std::mutex lifecycle_mutex_;
  bool started_ = false;  // guarded by lifecycle_mutex_
  bool stopped_ = false;  // guarded by lifecycle_mutex_
  // Set in Start(), reset in Stop(), both under lifecycle_mutex_. Worker 0
  // accepts on listen_fd_.
  std::vector<std::unique_ptr<Worker>> workers_;
  int listen_fd_ = -1;
  std::vector<std::thread> threads_;
};

Status HttpServer::Impl::Start() {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) return Status::FailedPrecondition("http: server already started");

  const auto& options = core_.options();
  const std::string where = options.host + ":" + std::to_string(options.port);
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;

  std::vector<Cidr> trusted_sources;
  for (const std::string& text : options.trusted_sources) {
    auto cidr = ParseCidr(text);
    if (!cidr.ok()) return cidr.status();
    trusted_sources.push_back(*cidr);
  }

  SslCtxPtr tls_context;
  if (options.tls) {
    HttpServer::Options::Tls tls = *options.tls;
    tls.key_pem = core_.tls_key_pem();
    auto made = MakeTlsContext(tls);
    OPENSSL_cleanse(tls.key_pem.data(), tls.key_pem.size());
    core_.WipeTlsKey();
    if (!made.ok()) return made.status();
    tls_context = std::move(made).value();
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(core_, tls_context.get()));
    if (Status s = workers.back()->Init(); !s.ok()) return s;
  }

  // The listening socket, opened with Asio (for its resolver and error
  // messages). One socket, no SO_REUSEPORT: a second server on the same
  // port must fail to bind, not share the port silently.
  net::io_context setup_ioc(1);
  beast::error_code ec;
  tcp::endpoint endpoint;
  auto address = net::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    tcp::resolver resolver(setup_ioc);
    auto results =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("http: cannot resolve " + where + ": " +
                                     (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  tcp::acceptor acceptor(setup_ioc);
  if (acceptor.open(endpoint.protocol(), ec); ec) {
    return Status::Unavailable("http: cannot open a socket for " + where + ": " + ec.message());
  }
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) {
    return Status::Unavailable("http: cannot set SO_REUSEADDR for " + where + ": " + ec.message());
  }
  if (acceptor.bind(endpoint, ec); ec) {
    return Status::Unavailable("http: cannot bind " + where + ": " + ec.message());
  }
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status::Unavailable("http: cannot listen on " + where + ": " + ec.message());
  }
  const uint16_t bound = acceptor.local_endpoint(ec).port();
  if (ec)
    return Status::Internal("http: cannot read the bound port of " + where + ": " + ec.message());

  int listen_fd = acceptor.release(ec);
  if (ec) return Status::Internal("http: cannot take the listening socket: " + ec.message());
  const int flags = ::fcntl(listen_fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    ::close(listen_fd);
    return Status::Internal(std::string("http: cannot make the listening socket non-blocking: ") +
                            std::strerror(errno));
  }
  std::vector<Worker*> all;
  for (auto& w : workers) all.push_back(w.get());
  if (Status s = workers[0]->Listen(listen_fd, std::move(all)); !s.ok()) {
    ::close(listen_fd);
    return s;
  }

  const std::string listener =
      !options.name.empty() ? options.name : (tls_context ? "https" : "http");
  size_t max_anonymous = options.max_connections;
  if (max_anonymous == 0) {
    const size_t budget = ConnectionBudget();
    max_anonymous =
        budget > options.trusted_connections + 16 ? budget - options.trusted_connections : 16;
  }
  core_.limits().Configure(options, max_anonymous, std::move(trusted_sources), listener);
  core_.Freeze();
  tls_context_ = std::move(tls_context);
  listen_fd_ = listen_fd;
  workers_ = std::move(workers);
  port_.store(bound, std::memory_order_release);
  started_ = true;

  auto run_guarded = [](auto&& run) {
    for (;;) {
      try {
        run();
        return;
      } catch (const std::exception& e) {
        // Our code does not throw; this is a bug, but the server lives on.
        spdlog::error("http: worker caught an exception: {}", e.what());
      }
    }
  };
  threads_.reserve(static_cast<size_t>(threads));
  for (auto& w : workers_) {
    threads_.emplace_back([w = w.get(), run_guarded] { run_guarded([w] { w->Run(); }); });
  }
  spdlog::info(
      "http: listening on {}:{} ({}) with {} threads; at most {} anonymous connections ({} per "
      "source), {} trusted",
      options.host, bound, tls_context_ ? "https" : "http", threads, max_anonymous,
      options.max_connections_per_source, options.trusted_connections);
  return Status::Ok();
}

void HttpServer::Impl::Stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Once the threads are joined nothing else touches the workers, so they
  // are torn down here without a race; destroying a worker closes its
  // connections.
  for (auto& w : workers_) w->RequestStop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& w : workers_) w.reset();
  workers_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  tls_context_.reset();
}

// ---------------------------------------------------------------------------
// HttpServer

size_t HttpServer::ConnectionBudget() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 512;
  const size_t soft = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : static_cast<size_t>(rl.rlim_cur);
  const size_t reserved = ReservedFds(soft);
  return soft > reserved + 16 ? soft - reserved : 16;
}

HttpServer::HttpServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(std::string method, std::string path, HttpHandler handler) {
  impl_->Route(std::move(method), std::move(path), std::move(handler));
}

Status HttpServer::Start() { return impl_->Start(); }

uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace fg
