// Event types, subject ids and the fast pseudonym bytes: the names and text
// forms other modules (sim, score, the store) rely on.

#include "detect/event.h"

#include <gtest/gtest.h>

#include <string>

#include "common/pseudonym.h"

namespace fg::detect {
namespace {

TEST(EventTypeTest, EveryTypeHasItsDesignNameAndParsesBack) {
  const std::vector<std::string> names = {"session.up",  "session.down", "location.report", "rem.scan",
                                          "ue.attach",   "ue.detach",    "sms.deliver",     "payment.auth",
                                          "meas.report", "device.status", "endpoint.status"};
  for (size_t i = 0; i < names.size(); ++i) {
    EventType t{};
    ASSERT_TRUE(ParseEventType(names[i], &t)) << names[i];
    EXPECT_EQ(static_cast<size_t>(t), i);
    EXPECT_EQ(EventTypeName(t), names[i]);
  }
  EventType t = EventType::kSessionDown;
  EXPECT_FALSE(ParseEventType("session.sideways", &t));
  EXPECT_FALSE(ParseEventType("", &t));
  EXPECT_FALSE(ParseEventType("SESSION.UP", &t));
  EXPECT_EQ(t, EventType::kSessionDown) << "a failed parse leaves the output alone";
}

TEST(EventTypeTest, SmsClassAndChannelNames) {
  EXPECT_EQ(SmsClassName(SmsClass::kOtp), "otp");
  EXPECT_EQ(SmsClassName(SmsClass::kArs), "ars");
  EXPECT_EQ(SmsClassName(SmsClass::kP2p), "p2p");
  EXPECT_EQ(SmsClassName(SmsClass::kBulk), "bulk");
  EXPECT_EQ(PayChannelName(PayChannel::kSmsOtp), "sms_otp");
  EXPECT_EQ(PayChannelName(PayChannel::kArs), "ars");
  EXPECT_EQ(PayChannelName(PayChannel::kNone), "none");
}

// The decoder's fast HMAC path must give the pseudonyms the registry import
// and the store use, for any key length (RFC 2104 hashes keys longer than a
// block, pads shorter ones).
TEST(SubjectIdTest, BytesPathEqualsThePseudonymizersTextForm) {
  for (size_t key_len : {0, 1, 16, 32, 63, 64, 65, 200}) {
    std::string key(key_len, '\0');
    for (size_t i = 0; i < key_len; ++i) key[i] = static_cast<char>(i * 37 + 11);
    Pseudonymizer p(key);
    for (std::string_view kind : {"imsi", "imei", "msisdn"}) {
      for (std::string_view raw : {"450081234567890", "35391805123456", "821012345678", "1"}) {
        SubjectId id;
        p.PseudonymizeBytes(kind, raw, id.bytes.data());
        EXPECT_EQ(id.ToString(kind), p.Pseudonymize(kind, raw)) << "key_len " << key_len << " " << kind;
      }
    }
  }
}

TEST(SubjectIdTest, TextRoundTripAndRejectsMalformed) {
  Pseudonymizer p(std::string(32, 'k'));
  std::string text = p.Pseudonymize("imsi", "450081234567890");
  SubjectId id;
  ASSERT_TRUE(SubjectId::FromString(text, &id));
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(id.ToString("imsi"), text);

  SubjectId untouched = id;
  for (std::string bad : {std::string("imsi"), std::string("imsi:"), std::string(":") + text.substr(5),
                          text.substr(0, text.size() - 1), text + "0", "imsi:" + std::string(24, 'g'),
                          std::string("450081234567890")}) {
    EXPECT_FALSE(SubjectId::FromString(bad, &untouched)) << bad;
  }
  EXPECT_EQ(untouched, id) << "a failed parse leaves the output alone";
  EXPECT_TRUE(SubjectId{}.empty());
}

TEST(EventTest, ClearResetsEveryFieldAndKeepsCapacity) {
  Event e;
  e.type = EventType::kMeasReport;
  e.ts_ms = 5;
  e.line = 9;
  e.device = std::string(100, 'd');
  e.status = "active";
  e.has_fix = true;
  e.lat = 1;
  e.cells.resize(10);
  e.neighbors.resize(10);
  e.imsi.bytes[0] = 1;
  e.sender_msisdn.bytes[3] = 1;
  e.sender = "bank";
  e.amount = 3;
  e.serving_eci = 77;
  size_t device_cap = e.device.capacity(), cells_cap = e.cells.capacity();
  e.Clear();
  EXPECT_EQ(e.type, EventType::kSessionUp);
  EXPECT_EQ(e.ts_ms, 0);
  EXPECT_EQ(e.line, 0u);
  EXPECT_TRUE(e.device.empty());
  EXPECT_TRUE(e.status.empty());
  EXPECT_FALSE(e.has_fix);
  EXPECT_EQ(e.lat, 0);
  EXPECT_TRUE(e.cells.empty());
  EXPECT_TRUE(e.neighbors.empty());
  EXPECT_TRUE(e.imsi.empty());
  EXPECT_TRUE(e.sender_msisdn.empty());
  EXPECT_TRUE(e.sender.empty());
  EXPECT_EQ(e.amount, 0);
  EXPECT_EQ(e.serving_eci, 0u);
  EXPECT_EQ(e.device.capacity(), device_cap);
  EXPECT_EQ(e.cells.capacity(), cells_cap);
}

}  // namespace
}  // namespace fg::detect
