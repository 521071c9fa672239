// Each admission check: what must fire and what must not (benign look-alikes).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "admission/admission_fixture.h"

namespace fg::admission {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr const char* kHomePrefix = "203.0.113.0/24";

// ---- certificate ----

TEST_F(AdmissionTest, ValidCertificateOfTheDeviceIsAllowed) {
  Certificate c = AddActiveDevice("FG-1", {kHomePrefix});
  auto engine = MakeEngine();
  Decision d = engine->Admit(Request("FG-1", c, "203.0.113.10"));
  EXPECT_EQ(d.verdict, Verdict::kAllow);
  EXPECT_THAT(d.reasons, IsEmpty());
  // By serial only and by fingerprint only (lower-case, colons) as well.
  AdmissionRequest by_serial = Request("FG-1", c, "203.0.113.10", "2");
  by_serial.cert_fp.clear();
  EXPECT_EQ(engine->Admit(by_serial).verdict, Verdict::kAllow);
  AdmissionRequest by_fp = Request("FG-1", c, "203.0.113.10", "3");
  by_fp.serial.clear();
  EXPECT_EQ(engine->Admit(by_fp).verdict, Verdict::kAllow);
  AdmissionRequest lower = Request("FG-1", c, "203.0.113.10", "4");
  for (char& ch : lower.serial) ch = static_cast<char>(std::tolower(ch));
  lower.serial = "00" + lower.serial;
  EXPECT_EQ(engine->Admit(lower).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, UnknownCertificateIsDenied) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  Certificate fake = c;
  fake.serial = "DEADBEEF01";
  AdmissionRequest r = Request("FG-1", fake, "203.0.113.10");
  r.cert_fp.clear();
  Decision d = engine->Admit(r);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("cert.unknown"));

  AdmissionRequest by_fp = Request("FG-1", c, "203.0.113.10");
  by_fp.serial.clear();
  by_fp.cert_fp = "sha256:" + std::string(64, 'a');
  EXPECT_THAT(engine->Admit(by_fp).reasons, ElementsAre("cert.unknown"));

  // Serial of one certificate, fingerprint of another: refused, not mixed up.
  Certificate other = AddActiveDevice("FG-2");
  Feed(*engine);
  AdmissionRequest mixed = Request("FG-1", c, "203.0.113.10");
  mixed.cert_fp = other.cert_fp;
  Decision m = engine->Admit(mixed);
  EXPECT_EQ(m.verdict, Verdict::kDeny);
  EXPECT_THAT(m.reasons, ElementsAre("cert.unknown"));
}

TEST_F(AdmissionTest, CertificateOfAnotherDeviceIsShared) {
  Certificate c1 = AddActiveDevice("FG-1");
  AddActiveDevice("FG-2");
  auto engine = MakeEngine();
  Decision d = engine->Admit(Request("FG-2", c1, "203.0.113.10"));
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("cert.shared"));
  EXPECT_EQ(Evidence(d, "cert.issued_to"), "FG-1");
  // The rightful owner is not affected.
  EXPECT_EQ(engine->Admit(Request("FG-1", c1, "203.0.113.11")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, RegistryFingerprintOfAnotherDeviceIsShared) {
  // A vendor certificate named in the registry (not issued by femtoguard).
  const std::string vendor_fp = "sha256:" + std::string(64, 'b');
  Device d1;
  d1.id = "FG-1";
  d1.status = DeviceStatus::kActive;
  d1.cert_fp = vendor_fp;
  ASSERT_TRUE(store_->AddDevice(d1, {"test", "setup"}).ok());
  AddActiveDevice("FG-2");
  auto engine = MakeEngine();
  AdmissionRequest own;
  own.device = "FG-1";
  own.session = "1";
  own.cert_fp = vendor_fp;
  own.src_ip = "203.0.113.10";
  EXPECT_EQ(engine->Admit(own).verdict, Verdict::kAllow);
  AdmissionRequest other = own;
  other.device = "FG-2";
  Decision d = engine->Admit(other);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("cert.shared"));
  EXPECT_EQ(Evidence(d, "cert.registered_to"), "FG-1");
}

TEST_F(AdmissionTest, RevokedHeldExpiredAndNotYetValidCertificatesAreDenied) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  AdmissionRequest late = Request("FG-1", c, "203.0.113.10");
  late.now_ms = c.not_after_ms + kMillisPerDay;
  EXPECT_THAT(engine->Admit(late).reasons, ElementsAre("cert.expired"));
  AdmissionRequest early = Request("FG-1", c, "203.0.113.10", "2");
  early.now_ms = c.not_before_ms - kMillisPerDay;
  EXPECT_THAT(engine->Admit(early).reasons, ElementsAre("cert.not_yet_valid"));

  ASSERT_TRUE(store_->RevokeCertificate(c.serial, RevocationReason::kCertificateHold, NowMillis(), {"t", "t"}).ok());
  Feed(*engine);
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.10", "3")).reasons, ElementsAre("cert.hold"));
  ASSERT_TRUE(store_->RevokeCertificate(c.serial, RevocationReason::kKeyCompromise, NowMillis(), {"t", "t"}).ok());
  Feed(*engine);
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.10", "4")).reasons, ElementsAre("cert.revoked"));
}

TEST_F(AdmissionTest, NoCertificateInformationAbstains) {
  AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  AdmissionRequest r;
  r.device = "FG-1";
  r.session = "1";
  r.src_ip = "203.0.113.10";
  EXPECT_EQ(engine->Admit(r).verdict, Verdict::kAllow);
}

// ---- device ----

TEST_F(AdmissionTest, UnknownAndInactiveDevicesAreDenied) {
  Certificate c = AddActiveDevice("FG-1");
  AddDevice("FG-PROV", DeviceStatus::kProvisioned);
  AddActiveDevice("FG-SUSP");
  ASSERT_TRUE(store_->SetDeviceStatus("FG-SUSP", DeviceStatus::kSuspended, {"t", "t"}).ok());
  AddActiveDevice("FG-GONE");
  ASSERT_TRUE(store_->SetDeviceStatus("FG-GONE", DeviceStatus::kDecommissioned, {"t", "t"}).ok());
  auto engine = MakeEngine();

  AdmissionRequest none;
  none.device = "FG-NOBODY";
  none.src_ip = "203.0.113.10";
  Decision unknown = engine->Admit(none);
  EXPECT_EQ(unknown.verdict, Verdict::kDeny);
  EXPECT_THAT(unknown.reasons, ElementsAre("device.unknown"));

  for (const char* id : {"FG-PROV", "FG-SUSP", "FG-GONE"}) {
    AdmissionRequest r;
    r.device = id;
    r.src_ip = "203.0.113.10";
    Decision d = engine->Admit(r);
    EXPECT_EQ(d.verdict, Verdict::kDeny) << id;
    EXPECT_THAT(d.reasons, ElementsAre("device.inactive")) << id;
  }
  EXPECT_EQ(Evidence(engine->Admit(AdmissionRequest{.device = "FG-SUSP"}), "device.status"), "suspended");
  // Must not: the active one is fine.
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, DormantDeviceIsInactiveButARecentlyAdmittedOneIsNot) {
  AddActiveDevice("FG-1");
  AddActiveDevice("FG-2");
  policy_.dormancy_days = 90;
  auto engine = MakeEngine();
  UnixMillis now = NowMillis();
  // FG-2 connects 60 days from now: seen then.
  AdmissionRequest r2{.device = "FG-2", .session = "a", .src_ip = "203.0.113.2", .now_ms = now + 60 * kMillisPerDay};
  ASSERT_EQ(engine->Admit(r2).verdict, Verdict::kAllow);
  engine->SessionDown("FG-2", "a");
  // 100 days from now: FG-1 was never seen since registration; FG-2 40 days ago.
  AdmissionRequest r1{.device = "FG-1", .session = "b", .src_ip = "203.0.113.1", .now_ms = now + 100 * kMillisPerDay};
  Decision d1 = engine->Admit(r1);
  EXPECT_EQ(d1.verdict, Verdict::kDeny);
  EXPECT_THAT(d1.reasons, ElementsAre("device.inactive"));
  EXPECT_EQ(Evidence(d1, "device.status"), "dormant");
  r2.session = "c";
  r2.now_ms = now + 100 * kMillisPerDay;
  EXPECT_EQ(engine->Admit(r2).verdict, Verdict::kAllow);
  // dormancy_days 0 turns it off.
  policy_.dormancy_days = 0;
  auto lenient = MakeEngine();
  r1.session = "d";
  EXPECT_EQ(lenient->Admit(r1).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, FlushLastSeenTouchesTheStoreOncePerAdvance) {
  AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  UnixMillis later = NowMillis() + 5 * kMillisPerDay;
  ASSERT_EQ(engine->Admit({.device = "FG-1", .session = "s", .src_ip = "203.0.113.1", .now_ms = later}).verdict,
            Verdict::kAllow);
  auto n = engine->FlushLastSeen(kMillisPerDay);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  auto d = store_->GetDevice("FG-1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->last_seen_ms, later);
  auto again = engine->FlushLastSeen(kMillisPerDay);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

// ---- line ----

TEST_F(AdmissionTest, SourceOutsideRegisteredPrefixIsDeniedInsideIsAllowed) {
  Certificate c = AddActiveDevice("FG-1", {kHomePrefix, "2001:db8:1::/48"});
  auto engine = MakeEngine();
  Decision foreign = engine->Admit(Request("FG-1", c, "198.51.100.77", "1"));
  EXPECT_EQ(foreign.verdict, Verdict::kDeny);
  EXPECT_THAT(foreign.reasons, ElementsAre("location.line"));
  EXPECT_EQ(Evidence(foreign, "line.src_ip"), "198.51.100.77");
  EXPECT_EQ(Evidence(foreign, "line.prefixes"), "203.0.113.0/24,2001:db8:1::/48");
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "not-an-ip", "2")).reasons, ElementsAre("location.line"));

  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10", "3")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "3");
  // Benign: the ISP renumbered the line inside the registered prefix.
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.200", "4")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "4");
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "2001:db8:1:ff::9", "5")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "5");
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "::ffff:203.0.113.12", "6")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, AccessNetworksAdmitAnyDeviceOnTheOperatorsLines) {
  Certificate with_prefix = AddActiveDevice("FG-1", {kHomePrefix});
  Certificate without = AddActiveDevice("FG-2");
  policy_.access_networks = {"10.0.0.0/8"};
  auto engine = MakeEngine();
  EXPECT_EQ(engine->Admit(Request("FG-1", with_prefix, "10.20.30.40")).verdict, Verdict::kAllow);
  EXPECT_EQ(engine->Admit(Request("FG-2", without, "10.1.1.1")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-2", "1");
  EXPECT_THAT(engine->Admit(Request("FG-2", without, "198.51.100.1", "2")).reasons, ElementsAre("location.line"));
}

TEST_F(AdmissionTest, NoPrefixesAnywhereAbstains) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.1")).verdict, Verdict::kAllow);
}

// ---- clone ----

TEST_F(AdmissionTest, SecondLiveSessionFromAnotherLineIsAClone) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-1")).verdict, Verdict::kAllow);
  Decision clone = engine->Admit(Request("FG-1", c, "198.51.100.66", "ike-2"));
  EXPECT_EQ(clone.verdict, Verdict::kDeny);
  EXPECT_THAT(clone.reasons, ElementsAre("cert.clone"));
  EXPECT_EQ(Evidence(clone, "clone.session"), "ike-1");
  EXPECT_EQ(Evidence(clone, "clone.src_ip"), "203.0.113.10");
  EXPECT_EQ(Evidence(clone, "clone.endpoint"), "segw1.example.net:4500");
  // The original stays the one live session; the newcomer's down is harmless.
  engine->SessionDown("FG-1", "ike-2");
  auto live = engine->LiveSessions("FG-1");
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].session, "ike-1");
  // Same line, other endpoint: also a clone.
  Decision other_ep = engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-3", "segw2.example.net:4500"));
  EXPECT_THAT(other_ep.reasons, ElementsAre("cert.clone"));
}

TEST_F(AdmissionTest, RebootReconnectFromTheSameLineReplacesTheLiveSession) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-1")).verdict, Verdict::kAllow);
  Decision again = engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-2"));
  EXPECT_EQ(again.verdict, Verdict::kAllow);
  EXPECT_EQ(Evidence(again, "replaced_session"), "ike-1");
  auto live = engine->LiveSessions("FG-1");
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].session, "ike-2");
  // The endpoint without a port is the same endpoint.
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-3", "SEGW1.example.net")).verdict,
            Verdict::kAllow);
  // The same SeGW asking twice about one session is not a clone either.
  AdmissionRequest twice = Request("FG-1", c, "203.0.113.10", "ike-3", "segw1.example.net:4500");
  EXPECT_EQ(engine->Admit(twice).verdict, Verdict::kAllow);
  EXPECT_EQ(engine->LiveSessions("FG-1").size(), 1u);
}

TEST_F(AdmissionTest, AfterSessionDownANewLineIsNoClone) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.10", "ike-1")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "ike-1");
  EXPECT_TRUE(engine->LiveSessions("FG-1").empty());
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.66", "ike-2")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, SamePrefixReconnectIsAPolicyChoice) {
  Certificate c = AddActiveDevice("FG-1", {kHomePrefix});
  {
    auto strict = MakeEngine();
    ASSERT_EQ(strict->Admit(Request("FG-1", c, "203.0.113.10", "1")).verdict, Verdict::kAllow);
    EXPECT_THAT(strict->Admit(Request("FG-1", c, "203.0.113.11", "2")).reasons, ElementsAre("cert.clone"));
  }
  policy_.clone_same_prefix_is_reconnect = true;
  auto lenient = MakeEngine();
  ASSERT_EQ(lenient->Admit(Request("FG-1", c, "203.0.113.10", "1")).verdict, Verdict::kAllow);
  EXPECT_EQ(lenient->Admit(Request("FG-1", c, "203.0.113.11", "2")).verdict, Verdict::kAllow);
  EXPECT_EQ(lenient->LiveSessions("FG-1").size(), 1u);
}

TEST_F(AdmissionTest, DeniedSessionsAreNotLive) {
  Certificate c = AddActiveDevice("FG-1", {kHomePrefix});
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "198.51.100.1", "1")).verdict, Verdict::kDeny);
  EXPECT_TRUE(engine->LiveSessions("FG-1").empty());
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "2")).verdict, Verdict::kAllow);
}

// ---- endpoint ----

TEST_F(AdmissionTest, RetiredEndpointIsDeniedDrainingIsAllowedUnknownAbstains) {
  Certificate c = AddActiveDevice("FG-1");
  AddEndpoint("segw-old.example.net:4500", EndpointStatus::kRetired);
  AddEndpoint("https://segw-mid.example.net:4500/ike", EndpointStatus::kDraining);
  AddEndpoint("192.0.2.1:500");
  auto engine = MakeEngine();
  Decision retired = engine->Admit(Request("FG-1", c, "203.0.113.1", "1", "segw-old.example.net:4500"));
  EXPECT_EQ(retired.verdict, Verdict::kDeny);
  EXPECT_THAT(retired.reasons, ElementsAre("endpoint.retired"));
  // Host only (the SeGW reports the address, not the port).
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.1", "2", "segw-old.example.net")).reasons,
              ElementsAre("endpoint.retired"));
  Decision draining = engine->Admit(Request("FG-1", c, "203.0.113.1", "3", "segw-mid.example.net:4500"));
  EXPECT_EQ(draining.verdict, Verdict::kAllow);
  EXPECT_EQ(Evidence(draining, "endpoint.status"), "draining");
  engine->SessionDown("FG-1", "3");
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "4", "192.0.2.1")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "4");
  // Another port of a known host is not that endpoint: unknown, abstain.
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "5", "192.0.2.1:4500")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "5");
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "6", "segw-x.example.net")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, PolicyCanDenyUnknownEndpoints) {
  Certificate c = AddActiveDevice("FG-1");
  AddEndpoint("192.0.2.1:4500");
  policy_.verdicts["endpoint.unknown"] = Verdict::kDeny;
  auto engine = MakeEngine();
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.1", "1", "192.0.2.99")).reasons,
              ElementsAre("endpoint.unknown"));
  EXPECT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "2", "192.0.2.1")).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, EndpointRetiredAfterStartIsSeenThroughApply) {
  Certificate c = AddActiveDevice("FG-1");
  AddEndpoint("192.0.2.1:4500");
  auto engine = MakeEngine();
  ASSERT_EQ(engine->Admit(Request("FG-1", c, "203.0.113.1", "1", "192.0.2.1:4500")).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "1");
  ASSERT_TRUE(store_->SetEndpointStatus("192.0.2.1:4500", EndpointStatus::kRetired, {"t", "rotation"}).ok());
  Feed(*engine);
  EXPECT_THAT(engine->Admit(Request("FG-1", c, "203.0.113.1", "2", "192.0.2.1:4500")).reasons,
              ElementsAre("endpoint.retired"));
}

// ---- gnss ----

TEST_F(AdmissionTest, GnssFixFarFromSiteIsQuarantined) {
  Certificate c = AddActiveDevice("FG-1", {}, Site{37.5665, 126.9780, 150});
  auto engine = MakeEngine();
  AdmissionRequest home = Request("FG-1", c, "203.0.113.1", "1");
  home.gnss = GnssFix{37.5670, 126.9785, 30};  // ~70 m away
  EXPECT_EQ(engine->Admit(home).verdict, Verdict::kAllow);
  engine->SessionDown("FG-1", "1");
  AdmissionRequest van = Request("FG-1", c, "203.0.113.1", "2");
  van.gnss = GnssFix{37.6000, 126.9780, 30};  // ~3.7 km north
  Decision d = engine->Admit(van);
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_THAT(d.reasons, ElementsAre("location.gnss"));
  EXPECT_EQ(Evidence(d, "gnss.allowed_m"), "380");  // 150 + 30 + 200
  engine->SessionDown("FG-1", "2");
  // A fix claiming 50 km of inaccuracy does not excuse itself.
  van.session = "3";
  van.gnss->acc_m = 50'000;
  EXPECT_EQ(engine->Admit(van).verdict, Verdict::kQuarantine);
}

TEST_F(AdmissionTest, GnssAbstainsWithoutSiteOrFix) {
  Certificate c = AddActiveDevice("FG-1");
  auto engine = MakeEngine();
  AdmissionRequest r = Request("FG-1", c, "203.0.113.1");
  r.gnss = GnssFix{0, 0, 10};
  EXPECT_EQ(engine->Admit(r).verdict, Verdict::kAllow);
}

// ---- rem ----

class RemTest : public AdmissionTest {
 protected:
  // Five home cells around the site (within ~500 m), two cells ~40 km away
  // (TAC 7000), and a foreign operator's cell.
  static std::shared_ptr<const CellDb> Cells() {
    std::string csv =
        "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
        "LTE,450,8,4660,1001,101,126.9780,37.5665,800,1,1,0,0,0\n"
        "LTE,450,8,4660,1002,102,126.9810,37.5680,800,1,1,0,0,0\n"
        "LTE,450,8,4660,1003,103,126.9750,37.5650,800,1,1,0,0,0\n"
        "LTE,450,8,4660,1004,104,126.9790,37.5700,800,1,1,0,0,0\n"
        "LTE,450,8,4661,1005,105,126.9770,37.5630,800,1,1,0,0,0\n"
        "LTE,450,8,7000,2001,201,127.4000,37.6000,1000,1,1,0,0,0\n"
        "LTE,450,8,7000,2002,202,127.4050,37.6020,1000,1,1,0,0,0\n"
        "LTE,450,5,4660,3001,301,126.9785,37.5668,800,1,1,0,0,0\n";
    auto db = CellDb::Parse(csv);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return std::make_shared<const CellDb>(std::move(db).value());
  }
  static RemCell Heard(uint64_t eci, uint32_t tac, int pci, double rsrp = -90, int mnc = 8, int mcc = 450) {
    RemCell c;
    c.mcc = mcc;
    c.mnc = mnc;
    c.tac = tac;
    c.eci = eci;
    c.pci = pci;
    c.rsrp = rsrp;
    return c;
  }
  void SetUp() override {
    AdmissionTest::SetUp();
    cert_ = AddActiveDevice("FG-1", {}, Site{37.5665, 126.9780, 100});
    policy_.home_plmns = {{450, 8}};
    engine_ = MakeEngine(nullptr, EngineOptions{.cells = Cells()});
  }
  Decision Scan(std::vector<RemCell> cells) {
    AdmissionRequest r = Request("FG-1", cert_, "203.0.113.1", "s" + std::to_string(++n_));
    r.rem = std::move(cells);
    Decision d = engine_->Admit(r);
    engine_->SessionDown("FG-1", r.session);
    return d;
  }
  Certificate cert_;
  std::unique_ptr<Engine> engine_;
  int n_ = 0;
};

TEST_F(RemTest, ScanHearingASubsetOfExpectedCellsIsAllowed) {
  EXPECT_EQ(Scan({Heard(1002, 4660, 102)}).verdict, Verdict::kAllow);
  // By PCI when the scan has no ECI; plus an unknown cell and a weak far one.
  EXPECT_EQ(Scan({Heard(0, 0, 101), Heard(9999, 4660, 7), Heard(2001, 7000, 201, -130)}).verdict, Verdict::kAllow);
  // One far cell alone (a fluke, a reflection) is not a clear inconsistency.
  EXPECT_EQ(Scan({Heard(1001, 4660, 101), Heard(2001, 7000, 201)}).verdict, Verdict::kAllow);
}

TEST_F(RemTest, ExpectedCellsAbsentIsQuarantined) {
  Decision d = Scan({Heard(9998, 4660, 400), Heard(9999, 4660, 401)});
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_THAT(d.reasons, ElementsAre("location.rem"));
  EXPECT_EQ(Evidence(d, "rem.inconsistency"), "absent");
  EXPECT_EQ(Evidence(d, "rem.expected"), "5");
}

TEST_F(RemTest, CellsOfAFarAreaAreQuarantined) {
  // By ECI, and by TAC for a cell the db does not know individually.
  Decision d = Scan({Heard(2001, 7000, 201), Heard(0, 7000, 250)});
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_EQ(Evidence(d, "rem.inconsistency"), "far");
  EXPECT_EQ(Evidence(d, "rem.far"), "2");
}

TEST_F(RemTest, ForeignOperatorCellsAreQuarantined) {
  Decision d = Scan({Heard(1001, 4660, 101), Heard(5, 1, 1, -80, 1, 440), Heard(6, 1, 2, -85, 1, 440)});
  EXPECT_EQ(d.verdict, Verdict::kQuarantine);
  EXPECT_EQ(Evidence(d, "rem.inconsistency"), "foreign");
  EXPECT_EQ(Evidence(d, "rem.foreign_plmn"), "440-1");
  // One foreign cell is not enough (border areas).
  EXPECT_EQ(Scan({Heard(1001, 4660, 101), Heard(5, 1, 1, -80, 1, 440)}).verdict, Verdict::kAllow);
}

TEST_F(AdmissionTest, RemAbstainsWithoutCellDatabase) {
  Certificate c = AddActiveDevice("FG-1", {}, Site{37.5665, 126.9780, 100});
  auto engine = MakeEngine();
  AdmissionRequest r = Request("FG-1", c, "203.0.113.1");
  r.rem = {RemCell{.mcc = 440, .mnc = 1, .tac = 1, .eci = 1}};
  EXPECT_EQ(engine->Admit(r).verdict, Verdict::kAllow);
}

// ---- rate ----

TEST_F(AdmissionTest, TooManyAttemptsPerIdentityOrLineAreDenied) {
  Certificate c = AddActiveDevice("FG-1");
  Certificate c2 = AddActiveDevice("FG-2");
  policy_.rate_identity = {3, 60};
  policy_.rate_line = {5, 60};
  auto engine = MakeEngine();
  const UnixMillis t0 = (NowMillis() / 60000 + 1) * 60000;  // start of a window
  for (int i = 0; i < 3; ++i) {
    AdmissionRequest r = Request("FG-1", c, "203.0.113.1", "s");
    r.now_ms = t0 + i * 1000;
    EXPECT_EQ(engine->Admit(r).verdict, Verdict::kAllow) << i;
  }
  AdmissionRequest fourth = Request("FG-1", c, "203.0.113.1", "s");
  fourth.now_ms = t0 + 4000;
  Decision d = engine->Admit(fourth);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_THAT(d.reasons, ElementsAre("rate"));
  EXPECT_EQ(Evidence(d, "rate.scope"), "identity");
  // Another device on another line is not affected...
  AdmissionRequest other = Request("FG-2", c2, "203.0.113.2", "x");
  other.now_ms = t0 + 4000;
  EXPECT_EQ(engine->Admit(other).verdict, Verdict::kAllow);
  // ...and two windows later FG-1 may try again.
  fourth.now_ms = t0 + 121'000;
  EXPECT_EQ(engine->Admit(fourth).verdict, Verdict::kAllow);
  // The line limit, in a fresh window: six attempts from one line by three
  // devices (none over its own limit) - the sixth is refused.
  Certificate c3 = AddActiveDevice("FG-3");
  Feed(*engine);
  engine->SessionDown("FG-2", "x");
  const UnixMillis t1 = t0 + 240'000;
  std::vector<std::pair<std::string, Certificate>> who = {{"FG-1", c}, {"FG-1", c}, {"FG-2", c2},
                                                          {"FG-2", c2}, {"FG-3", c3}};
  for (size_t i = 0; i < who.size(); ++i) {
    AdmissionRequest r = Request(who[i].first, who[i].second, "203.0.113.1", "y");
    r.now_ms = t1 + static_cast<UnixMillis>(i);
    EXPECT_EQ(engine->Admit(r).verdict, Verdict::kAllow) << i;
  }
  AdmissionRequest line = Request("FG-3", c3, "203.0.113.1", "y");
  line.now_ms = t1 + 10;
  Decision over = engine->Admit(line);
  EXPECT_EQ(over.verdict, Verdict::kDeny);
  EXPECT_THAT(over.reasons, ElementsAre("rate"));
  EXPECT_EQ(Evidence(over, "rate.scope"), "line");
}

// ---- blocked ----

TEST_F(AdmissionTest, BlockedDeviceAndLineAreDenied) {
  Certificate c1 = AddActiveDevice("FG-1");
  Certificate c2 = AddActiveDevice("FG-2");
  Certificate c3 = AddActiveDevice("FG-3");
  auto engine = MakeEngine();
  ASSERT_TRUE(store_->AddBlock({.kind = "device", .value = "FG-1", .alert_id = "al-1", .reason = "clone"},
                               {"response", "alert al-1"}).ok());
  ASSERT_TRUE(store_->AddBlock({.kind = "line", .value = "198.51.100.0/24", .reason = "rogue line"},
                               {"operator", "ticket"}).ok());
  ASSERT_TRUE(store_->AddBlock({.kind = "payments", .value = "pseudonym-x"}, {"response", "x"}).ok());
  Feed(*engine);
  Decision d1 = engine->Admit(Request("FG-1", c1, "203.0.113.1"));
  EXPECT_EQ(d1.verdict, Verdict::kDeny);
  EXPECT_THAT(d1.reasons, ElementsAre("blocked"));
  EXPECT_EQ(Evidence(d1, "block.alert"), "al-1");
  EXPECT_THAT(engine->Admit(Request("FG-2", c2, "198.51.100.9")).reasons, ElementsAre("blocked"));
  EXPECT_EQ(engine->Admit(Request("FG-3", c3, "203.0.113.3")).verdict, Verdict::kAllow);
  // Unblocked: admitted again.
  ASSERT_TRUE(store_->RemoveBlock("device", "FG-1", {"operator", "cleared"}).ok());
  Feed(*engine);
  EXPECT_EQ(engine->Admit(Request("FG-1", c1, "203.0.113.1", "2")).verdict, Verdict::kAllow);
}

}  // namespace
}  // namespace fg::admission
