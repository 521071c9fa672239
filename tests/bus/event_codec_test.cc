#include "bus/event_codec.h"

#include <gtest/gtest.h>

namespace fg::bus {
namespace {

detect::Event Full() {
  detect::Event e;
  e.type = detect::EventType::kMeasReport;
  e.ts_ms = 1700000000123;
  e.line = 7;
  e.device = "FG-1";
  e.session = "s1";
  e.cert_fp = "sha256:ab";
  e.src_ip = "10.0.0.1";
  e.endpoint = "segw1:500";
  e.segw = "segw1";
  e.status = "active";
  e.has_fix = true;
  e.lat = 37.5;
  e.lon = 126.9;
  e.acc_m = 12;
  e.cells.push_back({450, 8, 1234, 99, 17, 1850, -90.5f});
  e.imsi.bytes[0] = 1;
  e.imei.bytes[1] = 2;
  e.msisdn.bytes[2] = 3;
  e.sender = "BANK";
  e.sender_msisdn.bytes[3] = 4;
  e.sms_class = detect::SmsClass::kOtp;
  e.merchant = "shop";
  e.currency = "KRW";
  e.amount = 9900;
  e.channel = detect::PayChannel::kArs;
  e.serving_eci = 123456;
  e.neighbors.push_back({301, 1850, 0, -101});
  return e;
}

TEST(EventCodecTest, RoundTripsEveryField) {
  std::string batch;
  BeginBatch(&batch);
  detect::Event in = Full();
  AppendEvent(in, &batch);
  AppendEvent(in, &batch);
  FinishBatch(&batch, 2);
  int n = 0;
  ASSERT_TRUE(ForEachEvent(batch, [&](const detect::Event& e) {
                ++n;
                EXPECT_EQ(e.type, in.type);
                EXPECT_EQ(e.ts_ms, in.ts_ms);
                EXPECT_EQ(e.device, "FG-1");
                EXPECT_EQ(e.endpoint, "segw1:500");
                EXPECT_TRUE(e.has_fix);
                EXPECT_DOUBLE_EQ(e.lat, 37.5);
                ASSERT_EQ(e.cells.size(), 1u);
                EXPECT_EQ(e.cells[0].eci, 99u);
                EXPECT_EQ(e.imsi, in.imsi);
                EXPECT_EQ(e.imei, in.imei);
                EXPECT_EQ(e.msisdn, in.msisdn);
                EXPECT_EQ(e.sender_msisdn, in.sender_msisdn);
                EXPECT_EQ(e.sms_class, detect::SmsClass::kOtp);
                EXPECT_EQ(e.channel, detect::PayChannel::kArs);
                EXPECT_DOUBLE_EQ(e.amount, 9900);
                ASSERT_EQ(e.neighbors.size(), 1u);
                EXPECT_EQ(e.neighbors[0].pci, 301);
              }).ok());
  EXPECT_EQ(n, 2);
}

TEST(EventCodecTest, TruncatedOrCorruptBatchesAreErrors) {
  std::string batch;
  BeginBatch(&batch);
  AppendEvent(Full(), &batch);
  FinishBatch(&batch, 1);
  for (size_t cut = 0; cut < batch.size(); cut += 3) {
    EXPECT_FALSE(ForEachEvent(batch.substr(0, cut), [](const detect::Event&) {}).ok()) << cut;
  }
  std::string bad = batch;
  bad[8] = 99;  // event type out of range
  EXPECT_FALSE(ForEachEvent(bad, [](const detect::Event&) {}).ok());
  EXPECT_FALSE(ForEachEvent(batch + "x", [](const detect::Event&) {}).ok());
}

}  // namespace
}  // namespace fg::bus
