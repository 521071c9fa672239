// `femtoguard admit` (the ext-auth program) and its HTTP client, against a
// tiny loopback HTTP server run by the test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "admission/http_client.h"
#include "testing/harness.h"

namespace fg::admission {
namespace {

using ::testing::HasSubstr;

// Answers every request with `response` (raw HTTP), or holds the connection
// open without answering when `silent`. Records the requests it received.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::string response, bool silent = false)
      : response_(std::move(response)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      for (;;) {
        size_t head = in.find("\r\n\r\n");
        if (head != std::string::npos) {
          size_t cl = in.find("Content-Length: ");
          size_t want = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
          if (in.size() >= head + 4 + want) break;
        }
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(in);
      }
      if (silent_) {
        for (int i = 0; i < 400 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } else {
        ::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }

  std::string response_;
  bool silent_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;  // guarded by mu_
};

std::string JsonResponse(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::vector<std::string> IkeEnv(const std::string& server) {
  return {"IKE_REMOTE_ID=C=KR, O=Example Operator, CN=FG-0000042",
          "IKE_REMOTE_HOST=203.0.113.7",
          "IKE_LOCAL_HOST=192.0.2.1",
          "IKE_UNIQUE_ID=17",
          "IKE_NAME=femtocells",
          "FEMTOGUARD_SERVER=" + server,
          "FEMTOGUARD_TOKEN=fg_segw_secret"};
}

std::string BodyOf(const std::string& request) { return request.substr(request.find("\r\n\r\n") + 4); }

TEST(AdmitCommandTest, AllowExitsZeroAndSendsTheIkeEnvironment) {
  LoopbackServer server(JsonResponse(200, R"({"decision":"allow","reasons":[],"evidence":{}})"));
  auto r = testing::Run({testing::Femtoguard(), "admit", "--segw", "segw-a"}, "", 30, IkeEnv(server.address()));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_THAT(reqs[0], HasSubstr("POST /v1/admission HTTP/1.1\r\n"));
  EXPECT_THAT(reqs[0], HasSubstr("Authorization: Bearer fg_segw_secret\r\n"));
  auto body = nlohmann::json::parse(BodyOf(reqs[0]));
  EXPECT_EQ(body["device"], "FG-0000042");
  EXPECT_EQ(body["src_ip"], "203.0.113.7");
  EXPECT_EQ(body["endpoint"], "192.0.2.1");
  EXPECT_EQ(body["session"], "17");
  EXPECT_EQ(body["segw"], "segw-a");
}

TEST(AdmitCommandTest, DenyAndQuarantineExitNonZeroWithTheReasons) {
  for (const char* decision : {"deny", "quarantine"}) {
    LoopbackServer server(JsonResponse(
        200, std::string(R"({"decision":")") + decision + R"(","reasons":["cert.clone","location.line"],"evidence":{}})"));
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, IkeEnv(server.address()));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr(decision));
    EXPECT_THAT(r.out, HasSubstr("FG-0000042"));
    EXPECT_THAT(r.out, HasSubstr("cert.clone,location.line"));
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

TEST(AdmitCommandTest, ErrorsAndTimeoutsRefuse) {
  {
    LoopbackServer server(JsonResponse(401, R"({"error":"missing or invalid bearer token"})"));
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, IkeEnv(server.address()));
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr("401"));
    EXPECT_THAT(r.out, HasSubstr("bearer token"));
  }
  {
    LoopbackServer server(JsonResponse(200, "not json"));
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, IkeEnv(server.address()));
    EXPECT_EQ(r.exit_code, 2) << r.out;
  }
  {
    LoopbackServer server(JsonResponse(200, R"({"decision":"maybe"})"));
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, IkeEnv(server.address()));
    EXPECT_NE(r.exit_code, 0) << r.out;
  }
  {
    LoopbackServer server("", /*silent=*/true);
    auto start = std::chrono::steady_clock::now();
    auto r = testing::Run({testing::Femtoguard(), "admit", "--timeout-ms", "300"}, "", 30, IkeEnv(server.address()));
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr("timed out"));
    EXPECT_LT(took, std::chrono::seconds(10));  // the server would hold it 20 s
  }
  {
    int port = testing::FreePort();  // nobody listens there
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, IkeEnv("127.0.0.1:" + std::to_string(port)));
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr("connect"));
  }
  {
    LoopbackServer server(JsonResponse(200, R"({"decision":"allow"})"));
    auto env = IkeEnv(server.address());
    env[0] = "IKE_REMOTE_ID=C=KR, O=No Common Name";
    auto r = testing::Run({testing::Femtoguard(), "admit"}, "", 30, env);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr("CN"));
    EXPECT_TRUE(server.requests().empty());
  }
}

TEST(AdmitCommandTest, PlainIdentityTokenFileAndServerFlag) {
  LoopbackServer server(JsonResponse(200, R"({"decision":"allow","reasons":[],"evidence":{}})"));
  testing::TempDir tmp;
  testing::WriteAll(tmp / "token", "fg_from_file\n");
  auto env = IkeEnv("127.0.0.1:1");  // overridden by --server
  env[0] = "IKE_REMOTE_ID=FG-7";
  auto r = testing::Run({testing::Femtoguard(), "admit", "--server", server.address(), "--token-file", tmp / "token"},
                        "", 30, env);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_THAT(reqs[0], HasSubstr("Authorization: Bearer fg_from_file\r\n"));
  EXPECT_EQ(nlohmann::json::parse(BodyOf(reqs[0]))["device"], "FG-7");
}

TEST(HttpClientTest, ParsesHostPortAndChunkedBodies) {
  auto hp = ParseHostPort("[::1]:8440");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 8440);
  EXPECT_FALSE(ParseHostPort("localhost").ok());
  EXPECT_FALSE(ParseHostPort("localhost:0").ok());
  EXPECT_FALSE(ParseHostPort("localhost:http").ok());
  LoopbackServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto resp = HttpPost({"127.0.0.1", server.port()}, "/x", "text/plain", "ping", {}, 2000);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello world");
}

}  // namespace
}  // namespace fg::admission
