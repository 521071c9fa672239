// The World: registry records, live sessions, attachments and exposure,
// statuses; what events change and what they must not.

#include "detect/world.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/pseudonym.h"

namespace fg::detect {
namespace {

class WorldTest : public ::testing::Test {
 protected:
  WorldTest() : p_(std::string(32, 'w')) {}

  SubjectId Imsi(const std::string& raw) {
    SubjectId s;
    p_.PseudonymizeBytes("imsi", raw, s.bytes.data());
    return s;
  }
  Event Make(EventType type, const std::string& device, UnixMillis ts) {
    Event e;
    e.type = type;
    e.device = device;
    e.ts_ms = ts;
    return e;
  }
  Event SessionUp(const std::string& device, const std::string& session, UnixMillis ts,
                  const std::string& ip = "10.0.0.1") {
    Event e = Make(EventType::kSessionUp, device, ts);
    e.session = session;
    e.src_ip = ip;
    e.endpoint = "segw1:500";
    return e;
  }
  Event Ue(EventType type, const std::string& device, const std::string& imsi, UnixMillis ts) {
    Event e = Make(type, device, ts);
    e.imsi = Imsi(imsi);
    return e;
  }

  Pseudonymizer p_;
  World world_;
};

TEST_F(WorldTest, RegisterKeepsTheRegistryRecord) {
  Device d;
  d.id = "FG-1";
  d.status = DeviceStatus::kActive;
  d.mode = AccessMode::kHybrid;
  d.site = Site{37.5, 127.0, 150};
  d.prefixes = {"211.36.128.0/20"};
  d.csg = {p_.Pseudonymize("imsi", "450080000000003"), p_.Pseudonymize("imsi", "450080000000001"),
           p_.Pseudonymize("imsi", "450080000000002")};
  d.cert_fp = "sha256:aa";
  d.max_ues = 8;
  DeviceIdx i = world_.Register(d);
  EXPECT_EQ(world_.Find("FG-1"), i);
  EXPECT_EQ(world_.Find("FG-2"), kNoDevice);
  const DeviceState& s = world_.device(i);
  EXPECT_TRUE(s.registered);
  EXPECT_TRUE(s.Active());
  EXPECT_EQ(s.mode, AccessMode::kHybrid);
  ASSERT_TRUE(s.site.has_value());
  EXPECT_EQ(s.site->radius_m, 150);
  EXPECT_EQ(s.prefixes, d.prefixes);
  EXPECT_EQ(s.max_ues, 8);
  EXPECT_TRUE(std::is_sorted(s.csg.begin(), s.csg.end()));
  for (const char* m : {"450080000000001", "450080000000002", "450080000000003"}) EXPECT_TRUE(s.IsCsgMember(Imsi(m)));
  EXPECT_FALSE(s.IsCsgMember(Imsi("450080000000004")));
  EXPECT_EQ(world_.DeviceOfCertFp("sha256:aa"), i);

  // Re-registering replaces the record (and the certificate index) but not
  // the live state.
  world_.Apply(SessionUp("FG-1", "s1", 1000));
  d.cert_fp = "sha256:bb";
  d.status = DeviceStatus::kSuspended;
  EXPECT_EQ(world_.Register(d), i);
  EXPECT_EQ(world_.DeviceOfCertFp("sha256:aa"), kNoDevice);
  EXPECT_EQ(world_.DeviceOfCertFp("sha256:bb"), i);
  EXPECT_EQ(world_.device(i).status, DeviceStatus::kSuspended);
  EXPECT_EQ(world_.device(i).sessions.size(), 1u);
  EXPECT_EQ(world_.device_count(), 1u);
}

// The certificate index against a plain map, through many re-registrations
// from a small pool of fingerprints: shared fingerprints (the last
// registration owns it), changes, removals (the open-addressed table deletes
// by shifting entries back: every later lookup must still find its entry).
TEST_F(WorldTest, CertificateIndexAgreesWithAMapThroughChurn) {
  std::mt19937 rng(11);
  std::map<std::string, DeviceIdx> want;      // fp -> device, as the registry says
  std::map<DeviceIdx, std::string> current;   // device -> its fp
  std::vector<std::string> pool;
  for (int i = 0; i < 600; ++i) pool.push_back("sha256:" + std::to_string(i * 7919));
  for (int step = 0; step < 20000; ++step) {
    Device d;
    d.id = "FG-" + std::to_string(rng() % 900);
    d.status = DeviceStatus::kActive;
    d.cert_fp = rng() % 8 == 0 ? "" : pool[rng() % pool.size()];
    DeviceIdx idx = world_.Find(d.id);
    const std::string before = idx == kNoDevice ? "" : current[idx];
    idx = world_.Register(d);
    if (before != d.cert_fp) {
      if (!before.empty()) {
        auto it = want.find(before);
        if (it != want.end() && it->second == idx) want.erase(it);
      }
      if (!d.cert_fp.empty()) want[d.cert_fp] = idx;
    }
    current[idx] = d.cert_fp;
    if (step % 97 == 0 || step > 19900) {
      for (const std::string& fp : pool) {
        auto it = want.find(fp);
        ASSERT_EQ(world_.DeviceOfCertFp(fp), it == want.end() ? kNoDevice : it->second) << fp << " at step " << step;
      }
    }
  }
  EXPECT_EQ(world_.DeviceOfCertFp(""), kNoDevice);
  for (int i = 0; i < 900; ++i) {
    const std::string id = "FG-" + std::to_string(i);
    DeviceIdx idx = world_.Find(id);
    ASSERT_NE(idx, kNoDevice) << id;
    EXPECT_EQ(world_.device(idx).id, id);
  }
}

TEST_F(WorldTest, InternMakesUnregisteredRecordsOnce) {
  DeviceIdx a = world_.Intern("FG-X");
  EXPECT_EQ(world_.Intern("FG-X"), a);
  EXPECT_FALSE(world_.device(a).registered);
  EXPECT_EQ(world_.device(a).id, "FG-X");
  EXPECT_EQ(world_.device_count(), 1u);
}

TEST_F(WorldTest, SessionsComeAndGo) {
  world_.Apply(SessionUp("FG-1", "s1", 1000, "10.0.0.1"));
  world_.Apply(SessionUp("FG-1", "s2", 2000, "10.0.0.2"));
  DeviceIdx i = world_.Find("FG-1");
  ASSERT_NE(i, kNoDevice);
  EXPECT_FALSE(world_.device(i).registered) << "first seen in events";
  ASSERT_EQ(world_.device(i).sessions.size(), 2u);
  EXPECT_EQ(world_.device(i).sessions[1].src_ip, "10.0.0.2");
  EXPECT_EQ(world_.device(i).sessions[1].since_ms, 2000);
  EXPECT_EQ(world_.device(i).sessions[1].endpoint, "segw1:500");

  // The same session id again replaces it (a rekey, not a second line).
  world_.Apply(SessionUp("FG-1", "s1", 3000, "10.0.0.3"));
  ASSERT_EQ(world_.device(i).sessions.size(), 2u);
  EXPECT_EQ(world_.device(i).sessions[1].session, "s1");
  EXPECT_EQ(world_.device(i).sessions[1].src_ip, "10.0.0.3");

  Event down = Make(EventType::kSessionDown, "FG-1", 4000);
  down.session = "s2";
  world_.Apply(down);
  ASSERT_EQ(world_.device(i).sessions.size(), 1u);
  EXPECT_EQ(world_.device(i).sessions[0].session, "s1");

  // A session.down without a session id: the line went down as a whole.
  world_.Apply(Make(EventType::kSessionDown, "FG-1", 5000));
  EXPECT_TRUE(world_.device(i).sessions.empty());

  // session.down of a device never seen does not create it.
  down.device = "FG-NEVER";
  world_.Apply(down);
  EXPECT_EQ(world_.Find("FG-NEVER"), kNoDevice);
}

TEST_F(WorldTest, SessionsAreBounded) {
  for (int s = 0; s < 50; ++s) world_.Apply(SessionUp("FG-1", "s" + std::to_string(s), s));
  const auto& sessions = world_.device(world_.Find("FG-1")).sessions;
  EXPECT_LE(sessions.size(), 16u);
  EXPECT_EQ(sessions.back().session, "s49") << "the newest are kept";
}

TEST_F(WorldTest, AttachDetachAndExposure) {
  world_.Apply(Ue(EventType::kUeAttach, "FG-1", "450080000000001", 1000));
  world_.Apply(Ue(EventType::kUeAttach, "FG-1", "450080000000002", 2000));
  world_.Apply(Ue(EventType::kUeAttach, "FG-1", "450080000000001", 2500));  // again: not twice
  DeviceIdx i = world_.Find("FG-1");
  EXPECT_EQ(world_.device(i).attached.size(), 2u);
  const SubscriberState* s1 = world_.subscriber(Imsi("450080000000001"));
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->last_femto, i);
  EXPECT_EQ(s1->last_femto_ms, 2500);
  EXPECT_FALSE(s1->payments_held);

  world_.Apply(Ue(EventType::kUeDetach, "FG-1", "450080000000001", 9000));
  EXPECT_EQ(world_.device(i).attached.size(), 1u);
  EXPECT_EQ(world_.device(i).attached[0], Imsi("450080000000002"));
  EXPECT_EQ(world_.subscriber(Imsi("450080000000001"))->last_femto_ms, 9000) << "served until the detach";
  EXPECT_EQ(world_.subscriber(Imsi("450080000000001"))->last_femto, i) << "exposure outlives the attachment";

  // An SMS delivered through a femtocell is being served by it.
  world_.Apply(Ue(EventType::kSmsDeliver, "FG-2", "450080000000001", 10000));
  EXPECT_EQ(world_.subscriber(Imsi("450080000000001"))->last_femto, world_.Find("FG-2"));
  EXPECT_EQ(world_.subscriber(Imsi("450080000000001"))->last_femto_ms, 10000);
  // A detach from the old femtocell does not move the exposure back.
  world_.Apply(Ue(EventType::kUeDetach, "FG-1", "450080000000001", 11000));
  EXPECT_EQ(world_.subscriber(Imsi("450080000000001"))->last_femto_ms, 10000);

  EXPECT_EQ(world_.subscriber(Imsi("450089999999999")), nullptr);
  EXPECT_EQ(world_.subscriber_count(), 2u);
}

TEST_F(WorldTest, AttachedIsBounded) {
  for (int s = 0; s < 1000; ++s) {
    world_.Apply(Ue(EventType::kUeAttach, "FG-1", "45008" + std::to_string(1000000000 + s), s));
  }
  EXPECT_LE(world_.device(world_.Find("FG-1")).attached.size(), 256u);
  EXPECT_EQ(world_.subscriber_count(), 1000u);
}

TEST_F(WorldTest, PaymentsAndMeasurementsDoNotChangeTheWorld) {
  Event pay = Ue(EventType::kPaymentAuth, "", "450080000000001", 1000);
  world_.Apply(pay);
  Event meas = Ue(EventType::kMeasReport, "", "450080000000001", 1000);
  world_.Apply(meas);
  Event loc = Make(EventType::kLocationReport, "FG-1", 1000);
  world_.Apply(loc);
  EXPECT_EQ(world_.subscriber_count(), 0u);
  EXPECT_EQ(world_.device_count(), 0u);
}

TEST_F(WorldTest, DeviceStatusEventsRegisterAndSetStatus) {
  Event st = Make(EventType::kDeviceStatus, "FG-NEW", 1000);
  st.status = "active";
  world_.Apply(st);
  DeviceIdx i = world_.Find("FG-NEW");
  ASSERT_NE(i, kNoDevice);
  EXPECT_TRUE(world_.device(i).registered) << "a registry change names the device";
  EXPECT_TRUE(world_.device(i).Active());
  st.status = "decommissioned";
  world_.Apply(st);
  EXPECT_EQ(world_.device(i).status, DeviceStatus::kDecommissioned);
  st.status = "bogus";
  world_.Apply(st);
  EXPECT_EQ(world_.device(i).status, DeviceStatus::kDecommissioned) << "a bad status changes nothing";
}

TEST_F(WorldTest, EndpointStatus) {
  EXPECT_FALSE(world_.EndpointStatus("segw-old:500").has_value());
  Event e = Make(EventType::kEndpointStatus, "", 1);
  e.endpoint = "segw-old:500";
  e.status = "draining";
  world_.Apply(e);
  EXPECT_EQ(world_.EndpointStatus("segw-old:500"), "draining");
  e.status = "retired";
  world_.Apply(e);
  EXPECT_EQ(world_.EndpointStatus("segw-old:500"), "retired");
  world_.SetEndpointStatus("segw-new:500", "active");
  EXPECT_EQ(world_.EndpointStatus("segw-new:500"), "active");
}

TEST_F(WorldTest, SuspicionKeepsTheLatestExpiry) {
  DeviceIdx i = world_.Intern("FG-1");
  EXPECT_FALSE(world_.device(i).Suspect(0));
  world_.MarkSuspect(i, 5000, "cert.clone");
  EXPECT_TRUE(world_.device(i).Suspect(4999));
  EXPECT_FALSE(world_.device(i).Suspect(5000));
  world_.MarkSuspect(i, 3000, "device.unknown");  // earlier: no change
  EXPECT_EQ(world_.device(i).suspect_until_ms, 5000);
  EXPECT_EQ(world_.device(i).suspect_rule, "cert.clone");
  world_.MarkSuspect(i, 9000, "ue.capture");
  EXPECT_EQ(world_.device(i).suspect_rule, "ue.capture");
  world_.MarkSuspect(kNoDevice, 9000, "x");  // ignored
}

}  // namespace
}  // namespace fg::detect
