// femtoguard tap against a running node: the tap POSTs its events to serve
// (--server, an ingest token, TLS checked against the node's root CA);
// identity.mismatch fires there, its block goes on the node's block list,
// and the femtocell's next admission is denied "blocked".

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "testing/harness.h"

namespace fg::testing {
namespace {

using nlohmann::json;

RunResult Fg(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), Femtoguard());
  return Run(args, {}, 60, env);
}

// One S1SetupRequest (home eNB id, one CSG id), aligned PER as in
// tap_test.cc's encoder, written with text2pcap from `src`.
void WriteSetup(const TempDir& tmp, const std::string& name, const std::string& src, uint32_t enb, uint32_t csg) {
  const uint32_t id = enb << 4, c = csg << 5;
  std::vector<uint8_t> ies = {0x00, 59, 0x00, 9, 0x00, 0x05, 0xf5, 0x10, 0x40, uint8_t(id >> 24), uint8_t(id >> 16),
                              uint8_t(id >> 8), uint8_t(id), 0x00, 64, 0x00, 7, 0x00, 0x00, 0x00, 0x40, 0x05, 0xf5,
                              0x10, 0x00, 137, 0x40, 1, 0x40, 0x00, 128, 0x00, 6, 0x00, 0x00, uint8_t(c >> 24),
                              uint8_t(c >> 16), uint8_t(c >> 8), uint8_t(c)};
  std::vector<uint8_t> pdu = {0x00, 17, 0x00, uint8_t(ies.size() + 3), 0x00, 0x00, 4};
  pdu.insert(pdu.end(), ies.begin(), ies.end());
  std::string hex = "0000";
  char b[4];
  for (uint8_t x : pdu) {
    std::snprintf(b, sizeof b, " %02x", x);
    hex += b;
  }
  WriteAll(tmp / (name + ".txt"), hex + "\n");
  auto r = Run({"text2pcap", "-q", "-S", "36412,36412,18", "-4", src + ",10.9.0.1", tmp / (name + ".txt"), tmp / name});
  ASSERT_EQ(r.exit_code, 0) << r.out;
}

TEST(TapServe, MismatchFromTheWireBlocksAndDeniesTheNextAdmission) {
  TempDir tmp;
  const std::string data = tmp / "data";
  int port = FreePort(), tls_port;
  do {
    tls_port = FreePort();
  } while (tls_port == port);
  auto init = Fg({"init", "--data", data, "--listen", "127.0.0.1:" + std::to_string(port), "--tls-listen",
                  "127.0.0.1:" + std::to_string(tls_port)});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  WriteAll(tmp / "root.pem", Fg({"ca", "cert", "--data", data, "--root"}).out);
  WriteAll(tmp / "registry.jsonl",
           R"({"device":"FG-A","status":"active","mode":"closed","prefixes":["10.0.0.0/24"],"plmn":"50501","enb_id":161,"csg_id":100})"
           "\n"
           R"({"device":"FG-B","status":"active","mode":"closed","prefixes":["10.0.0.0/24"],"plmn":"50501","enb_id":178,"csg_id":200})"
           "\n");
  auto imp = Fg({"device", "import", "--data", data, "--registry", tmp / "registry.jsonl"});
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  for (const char* role : {"ingest", "segw"}) {
    std::string token = FindApiToken(Fg({"token", "create", "--data", data, "--role", role}).out);
    ASSERT_FALSE(token.empty()) << role;
    WriteAll(tmp / (std::string(role) + ".token"), token);
  }
  Process serve({Femtoguard(), "serve", "--data", data, "--threads", "2"}, tmp / "serve.log");
  ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port) + "/healthz")) << ReadAll(tmp / "serve.log");
  const std::string server = "https://127.0.0.1:" + std::to_string(tls_port);

  // FG-A's and FG-B's IPsec sessions, as the SeGW's log exports them.
  WriteSetup(tmp, "rogue.pcap", "10.0.0.11", 178, 200);  // FG-A's line, FG-B's identity
  const std::string key_copy = tmp / "key";
  WriteAll(key_copy, ReadAll(data + "/secrets/pseudonym.key"));
  ::chmod(key_copy.c_str(), 0600);
  auto dry = Fg({"tap", "--pcap", tmp / "rogue.pcap", "--out", tmp / "setup.jsonl", "--pseudonym-key", key_copy,
                 "--registry", tmp / "registry.jsonl"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out;
  const std::string ts = json::parse(ReadAll(tmp / "setup.jsonl"))["ts"];
  WriteAll(tmp / "sessions.jsonl",
           R"({"ts":")" + ts + R"(","type":"session.up","device":"FG-A","session":"s-a","src_ip":"10.0.0.11"})" "\n"
           R"({"ts":")" + ts + R"(","type":"session.up","device":"FG-B","session":"s-b","src_ip":"10.0.0.12"})" "\n");
  auto feed = Fg({"feed", "--data", data, "--server", server, "--token-file", tmp / "ingest.token", "--events",
                  tmp / "sessions.jsonl", "--duration", "1", "--quiet"});
  ASSERT_EQ(feed.exit_code, 0) << feed.out;

  // Before: FG-A is not blocked.
  std::vector<std::string> ike = {"IKE_REMOTE_ID=CN=FG-A", "IKE_REMOTE_HOST=10.0.0.11", "IKE_LOCAL_HOST=192.0.2.1",
                                  "IKE_UNIQUE_ID=41"};
  auto before = Fg({"admit", "--server", server, "--cacert", tmp / "root.pem", "--token-file", tmp / "segw.token"}, ike);
  EXPECT_EQ(before.out.find("blocked"), std::string::npos) << before.out;

  auto tap = Fg({"tap", "--pcap", tmp / "rogue.pcap", "--server", server, "--cacert", tmp / "root.pem", "--token-file",
                 tmp / "ingest.token", "--pseudonym-key", key_copy, "--registry", tmp / "registry.jsonl"});
  ASSERT_EQ(tap.exit_code, 0) << tap.out;

  bool blocked = false;
  std::string alerts;
  for (int i = 0; i < 100 && !blocked; ++i) {
    alerts = Fg({"alert", "list", "--data", data, "--device", "FG-A", "--json"}).out;
    auto blocks = Fg({"block", "list", "--data", data}).out;
    blocked = alerts.find("identity.mismatch") != std::string::npos && blocks.find("FG-A") != std::string::npos;
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(blocked) << alerts << "\n" << ReadAll(tmp / "serve.log");
  const std::string claimed = "\"claimed\":\"";
  EXPECT_EQ(alerts.find("FG-B"), alerts.find(claimed + "FG-B") + claimed.size()) << "FG-B only as the claimed identity";

  ike[3] = "IKE_UNIQUE_ID=42";
  auto after = Fg({"admit", "--server", server, "--cacert", tmp / "root.pem", "--token-file", tmp / "segw.token"}, ike);
  EXPECT_EQ(after.exit_code, 1) << after.out;
  EXPECT_NE(after.out.find("blocked"), std::string::npos) << after.out;
  // FG-B, whose identity was claimed, is not blocked.
  auto b = Fg({"admit", "--server", server, "--cacert", tmp / "root.pem", "--token-file", tmp / "segw.token"},
              {"IKE_REMOTE_ID=CN=FG-B", "IKE_REMOTE_HOST=10.0.0.12", "IKE_LOCAL_HOST=192.0.2.1", "IKE_UNIQUE_ID=43"});
  EXPECT_EQ(b.out.find("blocked"), std::string::npos) << b.out;
  serve.Stop();
}

}  // namespace
}  // namespace fg::testing
