// HttpServer: HTTP/1.1 with Beast's HTTP parser; plain HTTP on an epoll
// loop of our own, TLS on Boost.Asio. Beast and Asio stay inside this
// translation unit (they are slow to compile and nobody else needs them).
//
// Shape (both transports):
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
// Plain HTTP (PlainWorker, PlainConn): each worker thread runs an epoll
// loop; connections are registered once, edge-triggered, and read only when
// epoll reports input; responses are written at once with one sendmsg()
// (head and body gathered), falling back to EPOLLOUT when the socket buffer
// is full. About two system calls per request (recv, sendmsg) plus a shared
// epoll_wait(); see PlainConn for why not Asio here.
//
// TLS (TlsWorker, TlsSession; EST with mutual TLS): one io_context per
// worker thread (concurrency hint 1), beast::ssl_stream over a socket bound
// to it; the head and body go out as one buffer (one TLS record).
// 1.2 minimum; the client is asked for a certificate but neither required
// to send one nor verified here (the verify callback accepts everything):
// handlers verify HttpRequest::peer_chain_der against a trust set that
// changes at run time. Session resumption and renegotiation are off, so
// that the chain a connection carries is always the one presented in a
// full handshake on that very connection.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/ossl.h"
#include "server/http.h"

namespace fg {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// TLS: a connection lives on one worker's io_context, run by one thread: no
// strand. The executor type is concrete rather than the type-erased
// any_io_executor (that erasure cost ~5% of the CPU per request).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
// We hand it one buffer per write: one TLS record per response.
using TlsStream = beast::ssl_stream<Socket>;

// After an error response the peer may still be sending (an oversized body):
// closing with unread data makes the kernel send RST, which can destroy the
// response before the client reads it. So we half-close and discard input
// for a bounded time and amount first (nginx's lingering_close).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 16u << 20;
constexpr size_t kLingerChunk = 16u << 10;

// Waiting for the peer's close_notify after sending ours.
constexpr auto kTlsShutdownTimeout = std::chrono::seconds(1);

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

// Never prompts for a passphrase (OpenSSL's default callback would read the
// terminal): an encrypted key simply fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Accepts any client certificate: the TLS layer only collects the chain.
int AcceptAnyPeer(int, X509_STORE_CTX*) { return 1; }

// The TLS server context for Options::tls. Errors never quote the key.
Result<std::unique_ptr<net::ssl::context>> MakeTlsContext(const HttpServer::Options::Tls& tls) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();

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
  Counter* handler_errors_ = nullptr;

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
  void Link(SessionBase* s) {
    if (s->linked_) return;
    s->prev_ = nullptr;
    s->next_ = head_;
    if (head_ != nullptr) head_->prev_ = s;
    head_ = s;
    s->linked_ = true;
  }
  void Unlink(SessionBase* s) {
    if (!s->linked_) return;
    if (s->prev_ != nullptr) {
      s->prev_->next_ = s->next_;
    } else {
      head_ = s->next_;
    }
    if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
    s->prev_ = s->next_ = nullptr;
    s->linked_ = false;
  }
  SessionBase* head() const { return head_; }
  static SessionBase* Next(const SessionBase* s) { return s->next_; }

  uint64_t tick() const { return tick_; }
  // Sets a deadline at least `d` from now (and at most one tick more).
  void ExpireAfter(SessionBase& s, std::chrono::milliseconds d) const {
    const int64_t ms = std::max<int64_t>(d.count(), 0);
    s.deadline_ = tick_ + static_cast<uint64_t>((ms + kTick.count() - 1) / kTick.count()) + 1;
  }
  static void ExpireNever(SessionBase& s) { s.deadline_ = kNoDeadline; }

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
  uint64_t tick_ = 0;
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

  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                            beast::error_code&) override {
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
  out += "\r\nServer: femtoguard\r\n";
  if (!ctype.empty() && !HasLineBreak(ctype)) {
    out += "Content-Type: ";
    out += ctype;
    out += "\r\n";
  }
  for (const auto& [name, value] : headers) {
    // Framing is ours; a header that would split the response is dropped.
    if (name.empty() || IsFramingHeader(name) || HasLineBreak(name) || HasLineBreak(value)) {
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
// Plain HTTP: one epoll loop per worker thread, without Asio.
//
// Why not Asio here: its reactor tries a read at once whenever one is
// started, i.e. right after every response, before the client has had a
// chance to send its next request; that recv() returns EAGAIN, a wasted
// system call per request (a third of them), and system calls are the most
// expensive thing this server does per request (on a VM even more so). This
// loop reads when epoll says there is something to read (edge-triggered,
// readiness tracked per connection), writes at once, and has no
// per-operation allocation, handler queue or shared_ptr.

class PlainWorker;

// Receives in a row on one connection before the others of its worker.
constexpr int kMaxReadsInARow = 64;

// epoll_event.data.u64 values that are not connections.
constexpr uint64_t kListenTag = 1;
constexpr uint64_t kWakeTag = 2;

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

// One plain HTTP connection, owned by its PlainWorker; everything runs on
// the worker's thread. A small state machine: reading (and answering what
// was read, while the answers can be written at once), writing (the socket
// buffer was full: wait for EPOLLOUT, read nothing meanwhile), lingering
// (after an error answer: drain input for a while, see kLingerTimeout),
// closed (waiting to be deleted at the end of the loop iteration).
class PlainConn final : public SessionBase {
 public:
  PlainConn(ServerCore& server, PlainWorker& worker, int fd, std::string remote_addr)
      : server_(server), worker_(worker), fd_(fd) {
    req_.remote_addr = std::move(remote_addr);
    req_.tls = false;
  }
  ~PlainConn() override;
  PlainConn(const PlainConn&) = delete;
  PlainConn& operator=(const PlainConn&) = delete;

  int fd() const { return fd_; }
  bool closed() const { return state_ == State::kClosed; }

  void Start() {
    StartRequest();
    readable_ = true;  // the request may be there already
    Resume();
  }

  // epoll reported `events` for this connection.
  void OnEvents(uint32_t events) {
    if (state_ == State::kClosed) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_done_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
    Resume();
  }

  // Continues whatever the connection was doing.
  void Resume();

  void OnDeadline() override { Close(); }

  // Marks for PlainWorker: queued in its "again" list.
  bool in_again_ = false;

 private:
  enum class State { kReading, kWriting, kLingering, kClosed };
  // What to do once the pending output is written.
  enum class After { kNextRequest, kKeepReading, kClose, kLinger };
  enum class Progress { kNeedData, kStopped, kYield };

  void StartRequest() {
    const auto& opt = server_.options();
    if (req_.body.capacity() > kKeepCapacity) std::string().swap(req_.body);
    parser_.emplace(req_, opt.max_body_bytes, opt.max_header_bytes);
    continue_sent_ = false;
    ExpireAfter(std::chrono::seconds(opt.idle_timeout_s));
  }

  void ExpireAfter(std::chrono::milliseconds d);
  void ReadLoop();
  Progress ProcessBuffered(int& budget);
  // Writes pending_ as far as the socket takes it: true when all is out;
  // false when blocked (state kWriting, `after` remembered) or closed.
  bool Send(After after);
  void AfterFlush();
  void WriteError(unsigned status, std::string_view body);
  void OnParseError(beast::error_code ec);
  void StartLinger();
  void Drain();
  void GracefulClose() {
    ::shutdown(fd_, SHUT_WR);
    Close();
  }
  void Close();

  ServerCore& server_;
  PlainWorker& worker_;
  int fd_;
  State state_ = State::kReading;
  After after_ = After::kNextRequest;
  bool readable_ = false;   // epoll said readable since the last short read
  bool writable_ = true;    // no EAGAIN on a send since the last EPOLLOUT
  bool peer_done_ = false;  // the peer shut down its side (or errored)
  bool continue_sent_ = false;
  beast::flat_buffer buffer_;  // reused for every request of the connection
  std::optional<RequestParser> parser_;
  HttpRequest req_;   // reused: its strings keep their capacity across requests
  HttpResponse res_;  // the answer being written (owns the body)
  std::string head_;  // its status line and header fields
  std::array<std::string_view, 2> pending_;  // not yet written: in head_/res_/kContinue
  size_t drained_ = 0;
};

// Thread-safety: Hand() and RequestStop() are called from other threads
// (the inbox is guarded by inbox_mutex_); everything else runs on the
// worker's own thread, in Run(), or after that thread was joined.
class PlainWorker {
 public:
  explicit PlainWorker(ServerCore& server) : server_(server) {}
  ~PlainWorker() {
    for (PlainConn* c : dead_) delete c;  // unlinks them
    while (SessionBase* s = sessions_.head()) delete static_cast<PlainConn*>(s);
    for (auto& [fd, addr] : inbox_) ::close(fd);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  PlainWorker(const PlainWorker&) = delete;
  PlainWorker& operator=(const PlainWorker&) = delete;

  Status Init() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return Status::Internal(std::string("http: epoll_create1: ") + std::strerror(errno));
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::Internal(std::string("http: eventfd: ") + std::strerror(errno));
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
  Status Listen(int listen_fd, std::vector<PlainWorker*> workers) {
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
  void Hand(int fd, std::string remote_addr) {
    bool was_empty;
    {
      std::lock_guard lock(inbox_mutex_);
      was_empty = inbox_.empty();
      inbox_.emplace_back(fd, std::move(remote_addr));
    }
    if (was_empty) Wake();
  }

  // For PlainConn.
  SessionList& sessions() { return sessions_; }
  int epoll_fd() const { return epoll_fd_; }
  // `c` has more to do but yielded: Resume() it after this round of events.
  void Again(PlainConn* c) {
    if (c->in_again_) return;
    c->in_again_ = true;
    again_.push_back(c);
  }
  // `c` is closed: delete it at the end of this loop iteration.
  void Retire(PlainConn* c) {
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
  void Adopt(int fd, std::string remote_addr);

  ServerCore& server_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;  // owned by HttpServer::Impl; -1 unless the acceptor
  std::vector<PlainWorker*> peers_;  // acceptor only
  size_t next_peer_ = 0;             // acceptor only
  bool accept_paused_ = false;       // acceptor only: after EMFILE and the like
  uint64_t accept_resume_tick_ = 0;

  std::atomic<bool> stop_{false};
  std::mutex inbox_mutex_;
  std::vector<std::pair<int, std::string>> inbox_;  // guarded by inbox_mutex_

  SessionList sessions_;
  std::vector<PlainConn*> again_;
  std::vector<PlainConn*> dead_;
};

PlainConn::~PlainConn() {
  worker_.sessions().Unlink(this);
  if (fd_ >= 0) ::close(fd_);
}

void PlainConn::ExpireAfter(std::chrono::milliseconds d) { worker_.sessions().ExpireAfter(*this, d); }

void PlainConn::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  SessionList::ExpireNever(*this);
  // Explicitly: a copy of the descriptor in a forked child would keep the
  // registration (and its events for a deleted connection) alive.
  ::epoll_ctl(worker_.epoll_fd(), EPOLL_CTL_DEL, fd_, nullptr);
  ::close(fd_);
  fd_ = -1;
  worker_.Retire(this);
}

void PlainConn::Resume() {
  switch (state_) {
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

// Reads while epoll said there is something, answering what it can.
void PlainConn::ReadLoop() {
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
    if (!readable_) return;  // epoll will tell
    if (reads >= kMaxReadsInARow) return worker_.Again(this);  // a fast sender: others first
    if (buffer_.size() >= kReadChunk + server_.options().max_header_bytes) {
      // Only a pathological chunked body gets here (the header limit bounds
      // the header, the body is consumed as it comes).
      server_.rejected_bad_request().Inc();
      return WriteError(400, "bad request");
    }
    auto space = buffer_.prepare(kReadChunk);
    ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n > 0) {
      // A short read drained the socket: new data brings a new edge. Unless
      // the peer is done: then read on to see the end of stream.
      if (static_cast<size_t>(n) < space.size() && !peer_done_) readable_ = false;
      buffer_.commit(static_cast<size_t>(n));
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
      return;
    }
    return Close();  // reset and the like
  }
}

// Parses what is buffered and answers every complete request (at most
// `budget`) whose answer can be written at once.
PlainConn::Progress PlainConn::ProcessBuffered(int& budget) {
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
    const unsigned status = static_cast<unsigned>(res_.status);
    const std::string& body = res_.shared_body ? *res_.shared_body : res_.body;
    const bool with_body = SerializeHead(head_, parser_->version(), status, res_.content_type,
                                         res_.headers, body.size(), keep_alive);
    server_.CountResponse(status);
    pending_ = {head_, with_body ? std::string_view(body) : std::string_view()};
    if (!Send(keep_alive ? After::kNextRequest : After::kClose)) return Progress::kStopped;
    if (!keep_alive) {
      GracefulClose();
      return Progress::kStopped;
    }
    if (head_.capacity() > kKeepCapacity) std::string().swap(head_);
    if (res_.body.capacity() > kKeepCapacity || res_.shared_body) res_ = HttpResponse();
    StartRequest();
  }
}

bool PlainConn::Send(After after) {
  while (!pending_[0].empty() || !pending_[1].empty()) {
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
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writable_ = false;
        state_ = State::kWriting;
        after_ = after;
        ExpireAfter(std::chrono::seconds(server_.options().idle_timeout_s));
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
void PlainConn::AfterFlush() {
  state_ = State::kReading;
  switch (after_) {
    case After::kNextRequest:
      if (head_.capacity() > kKeepCapacity) std::string().swap(head_);
      if (res_.body.capacity() > kKeepCapacity || res_.shared_body) res_ = HttpResponse();
      StartRequest();
      return ReadLoop();
    case After::kKeepReading:
      return ReadLoop();
    case After::kClose:
      return GracefulClose();
    case After::kLinger:
      return StartLinger();
  }
}

void PlainConn::OnParseError(beast::error_code ec) {
  ParseRejection r = server_.RejectParseError(ec);
  WriteError(r.status, r.text);
}

// Answers a request we refuse to read further, then lingers and closes.
void PlainConn::WriteError(unsigned status, std::string_view body) {
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
// discard input for a bounded time and amount first (nginx's
// lingering_close).
void PlainConn::StartLinger() {
  ::shutdown(fd_, SHUT_WR);
  state_ = State::kLingering;
  buffer_.consume(buffer_.size());
  ExpireAfter(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTimeout));
  readable_ = true;
  Drain();
}

void PlainConn::Drain() {
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

void PlainWorker::Run() {
  auto now = std::chrono::steady_clock::now();
  auto next_tick = now + kTick;
  std::array<epoll_event, 128> events;
  std::vector<PlainConn*> again;
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
        auto* c = static_cast<PlainConn*>(events[i].data.ptr);
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
      for (PlainConn* c : again) {
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
    for (PlainConn* c : dead_) delete c;
    dead_.clear();
  }
}

void PlainWorker::AcceptSome() {
  for (int i = 0; i < 64; ++i) {
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
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string remote_addr = AddressText(addr);
    PlainWorker* to = peers_[next_peer_];
    next_peer_ = (next_peer_ + 1) % peers_.size();
    if (to == this) {
      Adopt(fd, std::move(remote_addr));
    } else {
      to->Hand(fd, std::move(remote_addr));
    }
  }
}

void PlainWorker::TakeInbox() {
  uint64_t count;
  (void)!::read(wake_fd_, &count, sizeof count);
  std::vector<std::pair<int, std::string>> taken;
  {
    std::lock_guard lock(inbox_mutex_);
    taken.swap(inbox_);
  }
  for (auto& [fd, addr] : taken) Adopt(fd, std::move(addr));
}

void PlainWorker::Adopt(int fd, std::string remote_addr) {
  if (stop_.load(std::memory_order_acquire)) {
    ::close(fd);
    return;
  }
  auto* c = new PlainConn(server_, *this, fd, std::move(remote_addr));
  sessions_.Link(c);
  epoll_event ev{};
  // Edge-triggered, both directions, registered once for the connection's
  // life: no epoll_ctl per request.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = c;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    spdlog::warn("http: epoll_ctl(add): {}", std::strerror(errno));
    delete c;  // closes fd
    return;
  }
  c->Start();
}

// ---------------------------------------------------------------------------
// TLS: Asio (and OpenSSL through asio::ssl), one io_context per worker
// thread, so that a connection lives on one thread and needs no strand.

// Thread-safety: the io_context is thread-safe; the session list and the
// ticks are touched only on the worker's thread (or after it was joined).
class TlsWorker {
 public:
  TlsWorker()
      : ioc_(std::make_unique<net::io_context>(1)),
        tick_timer_(std::in_place, *ioc_),
        work_(std::in_place, ioc_->get_executor()) {}
  ~TlsWorker() {
    // Destroying the io_context destroys the pending handlers, hence the
    // sessions, which unlink themselves: the list must still be there.
    tick_timer_.reset();
    work_.reset();
    ioc_.reset();
  }
  TlsWorker(const TlsWorker&) = delete;
  TlsWorker& operator=(const TlsWorker&) = delete;

  net::io_context& ioc() { return *ioc_; }
  Executor executor() { return ioc_->get_executor(); }
  SessionList& sessions() { return sessions_; }

  // Every kTick: close the sessions whose deadline has passed.
  void StartTicking() {
    tick_timer_->expires_after(kTick);
    tick_timer_->async_wait([this](beast::error_code ec) {
      if (ec) return;
      sessions_.Tick();
      StartTicking();
    });
  }

 private:
  SessionList sessions_;  // before ioc_: outlives the sessions
  std::unique_ptr<net::io_context> ioc_;
  std::optional<net::steady_timer> tick_timer_;
  std::optional<net::executor_work_guard<Executor>> work_;
};

// One TLS connection. Lives as long as an operation on it is pending (every
// completion handler holds a shared_ptr); everything runs on its worker's
// thread.
class TlsSession final : public SessionBase, public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(ServerCore& server, TlsWorker& worker, std::string remote_addr, Socket socket,
             net::ssl::context& tls_context)
      : stream_(std::move(socket), tls_context), server_(server), worker_(worker) {
    req_.remote_addr = std::move(remote_addr);
    req_.tls = true;
  }
  ~TlsSession() override { worker_.sessions().Unlink(this); }

  // On the worker's thread.
  void Start() {
    worker_.sessions().Link(this);
    ExpireAfter(IdleTimeout());
    stream_.async_handshake(
        net::ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

  void OnDeadline() override { Close(); }

 private:
  Socket& socket() { return beast::get_lowest_layer(stream_); }

  void ExpireAfter(std::chrono::milliseconds d) { worker_.sessions().ExpireAfter(*this, d); }
  std::chrono::milliseconds IdleTimeout() const {
    return std::chrono::seconds(server_.options().idle_timeout_s);
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      server_.rejected_tls_handshake().Inc();
      spdlog::debug("http: TLS handshake with {} failed: {}", req_.remote_addr, ec.message());
      return Close();
    }
    CollectPeerChain();
    StartRequest();
    Process();
  }

  // The client's chain as presented, leaf first, into req_ (which keeps it
  // for every request of the connection).
  void CollectPeerChain() {
    req_.peer_chain_der.clear();
    SSL* ssl = stream_.native_handle();
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

  // A fresh parser for the next request; the whole request (and the idle
  // time before it) must arrive within the idle timeout.
  void StartRequest() {
    const auto& opt = server_.options();
    if (req_.body.capacity() > kKeepCapacity) std::string().swap(req_.body);
    parser_.emplace(req_, opt.max_body_bytes, opt.max_header_bytes);
    continue_sent_ = false;
    ExpireAfter(IdleTimeout());
  }

  // Parses what is buffered; answers a complete request, or starts the next
  // read (or the 100 Continue).
  void Process() {
    beast::error_code ec;
    while (!parser_->is_done() && buffer_.size() > 0) {
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) return OnParseError(ec);
      if (n == 0) break;
    }
    if (parser_->is_done()) return HandleRequest();
    if (parser_->is_header_done() && parser_->expect_continue() && !continue_sent_) {
      continue_sent_ = true;
      return WriteContinue();
    }
    DoRead();
  }

  void DoRead() {
    if (buffer_.size() >= kReadChunk + server_.options().max_header_bytes) {
      // Only a pathological chunked body gets here (the header limit bounds
      // the header, the body is consumed as it comes).
      server_.rejected_bad_request().Inc();
      return WriteError(400, "bad request");
    }
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) {
      // The peer went away: cleanly between requests (answer its
      // close_notify), or mid-message, reset, or the deadline passed.
      if (ec == net::error::eof && !parser_->got_some()) return GracefulClose();
      return Close();
    }
    buffer_.commit(n);
    Process();
  }

  void WriteContinue() {
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->DoRead();
                     });
  }

  void OnParseError(beast::error_code ec) {
    ParseRejection r = server_.RejectParseError(ec);
    WriteError(r.status, r.text);
  }

  void HandleRequest() {
    const bool keep_alive = parser_->keep_alive();
    res_ = server_.Dispatch(req_);
    const unsigned status = static_cast<unsigned>(res_.status);
    const std::string& body = res_.shared_body ? *res_.shared_body : res_.body;
    const bool with_body = SerializeHead(head_, parser_->version(), status, res_.content_type,
                                         res_.headers, body.size(), keep_alive);
    server_.CountResponse(status);
    if (with_body) head_.append(body);  // one buffer, one TLS record
    ExpireAfter(IdleTimeout());
    net::async_write(stream_, net::buffer(head_),
                     [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       if (!keep_alive) return self->GracefulClose();
                       if (self->head_.capacity() > kKeepCapacity) std::string().swap(self->head_);
                       self->res_ = HttpResponse();
                       self->StartRequest();
                       self->Process();
                     });
  }

  // Answers a request we refuse to read further, then closes.
  void WriteError(unsigned status, std::string_view body) {
    unsigned version = 11;
    if (parser_ && parser_->is_header_done()) version = parser_->version();
    res_ = HttpResponse();
    SerializeHead(head_, version, status, "text/plain", {}, body.size(), false);
    head_.append(body);
    server_.CountResponse(status);
    ExpireAfter(IdleTimeout());
    net::async_write(stream_, net::buffer(head_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->LingeringClose();
                     });
  }

  // After an error response the peer may still be sending (an oversized
  // body): read (and drop) decrypted data for a bounded time and amount,
  // then send the close_notify (nginx's lingering_close).
  void LingeringClose() {
    buffer_.consume(buffer_.size());
    ExpireAfter(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTimeout));
    DoDrain();
  }

  void DoDrain() {
    stream_.async_read_some(buffer_.prepare(kLingerChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) {
                                return self->GracefulClose();
                              }
                              self->DoDrain();
                            });
  }

  // Ends a connection we are done with: a close_notify (waiting briefly for
  // the peer's; errors such as stream_truncated are expected and ignored),
  // then close.
  void GracefulClose() {
    ExpireAfter(std::chrono::duration_cast<std::chrono::milliseconds>(kTlsShutdownTimeout));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Close(); });
  }

  void Close() {
    SessionList::ExpireNever(*this);
    beast::error_code ec;
    socket().close(ec);
  }

  TlsStream stream_;
  ServerCore& server_;
  TlsWorker& worker_;
  beast::flat_buffer buffer_;  // reused for every request of the connection
  std::optional<RequestParser> parser_;
  HttpRequest req_;   // reused: its strings keep their capacity across requests
  HttpResponse res_;  // the answer being written
  std::string head_;  // its status line, header fields and body
  bool continue_sent_ = false;
  size_t drained_ = 0;
};

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
// PlainWorker::Hand()/RequestStop(), which are thread-safe); the TLS
// acceptor and its retry timer live on TLS worker 0. Stop() tears it all
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
  void DoAccept();
  void OnAccept(beast::error_code ec, Socket socket, TlsWorker& worker);

  ServerCore core_;
  std::atomic<uint16_t> port_{0};
  // Set in Start() when options.tls is set; constant afterwards, outlives
  // the sessions (destroyed after the workers).
  std::unique_ptr<net::ssl::context> tls_context_;

  std::mutex lifecycle_mutex_;
  bool started_ = false;  // guarded by lifecycle_mutex_
  bool stopped_ = false;  // guarded by lifecycle_mutex_
  // Set in Start(), reset in Stop(), both under lifecycle_mutex_.
  // Plain HTTP: epoll workers; worker 0 accepts on listen_fd_.
  std::vector<std::unique_ptr<PlainWorker>> plain_workers_;
  int listen_fd_ = -1;
  // TLS: Asio workers; the acceptor lives on worker 0.
  std::vector<std::unique_ptr<TlsWorker>> tls_workers_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> accept_retry_timer_;
  size_t next_worker_ = 0;  // round-robin; TLS acceptor handlers only
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

  std::unique_ptr<net::ssl::context> tls_context;
  if (options.tls) {
    HttpServer::Options::Tls tls = *options.tls;
    tls.key_pem = core_.tls_key_pem();
    auto made = MakeTlsContext(tls);
    OPENSSL_cleanse(tls.key_pem.data(), tls.key_pem.size());
    core_.WipeTlsKey();
    if (!made.ok()) return made.status();
    tls_context = std::move(made).value();
  }

  std::vector<std::unique_ptr<TlsWorker>> tls_workers;
  std::vector<std::unique_ptr<PlainWorker>> plain_workers;
  if (tls_context) {
    for (int i = 0; i < threads; ++i) tls_workers.push_back(std::make_unique<TlsWorker>());
  } else {
    for (int i = 0; i < threads; ++i) {
      plain_workers.push_back(std::make_unique<PlainWorker>(core_));
      if (Status s = plain_workers.back()->Init(); !s.ok()) return s;
    }
  }

  // The listening socket, opened with Asio (for its resolver and error
  // messages). One socket, no SO_REUSEPORT: a second server on the same
  // port must fail to bind, not share the port silently.
  net::io_context setup_ioc(1);
  net::io_context& acceptor_ioc = tls_context ? tls_workers[0]->ioc() : setup_ioc;
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
  auto acceptor = std::make_unique<tcp::acceptor>(acceptor_ioc);
  if (acceptor->open(endpoint.protocol(), ec); ec) {
    return Status::Unavailable("http: cannot open a socket for " + where + ": " + ec.message());
  }
  if (acceptor->set_option(net::socket_base::reuse_address(true), ec); ec) {
    return Status::Unavailable("http: cannot set SO_REUSEADDR for " + where + ": " + ec.message());
  }
  if (acceptor->bind(endpoint, ec); ec) {
    return Status::Unavailable("http: cannot bind " + where + ": " + ec.message());
  }
  if (acceptor->listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status::Unavailable("http: cannot listen on " + where + ": " + ec.message());
  }
  const uint16_t bound = acceptor->local_endpoint(ec).port();
  if (ec)
    return Status::Internal("http: cannot read the bound port of " + where + ": " + ec.message());

  int listen_fd = -1;
  if (!tls_context) {
    listen_fd = acceptor->release(ec);
    if (ec) return Status::Internal("http: cannot take the listening socket: " + ec.message());
    const int flags = ::fcntl(listen_fd, F_GETFL, 0);
    if (flags < 0 || ::fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      ::close(listen_fd);
      return Status::Internal(std::string("http: cannot make the listening socket non-blocking: ") +
                              std::strerror(errno));
    }
    std::vector<PlainWorker*> all;
    for (auto& w : plain_workers) all.push_back(w.get());
    if (Status s = plain_workers[0]->Listen(listen_fd, std::move(all)); !s.ok()) {
      ::close(listen_fd);
      return s;
    }
    acceptor.reset();
  }

  core_.Freeze();
  tls_context_ = std::move(tls_context);
  listen_fd_ = listen_fd;
  plain_workers_ = std::move(plain_workers);
  tls_workers_ = std::move(tls_workers);
  if (tls_context_) {
    accept_retry_timer_ = std::make_unique<net::steady_timer>(tls_workers_[0]->ioc());
    acceptor_ = std::move(acceptor);
  }
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
  for (auto& w : plain_workers_) {
    threads_.emplace_back([w = w.get(), run_guarded] { run_guarded([w] { w->Run(); }); });
  }
  if (!tls_workers_.empty()) {
    for (auto& w : tls_workers_) {
      net::post(w->ioc(), [w = w.get()] { w->StartTicking(); });
    }
    net::post(tls_workers_[0]->ioc(), [this] { DoAccept(); });
    for (auto& w : tls_workers_) {
      threads_.emplace_back(
          [ioc = &w->ioc(), run_guarded] { run_guarded([ioc] { ioc->run(); }); });
    }
  }
  spdlog::info("http: listening on {}:{} ({}) with {} threads", options.host, bound,
               tls_context_ ? "https" : "http", threads);
  return Status::Ok();
}

void HttpServer::Impl::DoAccept() {
  // Round-robin: the socket is created on the io_context of the worker that
  // will serve it.
  TlsWorker& worker = *tls_workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % tls_workers_.size();
  acceptor_->async_accept(worker.executor(),
                          [this, &worker](beast::error_code ec, Socket socket) {
                            OnAccept(ec, std::move(socket), worker);
                          });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, Socket socket, TlsWorker& worker) {
  if (ec) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    // Typically EMFILE/ENFILE: back off briefly instead of spinning.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry_timer_->expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) DoAccept();
    });
    return;
  }
  beast::error_code opt_ec;
  socket.set_option(tcp::no_delay(true), opt_ec);
  auto remote = socket.remote_endpoint(opt_ec);
  std::string remote_addr = opt_ec ? std::string() : remote.address().to_string();
  auto session = std::make_shared<TlsSession>(core_, worker, std::move(remote_addr),
                                              std::move(socket), *tls_context_);
  net::post(worker.ioc(), [session = std::move(session)] { session->Start(); });
  DoAccept();
}

void HttpServer::Impl::Stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Once the threads are joined nothing else touches the workers, so they
  // are torn down here without a race; destroying a worker closes its
  // connections. TLS worker 0 goes first: a pending accept there may hold
  // a socket of another worker.
  for (auto& w : plain_workers_) w->RequestStop();
  for (auto& w : tls_workers_) w->ioc().stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  accept_retry_timer_.reset();
  acceptor_.reset();
  for (auto& w : tls_workers_) w.reset();
  tls_workers_.clear();
  for (auto& w : plain_workers_) w.reset();
  plain_workers_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

// ---------------------------------------------------------------------------
// HttpServer

HttpServer::HttpServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(std::string method, std::string path, HttpHandler handler) {
  impl_->Route(std::move(method), std::move(path), std::move(handler));
}

Status HttpServer::Start() { return impl_->Start(); }

uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace fg
