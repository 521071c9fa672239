// The JetStream producer against a real 3-node nats-server cluster (R3 file
// stream): what is acknowledged is stored, once, and survives the stream
// leader's kill -9.

#include "bus/jetstream.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bus/event_codec.h"
#include "testing/nats_server.h"

namespace fg::bus {
namespace {

using fg::testing::NatsCluster;

// An event of one device only (a session event would also be copied to
// every partition: SharedAcrossPartitions).
detect::Event DeviceEvent(const std::string& device, int64_t ts) {
  detect::Event e;
  e.type = detect::EventType::kLocationReport;
  e.ts_ms = ts;
  e.device = device;
  e.has_fix = true;
  e.lat = 48.1;
  e.lon = 11.5;
  return e;
}

std::string Batch(const std::vector<detect::Event>& events) {
  std::string b;
  BeginBatch(&b);
  for (const auto& e : events) AppendEvent(e, &b);
  FinishBatch(&b, static_cast<uint32_t>(events.size()));
  return b;
}

// A batch of `n` events over `devices` devices, numbered from `first`.
std::string DeviceBatch(int first, int n, int devices) {
  std::vector<detect::Event> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(
        DeviceEvent("FG-" + std::to_string((first + i) % devices), 1700000000000 + first + i));
  }
  return Batch(v);
}

// Everything in the stream, read back by a pull consumer: message id ->
// (subject, events in it). A message id seen twice fails the test.
struct Stored {
  std::map<std::string, std::pair<std::string, size_t>> by_id;
  size_t events = 0;
  size_t messages = 0;
  size_t markers = 0;  // batch-end markers (one per partition and batch)
};

Stored ReadStream(const std::string& urls) {
  Stored out;
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  EXPECT_EQ(natsOptions_Create(&opts), NATS_OK);
  std::vector<std::string> servers = *ParseBusUrl(urls);
  std::vector<const char*> list;
  for (const auto& u : servers) list.push_back(u.c_str());
  natsOptions_SetServers(opts, list.data(), static_cast<int>(list.size()));
  natsOptions_SetTimeout(opts, 5000);
  // Right after a server restart one server of the list may not take
  // connections yet: the next attempt goes to another.
  natsStatus connected = NATS_ERR;
  for (int attempt = 0; attempt < 10 && connected != NATS_OK; ++attempt)
    connected = natsConnection_Connect(&nc, opts);
  EXPECT_EQ(connected, NATS_OK) << nats_GetLastError(nullptr);
  EXPECT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  // Right after a server restart the JetStream API may time out while the
  // restarted server catches up: the consumer's creation is retried.
  natsStatus subscribed = NATS_ERR;
  for (int attempt = 0; attempt < 10 && subscribed != NATS_OK; ++attempt) {
    subscribed = js_PullSubscribe(&sub, js, "fg.ev.>", "reader", nullptr, nullptr, &jerr);
  }
  EXPECT_EQ(subscribed, NATS_OK) << jerr << " " << nats_GetLastError(nullptr);
  for (;;) {
    natsMsgList list{};
    natsStatus s = natsSubscription_Fetch(&list, sub, 256, 3000, &jerr);
    if (s == NATS_TIMEOUT || list.Count == 0) break;
    EXPECT_EQ(s, NATS_OK);
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      const char* id = nullptr;
      natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
      std::string sid = id ? id : "";
      const char* marker = nullptr;
      if (natsMsgHeader_Get(m, "Fg-Batch-End", &marker) == NATS_OK) {
        ++out.markers;  // a batch's end marker: no events
        natsMsg_Ack(m, nullptr);
        continue;
      }
      size_t n = 0;
      EXPECT_TRUE(ForEachEvent(std::string_view(natsMsg_GetData(m), natsMsg_GetDataLength(m)),
                               [&](const detect::Event&) { ++n; })
                      .ok());
      EXPECT_EQ(out.by_id.count(sid), 0u) << "message id stored twice: " << sid;
      out.by_id[sid] = {natsMsg_GetSubject(m), n};
      out.events += n;
      ++out.messages;
      natsMsg_Ack(m, nullptr);
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  return out;
}

JetStreamOptions Options(const NatsCluster& c) {
  JetStreamOptions o;
  o.servers = *ParseBusUrl(c.Urls());
  o.partitions = 4;
  o.replicas = 3;
  return o;
}

TEST(JetStreamPartitionTest, StableAndWithinRange) {
  // Fixed values: a change would move devices between partitions across a
  // rolling upgrade.
  EXPECT_EQ(PartitionOf("FG-0000001", 16), PartitionOf("FG-0000001", 16));
  EXPECT_EQ(PartitionOf("", 16), 2166136261u % 16);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint32_t p = PartitionOf("FG-" + std::to_string(i), 16);
    ASSERT_LT(p, 16u);
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), 16u);  // 1000 devices reach every partition
  EXPECT_EQ(EventSubject(3, SubjectToken("FG-1")), "fg.ev.3.FG-1");
  EXPECT_EQ(SubjectToken("a.b*c>d e"), "a_b_c_d_e");  // never a wildcard or an extra token
  EXPECT_EQ(SubjectToken(""), "_");
}

TEST(JetStreamPartitionTest, BusUrlParsing) {
  auto ok = ParseBusUrl("nats://h1:4222,nats://h2,nats://127.0.0.1:5000");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->size(), 3u);
  for (const char* bad : {"", "h1:4222", "nats://", "nats://h1:0", "nats://h1:99999",
                          "nats://u:p@h1", "nats://h1/x", "nats://h1,", "http://h1"}) {
    EXPECT_FALSE(ParseBusUrl(bad).ok()) << bad;
  }
}

TEST(JetStreamProducerTest, BatchIsSplitByPartitionAndStoredWithItsIds) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto producer = JetStreamProducer::Connect(Options(**cluster));
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  auto r = (*producer)->PublishBatch(DeviceBatch(0, 100, 20), "b1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->events, 100u);
  EXPECT_EQ(r->duplicates, 0u);
  EXPECT_GE(r->parts, 2u);
  EXPECT_LE(r->parts, 4u);

  Stored s = ReadStream((*cluster)->Urls());
  EXPECT_EQ(s.events, 100u);
  EXPECT_EQ(s.messages, r->parts);
  EXPECT_EQ(s.markers, 4u);  // the batch's end, in each of the 4 partitions
  for (const auto& [id, v] : s.by_id) {
    ASSERT_EQ(id.rfind("b1.p", 0), 0u) << id;
    const std::string partition = id.substr(4);
    // The subject names the partition the id does: fg.ev.<p>.<device|mixed>.
    EXPECT_EQ(v.first.rfind("fg.ev." + partition + ".", 0), 0u) << v.first;
  }
  // One device alone: its subject names it.
  auto one = (*producer)->PublishBatch(Batch({DeviceEvent("FG-7", 1), DeviceEvent("FG-7", 2)}), "b2");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->parts, 1u);
  Stored s2 = ReadStream((*cluster)->Urls());
  const std::string id = "b2.p" + std::to_string(PartitionOf("FG-7", 4));
  ASSERT_EQ(s2.by_id.count(id), 1u);
  EXPECT_EQ(s2.by_id[id].first, "fg.ev." + std::to_string(PartitionOf("FG-7", 4)) + ".FG-7");
}

TEST(JetStreamProducerTest, SessionEventsReachEveryPartitionAndPaymentsAreStoredLast) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto producer = JetStreamProducer::Connect(Options(**cluster));
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  detect::Event up = DeviceEvent("FG-1", 1);
  up.type = detect::EventType::kSessionUp;
  up.session = "s1";
  detect::Event pay;
  pay.type = detect::EventType::kPaymentAuth;
  pay.ts_ms = 2;
  pay.device = "FG-2";  // a payment goes by its subscriber even when it names a femtocell
  pay.imsi.bytes.fill(7);
  auto r = (*producer)->PublishBatch(Batch({up, pay, DeviceEvent("FG-3", 3)}), "mix");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->events, 3u);
  Stored s = ReadStream((*cluster)->Urls());
  // The session's copies: one in each of the 4 partitions, plus the
  // location report and the payment.
  EXPECT_EQ(s.events, 4u + 2u);
  for (uint32_t p = 0; p < 4; ++p) EXPECT_EQ(s.by_id.count("mix.p" + std::to_string(p)), 1u) << p;
  const std::string pay_id = "mix.s" + std::to_string(EventPartition(pay, 4));
  ASSERT_EQ(s.by_id.count(pay_id), 1u);
  EXPECT_EQ(s.by_id[pay_id].first, "fg.ev." + std::to_string(EventPartition(pay, 4)) + "._");
}

TEST(JetStreamProducerTest, ResentBatchIsStoredOnce) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto producer = JetStreamProducer::Connect(Options(**cluster));
  ASSERT_TRUE(producer.ok());
  const std::string batch = DeviceBatch(0, 50, 10);
  auto first = (*producer)->PublishBatch(batch, "feed-x-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A second producer (another node) gets the same batch re-sent.
  auto other = JetStreamProducer::Connect(Options(**cluster));
  ASSERT_TRUE(other.ok());
  auto again = (*other)->PublishBatch(batch, "feed-x-1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->duplicates, again->parts);
  // Same events under another id are new (the id, not the content, decides).
  auto distinct = (*producer)->PublishBatch(batch, "feed-x-2");
  ASSERT_TRUE(distinct.ok());
  EXPECT_EQ(distinct->duplicates, 0u);
  Stored s = ReadStream((*cluster)->Urls());
  EXPECT_EQ(s.events, 100u);
}

TEST(JetStreamProducerTest, NoQuorumIsUnavailableAndTheResentBatchIsStoredOnce) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  JetStreamOptions o = Options(**cluster);
  o.publish_timeout_ms = 1500;
  auto producer = JetStreamProducer::Connect(o);
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)->PublishBatch(DeviceBatch(0, 10, 5), "before").ok());
  // Two of three servers gone: no quorum, nothing can be stored.
  ASSERT_TRUE((*cluster)->Kill(1).ok());
  ASSERT_TRUE((*cluster)->Kill(2).ok());
  auto r = (*producer)->PublishBatch(DeviceBatch(10, 10, 5), "during");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("JetStream"), std::string::npos) << r.status().message();
  // Bad input is not a JetStream problem.
  auto bad = (*producer)->PublishBatch("not a batch", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  // The cluster back: "during" re-sent is stored once, "before" stayed.
  ASSERT_TRUE((*cluster)->Restart(1).ok());
  ASSERT_TRUE((*cluster)->Restart(2).ok());
  ASSERT_TRUE((*cluster)->WaitForStreamLeader(kEventStream).ok());
  JetStreamOptions patient = o;
  patient.publish_timeout_ms = 20000;
  auto again = JetStreamProducer::Connect(patient);
  ASSERT_TRUE(again.ok());
  auto resent = (*again)->PublishBatch(DeviceBatch(10, 10, 5), "during");
  ASSERT_TRUE(resent.ok()) << resent.status().ToString() << (*cluster)->Logs();
  Stored s = ReadStream((*cluster)->Urls());
  EXPECT_EQ(s.events, 20u);
}

TEST(JetStreamProducerTest, KillingTheStreamLeaderLosesNothingAcknowledged) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  JetStreamOptions o = Options(**cluster);
  o.publish_timeout_ms = 15000;  // rides out the election
  auto producer = JetStreamProducer::Connect(o);
  ASSERT_TRUE(producer.ok());
  constexpr int kBatches = 60, kPerBatch = 40;
  std::set<std::string> acked_parts;
  size_t acked_events = 0;
  int killed = -1;
  int64_t worst_ms = 0;
  for (int b = 0; b < kBatches; ++b) {
    if (b == kBatches / 2) {
      auto k = (*cluster)->KillStreamLeader(kEventStream);
      ASSERT_TRUE(k.ok()) << k.status().ToString();
      killed = *k;
    }
    const std::string id = "run-" + std::to_string(b);
    const auto t0 = std::chrono::steady_clock::now();
    // As a client does: re-send with the same id until it is acknowledged.
    Result<PublishReport> r = Status::Unavailable("not yet");
    for (int attempt = 0; attempt < 5 && !r.ok(); ++attempt)
      r = (*producer)->PublishBatch(DeviceBatch(b * kPerBatch, kPerBatch, 30), id);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    worst_ms = std::max<int64_t>(worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now() - t0)
                                               .count());
    acked_events += r->events;
  }
  ASSERT_GE(killed, 0);
  // The producer stalled a few seconds at most while a new leader was
  // elected: nats-server 2.9's RAFT election timeout after a kill -9 is 4 to
  // 9 s (a clean shutdown hands leadership over at once).
  EXPECT_LT(worst_ms, 12000);
  RecordProperty("worst_batch_ms", std::to_string(worst_ms));
  std::printf("longest batch across the leader's kill: %lld ms\n",
              static_cast<long long>(worst_ms));
  ASSERT_TRUE((*cluster)->Restart(killed).ok());
  ASSERT_TRUE((*cluster)->WaitForStreamLeader(kEventStream).ok());
  Stored s = ReadStream((*cluster)->Urls());  // fails on any id stored twice
  EXPECT_EQ(s.events, acked_events);
  EXPECT_EQ(acked_events, static_cast<size_t>(kBatches * kPerBatch));
  for (int b = 0; b < kBatches; ++b) {
    bool found = false;
    for (const auto& [id, v] : s.by_id)
      found |= id.rfind("run-" + std::to_string(b) + ".p", 0) == 0;
    EXPECT_TRUE(found) << "batch " << b << " acknowledged but not in the stream";
  }
}

}  // namespace
}  // namespace fg::bus
