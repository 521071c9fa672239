// Event decoding (DESIGN.md §3.4) and the JSON Lines reader: every type and
// field, what is ignored, what is refused and why, and that raw subscriber
// identities do not survive decoding.

#include "ingest/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"
#include "ingest/jsonl_reader.h"
#include "testing/harness.h"

namespace fg::ingest {
namespace {

using detect::Event;
using detect::EventType;
using detect::SubjectId;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kImsi[] = "450081234567890";
constexpr char kImei[] = "35391805123456";
constexpr char kMsisdn[] = "821012345678";

class DecoderTest : public ::testing::Test {
 protected:
  DecoderTest() : pseudonymizer_(std::string(32, 'k')), decoder_(pseudonymizer_) {}

  DecodeResult Decode(const std::string& line) {
    buffer_ = line;
    buffer_.append(EventDecoder::kPadding, ' ');
    return decoder_.Decode(buffer_.data(), line.size(), &event_);
  }
  SubjectId Pseudonym(std::string_view kind, std::string_view raw) {
    SubjectId id;
    EXPECT_TRUE(SubjectId::FromString(pseudonymizer_.Pseudonymize(kind, raw), &id));
    return id;
  }
  static UnixMillis Ts(const char* text) { return ParseRfc3339(text).value(); }

  Pseudonymizer pseudonymizer_;
  EventDecoder decoder_;
  std::string buffer_;
  Event event_;
};

TEST_F(DecoderTest, SessionUpAndDown) {
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","device":"FG-0000001","session":"s-1",)"
                   R"("cert_fp":"sha256:9f86","src_ip":"211.36.130.4","endpoint":"segw1.example.net:500","segw":"segw-1"})"),
            DecodeResult::kOk)
      << decoder_.error();
  EXPECT_EQ(event_.type, EventType::kSessionUp);
  EXPECT_EQ(event_.ts_ms, Ts("2025-09-01T12:00:00Z"));
  EXPECT_EQ(event_.device, "FG-0000001");
  EXPECT_EQ(event_.session, "s-1");
  EXPECT_EQ(event_.cert_fp, "sha256:9f86");
  EXPECT_EQ(event_.src_ip, "211.36.130.4");
  EXPECT_EQ(event_.endpoint, "segw1.example.net:500");
  EXPECT_EQ(event_.segw, "segw-1");

  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:05:00.250Z","type":"session.down","device":"FG-0000001","session":"s-1"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kSessionDown);
  EXPECT_EQ(event_.ts_ms, Ts("2025-09-01T12:05:00.250Z"));
  EXPECT_EQ(event_.session, "s-1");
  EXPECT_TRUE(event_.cert_fp.empty()) << "the reused event was cleared";
}

TEST_F(DecoderTest, LocationReportAndRemScan) {
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"location.report","device":"FG-1","lat":37.4786,"lon":126.8647,"acc_m":12})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kLocationReport);
  EXPECT_TRUE(event_.has_fix);
  EXPECT_DOUBLE_EQ(event_.lat, 37.4786);
  EXPECT_DOUBLE_EQ(event_.lon, 126.8647);
  EXPECT_DOUBLE_EQ(event_.acc_m, 12);

  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[)"
                   R"({"mcc":450,"mnc":8,"tac":1234,"eci":123456789,"pci":301,"earfcn":1850,"rsrp":-95.5},)"
                   R"({"mcc":450,"mnc":5,"tac":7,"pci":12,"earfcn":3000,"rsrp":-110}]})"),
            DecodeResult::kOk)
      << decoder_.error();
  ASSERT_EQ(event_.cells.size(), 2u);
  EXPECT_EQ(event_.cells[0].mcc, 450);
  EXPECT_EQ(event_.cells[0].mnc, 8);
  EXPECT_EQ(event_.cells[0].tac, 1234u);
  EXPECT_EQ(event_.cells[0].eci, 123456789u);
  EXPECT_EQ(event_.cells[0].pci, 301);
  EXPECT_EQ(event_.cells[0].earfcn, 1850);
  EXPECT_FLOAT_EQ(event_.cells[0].rsrp, -95.5f);
  EXPECT_EQ(event_.cells[1].eci, 0u) << "absent eci is 0";
  EXPECT_EQ(event_.cells[1].mnc, 5);

  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[]})"), DecodeResult::kOk)
      << "an empty scan is a scan that heard nothing";
  EXPECT_TRUE(event_.cells.empty());
}

TEST_F(DecoderTest, UeAttachDetachCarryPseudonymsOnly) {
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")") +
                   kImsi + R"(","imei":")" + kImei + R"("})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kUeAttach);
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi)) << "same bytes as the registry's CSG pseudonyms";
  EXPECT_EQ(event_.imei, Pseudonym("imei", kImei));
  EXPECT_TRUE(event_.msisdn.empty());

  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.detach","device":"FG-1","imsi":")") +
                   kImsi + R"("})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kUeDetach);
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi));
  EXPECT_TRUE(event_.imei.empty());
}

TEST_F(DecoderTest, SmsDeliverClassesAndSenders) {
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","sender":"KB-Bank","class":"otp"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kSmsDeliver);
  EXPECT_EQ(event_.sms_class, detect::SmsClass::kOtp);
  EXPECT_EQ(event_.sender, "KB-Bank");
  EXPECT_TRUE(event_.sender_msisdn.empty());

  // A short code is not a subscriber.
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","sender":"15881688","class":"ars"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.sms_class, detect::SmsClass::kArs);
  // 8 digits: a phone number by length; short codes are up to 6.
  EXPECT_TRUE(event_.sender.empty());
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","sender":"1588","class":"bulk"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.sender, "1588");
  EXPECT_EQ(event_.sms_class, detect::SmsClass::kBulk);

  // A p2p sender that is a phone number becomes an msisdn pseudonym, the
  // same as the msisdn field's for the same digits (with or without '+').
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","sender":"+)" + kMsisdn + R"(","class":"p2p"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.sms_class, detect::SmsClass::kP2p);
  EXPECT_TRUE(event_.sender.empty());
  EXPECT_EQ(event_.sender_msisdn, Pseudonym("msisdn", kMsisdn));

  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","class":"carrier-pigeon"})"),
            DecodeResult::kOk)
      << "an unknown class is kept as other, not refused";
  EXPECT_EQ(event_.sms_class, detect::SmsClass::kOther);
}

TEST_F(DecoderTest, PaymentAuth) {
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":")") + kImsi +
                   R"(","msisdn":")" + kMsisdn + R"(","merchant":"shop-7","amount":129000.5,"currency":"KRW","channel":"sms_otp"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kPaymentAuth);
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi));
  EXPECT_EQ(event_.msisdn, Pseudonym("msisdn", kMsisdn));
  EXPECT_EQ(event_.merchant, "shop-7");
  EXPECT_DOUBLE_EQ(event_.amount, 129000.5);
  EXPECT_EQ(event_.currency, "KRW");
  EXPECT_EQ(event_.channel, detect::PayChannel::kSmsOtp);
  for (auto [text, channel] : {std::pair{"ars", detect::PayChannel::kArs}, std::pair{"none", detect::PayChannel::kNone},
                               std::pair{"card", detect::PayChannel::kOther}}) {
    ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":")") + kImsi +
                     R"(","amount":1,"channel":")" + text + R"("})"),
              DecodeResult::kOk);
    EXPECT_EQ(event_.channel, channel) << text;
  }
}

TEST_F(DecoderTest, MeasReport) {
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"meas.report","imsi":")") + kImsi +
                   R"(","serving_eci":4660,"lat":37.5,"lon":127.0,"neighbors":[{"pci":7,"earfcn":1850,"rsrp":-101},{"pci":8,"earfcn":1850,"eci":99,"rsrp":-90.25}]})"),
            DecodeResult::kOk)
      << decoder_.error();
  EXPECT_EQ(event_.type, EventType::kMeasReport);
  EXPECT_EQ(event_.serving_eci, 4660u);
  EXPECT_TRUE(event_.has_fix);
  EXPECT_DOUBLE_EQ(event_.lat, 37.5);
  ASSERT_EQ(event_.neighbors.size(), 2u);
  EXPECT_EQ(event_.neighbors[0].pci, 7);
  EXPECT_EQ(event_.neighbors[0].earfcn, 1850);
  EXPECT_EQ(event_.neighbors[0].eci, 0u);
  EXPECT_FLOAT_EQ(event_.neighbors[0].rsrp, -101);
  EXPECT_EQ(event_.neighbors[1].eci, 99u);

  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"meas.report","imsi":")") + kImsi +
                   R"(","serving_eci":4660,"neighbors":[]})"),
            DecodeResult::kOk);
  EXPECT_FALSE(event_.has_fix) << "no lat/lon: no fix";
}

TEST_F(DecoderTest, DeviceAndEndpointStatus) {
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"device.status","device":"FG-9","status":"suspended"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kDeviceStatus);
  EXPECT_EQ(event_.device, "FG-9");
  EXPECT_EQ(event_.status, "suspended");
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"endpoint.status","endpoint":"segw-old.example.net:500","status":"retired"})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.type, EventType::kEndpointStatus);
  EXPECT_EQ(event_.endpoint, "segw-old.example.net:500");
  EXPECT_EQ(event_.status, "retired");

  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"device.status","device":"FG-9","status":"zombie"})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("status"));
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"endpoint.status","endpoint":"e","status":"gone"})"),
            DecodeResult::kMalformed);
}

TEST_F(DecoderTest, UnknownFieldsAreIgnoredWhateverTheirShape) {
  ASSERT_EQ(Decode(R"({"x-vendor":{"deep":[1,{"a":[null,true]}]},"ts":"2025-09-01T12:00:00Z","note":"hi",)"
                   R"("type":"session.down","device":"FG-1","session":"s","lat_extra":"north","cells_v2":7})"),
            DecodeResult::kOk)
      << decoder_.error();
  EXPECT_EQ(event_.device, "FG-1");
  // Unknown members of list entries too.
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[{"pci":1,"band":"B3","extra":{"x":1}}]})"),
            DecodeResult::kOk);
  EXPECT_EQ(event_.cells.at(0).pci, 1);
}

TEST_F(DecoderTest, UnknownTypeIsSkippedNotMalformed) {
  uint64_t before = Metrics::Global().Value("femtoguard_events_unknown_type_total");
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"handover.request","device":"FG-1","cells":"not a list"})"),
            DecodeResult::kUnknownType);
  EXPECT_EQ(Decode(R"({"type":"future.thing"})"), DecodeResult::kUnknownType) << "even without ts";
  EXPECT_EQ(Metrics::Global().Value("femtoguard_events_unknown_type_total"), before + 2);
}

TEST_F(DecoderTest, MalformedLinesSayWhichFieldAndWhy) {
  uint64_t before = Metrics::Global().Value("femtoguard_events_malformed_total");
  struct Case {
    std::string line;
    std::string says;
  };
  const std::vector<Case> cases = {
      {R"({"ts":"2025-09-01T12:00:00Z","type":"session.up")", "not valid JSON"},
      {R"(not json at all)", "not valid JSON"},
      {R"(["ts","type"])", "not a JSON object"},
      {R"("session.up")", "not a JSON object"},
      {R"({"ts":"2025-09-01T12:00:00Z","device":"FG-1"})", "missing field 'type'"},
      {R"({"type":"session.down","device":"FG-1"})", "missing field 'ts'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","device":"FG-1"})", "session.up: missing field 'session'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","session":"s"})", "session.up: missing field 'device'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"session.up","device":"","session":"s"})", "field 'device' is empty"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","amount":1})", "payment.auth: missing field 'imsi'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"meas.report","imsi":"450081234567890"})", "missing field 'neighbors'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":7})", "field 'type': not a string"},
      {R"({"ts":"yesterday","type":"session.down","device":"FG-1"})", "field 'ts': not an RFC 3339 timestamp"},
      {R"({"ts":"2025-02-30T12:00:00Z","type":"session.down","device":"FG-1"})", "field 'ts'"},
      {R"({"ts":"2025-09-01T24:00:00Z","type":"session.down","device":"FG-1"})", "field 'ts'"},
      {R"({"ts":1756728000,"type":"session.down","device":"FG-1"})", "field 'ts': not a string"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":42})", "field 'device': not a string"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"location.report","device":"FG-1","lat":"37.1","lon":127})",
       "field 'lat': not a number"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"location.report","device":"FG-1","lat":91,"lon":127})",
       "field 'lat': out of range"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"location.report","device":"FG-1","lat":1,"lon":-180.5})",
       "field 'lon': out of range"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":{"pci":1}})", "field 'cells': not a list"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[{"pci":1},7]})",
       "field 'cells[1]': not an object"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[{"pci":"one"}]})",
       "field 'cells[0].pci': not an integer"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[{"pci":2000}]})",
       "field 'cells[0].pci': out of range"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"meas.report","imsi":"450081234567890","neighbors":[{"eci":-1}]})",
       "field 'neighbors[0].eci'"},
      {R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":"450081234567890","amount":"lots"})",
       "field 'amount': not a number"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Decode(c.line), DecodeResult::kMalformed) << c.line;
    EXPECT_THAT(decoder_.error(), HasSubstr(c.says)) << c.line;
  }
  EXPECT_EQ(Metrics::Global().Value("femtoguard_events_malformed_total"), before + cases.size());
}

TEST_F(DecoderTest, BadIdentitiesAreRefusedWithoutEchoingThem) {
  const std::vector<std::string> bad_imsis = {"45008123456789A", "12345", "4500812345678901", "+450081234567890",
                                              "450 081234567890"};
  for (const std::string& imsi : bad_imsis) {
    ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")" + imsi + R"("})"),
              DecodeResult::kMalformed)
        << imsi;
    EXPECT_THAT(decoder_.error(), HasSubstr("field 'imsi': not an IMSI"));
    EXPECT_THAT(decoder_.error(), Not(HasSubstr(imsi)));
  }
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":450081234567890})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'imsi': not a string"));
  EXPECT_THAT(decoder_.error(), Not(HasSubstr(kImsi)));
  EXPECT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")") + kImsi +
                   R"(","imei":"35-391805-123456"})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'imei': not an IMEI"));
}

TEST_F(DecoderTest, OversizedFieldsListsAndLines) {
  std::string device65(65, 'D');
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":")" + device65 + R"("})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'device': oversized (more than 64 bytes)"));
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":")" + std::string(64, 'D') + R"("})"),
            DecodeResult::kOk)
      << "64 is the limit, inclusive";

  std::string cells = "[";
  for (int i = 0; i < 257; ++i) cells += std::string(i ? "," : "") + R"({"pci":1})";
  cells += "]";
  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":)" + cells + "}"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'cells': oversized (more than 256 entries)"));

  std::string neighbors = "[";
  for (int i = 0; i < 300; ++i) neighbors += std::string(i ? "," : "") + R"({"pci":1,"earfcn":1})";
  neighbors += "]";
  EXPECT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"meas.report","imsi":")") + kImsi +
                   R"(","neighbors":)" + neighbors + "}"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'neighbors': oversized"));

  EXPECT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":"FG-1","session":")" +
                   std::string(200, 's') + R"("})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'session': oversized"));

  std::string huge = R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":"FG-1","pad":")" +
                     std::string(70 * 1024, 'x') + R"("})";
  EXPECT_EQ(Decode(huge), DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("line longer than 65536 bytes (oversized)"));
}

TEST_F(DecoderTest, TimestampFastPathAgreesWithTheRfc3339Parser) {
  for (const char* ts : {"1970-01-01T00:00:00Z", "2024-02-29T23:59:59.999Z", "2025-09-01T12:00:00.001Z",
                         "2025-12-31T23:59:59Z", "2000-03-01T00:00:00Z", "2100-02-28T01:02:03.456Z",
                         "2025-09-01T12:00:00+09:00", "2025-09-01T12:00:00.5Z", "2025-09-01T12:00:00.123456Z",
                         "2025-09-01t12:00:00z"}) {
    ASSERT_EQ(Decode(std::string(R"({"ts":")") + ts + R"(","type":"session.down","device":"FG-1"})"), DecodeResult::kOk)
        << ts << ": " << decoder_.error();
    EXPECT_EQ(event_.ts_ms, ParseRfc3339(ts).value()) << ts;
  }
  // The day cache must not accept a bad time on a good, cached date.
  ASSERT_EQ(Decode(R"({"ts":"2025-09-01T12:00:00Z","type":"session.down","device":"FG-1"})"), DecodeResult::kOk);
  for (const char* ts : {"2025-09-01T12:60:00Z", "2025-09-01T12:00:0aZ", "2025-09-01T12:00:00.12aZ",
                         "2025-09-01X12:00:00Z", "2023-02-29T00:00:00Z", "2025-13-01T00:00:00Z"}) {
    EXPECT_EQ(Decode(std::string(R"({"ts":")") + ts + R"(","type":"session.down","device":"FG-1"})"),
              DecodeResult::kMalformed)
        << ts;
  }
}

// The privacy contract: after Decode, neither the Event nor the input line
// holds a raw IMSI, IMEI or MSISDN.
TEST_F(DecoderTest, RawIdentitiesDoNotSurviveDecoding) {
  std::string line = std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":")") + kImsi +
                     R"(","imei":")" + kImei + R"(","msisdn":")" + kMsisdn + R"(","merchant":"m","amount":1})";
  buffer_ = line + std::string(EventDecoder::kPadding, ' ');
  ASSERT_EQ(decoder_.Decode(buffer_.data(), line.size(), &event_), DecodeResult::kOk);
  EXPECT_EQ(buffer_.find(kImsi), std::string::npos) << "the input line is overwritten";
  EXPECT_EQ(buffer_.find(kMsisdn), std::string::npos);
  EXPECT_EQ(buffer_.find("payment.auth"), std::string::npos);

  // Every byte of every string field of the event.
  std::string all = event_.device + event_.session + event_.cert_fp + event_.src_ip + event_.endpoint + event_.segw +
                    event_.status + event_.sender + event_.merchant + event_.currency;
  for (const char* raw : {kImsi, kImei, kMsisdn}) EXPECT_EQ(all.find(raw), std::string::npos) << raw;
  // The identities are the keyed pseudonyms, not an unkeyed hash or the digits.
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi));
  Pseudonymizer other_key(std::string(32, 'o'));
  SubjectId with_other;
  other_key.PseudonymizeBytes("imsi", kImsi, with_other.bytes.data());
  EXPECT_NE(event_.imsi, with_other);

  // Malformed lines are overwritten too.
  std::string bad = std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","imsi":")") + kImsi + R"("})";
  buffer_ = bad + std::string(EventDecoder::kPadding, ' ');
  ASSERT_EQ(decoder_.Decode(buffer_.data(), bad.size(), &event_), DecodeResult::kMalformed);
  EXPECT_EQ(buffer_.find(kImsi), std::string::npos);
}

TEST_F(DecoderTest, SecondaryIdentitiesOffAreCheckedAndWipedButNotDerived) {
  decoder_.set_secondary_ids(false);
  std::string attach = std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")") +
                       kImsi + R"(","imei":")" + kImei + R"("})";
  buffer_ = attach + std::string(EventDecoder::kPadding, ' ');
  ASSERT_EQ(decoder_.Decode(buffer_.data(), attach.size(), &event_), DecodeResult::kOk);
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi)) << "imsi is always pseudonymized";
  EXPECT_TRUE(event_.imei.empty());
  EXPECT_EQ(buffer_.find(kImei), std::string::npos) << "wiped all the same";

  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":")") + kImsi +
                   R"(","msisdn":"+)" + kMsisdn + R"(","merchant":"m","amount":1})"),
            DecodeResult::kOk);
  EXPECT_TRUE(event_.msisdn.empty());
  ASSERT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"sms.deliver","device":"FG-1","imsi":")") +
                   kImsi + R"(","sender":")" + kMsisdn + R"(","class":"p2p"})"),
            DecodeResult::kOk);
  EXPECT_TRUE(event_.sender_msisdn.empty());
  EXPECT_TRUE(event_.sender.empty()) << "a phone-number sender is not kept as text either";

  // The same checks as with them on: a bad one still makes the line malformed.
  EXPECT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")") +
                   kImsi + R"(","imei":"35-391805-123456"})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'imei': not an IMEI"));
  EXPECT_EQ(Decode(std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"payment.auth","imsi":")") + kImsi +
                   R"(","msisdn":12,"merchant":"m","amount":1})"),
            DecodeResult::kMalformed);
  EXPECT_THAT(decoder_.error(), HasSubstr("field 'msisdn': not a string"));

  decoder_.set_secondary_ids(true);
  ASSERT_EQ(Decode(attach), DecodeResult::kOk);
  EXPECT_EQ(event_.imei, Pseudonym("imei", kImei));
}

TEST_F(DecoderTest, DecodeCopyLeavesTheCallersBufferAlone) {
  const std::string line = std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"ue.attach","device":"FG-1","imsi":")") +
                           kImsi + R"("})";
  ASSERT_EQ(decoder_.DecodeCopy(line, &event_), DecodeResult::kOk);
  EXPECT_EQ(event_.imsi, Pseudonym("imsi", kImsi));
  EXPECT_THAT(line, HasSubstr(kImsi));
}

// ---- JsonLinesReader ----

class ReaderTest : public ::testing::Test {
 protected:
  std::vector<JsonLinesReader::Line> ReadAllLines(const std::string& content, size_t max_line,
                                                  std::vector<std::string>* texts) {
    fg::testing::WriteAll(dir_ / "in.jsonl", content);
    auto reader = JsonLinesReader::Open(dir_ / "in.jsonl", max_line);
    EXPECT_TRUE(reader.ok());
    std::vector<JsonLinesReader::Line> lines;
    JsonLinesReader::Line line;
    while ((*reader)->Next(&line)) {
      // The padding is readable (ASan/valgrind would flag it otherwise).
      volatile char sink = 0;
      if (!line.oversized) {
        for (size_t i = 0; i < JsonLinesReader::kPadding; ++i) sink = sink ^ line.data[line.size + i];
      }
      lines.push_back(line);
      texts->push_back(line.oversized ? std::string() : std::string(line.data, line.size));
    }
    EXPECT_TRUE((*reader)->status().ok());
    EXPECT_EQ((*reader)->bytes_read(), content.size());
    return lines;
  }
  fg::testing::TempDir dir_;
};

TEST_F(ReaderTest, LinesNumbersCrlfAndALastLineWithoutNewline) {
  std::vector<std::string> texts;
  auto lines = ReadAllLines("a\r\n\nbb\nccc", 100, &texts);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(texts, (std::vector<std::string>{"a", "", "bb", "ccc"}));
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i].number, i + 1);

  texts.clear();
  EXPECT_TRUE(ReadAllLines("", 100, &texts).empty());
}

TEST_F(ReaderTest, OversizedLinesAreSkippedWithTheirNumberAndTheRestIsIntact) {
  // Lines across several 4 MiB buffer refills, with two oversized ones: one
  // longer than the whole buffer, one just over the limit.
  const size_t max_line = 1000;
  std::string content;
  std::vector<std::string> expected;
  size_t n = 0;
  while (content.size() < 13u << 20) {
    ++n;
    std::string line;
    if (n == 1000) {
      line = std::string(9u << 20, 'X');
    } else if (n == 5000) {
      line = std::string(max_line + 1, 'Y');
    } else {
      line = "line " + std::to_string(n) + " " + std::string(n % 900, 'a');
    }
    content += line + "\n";
    expected.push_back(line.size() > max_line ? std::string() : line);
  }
  std::vector<std::string> texts;
  auto lines = ReadAllLines(content, max_line, &texts);
  ASSERT_EQ(lines.size(), n);
  EXPECT_EQ(texts, expected);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].number, i + 1);
    EXPECT_EQ(lines[i].oversized, i + 1 == 1000 || i + 1 == 5000) << i + 1;
  }
  EXPECT_EQ(lines[999].size, 9u << 20);
  EXPECT_EQ(lines[4999].size, max_line + 1);
}

TEST_F(ReaderTest, AnOversizedLastLineWithoutNewline) {
  std::vector<std::string> texts;
  auto lines = ReadAllLines("ok\n" + std::string(5u << 20, 'Z'), 100, &texts);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[0].oversized);
  EXPECT_TRUE(lines[1].oversized);
  EXPECT_EQ(lines[1].number, 2u);
}

TEST_F(ReaderTest, MissingFileIsAnError) {
  auto reader = JsonLinesReader::Open(dir_ / "nope.jsonl");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("nope.jsonl"));
}

}  // namespace
}  // namespace fg::ingest
