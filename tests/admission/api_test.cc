// POST /v1/admission's handler: JSON in, decision out; malformed bodies are
// 400, counted, and decide nothing.

#include "admission/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "admission/admission_fixture.h"
#include "common/metrics.h"

namespace fg::admission {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// Records what it was asked.
class RecordingGate final : public Gate {
 public:
  Decision Admit(const AdmissionRequest& r) override {
    requests.push_back(r);
    Decision d;
    d.verdict = Verdict::kQuarantine;
    d.reasons = {"location.gnss"};
    d.evidence = {{"gnss.distance_m", "4000"}};
    return d;
  }
  void SessionDown(std::string_view, std::string_view) override {}
  std::vector<AdmissionRequest> requests;
};

TEST(AdmissionApiTest, ParsesEveryFieldOfASessionUpPlusOptionalOnes) {
  RecordingGate gate;
  int status = 0;
  std::string out = HandleAdmissionJson(gate, R"({
    "ts": "2025-01-01T00:00:00Z", "type": "session.up", "unknown_field": [1, 2],
    "device": "FG-1", "session": "ike-9", "cert_fp": "sha256:ab", "src_ip": "203.0.113.1",
    "endpoint": "segw1:4500", "segw": "segw-a", "serial": "1A2B",
    "gnss": {"lat": 37.5, "lon": 127.25, "acc_m": 12.5},
    "rem": [{"mcc": 450, "mnc": 8, "tac": 4660, "eci": 123456789, "pci": 101, "earfcn": 1300, "rsrp": -95.5},
            {"mcc": 450, "mnc": 8, "pci": 7}]})", &status);
  EXPECT_EQ(status, 200);
  ASSERT_EQ(gate.requests.size(), 1u);
  const AdmissionRequest& r = gate.requests[0];
  EXPECT_EQ(r.device, "FG-1");
  EXPECT_EQ(r.session, "ike-9");
  EXPECT_EQ(r.cert_fp, "sha256:ab");
  EXPECT_EQ(r.src_ip, "203.0.113.1");
  EXPECT_EQ(r.endpoint, "segw1:4500");
  EXPECT_EQ(r.segw, "segw-a");
  EXPECT_EQ(r.serial, "1A2B");
  EXPECT_EQ(r.now_ms, 0);  // never taken from the body
  ASSERT_TRUE(r.gnss.has_value());
  EXPECT_DOUBLE_EQ(r.gnss->lat, 37.5);
  EXPECT_DOUBLE_EQ(r.gnss->lon, 127.25);
  EXPECT_DOUBLE_EQ(r.gnss->acc_m, 12.5);
  ASSERT_EQ(r.rem.size(), 2u);
  EXPECT_EQ(r.rem[0].eci, 123456789u);
  EXPECT_EQ(r.rem[0].tac, 4660u);
  EXPECT_EQ(r.rem[0].pci, 101);
  EXPECT_EQ(r.rem[0].earfcn, 1300);
  EXPECT_DOUBLE_EQ(r.rem[0].rsrp, -95.5);
  EXPECT_EQ(r.rem[1].eci, 0u);
  EXPECT_EQ(r.rem[1].pci, 7);

  json j = json::parse(out);
  EXPECT_EQ(j["decision"], "quarantine");
  EXPECT_EQ(j["reasons"], json::array({"location.gnss"}));
  EXPECT_EQ(j["evidence"]["gnss.distance_m"], "4000");
}

TEST(AdmissionApiTest, MalformedBodiesAre400CountedAndDecideNothing) {
  const char* bodies[] = {
      "",
      "not json",
      "[1,2]",
      "{\"session\": \"1\"}",
      "{\"device\": \"\"}",
      "{\"device\": 42}",
      "{\"device\": \"FG-1\", \"src_ip\": 7}",
      "{\"device\": \"FG-1\", \"gnss\": \"here\"}",
      "{\"device\": \"FG-1\", \"gnss\": {\"lat\": 91, \"lon\": 0}}",
      "{\"device\": \"FG-1\", \"gnss\": {\"lon\": 0}}",
      "{\"device\": \"FG-1\", \"rem\": {}}",
      "{\"device\": \"FG-1\", \"rem\": [7]}",
      "{\"device\": \"FG-1\", \"rem\": [{\"pci\": 5000}]}",
      "{\"device\": \"FG-1\", \"rem\": [{\"mcc\": \"450\"}]}",
      "{\"device\": \"FG-1\", \"rem\": [{\"rsrp\": 20}]}",
      "{\"device\": \"FG-1\"",
  };
  RecordingGate gate;
  for (const char* body : bodies) {
    uint64_t before = Metrics::Global().Value("femtoguard_admission_api_bad_requests_total");
    int status = 0;
    std::string out = HandleAdmissionJson(gate, body, &status);
    EXPECT_EQ(status, 400) << body;
    json j = json::parse(out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << out;
    EXPECT_TRUE(j.contains("error")) << out;
    EXPECT_FALSE(j.contains("decision")) << out;
    EXPECT_EQ(Metrics::Global().Value("femtoguard_admission_api_bad_requests_total"), before + 1) << body;
  }
  EXPECT_TRUE(gate.requests.empty());
  int status = 0;
  std::string missing = HandleAdmissionJson(gate, "{\"session\": \"1\"}", &status);
  EXPECT_THAT(missing, HasSubstr("device"));
  // Oversized bodies and scans.
  std::string big = "{\"device\":\"FG-1\",\"segw\":\"" + std::string(kMaxAdmissionBody, 'x') + "\"}";
  HandleAdmissionJson(gate, big, &status);
  EXPECT_EQ(status, 400);
  json many = {{"device", "FG-1"}, {"rem", json::array()}};
  for (size_t i = 0; i <= kMaxRemCells; ++i) many["rem"].push_back({{"pci", 1}});
  HandleAdmissionJson(gate, many.dump(), &status);
  EXPECT_EQ(status, 400);
  EXPECT_TRUE(gate.requests.empty());
}

TEST_F(AdmissionTest, JsonHandlerDrivesTheRealEngine) {
  Certificate c = AddActiveDevice("FG-1", {"203.0.113.0/24"});
  auto engine = MakeEngine();
  json req = {{"device", "FG-1"},     {"session", "ike-1"},        {"cert_fp", c.cert_fp},
              {"serial", c.serial},   {"src_ip", "203.0.113.5"},   {"endpoint", "segw1:4500"},
              {"segw", "segw-a"}};
  int status = 0;
  json allow = json::parse(HandleAdmissionJson(*engine, req.dump(), &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(allow["decision"], "allow");
  EXPECT_TRUE(allow["reasons"].empty());
  req["session"] = "ike-2";
  req["src_ip"] = "198.51.100.9";
  json deny = json::parse(HandleAdmissionJson(*engine, req.dump(), &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(deny["decision"], "deny");
  EXPECT_EQ(deny["reasons"], json::array({"cert.clone", "location.line"}));
  EXPECT_EQ(deny["evidence"]["clone.session"], "ike-1");
  // A malformed body leaves no trace in the decision log.
  HandleAdmissionJson(*engine, "{oops", &status);
  EXPECT_EQ(status, 400);
  ASSERT_TRUE(engine->FlushLog().ok());
  std::string log = testing::ReadAll(LogPath());
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2);
}

}  // namespace
}  // namespace fg::admission
