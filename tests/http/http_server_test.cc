// HttpServer over real sockets, with a deliberately dumb POSIX client (no
// Beast here): what the server writes on the wire is what we check.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "http/http.h"

namespace fg {
namespace {

// A connected client socket with a receive timeout, so a broken server
// fails the test instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd_, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    EXPECT_TRUE(connected_) << std::strerror(errno);
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends everything; false if the peer closed or reset first.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    std::string Header(const std::string& lower_name) const {
      auto it = headers.find(lower_name);
      return it == headers.end() ? std::string() : it->second;
    }
  };

  // Reads one response (Content-Length framed). nullopt on EOF/error.
  std::optional<Response> Read() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Response r;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t eol = head.find("\r\n", pos);
      if (eol == std::string::npos) eol = head.size();
      std::string line = head.substr(pos, eol - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = eol + 2;
    }
    size_t length =
        std::stoul(r.Header("content-length").empty() ? "0" : r.Header("content-length"));
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // True when the server closed the connection (EOF or reset) with nothing
  // more to read.
  bool AtEof() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool Fill() {
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Get(std::string_view target, std::string_view extra_headers = {}) {
  std::string r = "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n";
  r += extra_headers;
  r += "\r\n";
  return r;
}

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nContent-Type: application/octet-stream\r\n\r\n" + std::string(body);
}

constexpr size_t kMaxBody = 1024;
constexpr size_t kMaxHeader = 4096;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServer::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.max_body_bytes = kMaxBody;
    options.max_header_bytes = kMaxHeader;
    options.idle_timeout_s = 5;
    server_ = std::make_unique<HttpServer>(options);

    server_->Route("GET", "/hello",
                   [](const HttpRequest&) { return HttpResponse::Text(200, "hello world"); });
    server_->Route("GET", "/items/", [](const HttpRequest& req) {
      HttpResponse r = HttpResponse::Json(200, "{\"path\":\"" + req.path + "\"}");
      r.headers.emplace_back("X-Query", req.query);
      return r;
    });
    // Longer prefix wins over /items/.
    server_->Route("GET", "/items/special/", [](const HttpRequest& req) {
      return HttpResponse::Text(200, "special:" + req.path);
    });
    server_->Route("POST", "/echo", [](const HttpRequest& req) {
      HttpResponse r = HttpResponse::Text(201, req.body);
      r.content_type = std::string(req.Header("content-type"));
      return r;
    });
    server_->Route("PUT", "/echo",
                   [](const HttpRequest& req) { return HttpResponse::Text(200, "put"); });
    server_->Route("GET", "/whoami",
                   [](const HttpRequest& req) { return HttpResponse::Text(200, req.remote_addr); });
    server_->Route("GET", "/header", [](const HttpRequest& req) {
      return HttpResponse::Text(200, std::string(req.Header("x-test-header")) + "|" +
                                         std::string(req.Header("X-TEST-HEADER")) + "|" +
                                         std::string(req.Header("x-absent")));
    });
    server_->Route("GET", "/throw",
                   [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    // A body shared with its owner, not copied into the response.
    server_->Route("GET", "/shared", [shared = shared_body_](const HttpRequest&) {
      HttpResponse r;
      r.content_type = "application/octet-stream";
      r.body = "ignored when shared_body is set";
      r.shared_body = shared;
      return r;
    });
    // Framing is the server's: handler headers cannot break it.
    server_->Route("GET", "/framing", [](const HttpRequest&) {
      HttpResponse r = HttpResponse::Text(200, "four");
      r.headers.emplace_back("Content-Length", "999");
      r.headers.emplace_back("Connection", "close");
      r.headers.emplace_back("X-Split", "a\r\nX-Injected: 1");
      r.headers.emplace_back("X-Ok", "yes");
      return r;
    });
    server_->Route("GET", "/nocontent", [](const HttpRequest&) {
      HttpResponse r;
      r.status = 204;
      return r;
    });
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override { server_->Stop(); }

  // A fresh connection can still be served.
  void ExpectStillServes() {
    Client c(port_);
    ASSERT_TRUE(c.Send(Get("/hello")));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello world");
  }

  static uint64_t Rejected(std::string_view reason) {
    return Metrics::Global().Value("femtoguard_http_rejected_total",
                                   "reason=\"" + std::string(reason) + "\"");
  }
  static uint64_t Responses(int code) {
    return Metrics::Global().Value("femtoguard_http_requests_total",
                                   "code=\"" + std::to_string(code) + "\"");
  }

  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::shared_ptr<const std::string> shared_body_ =
      std::make_shared<const std::string>(std::string("shared\0bytes", 12));
};

TEST_F(HttpServerTest, ExactRoute) {
  uint64_t before = Responses(200);
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_EQ(r->Header("content-type"), "text/plain");
  EXPECT_EQ(r->Header("server"), "femtoguard");
  EXPECT_EQ(r->Header("content-length"), "11");
  EXPECT_GE(Responses(200), before + 1);
}

TEST_F(HttpServerTest, ExactRouteDoesNotMatchLongerPath) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello/there")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerTest, PrefixRouteGetsFullPathAndQuery) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/items/a/b%2Fc?x=1&y=2")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"path\":\"/items/a/b%2Fc\"}");
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->Header("x-query"), "x=1&y=2");
}

TEST_F(HttpServerTest, LongestPrefixWins) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/items/special/42")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "special:/items/special/42");
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/nope")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
  // A prefix route does not match its own name without the slash.
  ASSERT_TRUE(c.Send(Get("/items")));
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/echo")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "POST, PUT");
}

TEST_F(HttpServerTest, PostBodyEchoed) {
  std::string body = "binary\x00\x01\x02 body";
  body.push_back('\0');
  Client c(port_);
  ASSERT_TRUE(c.Send(Post("/echo", body)));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->Header("content-type"), "application/octet-stream");
}

TEST_F(HttpServerTest, ChunkedPostBodyEchoed) {
  Client c(port_);
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(HttpServerTest, ExpectContinue) {
  Client c(port_);
  ASSERT_TRUE(c.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.Read();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.Send("abcde"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "abcde");
}

TEST_F(HttpServerTest, KeepAliveTwoRequestsOneConnection) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello")));
  auto r1 = c.Read();
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->status, 200);
  ASSERT_TRUE(c.Send(Post("/echo", "second")));
  auto r2 = c.Read();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 201);
  EXPECT_EQ(r2->body, "second");
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello") + Post("/echo", "two") + Get("/items/three")));
  auto r1 = c.Read();
  auto r2 = c.Read();
  auto r3 = c.Read();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->body, "hello world");
  EXPECT_EQ(r2->body, "two");
  EXPECT_EQ(r3->body, "{\"path\":\"/items/three\"}");
}

TEST_F(HttpServerTest, ConnectionCloseHonoured) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello", "Connection: close\r\n")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveCloses) {
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(HttpServerTest, Http10WithKeepAliveStaysOpen) {
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->Header("connection"), "keep-alive");
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndServerLivesOn) {
  uint64_t before = Rejected("too_large");
  {
    std::string body(kMaxBody * 4, 'x');
    Client c(port_);
    c.Send(Post("/echo", body));  // the server may stop reading early
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(c.AtEof());
  }
  {
    // Chunked: the limit is only known while reading the body.
    Client c(port_);
    std::string chunk(kMaxBody, 'y');
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    for (int i = 0; i < 3; ++i) req += std::string(size) + chunk + "\r\n";
    req += "0\r\n\r\n";
    c.Send(req);
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 413);
  }
  EXPECT_EQ(Rejected("too_large"), before + 2);
  ExpectStillServes();
}

TEST_F(HttpServerTest, BodyAtTheLimitIsAccepted) {
  std::string body(kMaxBody, 'z');
  Client c(port_);
  ASSERT_TRUE(c.Send(Post("/echo", body)));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, body);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  uint64_t before = Rejected("header_too_large");
  {
    Client c(port_);
    c.Send(Get("/hello", "X-Big: " + std::string(kMaxHeader * 2, 'h') + "\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 431);
  }
  EXPECT_EQ(Rejected("header_too_large"), before + 1);
  ExpectStillServes();
}

TEST_F(HttpServerTest, GarbageIs400AndServerLivesOn) {
  uint64_t before = Rejected("bad_request");
  {
    Client c(port_);
    ASSERT_TRUE(c.Send(std::string_view("\x01\x02 not http\r\n\r\n")));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(c.AtEof());
  }
  EXPECT_EQ(Rejected("bad_request"), before + 1);
  ExpectStillServes();
}

TEST_F(HttpServerTest, PeerClosingMidRequestIsHarmless) {
  {
    Client c(port_);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial"));
  }
  {
    Client c(port_);  // connect and say nothing
  }
  ExpectStillServes();
}

TEST_F(HttpServerTest, HandlerThrowingIs500AndServerLivesOn) {
  uint64_t errors = Metrics::Global().Value("femtoguard_http_handler_errors_total");
  uint64_t before = Responses(500);
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/throw")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "internal error");
  EXPECT_EQ(Metrics::Global().Value("femtoguard_http_handler_errors_total"), errors + 1);
  EXPECT_EQ(Responses(500), before + 1);
  // Same connection still works.
  ASSERT_TRUE(c.Send(Get("/hello")));
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  ExpectStillServes();
}

TEST_F(HttpServerTest, RemoteAddr) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/whoami")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "127.0.0.1");
}

TEST_F(HttpServerTest, HeaderLookupIsCaseInsensitive) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/header", "X-Test-Header: Hello\r\n")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "Hello|Hello|");
}

TEST_F(HttpServerTest, SharedBodyIsSent) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/shared")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, *shared_body_);
  EXPECT_EQ(r->Header("content-length"), "12");
  EXPECT_EQ(r->Header("content-type"), "application/octet-stream");
  // Twice on the same connection: the response object is reused.
  ASSERT_TRUE(c.Send(Get("/shared") + Get("/hello")));
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, *shared_body_);
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(HttpServerTest, HandlerHeadersCannotBreakFraming) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/framing") + Get("/hello")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "four");
  EXPECT_EQ(r->Header("content-length"), "4");
  EXPECT_EQ(r->Header("connection"), "");
  EXPECT_EQ(r->Header("x-injected"), "");
  EXPECT_EQ(r->Header("x-ok"), "yes");
  // Still keep-alive, still in step.
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(HttpServerTest, NoContentHasNoBodyNorLength) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/nocontent") + Get("/hello")));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->Header("content-length"), "");
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello world");
}

// More pipelined requests than the server answers in a row before serving
// other connections: all answered, in order.
TEST_F(HttpServerTest, LongPipelineAnsweredInOrder) {
  Client c(port_);
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += Get("/items/" + std::to_string(i));
  ASSERT_TRUE(c.Send(batch));
  for (int i = 0; i < 100; ++i) {
    auto r = c.Read();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "{\"path\":\"/items/" + std::to_string(i) + "\"}");
  }
}

// The client shuts down its sending side right after the request: it still
// gets its answer, then the end of the stream.
TEST_F(HttpServerTest, RequestThenHalfCloseIsAnsweredThenClosed) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello")));
  c.ShutdownWrite();
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello world");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(HttpServerTest, ManyConnectionsAtOnce) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 50; ++i) clients.push_back(std::make_unique<Client>(port_));
  for (auto& c : clients) ASSERT_TRUE(c->Send(Get("/hello")));
  for (auto& c : clients) {
    auto r = c->Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, "hello world");
  }
}

TEST_F(HttpServerTest, StopTwiceIsFine) {
  server_->Stop();
  server_->Stop();
  // Nothing listens any more.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
}

TEST_F(HttpServerTest, StopClosesIdleConnections) {
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/hello")));
  ASSERT_TRUE(c.Read().has_value());
  server_->Stop();
  EXPECT_TRUE(c.AtEof());
}

TEST(HttpServerStandalone, IdleConnectionTimesOut) {
  HttpServer::Options options;
  options.port = 0;
  options.threads = 1;
  options.idle_timeout_s = 1;
  HttpServer server(options);
  ASSERT_TRUE(server.Start().ok());
  Client idle(server.port());
  Client slow(server.port());
  ASSERT_TRUE(slow.Send("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // never finishes its header
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.AtEof());
  EXPECT_TRUE(slow.AtEof());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

// A body and a response much larger than the socket buffers: the server
// reads in many pieces and writes across several EPOLLOUT rounds while the
// client is slow to read.
TEST(HttpServerStandalone, LargeBodyAndLargeResponse) {
  HttpServer::Options options;
  options.port = 0;
  options.threads = 2;
  options.max_body_bytes = 8u << 20;
  HttpServer server(options);
  server.Route("POST", "/echo", [](const HttpRequest& req) { return HttpResponse::Text(200, req.body); });
  server.Route("GET", "/big", [](const HttpRequest&) {
    std::string body(6u << 20, '\0');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    return HttpResponse::Text(200, std::move(body));
  });
  ASSERT_TRUE(server.Start().ok());
  std::string body(3u << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7 % 251);
  {
    Client c(server.port());
    ASSERT_TRUE(c.Send(Post("/echo", body)));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body == body);
  }
  {
    Client c(server.port());
    ASSERT_TRUE(c.Send(Get("/big") + Get("/big")));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the server block
    for (int i = 0; i < 2; ++i) {
      auto r = c.Read();
      ASSERT_TRUE(r.has_value());
      ASSERT_EQ(r->body.size(), 6u << 20);
      EXPECT_EQ(r->body[0], 'a');
      EXPECT_EQ(r->body[(6u << 20) - 1], static_cast<char>('a' + ((6u << 20) - 1) % 26));
    }
  }
}

TEST(HttpServerStandalone, BindFailureIsReported) {
  HttpServer::Options options;
  options.port = 0;
  options.threads = 1;
  HttpServer first(options);
  ASSERT_TRUE(first.Start().ok());

  options.port = first.port();
  HttpServer second(options);
  Status s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.message();
  second.Stop();  // never started: a no-op
}

TEST(HttpServerStandalone, DestructorStops) {
  HttpServer::Options options;
  options.port = 0;
  options.threads = 0;  // hardware concurrency
  auto server = std::make_unique<HttpServer>(options);
  server->Route("GET", "/", [](const HttpRequest&) { return HttpResponse::Text(200, "root"); });
  ASSERT_TRUE(server->Start().ok());
  {
    Client c(server->port());
    ASSERT_TRUE(c.Send(Get("/anything/at/all")));  // "/" is a prefix of everything
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, "root");
  }
  server.reset();
}

}  // namespace
}  // namespace fg
