// The node's HTTP API behind bearer tokens, end to end with the real binary
// and curl: who may ask (401/403, revocation at once), admission decisions,
// live event ingest -> detection -> alerts -> response, the payment check,
// and operator approval from the CLI. Subscriber identities sent raw must
// never come back out (alerts, store, logs).

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

class ApiTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    StartNode();
    WriteAll(P("registry.jsonl"),
             R"({"device":"FG-HOME","status":"active","mode":"closed","site":{"lat":37.5,"lon":127.0,"radius_m":150},"prefixes":["10.1.0.0/16"],"csg":["450081111111111"]})" "\n"
             R"({"device":"FG-OLD","status":"active","mode":"closed","prefixes":["10.2.0.0/16"]})" "\n"
             R"({"device":"FG-MOVER","status":"active","mode":"closed","prefixes":["10.3.0.0/16"]})" "\n");
    auto imp = Fg({"device", "import", "--data", data_, "--registry", P("registry.jsonl")});
    ASSERT_EQ(imp.exit_code, 0) << imp.out;
    for (const char* role : {"segw", "ingest", "payments", "operator"}) {
      auto t = Fg({"token", "create", "--data", data_, "--role", role, "--label", std::string("test-") + role});
      ASSERT_EQ(t.exit_code, 0) << t.out;
      tokens_[role] = FindApiToken(t.out);
      ASSERT_FALSE(tokens_[role].empty()) << t.out;
    }
  }
  static void TearDownTestSuite() { StopNode(); }

  // (HTTP status, body) of a request with an optional token, on the TLS
  // listener (the API is served there only).
  static std::pair<std::string, std::string> Http(const std::string& method, const std::string& path,
                                                  const std::string& token, const std::string& body = {}) {
    return Api(method, path, token, body);
  }

  // Polls GET /v1/alerts until one matches `rule` (and `device`), up to 10 s.
  static json WaitForAlert(const std::string& rule, const std::string& device) {
    for (int i = 0; i < 100; ++i) {
      auto [code, body] = Http("GET", "/v1/alerts?rule=" + rule, tokens_["operator"]);
      if (code == "200") {
        json j = json::parse(body, nullptr, false);
        if (!j.is_discarded()) {
          for (const auto& a : j["alerts"]) {
            if (device.empty() || a.value("device", "") == device) return a;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return json();
  }

  static std::map<std::string, std::string> tokens_;
};
std::map<std::string, std::string> ApiTest::tokens_;

TEST_F(ApiTest, EveryApiEndpointNeedsATokenWithTheRightRole) {
  const std::vector<std::pair<std::string, std::string>> endpoints = {
      {"POST", "/v1/admission"}, {"POST", "/v1/events"}, {"POST", "/v1/payment/check"},
      {"GET", "/v1/alerts"},     {"GET", "/metrics"}};
  for (const auto& [method, path] : endpoints) {
    EXPECT_EQ(Http(method, path, "").first, "401") << path << " without a token";
    EXPECT_EQ(Http(method, path, "fgt_0000_not-a-real-token").first, "401") << path << " with a made-up token";
  }
  // Wrong roles: 403, and the request does nothing.
  EXPECT_EQ(Http("POST", "/v1/admission", tokens_["ingest"], R"({"device":"FG-HOME"})").first, "403");
  EXPECT_EQ(Http("POST", "/v1/events", tokens_["payments"], "{}").first, "403");
  EXPECT_EQ(Http("POST", "/v1/payment/check", tokens_["segw"], R"({"imsi":"450081111111111"})").first, "403");
  EXPECT_EQ(Http("GET", "/v1/alerts", tokens_["ingest"]).first, "403");
  // OCSP, CRL and health stay open on the plain listener (SeGWs and devices have no tokens).
  EXPECT_EQ(Api("GET", "/crl", "", "", url_).first, "200");
  EXPECT_EQ(Api("GET", "/healthz", "", "", url_).first, "200");
}

TEST_F(ApiTest, ARevokedTokenStopsWorkingAtOnce) {
  auto t = Fg({"token", "create", "--data", data_, "--role", "operator"});
  ASSERT_EQ(t.exit_code, 0);
  std::string token = FindApiToken(t.out);
  ASSERT_EQ(Http("GET", "/v1/alerts", token).first, "200");
  auto list = Fg({"token", "list", "--data", data_});
  EXPECT_THAT(list.out, Not(HasSubstr(token))) << "token list must not print secrets";
  std::smatch m;
  std::string id;
  std::string prefix = token.substr(4, token.find('_', 4) - 4);
  id = "tk_" + prefix;
  ASSERT_THAT(list.out, HasSubstr(id));
  auto revoke = Fg({"token", "revoke", "--data", data_, id});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  EXPECT_EQ(Http("GET", "/v1/alerts", token).first, "401") << "revocation must not wait for a cache to expire";
}

TEST_F(ApiTest, AdmissionAllowsTheRegisteredLineAndDeniesOthers) {
  auto [code, body] = Http("POST", "/v1/admission", tokens_["segw"],
                           R"({"device":"FG-HOME","session":"s-1","src_ip":"10.1.2.3","endpoint":"segw1","segw":"segw1"})");
  ASSERT_EQ(code, "200") << body;
  EXPECT_EQ(json::parse(body)["decision"], "allow") << body;

  std::tie(code, body) = Http("POST", "/v1/admission", tokens_["segw"],
                              R"({"device":"FG-OLD","session":"s-2","src_ip":"203.0.113.9","endpoint":"segw1","segw":"segw1"})");
  ASSERT_EQ(code, "200") << body;
  json d = json::parse(body);
  EXPECT_EQ(d["decision"], "deny") << body;
  EXPECT_THAT(d["reasons"].dump(), HasSubstr("location.line"));

  std::tie(code, body) = Http("POST", "/v1/admission", tokens_["segw"],
                              R"({"device":"FG-NOBODY","session":"s-3","src_ip":"10.1.2.3","endpoint":"segw1","segw":"segw1"})");
  EXPECT_EQ(json::parse(body)["decision"], "deny") << body;
  EXPECT_THAT(body, HasSubstr("device.unknown"));

  std::tie(code, body) = Http("POST", "/v1/admission", tokens_["segw"], "{not json");
  EXPECT_EQ(code, "400") << body;

  // The denial of the unknown identity is flagged as an alert that notifies;
  // nothing disruptive happens without an operator.
  json alert = WaitForAlert("device.unknown", "FG-NOBODY");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["evidence"]["source"], "admission");

  // The decision log has all three decisions.
  std::string log;
  for (int i = 0; i < 50 && std::count(log.begin(), log.end(), '\n') < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = ReadAll(data_ + "/log/admission.jsonl");
  }
  EXPECT_THAT(log, HasSubstr("\"session\":\"s-1\""));
  EXPECT_THAT(log, HasSubstr("\"session\":\"s-2\""));
  EXPECT_THAT(log, HasSubstr("\"session\":\"s-3\""));
}

// A SeGW that asks over HTTP tells femtoguard that a session ended with a
// session.down event; until then a second session of the same identity from
// another address is a clone, afterwards it is the device reconnecting.
TEST_F(ApiTest, ASessionDownPostedAsAnEventEndsTheSessionForAdmission) {
  auto admit = [](const std::string& session, const std::string& ip) {
    auto [code, body] = Http("POST", "/v1/admission", tokens_["segw"],
                             R"({"device":"FG-MOVER","session":")" + session + R"(","src_ip":")" + ip +
                                 R"(","endpoint":"segw1","segw":"segw1"})");
    EXPECT_EQ(code, "200") << body;
    return json::parse(body, nullptr, false);
  };
  EXPECT_EQ(admit("m-1", "10.3.0.5")["decision"], "allow");
  json second = admit("m-2", "10.3.9.9");
  EXPECT_EQ(second["decision"], "deny") << "the first session is still up: two places at once";
  EXPECT_THAT(second["reasons"].dump(), HasSubstr("cert.clone"));

  auto [code, body] = Http("POST", "/v1/events", tokens_["ingest"],
                           R"({"ts":"2026-01-05T09:00:00Z","type":"session.down","device":"FG-MOVER","session":"m-1"})" "\n");
  ASSERT_EQ(code, "200") << body;
  EXPECT_EQ(json::parse(body)["accepted"], 1);

  json third = admit("m-3", "10.3.9.9");
  EXPECT_EQ(third["decision"], "allow") << third.dump();
}

TEST_F(ApiTest, EventsFlowToAlertsActionsAndThePaymentCheck) {
  const std::string victim = "450089999000001";
  const std::string bystander = "450089999000002";
  std::string events =
      R"({"ts":"2026-01-05T10:00:00Z","type":"session.up","device":"FG-VAN","session":"v1","cert_fp":"sha256:aa","src_ip":"198.51.100.7","endpoint":"segw1","segw":"segw1"})" "\n"
      "this line is not JSON\n"
      R"({"ts":"2026-01-05T10:01:00Z","type":"ue.attach","device":"FG-VAN","imsi":")" + victim + R"(","imei":"356938035643809"})" "\n"
      R"({"ts":"2026-01-05T10:02:00Z","type":"sms.deliver","device":"FG-VAN","imsi":")" + victim + R"(","sender":"BANK","class":"otp"})" "\n"
      R"({"ts":"2026-01-05T10:02:30Z","type":"no.such.type"})" "\n";
  auto [code, body] = Http("POST", "/v1/events", tokens_["ingest"], events);
  ASSERT_EQ(code, "200") << body;
  json reply = json::parse(body);
  EXPECT_EQ(reply["accepted"], 3);
  EXPECT_EQ(reply["unknown_type"], 1);
  ASSERT_EQ(reply["malformed"].size(), 1u);
  EXPECT_EQ(reply["malformed"][0]["line"], 2);

  json alert = WaitForAlert("device.unknown", "FG-VAN");
  ASSERT_FALSE(alert.is_null()) << "an unregistered femtocell's session must raise device.unknown";
  // The alert can be listed before all its actions are recorded (writes of
  // their own, each fsynced since synchronous=FULL): wait for the block.
  for (int i = 0; i < 50 && alert["actions_done"].dump().find("block") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    json again = WaitForAlert("device.unknown", "FG-VAN");
    if (!again.is_null()) alert = again;
  }
  EXPECT_EQ(alert["state"], "acted");
  EXPECT_THAT(alert["actions_done"].dump(), HasSubstr("block"));

  // The victim was served by the counterfeit cell minutes ago: an OTP-backed
  // payment is refused; a subscriber never near it pays normally.
  std::tie(code, body) = Http("POST", "/v1/payment/check", tokens_["payments"],
                              R"({"imsi":")" + victim + R"(","merchant":"game-shop","amount":49000,"channel":"sms_otp"})");
  ASSERT_EQ(code, "200") << body;
  EXPECT_EQ(json::parse(body)["decision"], "deny") << body;
  std::tie(code, body) = Http("POST", "/v1/payment/check", tokens_["payments"],
                              R"({"imsi":")" + bystander + R"(","merchant":"game-shop","amount":49000,"channel":"sms_otp"})");
  ASSERT_EQ(code, "200") << body;
  EXPECT_EQ(json::parse(body)["decision"], "allow") << body;
  std::tie(code, body) = Http("POST", "/v1/payment/check", tokens_["payments"], R"({"imsi":"12ab"})");
  EXPECT_EQ(code, "400");

  // No raw identifier anywhere: alerts API, audit, data dir files, serve's log.
  auto [c2, all_alerts] = Http("GET", "/v1/alerts?limit=1000", tokens_["operator"]);
  EXPECT_THAT(all_alerts, Not(HasSubstr(victim)));
  EXPECT_THAT(all_alerts, Not(HasSubstr("356938035643809")));
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_)) {
    if (!entry.is_regular_file()) continue;
    std::string content = ReadAll(entry.path().string());
    EXPECT_EQ(content.find(victim), std::string::npos) << entry.path();
    EXPECT_EQ(content.find(bystander), std::string::npos) << entry.path();
    EXPECT_EQ(content.find("356938035643809"), std::string::npos) << entry.path();
  }
  std::string serve_log = ReadAll(P("serve.log"));
  EXPECT_EQ(serve_log.find(victim), std::string::npos);
}

TEST_F(ApiTest, AnOperatorApprovesWaitingActionsFromTheCli) {
  // A clone attempt at the door: two lines for one identity at once.
  ASSERT_EQ(Http("POST", "/v1/admission", tokens_["segw"],
                 R"({"device":"FG-HOME","session":"c-1","src_ip":"10.1.9.9","endpoint":"segw1","segw":"segw1"})")
                .first,
            "200");
  auto [code, body] = Http("POST", "/v1/admission", tokens_["segw"],
                           R"({"device":"FG-HOME","session":"c-2","src_ip":"198.51.100.99","endpoint":"segw1","segw":"segw1"})");
  EXPECT_EQ(json::parse(body)["decision"], "deny") << body;
  json alert = WaitForAlert("cert.clone", "FG-HOME");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["state"], "pending_approval");
  // Nothing disruptive yet: the device is still active.
  EXPECT_THAT(Fg({"device", "show", "--data", data_, "--device", "FG-HOME"}).out, HasSubstr("active"));

  const std::string id = alert["id"];
  auto approve = Fg({"alert", "approve", "--data", data_, id, "--reason", "confirmed clone"});
  ASSERT_EQ(approve.exit_code, 0) << approve.out;
  auto shown = Fg({"alert", "show", "--data", data_, id});
  EXPECT_THAT(shown.out, HasSubstr("\"acted\""));
  EXPECT_EQ(Fg({"alert", "approve", "--data", data_, id}).exit_code, 4) << "approving twice is refused";
  auto audit = Fg({"audit", "list", "--data", data_, "--limit", "50"});
  EXPECT_THAT(audit.out, HasSubstr("confirmed clone"));
}

}  // namespace
}  // namespace fg::testing
