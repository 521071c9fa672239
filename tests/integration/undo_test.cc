// Undo and the alert workflow end to end (issue 14), with the real binary
// and curl: a benign closed femtocell whose registry CSG list is stale is
// blocked, suspended and has its subscribers' payments held by a false
// positive (ue.capture); after `alert dismiss --false-positive` admission
// allows it again and its subscribers' payments are allowed, on the serving
// node (no restart) and as the CLI sees the store. And what must not
// happen: a plain dismiss undoes nothing, releasing one subscriber does not
// release another, an unknown alert id exits 3, a second undo changes
// nothing, no raw IMSI is stored or printed.

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kMember = "450081230000001";
const std::string kGuestB = "450081230000002";
const std::string kGuestC = "450081230000003";

std::string NowTs(int offset_s = 0) {
  std::time_t t = std::time(nullptr) + offset_s;
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

class UndoTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    // NodeFixture::StartNode, with a rules file in the data dir before serve
    // starts: ue.capture blocks and suspends at once (the test's false positive).
    dir_ = new TempDir();
    port_ = FreePort();
    do {
      tls_port_ = FreePort();
    } while (tls_port_ == port_);
    data_ = *dir_ / "data";
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    tls_url_ = "https://127.0.0.1:" + std::to_string(tls_port_);
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_),
                    "--tls-listen", "127.0.0.1:" + std::to_string(tls_port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(*dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
    std::string rules = ReadAll(std::string(FG_SOURCE_DIR) + "/rules/default.yaml");
    const std::string from =
        "  ue.capture:\n    severity: high\n    actions: [hold_payments, terminate, notify]\n    "
        "approve: [block]\n";
    const std::string to =
        "  ue.capture:\n    severity: high\n    actions: [hold_payments, terminate, block, "
        "suspend, notify]\n"
        "    approve: []\n";
    size_t at = rules.find(from);
    ASSERT_NE(at, std::string::npos) << "rules/default.yaml changed: update this test";
    rules.replace(at, from.size(), to);
    WriteAll(data_ + "/rules.yaml", rules);
    std::string registry;
    for (const char* id : {"FG-CAFE", "FG-BAKERY"}) {
      registry +=
          std::string(R"({"device":")") + id +
          R"(","status":"active","mode":"closed","site":{"lat":37.5,"lon":127.0,"radius_m":150},)"
          R"("prefixes":["10.9.0.0/16"],"csg":[")" +
          kMember +
          R"("]})"
          "\n";
    }
    WriteAll(P("registry.jsonl"), registry);
    auto imp = Fg({"device", "import", "--data", data_, "--registry", P("registry.jsonl")});
    ASSERT_EQ(imp.exit_code, 0) << imp.out;
    for (const char* role : {"segw", "ingest", "payments", "operator"}) {
      auto t = Fg({"token", "create", "--data", data_, "--role", role});
      ASSERT_EQ(t.exit_code, 0) << t.out;
      tokens_[role] = FindApiToken(t.out);
    }
    serve_ = new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"},
                         *dir_ / "serve.log");
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(*dir_ / "serve.log");
  }
  static void TearDownTestSuite() { StopNode(); }

  // The bearer-token API, on the TLS listener (NodeFixture::Api).
  static std::pair<std::string, std::string> Http(const std::string& method,
                                                  const std::string& path, const std::string& token,
                                                  const std::string& body = {}) {
    return Api(method, path, token, body);
  }
  static json HttpJson(const std::string& method, const std::string& path, const std::string& role,
                       const std::string& body = {}) {
    auto [code, text] = Http(method, path, tokens_[role], body);
    EXPECT_EQ(code, "200") << method << " " << path << ": " << text;
    return json::parse(text, nullptr, false);
  }
  static std::string Admit(const std::string& device, const std::string& session) {
    json d = HttpJson("POST", "/v1/admission", "segw",
                      R"({"device":")" + device + R"(","session":")" + session +
                          R"(","src_ip":"10.9.1.1","endpoint":"segw1","segw":"segw1"})");
    return d.value("decision", "?");
  }
  static std::string Pay(const std::string& imsi, const std::string& channel = "sms_otp") {
    json d = HttpJson("POST", "/v1/payment/check", "payments",
                      R"({"imsi":")" + imsi + R"(","merchant":"shop","amount":1000,"channel":")" +
                          channel + "\"}");
    return d.value("decision", "?");
  }
  // Two non-members attach to `device`: ue.capture (closed_nonmembers).
  static json RaiseFalsePositive(const std::string& device) {
    std::string events = R"({"ts":")" + NowTs(-30) + R"(","type":"session.up","device":")" +
                         device + R"(","session":"s-)" + device + R"(","cert_fp":"sha256:)" +
                         device +
                         R"(","src_ip":"10.9.1.1","endpoint":"segw1","segw":"segw1"})"
                         "\n";
    for (const std::string& imsi : {kGuestB, kGuestC}) {
      events += R"({"ts":")" + NowTs(-20) + R"(","type":"ue.attach","device":")" + device +
                R"(","imsi":")" + imsi +
                R"(","imei":"356938035643809"})"
                "\n";
    }
    json r = HttpJson("POST", "/v1/events", "ingest", events);
    EXPECT_EQ(r.value("accepted", 0), 3) << r.dump();
    for (int i = 0; i < 100; ++i) {
      json list = HttpJson("GET", "/v1/alerts?rule=ue.capture&device=" + device, "operator");
      for (const json& a : list["alerts"]) {
        if (a["actions_done"].dump().find("suspend") != std::string::npos) return a;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no acted ue.capture alert for " << device << "\n"
                  << ReadAll(*dir_ / "serve.log");
    return json();
  }

  static inline std::map<std::string, std::string> tokens_;
};

TEST_F(UndoTest, AFalsePositiveIsUndoneFromTheCliAndTheServingNodeSeesIt) {
  json alert = RaiseFalsePositive("FG-CAFE");
  ASSERT_TRUE(alert.is_object());
  const std::string id = alert["id"];
  // Nothing to act on is skipped with a reason, never counted as done.
  EXPECT_THAT(alert["actions_done"].dump(), Not(HasSubstr("terminate")));
  EXPECT_THAT(alert["actions_skipped"].dump(), HasSubstr("no SeGW connected"));
  EXPECT_THAT(alert["actions_skipped"].dump(), HasSubstr("no notification channel"));

  // The false positive in force: the device is refused, its guests cannot pay.
  EXPECT_EQ(Admit("FG-CAFE", "a-1"), "deny");
  EXPECT_EQ(Pay(kGuestB), "deny");
  EXPECT_EQ(Pay(kGuestC), "deny");
  EXPECT_EQ(Pay(kMember, "none"), "allow") << "a subscriber the alert never named pays";

  // Must not: a plain dismiss undoes nothing.
  auto plain = Fg({"alert", "dismiss", "--data", data_, id, "--reason", "looking into it"});
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(Admit("FG-CAFE", "a-2"), "deny");
  EXPECT_EQ(Pay(kGuestB), "deny");
  EXPECT_THAT(Fg({"device", "show", "--data", data_, "--device", "FG-CAFE"}).out,
              HasSubstr("suspended"));

  // Must not: releasing one subscriber releases only that one.
  auto bad_imsi = Fg({"payments", "release", "--data", data_, "--imsi", "45008x"});
  EXPECT_EQ(bad_imsi.exit_code, 2) << bad_imsi.out;
  EXPECT_THAT(bad_imsi.out, Not(HasSubstr("45008x")));
  auto release = Fg(
      {"payments", "release", "--data", data_, "--imsi", kGuestC, "--reason", "customer called"});
  ASSERT_EQ(release.exit_code, 0) << release.out;
  EXPECT_THAT(release.out, Not(HasSubstr(kGuestC))) << "the raw IMSI is never printed";
  EXPECT_EQ(Fg({"payments", "release", "--data", data_, "--imsi", kGuestC}).exit_code, 3)
      << "nothing left to release";
  EXPECT_EQ(Pay(kGuestB), "deny") << "subscriber B is still held";
  EXPECT_NE(Pay(kGuestC, "none"), "deny")
      << "subscriber C is released (still exposed to a suspect cell: step_up)";

  // Must not: an unknown alert id exits 3 and changes nothing.
  auto unknown = Fg({"alert", "dismiss", "--data", data_, "no-such-alert", "--false-positive"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out;

  // The undo.
  auto undo = Fg({"alert", "dismiss", "--data", data_, id, "--false-positive", "--reason",
                  "CSG list was stale"});
  ASSERT_EQ(undo.exit_code, 0) << undo.out;
  EXPECT_THAT(undo.out, HasSubstr("block"));
  EXPECT_THAT(undo.out, HasSubstr("undone"));
  EXPECT_THAT(undo.out, Not(HasSubstr("warning"))) << "serve confirmed the change";

  // Through the serving node, without a restart.
  EXPECT_EQ(Admit("FG-CAFE", "a-3"), "allow");
  EXPECT_EQ(Pay(kGuestB), "allow")
      << "no hold, and the cell is no longer suspect, blocked or suspended";
  EXPECT_EQ(Pay(kGuestC), "allow");
  // Through the CLI: the store holds no block and the device is active.
  auto blocks = Fg({"block", "list", "--data", data_, "--json"});
  ASSERT_EQ(blocks.exit_code, 0) << blocks.out;
  EXPECT_THAT(blocks.out, Not(HasSubstr("FG-CAFE")));
  EXPECT_THAT(blocks.out, Not(HasSubstr(id)));
  EXPECT_THAT(Fg({"device", "show", "--data", data_, "--device", "FG-CAFE"}).out,
              HasSubstr("\"active\""));
  auto shown = Fg({"alert", "show", "--data", data_, id});
  EXPECT_THAT(shown.out, HasSubstr("\"false_positive\": true"));
  auto audit = Fg({"audit", "list", "--data", data_, "--limit", "200"});
  EXPECT_THAT(audit.out, HasSubstr("CSG list was stale"));
  EXPECT_THAT(audit.out, HasSubstr("alert.undo"));
  EXPECT_THAT(audit.out, HasSubstr("customer called"));

  // Idempotent: the second time changes nothing.
  const std::string audit_before = Fg({"audit", "list", "--data", data_, "--limit", "1000"}).out;
  auto again = Fg({"alert", "dismiss", "--data", data_, id, "--false-positive"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("already"));
  EXPECT_EQ(Fg({"audit", "list", "--data", data_, "--limit", "1000"}).out, audit_before);

  // No raw subscriber identity anywhere in the data dir or serve's log.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_)) {
    if (!entry.is_regular_file()) continue;
    std::string content = ReadAll(entry.path().string());
    for (const std::string& imsi : {kMember, kGuestB, kGuestC}) {
      EXPECT_EQ(content.find(imsi), std::string::npos) << entry.path();
    }
  }
  EXPECT_EQ(ReadAll(*dir_ / "serve.log").find(kGuestC), std::string::npos);
}

TEST_F(UndoTest, TheOperatorApiUndoesListsByCursorAndShowsTheTimeline) {
  // Cursor: every alert exactly once, across pages and across new alerts.
  std::vector<std::string> seen;
  std::string cursor = "0";
  auto poll = [&] {
    for (int page = 0; page < 100; ++page) {
      json r = HttpJson("GET", "/v1/alerts?limit=1&since=" + cursor, "operator");
      if (!r.contains("next")) return;
      cursor = r["next"];
      if (r["alerts"].empty()) return;
      for (const json& a : r["alerts"]) seen.push_back(a["id"]);
    }
  };
  poll();
  const size_t before = seen.size();
  json alert = RaiseFalsePositive("FG-BAKERY");
  ASSERT_TRUE(alert.is_object());
  const std::string id = alert["id"];
  poll();
  EXPECT_GT(seen.size(), before);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size())
      << "no alert twice";
  EXPECT_NE(std::find(seen.begin(), seen.end(), id), seen.end());
  json all = HttpJson("GET", "/v1/alerts?limit=1000", "operator");
  EXPECT_EQ(all["alerts"].size(), seen.size()) << "no alert missed";
  EXPECT_EQ(Http("GET", "/v1/alerts?since=abc", tokens_["operator"]).first, "400");

  EXPECT_EQ(Admit("FG-BAKERY", "b-1"), "deny");
  EXPECT_EQ(Pay(kGuestB), "deny");
  // Roles: a payments token may not dismiss.
  EXPECT_EQ(Http("POST", "/v1/alerts/" + id + "/dismiss", tokens_["payments"],
                 R"({"false_positive":true})")
                .first,
            "403");
  EXPECT_EQ(Http("POST", "/v1/alerts/" + id + "/dismiss", tokens_["operator"],
                 R"({"false_positive":"yes"})")
                .first,
            "400");
  EXPECT_EQ(
      Http("POST", "/v1/alerts/nope/dismiss", tokens_["operator"], R"({"false_positive":true})")
          .first,
      "404");
  EXPECT_EQ(Admit("FG-BAKERY", "b-2"), "deny") << "refused requests changed nothing";

  json undo = HttpJson("POST", "/v1/alerts/" + id + "/dismiss", "operator",
                       R"({"false_positive":true,"reason":"stale CSG"})");
  EXPECT_EQ(undo["state"], "dismissed") << undo.dump();
  EXPECT_EQ(undo["false_positive"], true);
  EXPECT_THAT(undo["undo"].dump(), HasSubstr("undone"));
  EXPECT_EQ(Admit("FG-BAKERY", "b-3"), "allow");
  EXPECT_EQ(Pay(kGuestB), "allow");

  // Bulk by filter: nothing left to undo, so nothing changes.
  json bulk =
      HttpJson("POST", "/v1/alerts/dismiss", "operator",
               R"({"filter":{"device":"FG-BAKERY","rule":"ue.capture"},"false_positive":true})");
  EXPECT_GE(bulk["matched"].get<int>(), 1) << bulk.dump();
  EXPECT_EQ(bulk["changed"], 0) << bulk.dump();
  EXPECT_EQ(Http("POST", "/v1/alerts/dismiss", tokens_["operator"], R"({"filter":{}})").first,
            "400");

  json timeline = HttpJson("GET", "/v1/devices/FG-BAKERY/timeline", "operator");
  std::set<std::string> kinds;
  std::string last_ts;
  for (const json& e : timeline["timeline"]) {
    kinds.insert(e.value("kind", ""));
    EXPECT_LE(last_ts, e.value("ts", "")) << "in time order";
    last_ts = e.value("ts", "");
  }
  EXPECT_TRUE(kinds.count("alert")) << timeline.dump();
  EXPECT_TRUE(kinds.count("action")) << timeline.dump();
  EXPECT_TRUE(kinds.count("location")) << timeline.dump();
  EXPECT_THAT(timeline.dump(), HasSubstr("block.remove"));
  EXPECT_EQ(Http("GET", "/v1/devices/FG-NOPE/timeline", tokens_["operator"]).first, "404");
}

TEST_F(UndoTest, BlockRemoveAndBulkDismissFromTheCli) {
  auto none = Fg({"block", "remove", "--data", data_, "--device", "FG-NOBLOCK"});
  EXPECT_EQ(none.exit_code, 3) << none.out;
  EXPECT_EQ(Fg({"alert", "dismiss", "--data", data_}).exit_code, 2) << "no id and no filter";
  // An unregistered cell's session: device.unknown blocks it.
  json r = HttpJson(
      "POST", "/v1/events", "ingest",
      R"({"ts":")" + NowTs() +
          R"(","type":"session.up","device":"FG-STRANGER","session":"x-1",)"
          R"("cert_fp":"sha256:ff","src_ip":"198.51.100.7","endpoint":"segw1","segw":"segw1"})"
          "\n");
  EXPECT_EQ(r.value("accepted", 0), 1) << r.dump();
  std::string listed;
  for (int i = 0; i < 50 && listed.find("FG-STRANGER") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    listed = Fg({"block", "list", "--data", data_, "--kind", "device"}).out;
  }
  ASSERT_THAT(listed, HasSubstr("FG-STRANGER"));
  auto bulk = Fg(
      {"alert", "dismiss", "--data", data_, "--rule", "device.unknown", "--device", "FG-STRANGER"});
  EXPECT_EQ(bulk.exit_code, 0) << bulk.out;
  EXPECT_THAT(Fg({"block", "list", "--data", data_}).out, HasSubstr("FG-STRANGER"))
      << "a plain dismiss keeps the block";
  auto removed =
      Fg({"block", "remove", "--data", data_, "--device", "FG-STRANGER", "--reason", "lab unit"});
  EXPECT_EQ(removed.exit_code, 0) << removed.out;
  EXPECT_THAT(Fg({"block", "list", "--data", data_}).out, Not(HasSubstr("FG-STRANGER")));
  EXPECT_THAT(Fg({"audit", "list", "--data", data_, "--limit", "50"}).out, HasSubstr("lab unit"));
}

// A restart replays the journal, which fires the same alerts again (same
// ids, not acted on twice): what an operator undid must not come back.
TEST_F(UndoTest, AnUndoSurvivesARestartOfServe) {
  delete serve_;
  serve_ =
      new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"}, *dir_ / "serve2.log");
  ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(*dir_ / "serve2.log");
  // Admission may hold a replayed alert's block in memory until its next
  // change-feed pass (250 ms) sees the alert already stored.
  std::string admit, pay;
  for (int i = 0; i < 40 && (admit != "allow" || pay != "allow"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    admit = Admit("FG-CAFE", "r-" + std::to_string(i));
    pay = Pay(kGuestB);
  }
  EXPECT_EQ(admit, "allow") << ReadAll(*dir_ / "serve2.log");
  EXPECT_EQ(pay, "allow")
      << "the replayed alert must not make the undone cell suspect or hold B again";
  EXPECT_EQ(Pay(kGuestC), "allow");
  EXPECT_THAT(Fg({"block", "list", "--data", data_, "--kind", "payments"}).out,
              Not(HasSubstr("imsi:")));
}

}  // namespace
}  // namespace fg::testing
