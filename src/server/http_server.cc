// HttpServer: HTTP/1.1 on Boost.Beast + Boost.Asio. Beast stays inside this
// translation unit (it is slow to compile and nobody else needs it).
//
// Shape (Beast's "advanced server" example, trimmed):
//   - one io_context run by N worker threads;
//   - an acceptor that accepts each connection onto its own strand;
//   - a Session per connection: read a request (header first, so that
//     `Expect: 100-continue` clients are not kept waiting), call the handler,
//     write the response, loop while keep-alive. One flat_buffer per
//     connection is reused across requests; nothing on the request path takes
//     a mutex or logs.
//
// Session is a template over the stream: TcpStream for plain HTTP,
// TlsStream (beast::ssl_stream<TcpStream>, for EST with mutual TLS) when
// Options::tls is set. The two differ only in the handshake, the close
// (close_notify instead of a TCP half-close) and the lingering close, all
// chosen at compile time: the plain path pays nothing for TLS.
//
// TLS: 1.2 minimum; the client is asked for a certificate but neither
// required to send one nor verified here (the verify callback accepts
// everything): handlers verify HttpRequest::peer_chain_der against a trust
// set that changes at run time. Session resumption and renegotiation are
// off, so that the chain a connection carries is always the one presented in
// a full handshake on that very connection.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cassert>
#include <chrono>
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

// Each connection runs on its own strand (one io_context, several threads).
// The executor type is concrete rather than beast::tcp_stream's type-erased
// any_io_executor: that erasure cost ~5% of the CPU per request.
using ConnectionExecutor = net::strand<net::io_context::executor_type>;
using ConnectionSocket = net::basic_stream_socket<tcp, ConnectionExecutor>;
using TcpStream = beast::basic_stream<tcp, ConnectionExecutor, beast::unlimited_rate_policy>;
// flat_stream inside coalesces Beast's header+body buffer sequences into one
// write, hence one TLS record instead of several.
using TlsStream = beast::ssl_stream<TcpStream>;

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

// Shuts down the sending side of a plain TCP stream (TLS streams send a
// close_notify instead, see Session::GracefulClose).
void ShutdownWrite(TcpStream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

bool IsHttpParseError(const beast::error_code& ec) {
  static const boost::system::error_category& kHttpCategory =
      http::make_error_code(http::error::bad_method).category();
  return ec.category() == kHttpCategory;
}

void CloseStream(TcpStream& stream) {
  beast::error_code ec;
  stream.socket().close(ec);
}

void CloseStream(TlsStream& stream) { CloseStream(stream.next_layer()); }

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
class ServerCore {
 public:
  explicit ServerCore(HttpServer::Options options) : options_(std::move(options)) {}

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

 private:
  struct RouteEntry {
    std::string path;
    bool prefix = false;
    std::vector<std::pair<std::string, HttpHandler>> methods;
    std::string allow;  // "GET, POST", for 405 answers
  };

  Counter& CounterForCode(unsigned status);

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

// One connection. Lives as long as an operation on it is pending (every
// completion handler holds a shared_ptr); all its handlers run on the
// connection's strand, one at a time.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  static_assert(kTls || std::is_same_v<Stream, TcpStream>);

 public:
  // `stream_args` construct the Stream: a ConnectionSocket, plus the
  // ssl::context for TLS.
  template <class... StreamArgs>
  Session(ServerCore& server, std::string remote_addr, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...), server_(server) {
    req_.remote_addr = std::move(remote_addr);
    req_.tls = kTls;
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->DoHandshake();
      } else {
        self->DoReadHeader();
      }
    });
  }

 private:
  void DoHandshake() {
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(server_.options().idle_timeout_s));
    stream_.async_handshake(
        net::ssl::stream_base::server,
        [self = this->shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      server_.rejected_tls_handshake().Inc();
      spdlog::debug("http: TLS handshake with {} failed: {}", req_.remote_addr, ec.message());
      return Close();
    }
    CollectPeerChain();
    DoReadHeader();
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

  void DoReadHeader() {
    const auto& opt = server_.options();
    parser_.emplace();
    parser_->body_limit(opt.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(opt.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(opt.idle_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              self->OnReadHeader(ec);
                            });
  }

  void OnReadHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return HandleRequest();

    // The body is often already in the buffer (small POSTs arrive in one
    // segment): parse it here instead of paying for another async round.
    while (buffer_.size() > 0 && !parser_->is_done()) {
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) return OnReadError(ec);
      if (n == 0) break;
    }
    if (parser_->is_done()) return HandleRequest();

    const auto& req = parser_->get();
    if (req.version() >= 11 && AsciiIEquals(View(req[http::field::expect]), "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->DoReadBody();
                       });
      return;
    }
    DoReadBody();
  }

  void DoReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->HandleRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      server_.rejected_too_large().Inc();
      return WriteError(413, "request body too large");
    }
    if (ec == http::error::header_limit) {
      server_.rejected_header_too_large().Inc();
      return WriteError(431, "request header fields too large");
    }
    // The peer went away (cleanly, mid-message, reset) or went idle.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        !IsHttpParseError(ec)) {
      if (ec == http::error::end_of_stream) return GracefulClose();
      return Close();
    }
    server_.rejected_bad_request().Inc();
    WriteError(400, "bad request");
  }

  void HandleRequest() {
    auto& msg = parser_->get();

    // Reuse the request's strings and header vector across requests.
    req_.method.assign(msg.method_string().data(), msg.method_string().size());
    std::string_view target(msg.target().data(), msg.target().size());
    req_.target.assign(target);
    size_t q = target.find('?');
    if (q == std::string_view::npos) {
      req_.path.assign(target);
      req_.query.clear();
    } else {
      req_.path.assign(target.substr(0, q));
      req_.query.assign(target.substr(q + 1));
    }
    size_t n = 0;
    for (const auto& field : msg) {
      auto name = field.name_string();
      auto value = field.value();
      if (n < req_.headers.size()) {
        req_.headers[n].first.assign(name.data(), name.size());
        req_.headers[n].second.assign(value.data(), value.size());
      } else {
        req_.headers.emplace_back(std::string(name.data(), name.size()),
                                  std::string(value.data(), value.size()));
      }
      ++n;
    }
    req_.headers.resize(n);
    req_.body = std::move(msg.body());

    HttpResponse out = server_.Dispatch(req_);
    const bool keep_alive = msg.keep_alive();
    const unsigned version = msg.version();
    parser_.reset();

    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(out.status));
    res_.set(http::field::server, "femtoguard");
    if (!out.content_type.empty()) res_.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) res_.insert(name, value);
    res_.body() = std::move(out.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    server_.CountResponse(static_cast<unsigned>(out.status));

    const bool close = res_.need_eof();
    http::async_write(stream_, res_,
                      [self = this->shared_from_this(), close](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (close) return self->GracefulClose();
                        self->DoReadHeader();
                      });
  }

  // Answers a request we refuse to read further, then closes.
  void WriteError(unsigned status, std::string_view body) {
    unsigned version = 11;
    if (parser_ && parser_->is_header_done()) version = parser_->get().version();
    parser_.reset();
    res_ = {};
    res_.version(version);
    res_.result(status);
    res_.set(http::field::server, "femtoguard");
    res_.set(http::field::content_type, "text/plain");
    res_.body().assign(body.data(), body.size());
    res_.keep_alive(false);
    res_.prepare_payload();
    server_.CountResponse(status);
    http::async_write(stream_, res_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->LingeringClose();
                      });
  }

  // TLS: the drain reads (and drops) decrypted data; the close_notify goes
  // out once the peer is done or the bounds are hit.
  void LingeringClose() {
    if constexpr (!kTls) ShutdownWrite(stream_);
    buffer_.consume(buffer_.size());
    beast::get_lowest_layer(stream_).expires_after(kLingerTimeout);
    DoDrain();
  }

  void DoDrain() {
    stream_.async_read_some(buffer_.prepare(kLingerChunk),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) {
                                if constexpr (kTls) return self->GracefulClose();
                                return self->Close();
                              }
                              self->DoDrain();
                            });
  }

  // Ends a connection we are done with: TCP half-close, or a TLS
  // close_notify (waiting briefly for the peer's; errors such as
  // stream_truncated are expected and ignored), then close.
  void GracefulClose() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(kTlsShutdownTimeout);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      ShutdownWrite(stream_);
      Close();
    }
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_never();
    CloseStream(stream_);
  }

  Stream stream_;
  ServerCore& server_;
  beast::flat_buffer buffer_;  // reused for every request of the connection
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  HttpRequest req_;  // reused: its strings keep their capacity across requests
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
// HttpServer::Impl: the io_context, the acceptor and the worker threads.

// Thread-safety: Start()/Stop() serialize on lifecycle_mutex_. The acceptor
// is touched only by its own (strand-serialized) handlers while running, and
// by Stop() after the worker threads are joined.
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
  void OnAccept(beast::error_code ec, ConnectionSocket socket);

  ServerCore core_;
  std::atomic<uint16_t> port_{0};
  // Set in Start() when options.tls is set; constant afterwards, outlives
  // the sessions (destroyed with ioc_ in Stop()).
  std::unique_ptr<net::ssl::context> tls_context_;

  std::mutex lifecycle_mutex_;
  bool started_ = false;  // guarded by lifecycle_mutex_
  bool stopped_ = false;  // guarded by lifecycle_mutex_
  // Set in Start(), reset in Stop(), both under lifecycle_mutex_.
  std::unique_ptr<net::io_context> ioc_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> accept_retry_timer_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
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
    auto made = MakeTlsContext(*options.tls);
    if (!made.ok()) return made.status();
    tls_context = std::move(made).value();
  }

  auto ioc = std::make_unique<net::io_context>(threads);
  beast::error_code ec;
  tcp::endpoint endpoint;
  auto address = net::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    tcp::resolver resolver(*ioc);
    auto results =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("http: cannot resolve " + where + ": " +
                                     (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }

  // The acceptor lives on its own strand so that its handlers (accept,
  // retry timer) never run concurrently.
  auto acceptor = std::make_unique<tcp::acceptor>(net::make_strand(*ioc));
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

  core_.Freeze();
  tls_context_ = std::move(tls_context);
  accept_retry_timer_ = std::make_unique<net::steady_timer>(acceptor->get_executor());
  acceptor_ = std::move(acceptor);
  ioc_ = std::move(ioc);
  work_.emplace(ioc_->get_executor());
  port_.store(bound, std::memory_order_release);
  started_ = true;

  net::dispatch(acceptor_->get_executor(), [this] { DoAccept(); });
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([ioc = ioc_.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          // Our handlers do not throw; this is a bug, but the server lives on.
          spdlog::error("http: worker caught an exception: {}", e.what());
        }
      }
    });
  }
  spdlog::info("http: listening on {}:{} ({}) with {} threads", options.host, bound,
               tls_context_ ? "https" : "http", threads);
  return Status::Ok();
}

void HttpServer::Impl::DoAccept() {
  acceptor_->async_accept(
      ConnectionExecutor(ioc_->get_executor()),
      [this](beast::error_code ec, ConnectionSocket socket) { OnAccept(ec, std::move(socket)); });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, ConnectionSocket socket) {
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
  if (tls_context_) {
    std::make_shared<Session<TlsStream>>(core_, std::move(remote_addr), std::move(socket),
                                         *tls_context_)
        ->Run();
  } else {
    std::make_shared<Session<TcpStream>>(core_, std::move(remote_addr), std::move(socket))->Run();
  }
  DoAccept();
}

void HttpServer::Impl::Stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Stopping the io_context stops every handler; once the threads are joined
  // nothing else touches the acceptor or the sessions, so they are closed
  // here without a race. Destroying the io_context destroys the pending
  // handlers, hence the sessions, hence their sockets.
  work_.reset();
  ioc_->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  accept_retry_timer_.reset();
  acceptor_.reset();
  ioc_.reset();
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
