// SIEM export units: the target syntax, the RFC 5424 message and its ECS
// body, the octet-counted frame, and the durable queue against a plain TCP
// collector in this process (down, then up; a restart resends what was not
// acknowledged). The real-rsyslog checks are in tests/integration/siem_test.cc.

#include "response/siem.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "testing/harness.h"

namespace fg::response {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

const char kAlert[] =
    R"({"id":"a1b2c3","ts":"2026-03-01T10:00:00.250Z","rule":"cert.clone","kind":"clone","severity":"critical",)"
    R"("device":"FG-0001","subjects":["imsi:00ff"],"actions":["terminate","block","notify"],"approve":["revoke"],)"
    R"("evidence":{"sessions":2}})";

TEST(SiemTargetTest, TcpAndTlsWithPortAreAccepted) {
  auto t = ParseSiemTarget("tls://siem.example:6514");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "siem.example");
  EXPECT_EQ(t->port, 6514);
  auto u = ParseSiemTarget("tcp://[::1]:601");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 601);
}

TEST(SiemTargetTest, AnythingElseIsRefusedSayingWhy) {
  for (const char* bad : {"udp://h:514", "siem.example:6514", "tls://siem.example", "tls://:6514", "tls://h:0",
                          "tls://h:65536", "tls://h:65x", "tls://h h:6514", "tcp://[::1]601", ""}) {
    auto t = ParseSiemTarget(bad);
    EXPECT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseSiemTarget("tls://h").status().message(), HasSubstr("no port"));
  EXPECT_FALSE(ValidateSiem("tcp://h:601", "/etc/hostname").ok()) << "a CA file is for tls:// only";
  EXPECT_FALSE(ValidateSiem("tls://h:6514", "/nonexistent/ca.pem").ok());
}

TEST(SiemMessageTest, Rfc5424HeaderAndEcsBody) {
  auto m = SyslogAlertMessage(kAlert, "fg-node-1");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  // authpriv (10) * 8 + critical (2) = 82.
  std::smatch parts;
  ASSERT_TRUE(std::regex_match(*m, parts, std::regex(R"(<82>1 2026-03-01T10:00:00\.250Z fg-node-1 femtoguard - alert - (\{.*\}))")))
      << *m;
  json ecs = json::parse(parts[1].str());
  EXPECT_EQ(ecs["@timestamp"], "2026-03-01T10:00:00.250Z");
  EXPECT_EQ(ecs["event"]["kind"], "alert");
  EXPECT_EQ(ecs["event"]["id"], "a1b2c3");
  EXPECT_EQ(ecs["event"]["code"], "cert.clone");
  EXPECT_EQ(ecs["event"]["severity"], 99);
  EXPECT_EQ(ecs["event"]["module"], "femtoguard");
  EXPECT_EQ(ecs["rule"]["name"], "cert.clone");
  EXPECT_EQ(ecs["log"]["level"], "critical");
  EXPECT_EQ(ecs["device"]["id"], "FG-0001");
  EXPECT_EQ(ecs["observer"]["hostname"], "fg-node-1");
  EXPECT_EQ(ecs["related"]["user"], json::array({"imsi:00ff"}));
  EXPECT_EQ(ecs["femtoguard"]["alert"], json::parse(kAlert)) << "the alert travels whole";
  EXPECT_EQ(m->find('\n'), std::string::npos) << "one line";
}

TEST(SiemMessageTest, SeveritiesMapAndABadHostnameBecomesNil) {
  const std::pair<const char*, const char*> cases[] = {{"high", "<83>"}, {"medium", "<84>"}, {"low", "<85>"},
                                                       {"info", "<86>"}};
  for (const auto& [sev, pri] : cases) {
    json a = json::parse(kAlert);
    a["severity"] = sev;
    auto m = SyslogAlertMessage(a.dump(), "host with space");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->rfind(pri, 0), 0u) << *m;
    EXPECT_THAT(*m, HasSubstr(" - femtoguard - alert - ")) << "hostname NILVALUE";
  }
  EXPECT_FALSE(SyslogAlertMessage("not json", "h").ok());
  EXPECT_FALSE(SyslogAlertMessage(R"({"rule":"x"})", "h").ok()) << "no id";
}

TEST(SiemMessageTest, OctetCountingCountsBytesNotCharacters) {
  EXPECT_EQ(OctetCountedFrame("abc"), "3 abc");
  EXPECT_EQ(OctetCountedFrame("\xc3\xa9"), "2 \xc3\xa9");
  EXPECT_EQ(OctetCountedFrame(""), "0 ");
}

// A plain TCP collector on loopback: accepts connections one after another
// and keeps every byte it reads.
class Collector {
 public:
  explicit Collector(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) {
          std::lock_guard lock(mu_);
          bytes_.append(buf, static_cast<size_t>(n));
        }
        ::close(c);
      }
    });
  }
  ~Collector() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  int fd_ = -1;
  std::mutex mu_;
  std::string bytes_;
  std::thread thread_;
};

std::vector<std::string> Frames(const std::string& bytes) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    size_t sp = bytes.find(' ', at);
    if (sp == std::string::npos) break;
    size_t len = std::stoul(bytes.substr(at, sp - at));
    if (sp + 1 + len > bytes.size()) break;
    out.push_back(bytes.substr(sp + 1, len));
    at = sp + 1 + len;
  }
  return out;
}

std::string AlertJson(int i) {
  json a = json::parse(kAlert);
  a["id"] = "alert-" + std::to_string(i);
  return a.dump();
}

TEST(SiemExportTest, QueuedWhileTheCollectorIsDownThenDeliveredOnceAcrossARestart) {
  fg::testing::TempDir dir;
  const int port = fg::testing::FreePort();
  SiemOptions o;
  o.target = "tcp://127.0.0.1:" + std::to_string(port);
  o.queue_dir = dir / "siem";
  o.hostname = "unit";
  o.retry_initial_ms = 50;
  o.retry_max_ms = 100;
  {
    auto s = SiemExport::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int i = 0; i < 3; ++i) (*s)->Enqueue("alert-" + std::to_string(i), AlertJson(i));
    (*s)->Enqueue("alert-1", AlertJson(1));  // still pending: once
    EXPECT_FALSE((*s)->Flush(300)) << "nobody listens";
    EXPECT_EQ((*s)->pending(), 3u);
  }
  // The files survive the exporter; a new one sends them, in order.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "siem")) files += e.path().extension() == ".msg";
  EXPECT_EQ(files, 3u);
  Collector collector(port);
  auto s = SiemExport::Start(o);
  ASSERT_TRUE(s.ok());
  (*s)->Enqueue("alert-3", AlertJson(3));
  ASSERT_TRUE((*s)->Flush(10000));
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    ids.clear();
    for (const std::string& f : Frames(collector.bytes())) {
      ids.push_back(json::parse(f.substr(f.find('{')))["event"]["id"].get<std::string>());
    }
    if (ids.size() >= 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"alert-0", "alert-1", "alert-2", "alert-3"}));
  files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "siem")) files += e.path().extension() == ".msg";
  EXPECT_EQ(files, 0u);
}

TEST(SiemExportTest, ANonAlertIsDroppedWithAnErrorNotQueued) {
  fg::testing::TempDir dir;
  SiemOptions o;
  o.target = "tcp://127.0.0.1:" + std::to_string(fg::testing::FreePort());
  o.queue_dir = dir / "siem";
  auto s = SiemExport::Start(o);
  ASSERT_TRUE(s.ok());
  (*s)->Enqueue("x", "[1,2]");
  EXPECT_EQ((*s)->pending(), 0u);
}

}  // namespace
}  // namespace fg::response
