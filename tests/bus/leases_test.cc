// Partition leases on a real 3-node JetStream cluster: every partition has
// exactly one owner among live nodes, a dead node's partitions move within
// 10 s, a joining node gets its share, and no partition ever has two owners.

#include "bus/leases.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "bus/jetstream.h"
#include "testing/nats_server.h"

namespace fg::bus {
namespace {

using fg::testing::NatsCluster;
using Clock = std::chrono::steady_clock;

constexpr int kPartitions = 8;

std::unique_ptr<PartitionLeases> Open(const NatsCluster& c, const std::string& node) {
  LeaseOptions o;
  o.servers = *ParseBusUrl(c.Urls());
  o.node_id = node;
  o.partitions = kPartitions;
  auto l = PartitionLeases::Open(o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(l).value() : nullptr;
}

// No partition owned twice among `nodes`; returns how many are owned.
size_t CheckDisjoint(const std::vector<PartitionLeases*>& nodes) {
  std::set<uint32_t> all;
  size_t total = 0;
  for (PartitionLeases* n : nodes) {
    for (uint32_t p : n->owned()) {
      EXPECT_TRUE(all.insert(p).second) << "partition " << p << " owned twice";
      ++total;
    }
  }
  return total;
}

// Ticks `nodes` every `tick_ms` until `done` holds (checking that no
// partition has two owners after every round); the time it took, or -1.
template <typename Pred>
int64_t TickUntil(const std::vector<PartitionLeases*>& nodes, Pred done, int tick_ms = 500,
                  int timeout_ms = 20000) {
  const auto t0 = Clock::now();
  while (Clock::now() - t0 < std::chrono::milliseconds(timeout_ms)) {
    for (PartitionLeases* n : nodes) EXPECT_TRUE(n->Tick().ok());
    CheckDisjoint(nodes);
    if (done())
      return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(tick_ms));
  }
  return -1;
}

TEST(PartitionLeasesTest, SharedOutMovedOnDeathAndOnJoin) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto a = Open(**cluster, "node-a");
  auto b = Open(**cluster, "node-b");
  ASSERT_TRUE(a && b);

  // Two nodes: every partition owned, half each.
  int64_t t = TickUntil({a.get(), b.get()}, [&] {
    return a->owned().size() == kPartitions / 2 && b->owned().size() == kPartitions / 2;
  });
  ASSERT_GE(t, 0) << "a " << a->owned().size() << " b " << b->owned().size();
  EXPECT_EQ(CheckDisjoint({a.get(), b.get()}), static_cast<size_t>(kPartitions));

  // b dies (no release, no more renewals): a has everything within 10 s,
  // ticking every 2 s as a node does.
  const std::set<uint32_t> bs = b->owned();
  b.reset();
  t = TickUntil(
      {a.get()}, [&] { return a->owned().size() == kPartitions; }, 2000);
  ASSERT_GE(t, 0);
  EXPECT_LT(t, 10000) << "takeover took " << t << " ms";
  std::printf("takeover of %zu partitions after a node's death: %lld ms\n", bs.size(),
              static_cast<long long>(t));

  // c joins: a hands half over, never two owners at once.
  auto c = Open(**cluster, "node-c");
  ASSERT_TRUE(c);
  t = TickUntil({a.get(), c.get()}, [&] {
    return a->owned().size() == kPartitions / 2 && c->owned().size() == kPartitions / 2;
  });
  ASSERT_GE(t, 0) << "a " << a->owned().size() << " c " << c->owned().size();
  EXPECT_LT(t, 10000);

  // A clean stop hands over at once (next tick), no TTL wait.
  c->Release();
  c.reset();
  const auto t0 = Clock::now();
  for (int i = 0; i < 20 && a->owned().size() < kPartitions; ++i) {
    ASSERT_TRUE(a->Tick().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(a->owned().size(), static_cast<size_t>(kPartitions));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST(PartitionLeasesTest, ALeaseTakenOverIsNoLongerOwned) {
  auto cluster = NatsCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  LeaseOptions o;
  o.servers = *ParseBusUrl((*cluster)->Urls());
  o.node_id = "slow";
  o.partitions = 2;
  o.ttl_ms = 2000;
  auto slow = PartitionLeases::Open(o);
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE((*slow)->Tick().ok());
  ASSERT_EQ((*slow)->owned().size(), 2u);
  // The slow node stalls past its TTL: not owned any more, even before it
  // learns that another node took over.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_TRUE((*slow)->owned().empty());
  o.node_id = "fast";
  auto fast = PartitionLeases::Open(o);
  ASSERT_TRUE(fast.ok());
  for (int i = 0; i < 40 && (*fast)->owned().size() < 2; ++i) {
    ASSERT_TRUE((*fast)->Tick().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ((*fast)->owned().size(), 2u);
  // The slow node's renewal (CAS on its old revision) fails: it keeps nothing.
  ASSERT_TRUE((*slow)->Tick().ok());
  EXPECT_TRUE((*slow)->owned().empty() || (*fast)->owned().empty())
      << "slow " << (*slow)->owned().size() << " fast " << (*fast)->owned().size();
  EXPECT_EQ((*fast)->owned().size(), 2u);
}

}  // namespace
}  // namespace fg::bus
