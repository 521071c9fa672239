// Detector logic through the real Engine and the shipped rules file: for
// each rule family, what must fire and what its benign look-alike must not
// do (docs/detection.md). The data-driven replay tests (rules_data_test.cc)
// show the same through the binary; these pin the edge cases.

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/celldb.h"
#include "common/device.h"
#include "common/time.h"
#include "detect/detector.h"
#include "detect/detectors/cell_index.h"
#include "detect/engine.h"
#include "detect/rules.h"
#include "detect/world.h"

namespace fg::detect {
namespace {

const UnixMillis T0 = *ParseRfc3339("2025-09-01T00:00:00Z");
constexpr UnixMillis kS = 1000;
constexpr UnixMillis kMin = 60 * kS;
constexpr UnixMillis kHour = 3600 * kS;

// Macro layout: three cells around (37.50, 127.00), TAC 100; two cells
// ~17 km north-east, TAC 200.
constexpr const char* kCells =
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,450,8,100,1001,11,127.000,37.500,1000,10,1,0,0,0\n"
    "LTE,450,8,100,1002,12,127.010,37.505,1000,10,1,0,0,0\n"
    "LTE,450,8,100,1003,13,126.990,37.495,1000,10,1,0,0,0\n"
    "LTE,450,8,200,2001,21,127.150,37.600,1000,10,1,0,0,0\n"
    "LTE,450,8,200,2002,22,127.155,37.605,1000,10,1,0,0,0\n";

SubjectId Sub(int n) {
  SubjectId s;
  s.bytes[0] = 0xab;
  s.bytes[10] = static_cast<uint8_t>(n >> 8);
  s.bytes[11] = static_cast<uint8_t>(n);
  return s;
}

Device Dev(const std::string& id, DeviceStatus status = DeviceStatus::kActive,
           AccessMode mode = AccessMode::kClosed) {
  Device d;
  d.id = id;
  d.status = status;
  d.mode = mode;
  d.site = Site{37.500, 127.000, 150};
  d.prefixes = {"211.36.128.0/20"};
  return d;
}

Event SessionUp(UnixMillis ts, const std::string& dev, const std::string& session, const std::string& fp,
                const std::string& ip, const std::string& endpoint = "segw1.example") {
  Event e;
  e.type = EventType::kSessionUp;
  e.ts_ms = ts;
  e.device = dev;
  e.session = session;
  e.cert_fp = fp;
  e.src_ip = ip;
  e.endpoint = endpoint;
  return e;
}

Event SessionDown(UnixMillis ts, const std::string& dev, const std::string& session) {
  Event e;
  e.type = EventType::kSessionDown;
  e.ts_ms = ts;
  e.device = dev;
  e.session = session;
  return e;
}

Event Fix(UnixMillis ts, const std::string& dev, double lat, double lon, double acc = 20) {
  Event e;
  e.type = EventType::kLocationReport;
  e.ts_ms = ts;
  e.device = dev;
  e.has_fix = true;
  e.lat = lat;
  e.lon = lon;
  e.acc_m = acc;
  return e;
}

Event Scan(UnixMillis ts, const std::string& dev, std::vector<RemCellSeen> cells) {
  Event e;
  e.type = EventType::kRemScan;
  e.ts_ms = ts;
  e.device = dev;
  e.cells = std::move(cells);
  return e;
}

RemCellSeen Heard(uint32_t tac, uint64_t eci, int pci) {
  RemCellSeen c;
  c.mcc = 450;
  c.mnc = 8;
  c.tac = tac;
  c.eci = eci;
  c.pci = pci;
  c.earfcn = 1850;
  c.rsrp = -90;
  return c;
}

Event Attach(UnixMillis ts, const std::string& dev, int sub) {
  Event e;
  e.type = EventType::kUeAttach;
  e.ts_ms = ts;
  e.device = dev;
  e.imsi = Sub(sub);
  return e;
}

Event Detach(UnixMillis ts, const std::string& dev, int sub) {
  Event e = Attach(ts, dev, sub);
  e.type = EventType::kUeDetach;
  return e;
}

Event Sms(UnixMillis ts, const std::string& dev, int sub, SmsClass cls = SmsClass::kOtp) {
  Event e;
  e.type = EventType::kSmsDeliver;
  e.ts_ms = ts;
  e.device = dev;
  e.imsi = Sub(sub);
  e.sender = "PAYCO";
  e.sms_class = cls;
  return e;
}

Event Pay(UnixMillis ts, int sub, PayChannel ch = PayChannel::kSmsOtp, const std::string& merchant = "shop-1") {
  Event e;
  e.type = EventType::kPaymentAuth;
  e.ts_ms = ts;
  e.imsi = Sub(sub);
  e.merchant = merchant;
  e.amount = 9.9;
  e.currency = "KRW";
  e.channel = ch;
  return e;
}

Event Meas(UnixMillis ts, int sub, double lat, double lon, std::vector<Neighbor> n) {
  Event e;
  e.type = EventType::kMeasReport;
  e.ts_ms = ts;
  e.imsi = Sub(sub);
  e.serving_eci = 1001;
  e.lat = lat;
  e.lon = lon;
  e.has_fix = true;
  e.neighbors = std::move(n);
  return e;
}

Neighbor Nb(int pci, int earfcn, uint64_t eci = 0) {
  Neighbor n;
  n.pci = pci;
  n.earfcn = earfcn;
  n.eci = eci;
  n.rsrp = -95;
  return n;
}

Event Status(UnixMillis ts, const std::string& dev, const std::string& status) {
  Event e;
  e.type = EventType::kDeviceStatus;
  e.ts_ms = ts;
  e.device = dev;
  e.status = status;
  return e;
}

Event EndpointStatus(UnixMillis ts, const std::string& endpoint, const std::string& status) {
  Event e;
  e.type = EventType::kEndpointStatus;
  e.ts_ms = ts;
  e.endpoint = endpoint;
  e.status = status;
  return e;
}

std::string ReadFile(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::string DefaultRulesText() { return ReadFile(std::string(FG_SOURCE_DIR) + "/rules/default.yaml"); }

// Runs the engine with the shipped rules (plus `extra_yaml` params merged
// by text where a test needs one) over the events.
class Replay {
 public:
  explicit Replay(std::vector<Device> devices, std::string rules_yaml = DefaultRulesText()) {
    World world;
    for (const Device& d : devices) world.Register(d);
    auto cells = CellDb::Parse(kCells);
    EXPECT_TRUE(cells.ok()) << cells.status().ToString();
    world.SetCells(std::move(*cells));
    auto rules = RuleSet::Parse(rules_yaml, AllRuleIds());
    EXPECT_TRUE(rules.ok()) << rules.status().ToString();
    engine_ = std::make_unique<Engine>(std::move(world), std::move(*rules),
                                       [this](const Alert& a) { alerts.push_back(a); });
  }

  Replay& operator<<(const Event& e) {
    engine_->Process(e);
    return *this;
  }
  void Finish() { engine_->Flush(std::numeric_limits<UnixMillis>::max()); }

  std::vector<Alert> Of(std::string_view rule) const {
    std::vector<Alert> out;
    for (const Alert& a : alerts)
      if (a.rule == rule) out.push_back(a);
    return out;
  }
  bool AnyDisruptive() const {
    for (const Alert& a : alerts)
      for (const std::string& act : a.actions)
        if (IsDisruptiveAction(act)) return true;
    return false;
  }
  std::string Dump() const {
    std::string s;
    for (const Alert& a : alerts) s += a.ToJson() + "\n";
    return s;
  }
  World& world() { return engine_->world(); }

  std::vector<Alert> alerts;

 private:
  std::unique_ptr<Engine> engine_;
};

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

nlohmann::json EvidenceOf(const Alert& a) { return nlohmann::json::parse(a.evidence_json); }

// ---------------------------------------------------------------- rules file

TEST(DefaultRules, LoadsAndDocumentsEveryRule) {
  auto rules = RuleSet::Parse(DefaultRulesText(), AllRuleIds());
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(AllRuleIds().size(), 13u);  // identity.mismatch (issue 17)
  for (const std::string& id : AllRuleIds()) {
    const RuleConfig* c = rules->Find(id);
    ASSERT_NE(c, nullptr) << id << " missing from rules/default.yaml";
    EXPECT_TRUE(c->outcome.enabled) << id;
    EXPECT_NE(c->doc.find("NOT"), std::string::npos) << id << ": doc must say when it must not fire";
    EXPECT_GT(c->doc.size(), 120u) << id;
  }
}

TEST(DefaultRules, BenignLookAlikeOutcomesAreNotDisruptive) {
  auto rules = RuleSet::Parse(DefaultRulesText(), AllRuleIds());
  ASSERT_TRUE(rules.ok());
  // Evidence that a benign situation legitimately produces.
  for (auto [rule, kind] : std::vector<std::pair<std::string, std::string>>{{"location.mismatch", "gnss"},
                                                                            {"location.mismatch", "rem"},
                                                                            {"location.mismatch", "line"},
                                                                            {"ue.capture", "over_capacity"},
                                                                            {"payment.risk", "held"}}) {
    const RuleOutcome& o = rules->OutcomeFor(rule, kind);
    for (const std::string& a : o.actions) EXPECT_FALSE(IsDisruptiveAction(a)) << rule << "/" << kind << ": " << a;
    EXPECT_LT(o.severity, Severity::kHigh) << rule << "/" << kind << " would make a benign device suspect";
  }
  for (const std::string& a : rules->OutcomeFor("cell.unregistered", "").actions) EXPECT_FALSE(IsDisruptiveAction(a));
  const RuleOutcome& moved = rules->OutcomeFor("location.mismatch", "gnss");
  EXPECT_TRUE(Has(moved.approve, "suspend"));
  EXPECT_FALSE(Has(moved.approve, "revoke"));
  const RuleOutcome& clone = rules->OutcomeFor("cert.clone", "");
  EXPECT_TRUE(Has(clone.actions, "terminate") && Has(clone.actions, "block") && Has(clone.approve, "revoke"));
}

// ---------------------------------------------------------------- device.*

TEST(DeviceUnknown, FiresForUnregisteredIdentityOnce) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-X", "s1", "sha256:aa", "1.2.3.4") << Attach(T0 + kMin, "FG-X", 1)
    << Attach(T0 + 2 * kMin, "FG-X", 2);
  auto a = r.Of("device.unknown");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-X");
  EXPECT_EQ(a[0].ts_ms, T0);
  EXPECT_TRUE(Has(a[0].actions, "terminate") && Has(a[0].actions, "block"));
}

TEST(DeviceUnknown, NotForDeviceAddedByStatusEventBeforeConnecting) {
  Replay r({Dev("FG-1")});
  r << Status(T0, "FG-NEW", "provisioned") << SessionUp(T0 + kMin, "FG-NEW", "s1", "sha256:bb", "211.36.128.9")
    << Attach(T0 + 2 * kMin, "FG-NEW", 1);
  EXPECT_TRUE(r.Of("device.unknown").empty()) << r.Dump();
  EXPECT_FALSE(r.AnyDisruptive()) << r.Dump();
}

TEST(DeviceInactive, DecommissionedDeviceComesBack) {
  Replay r({Dev("FG-OLD", DeviceStatus::kDecommissioned)});
  r << SessionUp(T0, "FG-OLD", "s1", "sha256:cc", "211.36.128.9");
  auto a = r.Of("device.inactive");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "decommissioned");
  EXPECT_EQ(a[0].severity, Severity::kHigh);
}

TEST(DeviceInactive, ReplacementUnitIsQuiet) {
  Replay r({Dev("FG-OLD"), Dev("FG-NEW", DeviceStatus::kProvisioned)});
  r << Status(T0, "FG-OLD", "decommissioned") << SessionUp(T0 + kMin, "FG-NEW", "s1", "sha256:dd", "211.36.128.9")
    << Attach(T0 + 2 * kMin, "FG-NEW", 1);
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(DeviceInactive, SuspendedByStatusEvent) {
  Replay r({Dev("FG-1")});
  r << Status(T0, "FG-1", "suspended") << SessionUp(T0 + kMin, "FG-1", "s1", "sha256:ee", "211.36.128.9");
  auto a = r.Of("device.inactive");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "suspended");
}

// ---------------------------------------------------------------- cert.*

TEST(CertShared, SecondIdentityWithSameFingerprint) {
  Replay r({Dev("FG-1"), Dev("FG-2")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:11", "211.36.128.1") << SessionUp(T0 + kMin, "FG-1", "s2", "sha256:11", "211.36.128.1")
    << SessionUp(T0 + 2 * kMin, "FG-2", "s3", "sha256:11", "211.36.128.2");
  auto a = r.Of("cert.shared");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-2");
  EXPECT_EQ(EvidenceOf(a[0])["other_device"], "FG-1");
}

TEST(CertShared, RegisteredFingerprintPresentedByAnother) {
  Device d1 = Dev("FG-1");
  d1.cert_fp = "sha256:reg";
  Replay r({d1, Dev("FG-2")});
  r << SessionUp(T0, "FG-2", "s1", "sha256:reg", "211.36.128.2");
  auto a = r.Of("cert.shared");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(EvidenceOf(a[0])["basis"], "registered");
}

TEST(CertShared, OwnCertificateReconnectingIsQuiet) {
  Device d1 = Dev("FG-1");
  d1.cert_fp = "sha256:own";
  Replay r({d1});
  for (int i = 0; i < 20; ++i)
    r << SessionUp(T0 + i * kHour, "FG-1", "s" + std::to_string(i), "sha256:own", "211.36.128.1")
      << SessionDown(T0 + i * kHour + 30 * kMin, "FG-1", "s" + std::to_string(i));
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

std::string WithLegacy(const std::string& cutoff) {
  std::string rules = DefaultRulesText();
  std::string from = "&legacy_credentials []";
  size_t at = rules.find(from);
  EXPECT_NE(at, std::string::npos);
  rules.replace(at, from.size(), "&legacy_credentials [{fp: \"sha256:legacy\", cutoff: \"" + cutoff + "\"}]");
  return rules;
}

TEST(CertLegacy, AfterCutoffOnlyAndNeverCertShared) {
  Replay r({Dev("FG-1"), Dev("FG-2"), Dev("FG-3")}, WithLegacy("2025-09-01T12:00:00Z"));
  r << SessionUp(T0, "FG-1", "s1", "sha256:legacy", "211.36.128.1")
    << SessionUp(T0 + kHour, "FG-2", "s2", "sha256:legacy", "211.36.128.2")
    << SessionUp(T0 + 13 * kHour, "FG-3", "s3", "sha256:legacy", "211.36.128.3");
  auto a = r.Of("cert.legacy");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-3");
  EXPECT_TRUE(r.Of("cert.shared").empty()) << r.Dump();
}

TEST(CertClone, SecondLineWhileFirstStaysUp) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + 10 * kMin, "FG-1", "s2", "sha256:1", "98.7.6.5")
    << Attach(T0 + 12 * kMin, "FG-2", 1);  // time moves on past the grace period
  auto a = r.Of("cert.clone");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].ts_ms, T0 + 11 * kMin);
  EXPECT_EQ(a[0].severity, Severity::kCritical);
  EXPECT_TRUE(Has(a[0].actions, "block"));
  EXPECT_EQ(EvidenceOf(a[0])["second"]["src_ip"], "98.7.6.5");
  EXPECT_TRUE(r.world().device(r.world().Find("FG-1")).blocked);
}

TEST(CertClone, FiresAtEndOfReplayToo) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + 10 * kMin, "FG-1", "s2", "sha256:1", "98.7.6.5");
  r.Finish();
  ASSERT_EQ(r.Of("cert.clone").size(), 1u) << r.Dump();
}

TEST(CertClone, IspReaddressingIsQuiet) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + 10 * kMin, "FG-1", "s2", "sha256:1", "211.36.129.77")
    << SessionDown(T0 + 10 * kMin + 40 * kS, "FG-1", "s1");
  r.Finish();
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(CertClone, RebootLeftoverThenReaddressingIsQuiet) {
  // s1's session.down never came (reboot, same line); later the ISP
  // re-addresses: s2 goes down in time, s1 is a leftover, not a box.
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + kHour, "FG-1", "s2", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + 2 * kHour, "FG-1", "s3", "sha256:1", "211.36.129.5")
    << SessionDown(T0 + 2 * kHour + 20 * kS, "FG-1", "s2");
  r.Finish();
  EXPECT_TRUE(r.Of("cert.clone").empty()) << r.Dump();
}

TEST(CertClone, SameLineReconnectIsQuiet) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.128.1")
    << SessionUp(T0 + kMin, "FG-1", "s2", "sha256:1", "211.36.128.1");
  r.Finish();
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(EndpointRetired, RetiredFiresDrainingDoesNot) {
  Replay r({Dev("FG-1"), Dev("FG-2")});
  r << EndpointStatus(T0, "old.example", "retired") << EndpointStatus(T0, "mid.example", "draining")
    << SessionUp(T0 + kMin, "FG-1", "s1", "sha256:1", "211.36.128.1", "mid.example")
    << SessionUp(T0 + 2 * kMin, "FG-2", "s2", "sha256:2", "211.36.128.2", "old.example");
  auto a = r.Of("endpoint.retired");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-2");
}

// ---------------------------------------------------------------- location.*

TEST(LocationMismatch, GnssFarFiresNearDoesNot) {
  Replay r({Dev("FG-1"), Dev("FG-2")});
  r << Fix(T0, "FG-1", 37.5010, 127.0010, 30)   // ~140 m: inside radius
    << Fix(T0, "FG-2", 37.5600, 127.0800, 15);  // ~10 km
  auto a = r.Of("location.mismatch");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-2");
  EXPECT_EQ(a[0].kind, "gnss");
  EXPECT_FALSE(r.AnyDisruptive());
  EXPECT_TRUE(Has(a[0].approve, "suspend"));
}

TEST(LocationMismatch, LineOutsidePrefixOnly) {
  Replay r({Dev("FG-1")});
  r << SessionUp(T0, "FG-1", "s1", "sha256:1", "211.36.140.1")      // inside /20
    << SessionUp(T0 + kHour, "FG-1", "s2", "sha256:1", "5.6.7.8");  // foreign
  auto a = r.Of("location.mismatch");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "line");
}

TEST(LocationMismatch, RemSubsetQuietElsewhereFires) {
  Replay r({Dev("FG-1"), Dev("FG-2"), Dev("FG-3")});
  r << Scan(T0, "FG-1", {Heard(100, 1002, 12)})                               // subset of expected
    << Scan(T0, "FG-2", {Heard(200, 2001, 21), Heard(200, 2002, 22)})       // the other district
    << Scan(T0, "FG-3", {Heard(100, 1001, 11), Heard(200, 2001, 21)});     // local + one far: ambiguous
  auto a = r.Of("location.mismatch");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-2");
  EXPECT_EQ(a[0].kind, "rem");
  EXPECT_EQ(EvidenceOf(a[0])["reason"], "cells_elsewhere");
}

TEST(LocationMoving, VanTrackFires) {
  Replay r({Dev("FG-1")});
  r << Fix(T0, "FG-1", 37.50, 127.00) << Fix(T0 + 10 * kMin, "FG-1", 37.52, 127.02)
    << Fix(T0 + 20 * kMin, "FG-1", 37.54, 127.04);
  auto a = r.Of("location.moving");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "track");
  EXPECT_EQ(a[0].severity, Severity::kHigh);
}

TEST(LocationMoving, MovedHouseSingleJumpIsNotMoving) {
  Replay r({Dev("FG-1")});
  for (int i = 0; i < 10; ++i) r << Fix(T0 + i * kHour, "FG-1", 37.5000 + 0.0001 * (i % 3), 127.0000, 25);
  // Moved 12 km, seen again 3 minutes later (a jump faster than max_speed_kmh), then stays.
  for (int i = 0; i < 30; ++i) r << Fix(T0 + 9 * kHour + 3 * kMin + i * kHour, "FG-1", 37.6000 + 0.0001 * (i % 2), 127.0500, 25);
  EXPECT_TRUE(r.Of("location.moving").empty()) << r.Dump();
  ASSERT_FALSE(r.Of("location.mismatch").empty());
  EXPECT_FALSE(r.AnyDisruptive()) << r.Dump();
}

TEST(LocationMoving, JitterWithinAccuracyIsQuiet) {
  Replay r({Dev("FG-1")});
  for (int i = 0; i < 50; ++i) r << Fix(T0 + i * 5 * kMin, "FG-1", 37.5 + 0.003 * (i % 3), 127.0, 400);
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(LocationMoving, TeleportBackAndForthIsSpeed) {
  Replay r({Dev("FG-1")});
  r << Fix(T0, "FG-1", 37.50, 127.00) << Fix(T0 + 5 * kMin, "FG-1", 37.70, 127.30)
    << Fix(T0 + 10 * kMin, "FG-1", 37.50, 127.00);
  auto a = r.Of("location.moving");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "speed");
}

// ---------------------------------------------------------------- subscribers

TEST(UeCapture, ClosedFemtoServingNonMembers) {
  Device d = Dev("FG-1");
  d.csg = {Sub(1).ToString("imsi"), Sub(2).ToString("imsi")};
  Replay r({d});
  r << Attach(T0, "FG-1", 1) << Attach(T0 + kMin, "FG-1", 2)  // members
    << Attach(T0 + 2 * kMin, "FG-1", 50);                   // one stray non-member: quiet
  EXPECT_TRUE(r.Of("ue.capture").empty()) << r.Dump();
  r << Attach(T0 + 3 * kMin, "FG-1", 51);
  auto a = r.Of("ue.capture");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "closed_nonmembers");
  EXPECT_EQ(a[0].subjects.size(), 2u);
  EXPECT_TRUE(Has(a[0].actions, "hold_payments"));
  EXPECT_TRUE(r.world().subscriber(Sub(51))->payments_held);
  EXPECT_FALSE(r.world().subscriber(Sub(1))->payments_held);
}

TEST(UeCapture, CafeBelowLimitQuietAboveLimitNotifies) {
  Device cafe = Dev("FG-CAFE", DeviceStatus::kActive, AccessMode::kOpen);
  cafe.max_ues = 4;
  Replay r({cafe});
  // 30 visitors over a day, at most 3 at a time.
  for (int i = 0; i < 30; ++i) {
    r << Attach(T0 + i * 20 * kMin, "FG-CAFE", 100 + i);
    if (i >= 2) r << Detach(T0 + i * 20 * kMin + 10 * kS, "FG-CAFE", 100 + i - 2);
  }
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
  for (int i = 0; i < 3; ++i) r << Attach(T0 + 11 * kHour + i * kMin, "FG-CAFE", 200 + i);
  auto a = r.Of("ue.capture");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "over_capacity");
  EXPECT_FALSE(r.AnyDisruptive());
}

TEST(UeCapture, UnregisteredIdentityServingTwo) {
  Replay r({});
  r << Attach(T0, "FG-ROGUE", 1) << Attach(T0 + kMin, "FG-ROGUE", 2);
  auto a = r.Of("ue.capture");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "rogue");
  EXPECT_EQ(a[0].severity, Severity::kCritical);
}

TEST(SmsIntercept, ClosedNonMemberFiresMemberAndOpenVisitorDoNot) {
  Device home = Dev("FG-HOME");
  home.csg = {Sub(1).ToString("imsi")};
  Device shop = Dev("FG-SHOP", DeviceStatus::kActive, AccessMode::kOpen);
  Replay r({home, shop});
  r << Sms(T0, "FG-HOME", 1) << Sms(T0, "FG-SHOP", 7) << Sms(T0, "FG-HOME", 9, SmsClass::kP2p);
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
  r << Sms(T0 + kMin, "FG-HOME", 8, SmsClass::kArs);
  auto a = r.Of("sms.intercept");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "closed");
  ASSERT_EQ(a[0].subjects.size(), 1u);
  EXPECT_EQ(a[0].subjects[0], Sub(8).ToString("imsi"));
}

TEST(SmsIntercept, OpenFemtoOnceSuspect) {
  Device shop = Dev("FG-SHOP", DeviceStatus::kActive, AccessMode::kOpen);
  Replay r({shop});
  r.world().MarkSuspect(r.world().Find("FG-SHOP"), T0 + kHour, "location.moving");
  r << Sms(T0, "FG-SHOP", 7);
  auto a = r.Of("sms.intercept");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].kind, "suspect");
  EXPECT_EQ(EvidenceOf(a[0])["suspect_rule"], "location.moving");
}

TEST(PaymentRisk, ExposedToUnknownFemto) {
  Replay r({Dev("FG-1")});
  r << Attach(T0, "FG-ROGUE", 1) << Pay(T0 + 5 * kMin, 1, PayChannel::kSmsOtp)
    << Pay(T0 + 6 * kMin, 1, PayChannel::kNone, "shop-2");
  auto a = r.Of("payment.risk");
  ASSERT_EQ(a.size(), 2u) << r.Dump();
  EXPECT_EQ(a[0].device, "FG-ROGUE");
  nlohmann::json ev = EvidenceOf(a[0]);
  EXPECT_EQ(ev["decision"], "deny");
  EXPECT_EQ(ev["payment"]["merchant"], "shop-1");
  EXPECT_DOUBLE_EQ(ev["payment"]["amount"].get<double>(), 9.9);
  EXPECT_EQ(ev["payment"]["channel"], "sms_otp");
  EXPECT_EQ(ev["payment"]["ts"], "2025-09-01T00:05:00Z");
  // payment.risk held the subscriber's payments: the next is denied whatever the channel.
  EXPECT_EQ(EvidenceOf(a[1])["decision"], "deny");
}

TEST(PaymentRisk, StepUpForNonOtpChannelAndNothingAfterExposure) {
  Replay r({Dev("FG-1")});
  r << Attach(T0, "FG-ROGUE", 1);
  const World& w = r.world();
  RuleParams p;
  p.scalars["exposure_s"] = "1800";
  // Attach applied after detectors saw it: the subscriber is exposed now.
  EXPECT_EQ(CheckPayment(w, p, Sub(1), PayChannel::kNone, 5, T0 + kMin).verdict, PaymentVerdict::kStepUp);
  EXPECT_EQ(CheckPayment(w, p, Sub(1), PayChannel::kArs, 5, T0 + kMin).verdict, PaymentVerdict::kDeny);
  EXPECT_EQ(CheckPayment(w, p, Sub(1), PayChannel::kSmsOtp, 5, T0 + 31 * kMin).verdict, PaymentVerdict::kAllow);
  EXPECT_EQ(CheckPayment(w, p, Sub(2), PayChannel::kSmsOtp, 5, T0 + kMin).verdict, PaymentVerdict::kAllow);
}

TEST(PaymentRisk, BenignFemtoSubscribersPayFreely) {
  Device d = Dev("FG-1");
  d.csg = {Sub(1).ToString("imsi")};
  Replay r({d});
  r << Attach(T0, "FG-1", 1) << Sms(T0 + kMin, "FG-1", 1) << Pay(T0 + 2 * kMin, 1) << Pay(T0 + 3 * kMin, 2);
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(PaymentRisk, HeldSubscriberDoesNotTaintBenignFemto) {
  Device d = Dev("FG-1", DeviceStatus::kActive, AccessMode::kOpen);
  Replay r({d});
  r << Attach(T0, "FG-ROGUE", 1) << Pay(T0 + kMin, 1)  // exposed: held
    << Attach(T0 + 3 * kHour, "FG-1", 1) << Pay(T0 + 3 * kHour + kMin, 1, PayChannel::kNone);
  auto a = r.Of("payment.risk");
  ASSERT_EQ(a.size(), 2u) << r.Dump();
  EXPECT_EQ(a[1].kind, "held");
  EXPECT_EQ(a[1].device, "");
  EXPECT_FALSE(r.world().device(r.world().Find("FG-1")).Suspect(T0 + 4 * kHour));
}

// ---------------------------------------------------------------- cell.unregistered

TEST(CellUnregistered, TwoSubscribersReportAnUnknownCell) {
  Replay r({});
  r << Meas(T0, 1, 37.500, 127.000, {Nb(12, 1850), Nb(301, 2850)});
  r << Meas(T0 + kMin, 1, 37.501, 127.001, {Nb(301, 2850)});  // same subscriber again: still one
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
  r << Meas(T0 + 2 * kMin, 2, 37.502, 127.003, {Nb(301, 2850), Nb(11, 1850)});
  auto a = r.Of("cell.unregistered");
  ASSERT_EQ(a.size(), 1u) << r.Dump();
  EXPECT_EQ(a[0].device, "");
  nlohmann::json ev = EvidenceOf(a[0]);
  EXPECT_EQ(ev["pci"], 301);
  EXPECT_EQ(ev["earfcn"], 2850);
  EXPECT_EQ(ev["reporters"], 2);
  EXPECT_NEAR(ev["lat"].get<double>(), 37.5015, 0.001);
}

TEST(CellUnregistered, RegisteredMacroAndFarApartReportsAreQuiet) {
  Replay r({});
  // PCI 21 is a registered cell ~17 km away: explains nothing here, but is
  // heard by two subscribers 15 km apart - not one radio.
  r << Meas(T0, 1, 37.600, 127.150, {Nb(21, 1850), Nb(22, 1850)})  // registered, nearby
    << Meas(T0 + kMin, 2, 37.601, 127.151, {Nb(21, 1850)})
    << Meas(T0, 3, 37.500, 127.000, {Nb(400, 1850)}) << Meas(T0 + kMin, 4, 37.600, 127.200, {Nb(400, 1850)});
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

TEST(CellUnregistered, ActiveFemtoAtItsSiteExplainsItsCell) {
  Device f = Dev("FG-1");
  f.site = Site{37.55, 127.05, 50};
  Replay r({f});
  r << Meas(T0, 1, 37.5501, 127.0501, {Nb(490, 3000)}) << Meas(T0 + kMin, 2, 37.5502, 127.0499, {Nb(490, 3000)});
  EXPECT_TRUE(r.alerts.empty()) << r.Dump();
}

// A customer who moved house: the registry's new site explains the cell
// there from then on, and the old address no longer does.
TEST(CellUnregistered, AMovedFemtoExplainsItsCellAtTheNewSiteOnly) {
  Device f = Dev("FG-1");
  f.site = Site{37.55, 127.05, 50};
  Replay r({f});
  r << Meas(T0, 1, 37.5501, 127.0501, {Nb(490, 3000)}) << Meas(T0 + kMin, 2, 37.5502, 127.0499, {Nb(490, 3000)});
  ASSERT_TRUE(r.alerts.empty()) << r.Dump();
  f.site = Site{37.45, 126.95, 50};  // ~14 km away
  r.world().Register(f);
  r << Meas(T0 + 2 * kMin, 3, 37.4501, 126.9501, {Nb(491, 3000)})
    << Meas(T0 + 3 * kMin, 4, 37.4502, 126.9499, {Nb(491, 3000)});
  EXPECT_TRUE(r.Of("cell.unregistered").empty()) << "the new site explains its cell: " << r.Dump();
  r << Meas(T0 + 4 * kMin, 5, 37.5501, 127.0501, {Nb(492, 3000)})
    << Meas(T0 + 5 * kMin, 6, 37.5502, 127.0499, {Nb(492, 3000)});
  auto a = r.Of("cell.unregistered");
  ASSERT_EQ(a.size(), 1u) << "nothing is registered at the old address any more: " << r.Dump();
  EXPECT_EQ(EvidenceOf(a[0])["pci"], 492);
}

// The per-square PCI bitsets answer exactly what the per-cell check answers.
TEST(MacroCoverage, AgreesWithTheExactCheck) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> lat(37.40, 37.70), lon(126.80, 127.20);
  std::uniform_int_distribution<int> pci(0, 40);
  std::string csv = "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n";
  for (int i = 0; i < 400; ++i) {
    char line[160];
    std::snprintf(line, sizeof line, "LTE,450,8,100,%d,%d,%.6f,%.6f,1000,1,1,0,0,0\n", 5000 + i, pci(rng), lon(rng),
                  lat(rng));
    csv += line;
  }
  auto db = CellDb::Parse(csv);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  detectors::MacroCoverage coverage(5000);
  coverage.Sync(*db);
  detectors::PciIndex exact;
  exact.Sync(*db);
  int explained = 0, total = 0;
  for (int i = 0; i < 3000; ++i) {
    detectors::GeoRef ue(lat(rng), lon(rng));
    const auto& square = coverage.SquareOf(ue);
    for (int p = 0; p <= 40; p += 3) {
      bool want = exact.AnyWithin(ue, p, 0, 0, 5000);
      ASSERT_EQ(coverage.ExplainsPci(square, ue, p), want) << ue.lat << "," << ue.lon << " pci " << p;
      explained += want;
      ++total;
    }
  }
  EXPECT_GT(explained, total / 10);  // both answers occur
  EXPECT_LT(explained, total * 9 / 10);
}

}  // namespace
}  // namespace fg::detect
