// The webhook's parts that need no receiver: URL validation (refused at
// start), the signature's exact format (a known answer computed with
// Python's hmac), the secret file, and the durable queue surviving a restart
// of the Webhook while the receiver is down.

#include "response/webhook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "testing/harness.h"

namespace fg::response {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(WebhookUrlTest, AcceptsHttpsAndHttpWithOrWithoutPort) {
  auto t = ParseWebhookUrl("https://siem.example:9443/hooks/fg?x=1");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->server.https);
  EXPECT_EQ(t->server.host, "siem.example");
  EXPECT_EQ(t->server.port, 9443);
  EXPECT_EQ(t->path, "/hooks/fg?x=1");
  t = ParseWebhookUrl("https://siem.example");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->server.port, 443);
  EXPECT_EQ(t->path, "/");
  t = ParseWebhookUrl("http://[::1]:8080/h");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->server.https);
  EXPECT_EQ(t->server.host, "::1");
  EXPECT_EQ(t->server.port, 8080);
}

TEST(WebhookUrlTest, RefusesMalformedUrls) {
  for (const std::string url : {"", "ftp://x/h", "siem.example:443/h", "https://", "https:///h",
                                "https://u:p@siem.example/h", "https://siem.example:0/h",
                                "https://siem.example:99999/h", "https://siem.example:ab/h",
                                "https://siem.example/a b", "https://siem.example/h#frag", "https://siem.example/\n"}) {
    auto t = ParseWebhookUrl(url);
    EXPECT_FALSE(t.ok()) << url;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << url;
    }
  }
  EXPECT_FALSE(ValidateWebhook("https://siem.example/h", "/nonexistent/ca.pem").ok());
  EXPECT_TRUE(ValidateWebhook("https://siem.example/h", "").ok());
}

TEST(WebhookSignatureTest, IsHmacSha256OverTimestampDotBody) {
  // python3: hmac.new(key, b'1700000000.{"id":"a1"}', hashlib.sha256).hexdigest()
  EXPECT_EQ(WebhookSignature("0123456789abcdef0123456789abcdef", 1700000000, R"({"id":"a1"})"),
            "t=1700000000,v1=35d7a4c635e9188b3b7c0c97b37624d9ef9c1f4f75c597381ded1356fad0f7d8");
  EXPECT_NE(WebhookSignature("0123456789abcdef0123456789abcdef", 1700000000, R"({"id":"a2"})"),
            WebhookSignature("0123456789abcdef0123456789abcdef", 1700000000, R"({"id":"a1"})"));
  EXPECT_NE(WebhookSignature("0123456789abcdef0123456789abcdef", 1700000001, R"({"id":"a1"})"),
            WebhookSignature("0123456789abcdef0123456789abcdef", 1700000000, R"({"id":"a1"})"));
}

TEST(WebhookSecretTest, CreatedOncePrivateAndStable) {
  testing::TempDir dir;
  auto a = LoadOrCreateWebhookSecret(dir.path() / "secrets");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size(), 64u);
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() / "secrets" / "webhook.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = LoadOrCreateWebhookSecret(dir.path() / "secrets");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

size_t Files(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".json";
  return n;
}

TEST(WebhookQueueTest, UndeliveredAlertsSurviveARestartAndAreNotDuplicated) {
  testing::TempDir dir;
  WebhookOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/hook";  // nobody listens
  o.secret = "k";
  o.queue_dir = dir.path() / "webhook";
  o.timeout_ms = 500;
  o.retry_initial_ms = 50;
  o.retry_max_ms = 100;
  {
    auto hook = Webhook::Start(o);
    ASSERT_TRUE(hook.ok()) << hook.status().ToString();
    (*hook)->Enqueue("a1", R"({"id":"a1"})");
    (*hook)->Enqueue("a2", R"({"id":"a2"})");
    (*hook)->Enqueue("a1", R"({"id":"a1"})");  // again while pending: once
    EXPECT_EQ((*hook)->pending(), 2u);
    EXPECT_EQ(Files(o.queue_dir), 2u);
    EXPECT_FALSE((*hook)->Flush(300)) << "nobody accepts them";
  }
  EXPECT_EQ(Files(o.queue_dir), 2u) << "still on disk after the Webhook is gone";
  auto again = Webhook::Start(o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->pending(), 2u) << "reloaded from disk";
  (*again)->Enqueue("a3", R"({"id":"a3"})");
  EXPECT_EQ((*again)->pending(), 3u);
}

TEST(WebhookQueueTest, StartRefusesABadUrlOrCaFile) {
  testing::TempDir dir;
  WebhookOptions o;
  o.secret = "k";
  o.queue_dir = dir.path() / "webhook";
  o.url = "gopher://x/";
  EXPECT_EQ(Webhook::Start(o).status().code(), StatusCode::kInvalidArgument);
  o.url = "https://127.0.0.1:1/h";
  o.ca_file = dir / "missing.pem";
  EXPECT_EQ(Webhook::Start(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg::response
