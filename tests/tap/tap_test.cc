// femtoguard tap on the real lab captures (../shared/captures, README
// there) and on synthetic tshark output. Each capture's events are checked
// against what tshark itself prints for the same file with `-T fields`.

#include "tap/tap.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/pseudonym.h"
#include "testing/harness.h"

namespace fg::tap {
namespace {

namespace fs = std::filesystem;

using fg::testing::TempDir;
using nlohmann::json;

const std::string kKey = std::string(32, 'k');

// FEMTOGUARD_CAPTURES_DIR, else FG_SOURCE_DIR/../shared/captures.
fs::path CapturesDir() {
  if (const char* e = std::getenv("FEMTOGUARD_CAPTURES_DIR"); e && *e) return e;
  return fs::path(FG_SOURCE_DIR) / ".." / "shared" / "captures";
}

#define REQUIRE_CAPTURES()                                                                              \
  if (!fs::is_directory(CapturesDir()))                                                                 \
  GTEST_SKIP() << "no capture directory at " << CapturesDir()                                           \
               << " (the lab captures live outside the repository; set FEMTOGUARD_CAPTURES_DIR)"

std::vector<json> ReadEvents(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(fg::testing::ReadAll(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

// What tshark's own field output says about one capture.
struct Expected {
  std::vector<uint64_t> s1_setup_enb_ids;  // in frame order
  std::vector<std::string> ng_setup_gnb_ids;
  std::set<std::string> imsis;             // raw, from S1AP/NGAP frames only
  int nas_detaches = 0;
};

Expected FromTshark(const std::string& pcap) {
  auto r = fg::testing::Run({"tshark", "-r", pcap, "-n", "-Y", "sctp && (s1ap || ngap)", "-T", "fields", "-E", "separator=/t",
                "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number", "-e", "s1ap.procedureCode", "-e",
                "s1ap.initiatingMessage_element", "-e", "s1ap.macroENB_ID", "-e", "s1ap.homeENB_ID", "-e",
                "ngap.procedureCode", "-e", "ngap.initiatingMessage_element", "-e", "ngap.gNB_ID", "-e", "e212.imsi",
                "-e", "e212.mcc", "-e", "e212.mnc", "-e", "nas_5gs.mm.suci.msin", "-e", "nas_eps.nas_msg_emm_type"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  Expected e;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto f = Split(line, '\t');
    if (f.size() != 13 || f[0].empty() || !std::isdigit(static_cast<unsigned char>(f[0][0]))) continue;
    auto procs1 = Split(f[1], ',');
    if (!f[2].empty() && std::find(procs1.begin(), procs1.end(), "17") != procs1.end()) {
      const std::string& hex = !f[4].empty() ? f[4] : f[3];
      uint64_t v = std::stoull(hex, nullptr, 16);
      e.s1_setup_enb_ids.push_back(!f[4].empty() ? v >> 4 : v >> (hex.size() * 4 - 20));
    }
    auto procs5 = Split(f[5], ',');
    if (!f[6].empty() && std::find(procs5.begin(), procs5.end(), "21") != procs5.end()) e.ng_setup_gnb_ids.push_back(f[7]);
    if (!f[8].empty()) e.imsis.insert(Split(f[8], ',')[0]);
    if (!f[11].empty()) {
      std::string mnc = f[10];
      if (mnc.size() == 1) mnc = "0" + mnc;
      e.imsis.insert(f[9] + mnc + f[11]);
    }
    for (const auto& t : Split(f[12], ','))
      if (t == "0x45") ++e.nas_detaches;
  }
  return e;
}

class CaptureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CaptureTest, EventsMatchTsharksOwnFieldsAndCarryNoRawImsi) {
  REQUIRE_CAPTURES();
  const std::string pcap = (CapturesDir() / GetParam()).string();
  ASSERT_TRUE(fs::exists(pcap)) << pcap;
  TempDir tmp;
  fg::testing::WriteAll(tmp / "key", kKey);
  ::chmod((tmp / "key").c_str(), 0600);
  auto r = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", pcap, "--out", tmp / "events.jsonl", "--pseudonym-key",
                tmp / "key"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string text = fg::testing::ReadAll(tmp / "events.jsonl");
  const std::vector<json> events = ReadEvents(tmp / "events.jsonl");
  const Expected want = FromTshark(pcap);

  // Setups: one event per S1SetupRequest/NGSetupRequest, with tshark's ids.
  std::vector<uint64_t> enb_ids;
  std::vector<std::string> gnb_ids;
  for (const auto& e : events) {
    if (e["type"] == "s1.setup") enb_ids.push_back(e["enb_id"].get<uint64_t>());
    if (e["type"] == "ng.setup") gnb_ids.push_back(e["gnb_id"].get<std::string>());
  }
  EXPECT_EQ(enb_ids, want.s1_setup_enb_ids);
  EXPECT_EQ(gnb_ids, want.ng_setup_gnb_ids);

  // Every IMSI tshark sees on S1AP/NGAP is a ue.attach subject, pseudonymized
  // under the key; no other subject appears.
  Pseudonymizer p(kKey);
  std::set<std::string> want_subjects, got_subjects, detach_subjects;
  for (const auto& i : want.imsis) want_subjects.insert(p.Pseudonymize("imsi", i));
  int nas_detach_events = 0;
  for (const auto& e : events) {
    if (e["type"] == "ue.attach") got_subjects.insert(e["imsi"].get<std::string>());
    if (e["type"] == "ue.detach") {
      detach_subjects.insert(e["imsi"].get<std::string>());
      if (e["cause"] == "detach") ++nas_detach_events;
    }
  }
  EXPECT_EQ(got_subjects, want_subjects);
  for (const auto& s : detach_subjects) EXPECT_TRUE(want_subjects.count(s)) << "detach of an unknown subject " << s;
  EXPECT_LE(nas_detach_events, want.nas_detaches);

  // The raw values never appear, in any form (digits, or the MSIN alone).
  for (const auto& i : want.imsis) {
    EXPECT_EQ(text.find(i), std::string::npos) << "raw IMSI in the tap's output";
    EXPECT_EQ(text.find(i.substr(5)), std::string::npos) << "raw MSIN in the tap's output";
  }
  EXPECT_EQ(r.out.find(want.imsis.empty() ? std::string("\x01") : *want.imsis.begin()), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(LabCaptures, CaptureTest,
                         ::testing::Values("s1ap.pcap", "enb.pcap", "mme.pcap", "quectel.pcap", "Pixel.pcap",
                                           "multiple_ue.pcap"),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.find('.'));
                           return n;
                         });

// What each capture holds, pinned: a change of tshark's field names would
// otherwise pass the comparison above with both sides empty.
TEST(TapCaptures, KnownContentIsFound) {
  REQUIRE_CAPTURES();
  TempDir tmp;
  fg::testing::WriteAll(tmp / "key", kKey);
  ::chmod((tmp / "key").c_str(), 0600);
  std::map<std::string, std::map<std::string, int>> counts;
  for (const char* f : {"s1ap.pcap", "quectel.pcap", "multiple_ue.pcap"}) {
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", (CapturesDir() / f).string(), "--out",
                  tmp / "e.jsonl", "--pseudonym-key", tmp / "key"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    for (const auto& e : ReadEvents(tmp / "e.jsonl")) ++counts[f][e["type"].get<std::string>()];
  }
  // s1ap.pcap: a GUTI attach whose IMSI the Identity procedure reveals, then
  // a network detach and the context release.
  EXPECT_EQ(counts["s1ap.pcap"]["ue.attach"], 1);
  EXPECT_EQ(counts["s1ap.pcap"]["ue.detach"], 1);
  EXPECT_EQ(counts["quectel.pcap"]["s1.setup"], 2);
  EXPECT_GE(counts["quectel.pcap"]["ue.attach"], 1);
  EXPECT_EQ(counts["multiple_ue.pcap"]["ng.setup"], 1);
  EXPECT_EQ(counts["multiple_ue.pcap"]["ue.attach"], 2);
}

TEST(TapCli, BadInputIsExitTwoAndWritesNothing) {
  TempDir tmp;
  fg::testing::WriteAll(tmp / "key", kKey);
  ::chmod((tmp / "key").c_str(), 0600);
  fg::testing::WriteAll(tmp / "junk.pcap", "this is not a capture\n");
  const std::string out = tmp / "out.jsonl";
  auto missing = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / "nope.pcap", "--out", out, "--pseudonym-key",
                      tmp / "key"});
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_NE(missing.out.find("nope.pcap"), std::string::npos) << missing.out;
  auto junk = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / "junk.pcap", "--out", out, "--pseudonym-key",
                   tmp / "key"});
  EXPECT_EQ(junk.exit_code, 2) << junk.out;
  EXPECT_NE(junk.out.find("tshark"), std::string::npos) << junk.out;
  auto both = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / "junk.pcap", "--interface", "lo", "--out", out,
                   "--pseudonym-key", tmp / "key"});
  EXPECT_EQ(both.exit_code, 2) << both.out;
  auto no_key = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / "junk.pcap", "--out", out}, {}, 60,
                    {"FEMTOGUARD_DATA="});
  EXPECT_EQ(no_key.exit_code, 2) << no_key.out;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

// The builder on hand-written tshark output: the identity procedure names
// the subscriber after the attach request; a packet bundling two UEs' PDUs
// is not guessed at; the raw IMSI never reaches the sink.
TEST(EventBuilder, AttachIdentityReleaseFromEkLines) {
  Pseudonymizer p(kKey);
  std::vector<std::string> lines;
  EventBuilder b(p, {{"50501:3585", "FG-1"}}, [&lines](const std::string& l) {
    lines.push_back(l);
    return Status::Ok();
  });
  auto feed = [&b](const std::string& layers) {
    ASSERT_TRUE(b.OnEkLine("{\"index\":{\"_index\":\"packets\"}}").ok());
    ASSERT_TRUE(b.OnEkLine("{\"timestamp\":\"1\",\"layers\":" + layers + "}").ok());
  };
  feed(R"({"frame_time_epoch":["1614692925.488"],"ip_src":["10.0.0.2"],"ip_dst":["10.0.0.1"],"s1ap_procedureCode":["17"],"s1ap_initiatingMessage_element":[""],"s1ap_macroENB_ID":["00e010"],"s1ap_pLMNidentity":["05f510"],"s1ap_PLMNidentity":["05f510"],"s1ap_tAC":["1"],"s1ap_ENBname":["lab"]})");
  feed(R"({"frame_time_epoch":["1614692926.000"],"ip_src":["10.0.0.2"],"ip_dst":["10.0.0.1"],"s1ap_procedureCode":["12"],"s1ap_initiatingMessage_element":[""],"s1ap_ENB_UE_S1AP_ID":["7"],"nas_eps_nas_msg_emm_type":["0x41"],"s1ap_CellIdentity":["0x000e0101"],"s1ap_tAC":["1"]})");
  EXPECT_EQ(lines.size(), 1u) << "no ue.attach before the identity is known";
  feed(R"({"frame_time_epoch":["1614692926.100"],"ip_src":["10.0.0.2"],"ip_dst":["10.0.0.1"],"s1ap_procedureCode":["13"],"s1ap_initiatingMessage_element":[""],"s1ap_ENB_UE_S1AP_ID":["7"],"nas_eps_nas_msg_emm_type":["0x56"],"e212_imsi":["505010000000001"]})");
  // Two UEs in one packet: ambiguous, nothing is bound.
  feed(R"({"frame_time_epoch":["1614692926.200"],"ip_src":["10.0.0.2"],"ip_dst":["10.0.0.1"],"s1ap_procedureCode":["13","13"],"s1ap_initiatingMessage_element":[""],"s1ap_ENB_UE_S1AP_ID":["7","8"],"e212_imsi":["505010000000099"]})");
  feed(R"({"frame_time_epoch":["1614692927.000"],"ip_src":["10.0.0.1"],"ip_dst":["10.0.0.2"],"s1ap_procedureCode":["23"],"s1ap_initiatingMessage_element":[""],"s1ap_ENB_UE_S1AP_ID":["7"]})");
  ASSERT_TRUE(b.Finish().ok());
  ASSERT_EQ(lines.size(), 3u);
  json setup = json::parse(lines[0]), attach = json::parse(lines[1]), detach = json::parse(lines[2]);
  EXPECT_EQ(setup["type"], "s1.setup");
  EXPECT_EQ(setup["enb_id"], 3585);
  EXPECT_EQ(setup["plmn"], "50501");
  EXPECT_EQ(setup["device"], "FG-1");
  EXPECT_EQ(setup["access_mode"], "open");
  EXPECT_EQ(attach["type"], "ue.attach");
  EXPECT_EQ(attach["device"], "FG-1");
  EXPECT_EQ(attach["imsi"], p.Pseudonymize("imsi", "505010000000001"));
  EXPECT_EQ(attach["eci"], 0x000e0101);
  EXPECT_EQ(attach["ts"], "2021-03-02T13:48:46.100Z");
  EXPECT_EQ(detach["type"], "ue.detach");
  EXPECT_EQ(detach["cause"], "release");
  for (const auto& l : lines) {
    EXPECT_EQ(l.find("505010000000001"), std::string::npos);
    EXPECT_EQ(l.find("505010000000099"), std::string::npos);
  }
  EXPECT_EQ(b.stats().attaches_without_imsi, 0u);
}

TEST(EventBuilder, PlmnFromTbcd) {
  EXPECT_EQ(PlmnFromHex("05f510"), "50501");
  EXPECT_EQ(PlmnFromHex("22:f2:10"), "22201");
  EXPECT_EQ(PlmnFromHex("02f859"), "20895");
  EXPECT_EQ(PlmnFromHex("130014"), "310410");  // three-digit MNC
  EXPECT_EQ(PlmnFromHex("zz"), "");
  EXPECT_EQ(PlmnFromHex("05f5"), "");
}


// ---- HeNB captures built here: the lab captures have no CSG information ----
//
// A minimal aligned-PER encoder for just the S1SetupRequest IEs below
// (TS 36.413): the bytes follow the layout tshark decodes in the lab
// captures' macro eNB setups, and every vector is checked by decoding it
// with tshark itself before the tap reads it.
namespace henb {

using Bytes = std::vector<uint8_t>;

void Put(Bytes& b, std::initializer_list<uint8_t> v) { b.insert(b.end(), v); }

Bytes Ie(uint16_t id, bool ignore, const Bytes& value) {
  Bytes b = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), static_cast<uint8_t>(ignore ? 0x40 : 0x00),
             static_cast<uint8_t>(value.size())};
  b.insert(b.end(), value.begin(), value.end());
  return b;
}

struct Setup {
  uint32_t home_enb_id = 0;  // 28 bits
  std::vector<uint32_t> csgs;  // 27 bits each
  std::string name;
  uint16_t tac = 1;
};

// PLMN 505-01 (TBCD 05 f5 10), as in the lab captures.
Bytes S1SetupRequest(const Setup& s) {
  std::vector<Bytes> ies;
  // Global-ENB-ID: ext/optional bits, PLMN (aligned), CHOICE homeENB-ID (index 1), 28-bit string.
  const uint32_t id = s.home_enb_id << 4;
  ies.push_back(Ie(59, false, {0x00, 0x05, 0xf5, 0x10, 0x40, static_cast<uint8_t>(id >> 24),
                               static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)}));
  if (!s.name.empty()) {  // ENBname: extensible SIZE(1..150): ext bit + 8-bit length, then the characters
    const size_t n = s.name.size() - 1;
    Bytes v = {static_cast<uint8_t>(n >> 1), static_cast<uint8_t>((n & 1) << 7)};
    v.insert(v.end(), s.name.begin(), s.name.end());
    ies.push_back(Ie(60, true, v));
  }
  // SupportedTAs: one TA, TAC (2 octets, unaligned), one broadcast PLMN.
  ies.push_back(Ie(64, false, {0x00, static_cast<uint8_t>((s.tac >> 10) & 0x3f), static_cast<uint8_t>(s.tac >> 2),
                               static_cast<uint8_t>((s.tac & 3) << 6), 0x05, 0xf5, 0x10}));
  ies.push_back(Ie(137, true, {0x40}));  // DefaultPagingDRX v128
  if (!s.csgs.empty()) {                 // CSG-IdList: count-1, then per item ext/optional bits and 27 bits
    Bytes v = {static_cast<uint8_t>(s.csgs.size() - 1)};
    for (uint32_t c : s.csgs) {
      const uint32_t x = c << 5;
      Put(v, {0x00, static_cast<uint8_t>(x >> 24), static_cast<uint8_t>(x >> 16), static_cast<uint8_t>(x >> 8),
              static_cast<uint8_t>(x)});
    }
    ies.push_back(Ie(128, false, v));
  }
  Bytes body = {0x00, 0x00, static_cast<uint8_t>(ies.size())};
  for (const Bytes& ie : ies) body.insert(body.end(), ie.begin(), ie.end());
  Bytes pdu = {0x00, 17, 0x00, static_cast<uint8_t>(body.size())};
  pdu.insert(pdu.end(), body.begin(), body.end());
  return pdu;
}

// One S1AP message per packet, SCTP (PPID 18) from `src` to the HeNB-GW,
// through text2pcap.
void WritePcap(const TempDir& tmp, const std::string& name, const std::string& src, const Bytes& pdu) {
  std::string hex = "0000";
  char b[4];
  for (uint8_t x : pdu) {
    std::snprintf(b, sizeof b, " %02x", x);
    hex += b;
  }
  fg::testing::WriteAll(tmp / (name + ".txt"), hex + "\n");
  auto r = fg::testing::Run({"text2pcap", "-q", "-S", "36412,36412,18", "-4", src + ",10.9.0.1", tmp / (name + ".txt"),
                             tmp / name});
  ASSERT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace henb

TEST(TapHenb, CsgIdsAndHomeEnbIdFromBuiltSetups) {
  TempDir tmp;
  fg::testing::WriteAll(tmp / "key", kKey);
  ::chmod((tmp / "key").c_str(), 0600);
  henb::Setup closed;
  closed.home_enb_id = 0x0ABCDEF;
  closed.csgs = {4242};
  closed.name = "HeNB-FG-A";
  closed.tac = 300;
  henb::Setup open;
  open.home_enb_id = 0x1234567;
  henb::WritePcap(tmp, "closed.pcap", "10.0.0.11", henb::S1SetupRequest(closed));
  henb::WritePcap(tmp, "open.pcap", "10.0.0.12", henb::S1SetupRequest(open));

  // tshark's own reading of the vectors: the encoder is right.
  auto fields = fg::testing::Run({"tshark", "-r", tmp / "closed.pcap", "-n", "-T", "fields", "-E", "separator=/t", "-e",
                                  "s1ap.procedureCode", "-e", "s1ap.homeENB_ID", "-e", "s1ap.cSG_Id", "-e",
                                  "s1ap.ENBname", "-e", "s1ap.tAC", "-e", "_ws.malformed"});
  ASSERT_EQ(fields.exit_code, 0) << fields.out;
  EXPECT_NE(fields.out.find("17\t0abcdef0\t00021240\tHeNB-FG-A\t300\t\n"), std::string::npos) << fields.out;

  // The registry names each femtocell by its eNB id (docs/tap.md).
  fg::testing::WriteAll(tmp / "registry.jsonl",
                        "{\"device\":\"FG-A\",\"plmn\":\"50501\",\"enb_id\":" + std::to_string(0x0ABCDEF) + "}\n"
                        "{\"device\":\"FG-B\"}\n");
  for (const char* f : {"closed.pcap", "open.pcap"}) {
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / f, "--out", tmp / (std::string(f) + ".jsonl"),
                               "--pseudonym-key", tmp / "key", "--registry", tmp / "registry.jsonl"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  auto c = ReadEvents(tmp / "closed.pcap.jsonl");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["type"], "s1.setup");
  EXPECT_EQ(c[0]["enb_kind"], "home");
  EXPECT_EQ(c[0]["enb_id"], 0x0ABCDEF);
  EXPECT_EQ(c[0]["csg_ids"], json::array({4242}));
  EXPECT_EQ(c[0]["access_mode"], "closed");
  EXPECT_EQ(c[0]["enb_name"], "HeNB-FG-A");
  EXPECT_EQ(c[0]["tacs"], json::array({300}));
  EXPECT_EQ(c[0]["src_ip"], "10.0.0.11");
  EXPECT_EQ(c[0]["device"], "FG-A");
  auto o = ReadEvents(tmp / "open.pcap.jsonl");
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0]["enb_id"], 0x1234567);
  EXPECT_FALSE(o[0].contains("csg_ids"));
  EXPECT_EQ(o[0]["access_mode"], "open");
  // Not in the registry: named by its identity, not given another's.
  EXPECT_EQ(o[0]["device"], "enb-50501-" + std::to_string(0x1234567));

  // A registry line with a half radio identity is bad input: exit 2.
  fg::testing::WriteAll(tmp / "bad.jsonl", "{\"device\":\"FG-A\",\"enb_id\":5}\n");
  auto bad = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / "open.pcap", "--out", tmp / "x.jsonl",
                               "--pseudonym-key", tmp / "key", "--registry", tmp / "bad.jsonl"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_FALSE(fs::exists(tmp / "x.jsonl"));
}

}  // namespace
}  // namespace fg::tap

namespace fg::tap {
namespace {

// Identity binding end to end (replay): FG-A's IPsec session on 10.0.0.11
// sends an S1 setup claiming FG-B's eNB id and CSG -> identity.mismatch
// (kind other) naming FG-A, whose block denies its next admission (the
// blocked check); a setup from an address with no session -> kind
// no_session; FG-B's own setup from its own session -> nothing. The benign
// twin: FG-A's CSG changed in the registry before it reconnects with the
// new CSG -> nothing; the same setup against the old registry fires.
TEST(TapIdentityBinding, SetupClaimingAnotherFemtocellIsAMismatch) {
  TempDir tmp;
  const std::string data = tmp / "data";
  auto init = fg::testing::Run({fg::testing::Femtoguard(), "init", "--data", data});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  fg::testing::WriteAll(tmp / "cells.csv", "LTE,505,1,1,1,1,151.2,-33.8,1000,1,1,0,0,0\n");
  auto registry = [&](int a_csg) {
    fg::testing::WriteAll(tmp / "registry.jsonl",
                          R"({"device":"FG-A","status":"active","mode":"closed","plmn":"50501","enb_id":161,"csg_id":)" +
                              std::to_string(a_csg) +
                              "}\n"
                              R"({"device":"FG-B","status":"active","mode":"closed","plmn":"50501","enb_id":178,"csg_id":200})"
                              "\n");
  };
  // Taps one built setup; returns its events (one s1.setup).
  auto tap = [&](const std::string& name, const std::string& src, uint32_t enb, uint32_t csg) {
    henb::Setup s;
    s.home_enb_id = enb;
    s.csgs = {csg};
    henb::WritePcap(tmp, name + ".pcap", src, henb::S1SetupRequest(s));
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / (name + ".pcap"), "--out",
                               tmp / (name + ".jsonl"), "--data", data, "--registry", tmp / "registry.jsonl"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    auto ev = ReadEvents(tmp / (name + ".jsonl"));
    EXPECT_EQ(ev.size(), 1u);
    return ev.empty() ? json() : ev[0];
  };
  // Sessions first (same ts as the first setup), then the setups.
  auto replay = [&](const std::vector<json>& setups) {
    std::string events;
    const std::string ts = setups.front()["ts"];
    events += R"({"ts":")" + ts + R"(","type":"session.up","device":"FG-A","session":"s-a","src_ip":"10.0.0.11"})" "\n";
    events += R"({"ts":")" + ts + R"(","type":"session.up","device":"FG-B","session":"s-b","src_ip":"10.0.0.12"})" "\n";
    for (const auto& e : setups) events += e.dump() + "\n";
    fg::testing::WriteAll(tmp / "events.jsonl", events);
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "replay", "--data", data, "--registry", tmp / "registry.jsonl",
                               "--cells", tmp / "cells.csv", "--events", tmp / "events.jsonl", "--alerts",
                               tmp / "alerts.jsonl"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("malformed        0"), std::string::npos) << r.out;
    std::vector<json> mismatches;
    for (const auto& a : ReadEvents(tmp / "alerts.jsonl")) {
      if (a["rule"] == "identity.mismatch") mismatches.push_back(a);
    }
    return mismatches;
  };

  registry(100);
  json rogue = tap("rogue", "10.0.0.11", 178, 200);  // FG-A's line, FG-B's identity
  EXPECT_EQ(rogue["device"], "FG-B");
  json own = tap("own", "10.0.0.12", 178, 200);      // FG-B as itself
  json orphan = tap("orphan", "10.0.0.99", 161, 100);  // FG-A's identity, no session there
  auto alerts = replay({rogue, own, orphan});
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["kind"], "other");
  EXPECT_EQ(alerts[0]["device"], "FG-A");
  EXPECT_EQ(alerts[0]["evidence"]["claimed"], "FG-B");
  EXPECT_EQ(alerts[0]["evidence"]["src_ip"], "10.0.0.11");
  EXPECT_EQ(alerts[0]["severity"], "critical");
  EXPECT_NE(std::find(alerts[0]["actions"].begin(), alerts[0]["actions"].end(), "block"), alerts[0]["actions"].end())
      << "the block is what denies the next admission";
  EXPECT_EQ(alerts[1]["kind"], "no_session");
  EXPECT_EQ(alerts[1]["evidence"]["src_ip"], "10.0.0.99");
  EXPECT_EQ(alerts[1]["evidence"]["claimed"], "FG-A");
  EXPECT_NE(alerts[1]["device"], "FG-A") << "the victim of a replayed identity is not blocked";

  // Benign twin: FG-A comes back with CSG 300 after the registry said so.
  registry(300);
  json twin = tap("twin", "10.0.0.11", 161, 300);
  EXPECT_EQ(twin["device"], "FG-A");
  EXPECT_TRUE(replay({twin, own}).empty());
  // The same setup while the registry still says CSG 100: a mismatch.
  registry(100);
  json stale = tap("stale", "10.0.0.11", 161, 300);
  EXPECT_EQ(stale["device"], "enb-50501-161");
  auto stale_alerts = replay({stale});
  ASSERT_EQ(stale_alerts.size(), 1u);
  EXPECT_EQ(stale_alerts[0]["device"], "FG-A");
  EXPECT_EQ(stale_alerts[0]["kind"], "other");
}

// The node's stored registry names the claim (no --registry file): `device
// import` keeps the radio fields, `device show`/`device list --json` show
// them, and importing FG-A again with a new CSG id is what makes its
// reconnecting setup (the benign twin) name FG-A; before that import the
// same setup is unmapped, which identity.mismatch reports against FG-A's
// session. A bad radio field is refused by the import (exit 2, nothing changed).
TEST(TapIdentityBinding, StoredRegistryNamesTheClaim) {
  TempDir tmp;
  const std::string data = tmp / "data";
  auto init = fg::testing::Run({fg::testing::Femtoguard(), "init", "--data", data});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  auto import = [&](const std::string& lines) {
    fg::testing::WriteAll(tmp / "registry.jsonl", lines);
    return fg::testing::Run({fg::testing::Femtoguard(), "device", "import", "--data", data, "--registry",
                             tmp / "registry.jsonl"});
  };
  auto a_line = [](int csg) {
    return R"({"device":"FG-A","status":"active","mode":"closed","plmn":"50501","enb_id":161,"csg_id":)" +
           std::to_string(csg) + R"(,"cells":[41217]})" "\n";
  };
  const std::string b_line = R"({"device":"FG-B","status":"active","mode":"closed","plmn":"50501","enb_id":178,"csg_id":200})" "\n";
  auto imported = import(a_line(100) + b_line);
  ASSERT_EQ(imported.exit_code, 0) << imported.out;

  auto show = fg::testing::Run({fg::testing::Femtoguard(), "device", "list", "--json", "--data", data});
  ASSERT_EQ(show.exit_code, 0) << show.out;
  EXPECT_NE(show.out.find(R"("cells":[41217])"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(R"("csg_id":100)"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(R"("enb_id":178)"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(R"("plmn":"50501")"), std::string::npos) << show.out;

  auto tap = [&](const std::string& name, const std::string& src, uint32_t enb, uint32_t csg) {
    henb::Setup s;
    s.home_enb_id = enb;
    s.csgs = {csg};
    henb::WritePcap(tmp, name + ".pcap", src, henb::S1SetupRequest(s));
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", tmp / (name + ".pcap"), "--out",
                               tmp / (name + ".jsonl"), "--data", data});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    auto ev = ReadEvents(tmp / (name + ".jsonl"));
    EXPECT_EQ(ev.size(), 1u);
    return ev.empty() ? json() : ev[0];
  };
  EXPECT_EQ(tap("rogue", "10.0.0.11", 178, 200)["device"], "FG-B");
  EXPECT_EQ(tap("stale", "10.0.0.11", 161, 300)["device"], "enb-50501-161");

  // A bad radio field: exit 2 and the stored identity is unchanged.
  auto bad = import(R"({"device":"FG-A","plmn":"50501","enb_id":161,"csg_id":134217728})" "\n");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("csg_id"), std::string::npos) << bad.out;
  auto half = import(R"({"device":"FG-A","enb_id":161})" "\n");
  EXPECT_EQ(half.exit_code, 2) << half.out;
  auto shown_csg = [&] {
    auto r = fg::testing::Run({fg::testing::Femtoguard(), "device", "show", "--device", "FG-A", "--data", data});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    auto j = json::parse(r.out, nullptr, false);
    return j.is_object() && j.contains("csg_id") ? j["csg_id"] : json();
  };
  EXPECT_EQ(shown_csg(), 100);

  // The registry says CSG 300 now: the reconnecting FG-A is itself.
  auto moved = import(a_line(300) + b_line);
  ASSERT_EQ(moved.exit_code, 0) << moved.out;
  EXPECT_NE(moved.out.find("1 updated"), std::string::npos) << moved.out;
  EXPECT_EQ(shown_csg(), 300);
  EXPECT_EQ(tap("twin", "10.0.0.11", 161, 300)["device"], "FG-A");
  EXPECT_EQ(tap("old", "10.0.0.11", 161, 100)["device"], "enb-50501-161");
}

// From the wire to an alert: the 5G lab capture's two registrations, tapped
// under a data dir's key and replayed with its registry, are a ue.capture
// of a closed femtocell whose CSG holds neither subscriber; with both in
// its CSG (the same capture) nothing fires.
TEST(TapToDetection, ClosedFemtocellServingNonMembersIsACapture) {
  REQUIRE_CAPTURES();
  TempDir tmp;
  const std::string data = tmp / "data";
  auto init = fg::testing::Run({fg::testing::Femtoguard(), "init", "--data", data});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  fg::testing::WriteAll(tmp / "cells.csv", "LTE,208,95,1,1,1,2.35,48.85,1000,1,1,0,0,0\n");  // headerless
  const std::string member_csg = R"(["208950000000031","208950000000032"])";
  const std::string other_csg = R"(["208950000000099"])";
  for (const auto& [csg, want_capture] : {std::pair{other_csg, true}, std::pair{member_csg, false}}) {
    fg::testing::WriteAll(tmp / "registry.jsonl",
                          R"({"device":"FG-G","status":"active","mode":"closed","plmn":"20895","gnb_id":"000fffff","csg":)" +
                              csg + "}\n");
    auto tap = fg::testing::Run({fg::testing::Femtoguard(), "tap", "--pcap", (CapturesDir() / "multiple_ue.pcap").string(),
                                 "--out", tmp / "events.jsonl", "--data", data, "--registry", tmp / "registry.jsonl"});
    ASSERT_EQ(tap.exit_code, 0) << tap.out;
    auto replay = fg::testing::Run({fg::testing::Femtoguard(), "replay", "--data", data, "--registry",
                                    tmp / "registry.jsonl", "--cells", tmp / "cells.csv", "--events",
                                    tmp / "events.jsonl", "--alerts", tmp / "alerts.jsonl"});
    ASSERT_EQ(replay.exit_code, 0) << replay.out;
    EXPECT_NE(replay.out.find("malformed        0"), std::string::npos) << replay.out;
    int captures = 0, unbound = 0;
    for (const auto& a : ReadEvents(tmp / "alerts.jsonl")) {
      if (a["rule"] == "identity.mismatch") {
        // The lab gNB's NG setup: no IPsec session in the capture.
        EXPECT_EQ(a["kind"], "no_session") << a.dump();
        EXPECT_EQ(a["evidence"]["claimed"], "FG-G") << a.dump();
        ++unbound;
        continue;
      }
      EXPECT_EQ(a["device"], "FG-G") << a.dump();
      if (a["rule"] == "ue.capture") {
        ++captures;
        EXPECT_EQ(a["subjects"].size(), 2u) << a.dump();
      }
    }
    EXPECT_EQ(captures, want_capture ? 1 : 0) << "CSG " << csg;
    EXPECT_EQ(unbound, 1);
  }
}

}  // namespace
}  // namespace fg::tap
