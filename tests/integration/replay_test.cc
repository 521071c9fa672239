// `femtoguard replay` as an operator runs it (DESIGN.md §3.1): bad lines
// reported with their number, counted and skipped while the rest is
// processed; bad arguments refused; and the privacy grep: raw IMSIs, IMEIs
// and MSISDNs given as input appear nowhere in what replay writes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/pseudonym.h"
#include "testing/harness.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RunResult Fg(std::vector<std::string> args) {
  args.insert(args.begin(), Femtoguard());
  return fg::testing::Run(args, {}, 120);
}

std::vector<nlohmann::json> Alerts(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadAll(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "alerts are JSON Lines: " << line;
    out.push_back(j);
  }
  return out;
}

constexpr char kCells[] =
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,450,8,1234,123456789,301,127.0,37.5,2000,10,1,1500000000,1600000000,0\n";

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteAll(dir_ / "cells.csv", kCells);
    WriteAll(dir_ / "registry.jsonl",
             R"({"device":"FG-0000001","status":"active","mode":"closed","site":{"lat":37.5,"lon":127.0,"radius_m":150},"prefixes":["211.36.128.0/20"],"csg":["450081111111111"],"cert_fp":"sha256:01"})"
             "\n"
             R"({"device":"FG-0000002","status":"active","mode":"open","site":{"lat":37.5,"lon":127.0,"radius_m":150}})"
             "\n");
  }
  std::vector<std::string> Args(const std::string& events) {
    return {"replay",          "--registry", dir_ / "registry.jsonl", "--cells", dir_ / "cells.csv",
            "--events",        events,       "--alerts",              dir_ / "alerts.jsonl"};
  }
  TempDir dir_;
};

TEST_F(ReplayTest, BadLinesAreReportedWithTheirNumberCountedAndSkipped) {
  std::string cells300 = "[";
  for (int i = 0; i < 300; ++i) cells300 += std::string(i ? "," : "") + R"({"pci":1,"earfcn":1850})";
  cells300 += "]";
  std::vector<std::string> lines = {
      /*1*/ R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","device":"FG-0000001","session":"s1","cert_fp":"sha256:01","src_ip":"211.36.130.4","endpoint":"segw1:500","segw":"g1"})",
      /*2*/ R"({"ts":"2025-09-01T12:00:01Z","type":"session.up","device":"FG-0000001")",
      /*3*/ R"({"ts":"2025-09-01T12:00:02Z","type":"handover.request","device":"FG-0000001"})",
      /*4*/ R"({"ts":"2025-09-01T12:00:03Z","type":"session.up","device":")" + std::string(65, 'D') +
          R"(","session":"s2"})",
      /*5*/ R"({"ts":"2025-09-01T12:00:04Z","type":"session.down","device":"FG-0000001","pad":")" +
          std::string(70000, 'p') + R"("})",
      /*6*/ R"({"ts":"2025-09-01T12:00:05Z","type":"rem.scan","device":"FG-0000001","cells":)" + cells300 + "}",
      /*7*/ "",
      /*8*/ R"({"ts":"2025-09-01T12:00:06Z","type":"location.report","device":"FG-0000001","lat":37.5,"lon":127.0,"acc_m":5,"vendor":{"x":1}})",
      /*9*/ R"({"ts":"2025-09-01T12:00:07Z","type":"session.up","session":"s3"})",
      /*10*/ R"({"ts":"tomorrow","type":"session.down","device":"FG-0000001","session":"s1"})",
      /*11*/ R"({"ts":"2025-09-01T12:00:08Z","type":"future.event"})",
      /*12*/ R"({"ts":"2025-09-01T12:00:09Z","type":"session.down","device":"FG-0000001","session":"s1"})",
  };
  std::string events;
  for (const auto& l : lines) events += l + "\n";
  WriteAll(dir_ / "events.jsonl", events);

  auto r = Fg(Args(dir_ / "events.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string ev = "events.jsonl:";
  EXPECT_THAT(r.out, HasSubstr(ev + "2: not valid JSON"));
  EXPECT_THAT(r.out, HasSubstr(ev + "4: field 'device': oversized (more than 64 bytes)"));
  EXPECT_THAT(r.out, HasSubstr(ev + "5: line longer than 65536 bytes (oversized)"));
  EXPECT_THAT(r.out, HasSubstr(ev + "6: field 'cells': oversized (more than 256 entries)"));
  EXPECT_THAT(r.out, HasSubstr(ev + "9: session.up: missing field 'device'"));
  EXPECT_THAT(r.out, HasSubstr(ev + "10: field 'ts': not an RFC 3339 timestamp"));
  // Good, blank and unknown-type lines are not reported as errors.
  for (int good : {1, 3, 7, 8, 11, 12}) EXPECT_THAT(r.out, Not(HasSubstr(ev + std::to_string(good) + ":"))) << good;

  // The summary counts every outcome; the good lines were processed.
  EXPECT_THAT(r.out, HasSubstr("events: 3 processed"));
  EXPECT_THAT(r.out, HasSubstr("unknown types    2"));
  EXPECT_THAT(r.out, HasSubstr("malformed        6"));
  EXPECT_THAT(r.out, HasSubstr("session.up       1"));
  EXPECT_THAT(r.out, HasSubstr("session.down     1"));
  EXPECT_THAT(r.out, HasSubstr("location.report  1"));
  EXPECT_THAT(r.out, HasSubstr("2 devices registered (0 registry lines rejected)"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "alerts.jsonl"));
  for (const auto& a : Alerts(dir_ / "alerts.jsonl")) {
    EXPECT_NE(a["device"], "FG-0000001") << "a registered, well-behaved device: " << a.dump();
  }
}

TEST_F(ReplayTest, BadRegistryLinesAreReportedAndTheRestLoaded) {
  WriteAll(dir_ / "registry.jsonl",
           R"({"device":"FG-0000001","status":"active"})"
           "\n"
           R"({"device":"FG-0000002","status":"sideways"})"
           "\n"
           "not json\n"
           R"({"device":"FG-0000003","status":"active"})"
           "\n");
  WriteAll(dir_ / "events.jsonl", "");
  auto r = Fg(Args(dir_ / "events.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("registry.jsonl:2: field 'status'"));
  EXPECT_THAT(r.out, HasSubstr("registry.jsonl:3: "));
  EXPECT_THAT(r.out, HasSubstr("2 devices registered (2 registry lines rejected)"));
  EXPECT_THAT(r.out, HasSubstr("events: 0 processed"));
}

TEST_F(ReplayTest, BadArgumentsAndUnreadableFilesExit2) {
  WriteAll(dir_ / "events.jsonl", "");
  auto missing = Fg({"replay", "--registry", dir_ / "registry.jsonl", "--cells", dir_ / "cells.csv", "--alerts",
                     dir_ / "a.jsonl"});
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("missing --events"));

  auto no_events = Fg(Args(dir_ / "nope.jsonl"));
  EXPECT_EQ(no_events.exit_code, 2) << no_events.out;
  EXPECT_THAT(no_events.out, HasSubstr("nope.jsonl"));

  auto args = Args(dir_ / "events.jsonl");
  args[2] = dir_ / "no-registry.jsonl";
  auto no_registry = Fg(args);
  EXPECT_EQ(no_registry.exit_code, 2) << no_registry.out;

  args = Args(dir_ / "events.jsonl");
  WriteAll(dir_ / "bad.csv", "radio,mcc\nLTE,450\n");
  args[4] = dir_ / "bad.csv";
  auto bad_cells = Fg(args);
  EXPECT_EQ(bad_cells.exit_code, 2) << bad_cells.out;

  args = Args(dir_ / "events.jsonl");
  WriteAll(dir_ / "rules.yaml", "rules:\n  cert.clone:\n    actions: [notify, explode]\n");
  args.insert(args.end(), {"--rules", dir_ / "rules.yaml"});
  auto bad_rules = Fg(args);
  EXPECT_EQ(bad_rules.exit_code, 2) << bad_rules.out;
  EXPECT_THAT(bad_rules.out, HasSubstr("rules.cert.clone.actions[1]: unknown action 'explode'"));

  args = Args(dir_ / "events.jsonl");
  args.insert(args.end(), {"--data", dir_ / "no-data-dir"});
  auto bad_data = Fg(args);
  EXPECT_EQ(bad_data.exit_code, 2) << bad_data.out;

  args = Args(dir_ / "events.jsonl");
  args[8] = dir_ / "no-such-dir/alerts.jsonl";
  auto bad_out = Fg(args);
  EXPECT_EQ(bad_out.exit_code, 2) << bad_out.out;
}

// Every file under `root`, whole, as bytes.
std::string EverythingUnder(const std::filesystem::path& root) {
  std::string all;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) all += ReadAll(e.path().string());
  }
  return all;
}

TEST_F(ReplayTest, NoRawSubscriberIdentityLeavesReplay) {
  const std::string data = dir_ / "data";
  auto init = Fg({"init", "--data", data});
  ASSERT_EQ(init.exit_code, 0) << init.out;

  // Raw identities as a network would log them. The CSG member is in the
  // registry; the others in events, in every field that carries one,
  // including a line that is refused.
  std::vector<std::string> imsis, imeis, msisdns;
  for (int i = 0; i < 6; ++i) {
    imsis.push_back("45008" + std::to_string(7000000000 + i * 1111));
    imeis.push_back("3539180" + std::to_string(5000000 + i * 7));
    msisdns.push_back("8210" + std::to_string(55500000 + i * 3));
  }
  const std::string member = "450081111111111";
  std::string events;
  auto add = [&](const std::string& l) { events += l + "\n"; };
  int sec = 0;
  auto ts = [&] {
    char buf[32];
    std::snprintf(buf, sizeof buf, "2025-09-01T12:%02d:%02dZ", sec / 60, sec % 60);
    ++sec;
    return std::string(buf);
  };
  // A rogue, unregistered femtocell capturing subscribers, relaying their
  // OTPs; then their payments.
  add(R"({"ts":")" + ts() + R"(","type":"session.up","device":"FG-ROGUE","session":"r1","cert_fp":"sha256:ff","src_ip":"1.2.3.4","endpoint":"segw1:500","segw":"g1"})");
  for (size_t i = 0; i < imsis.size(); ++i) {
    add(R"({"ts":")" + ts() + R"(","type":"ue.attach","device":"FG-ROGUE","imsi":")" + imsis[i] + R"(","imei":")" +
        imeis[i] + R"("})");
    add(R"({"ts":")" + ts() + R"(","type":"sms.deliver","device":"FG-ROGUE","imsi":")" + imsis[i] +
        R"(","sender":"KB-Bank","class":"otp"})");
    add(R"({"ts":")" + ts() + R"(","type":"sms.deliver","device":"FG-ROGUE","imsi":")" + imsis[i] + R"(","sender":"+)" +
        msisdns[(i + 1) % msisdns.size()] + R"(","class":"p2p"})");
    add(R"({"ts":")" + ts() + R"(","type":"payment.auth","imsi":")" + imsis[i] + R"(","msisdn":")" + msisdns[i] +
        R"(","merchant":"shop","amount":50000,"currency":"KRW","channel":"sms_otp"})");
    add(R"({"ts":")" + ts() + R"(","type":"meas.report","imsi":")" + imsis[i] +
        R"(","serving_eci":123456789,"lat":37.5,"lon":127.0,"neighbors":[{"pci":999,"earfcn":1850,"rsrp":-80}]})");
  }
  add(R"({"ts":")" + ts() + R"(","type":"ue.attach","device":"FG-0000001","imsi":")" + member + R"("})");
  // Refused lines that carry identities: never echoed.
  add(R"({"ts":")" + ts() + R"(","type":"ue.attach","imsi":")" + imsis[0] + R"("})");
  add(R"({"ts":")" + ts() + R"(","type":"ue.attach","device":"FG-ROGUE","imsi":")" + imsis[1] + R"(","imei":")" +
      imeis[1] + R"(-bad"})");
  add(R"({"ts":")" + ts() + R"(","type":"payment.auth","imsi":")" + imsis[2] + R"(X"})");
  WriteAll(dir_ / "events.jsonl", events);

  auto args = Args(dir_ / "events.jsonl");
  args.insert(args.end(), {"--data", data});
  auto r = Fg(args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("malformed        3"));

  std::string alerts_text = ReadAll(dir_ / "alerts.jsonl");
  std::string data_text = EverythingUnder(data);
  std::vector<std::string> raw = imsis;
  raw.insert(raw.end(), imeis.begin(), imeis.end());
  raw.insert(raw.end(), msisdns.begin(), msisdns.end());
  raw.push_back(member);
  for (const std::string& v : raw) {
    EXPECT_EQ(alerts_text.find(v), std::string::npos) << "raw identity in the alerts";
    EXPECT_EQ(r.out.find(v), std::string::npos) << "raw identity on stdout/stderr";
    EXPECT_EQ(data_text.find(v), std::string::npos) << "raw identity in the data dir";
    // Nor the digits without their country prefix (a careless "normalisation").
    EXPECT_EQ(alerts_text.find(v.substr(3)), std::string::npos);
  }

  // The test is only meaningful if alerts about these subscribers exist:
  // they carry the data dir's keyed pseudonyms, not anything else.
  auto alerts = Alerts(dir_ / "alerts.jsonl");
  auto key = DataDir(data).LoadPseudonymKey();
  ASSERT_TRUE(key.ok());
  Pseudonymizer p(*key);
  std::set<std::string> expected;
  for (const auto& i : imsis) expected.insert(p.Pseudonymize("imsi", i));
  size_t with_subjects = 0;
  for (const auto& a : alerts) {
    for (const auto& s : a["subjects"]) {
      EXPECT_TRUE(std::regex_match(s.get<std::string>(), std::regex("imsi:[0-9a-f]{24}"))) << s;
      EXPECT_TRUE(expected.count(s.get<std::string>())) << "a subject that is not one of ours: " << s;
      ++with_subjects;
    }
  }
  EXPECT_GT(alerts.size(), 0u) << r.out;
  EXPECT_GT(with_subjects, 0u) << "no alert named a subscriber: the privacy check would be vacuous\n" << r.out;
}

TEST_F(ReplayTest, WithoutADataDirEachRunHasItsOwnKey) {
  std::string events;
  events += R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","device":"FG-ROGUE","session":"r1","src_ip":"1.2.3.4","endpoint":"e","segw":"g"})"
            "\n";
  for (int i = 0; i < 4; ++i) {
    events += R"({"ts":"2025-09-01T12:00:0)" + std::to_string(i + 1) +
              R"(Z","type":"ue.attach","device":"FG-ROGUE","imsi":"45008700000000)" + std::to_string(i) + "\"}\n";
  }
  WriteAll(dir_ / "events.jsonl", events);
  auto subjects = [&] {
    auto r = Fg(Args(dir_ / "events.jsonl"));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::set<std::string> out;
    for (const auto& a : Alerts(dir_ / "alerts.jsonl"))
      for (const auto& s : a["subjects"]) out.insert(s.get<std::string>());
    return out;
  };
  auto first = subjects();
  auto second = subjects();
  if (first.empty()) GTEST_SKIP() << "no detector of this build names subscribers for this input";
  for (const auto& s : first) EXPECT_EQ(second.count(s), 0u) << "same pseudonym across runs without --data";
}

}  // namespace
}  // namespace fg::testing
