#include "bus/bus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace fg::bus {
namespace {

TEST(InProcessBusTest, DeliversInOrderToMatchingPrefixesOnly) {
  InProcessBus bus;
  std::vector<std::string> events, alerts;
  bus.Subscribe("events", [&](std::string_view, const std::string& p) { events.push_back(p); });
  bus.Subscribe("alerts", [&](std::string_view, const std::string& p) { alerts.push_back(p); });
  ASSERT_TRUE(bus.Start().ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(bus.Publish("events", std::to_string(i)).ok());
  ASSERT_TRUE(bus.Publish("alerts", "a").ok());
  bus.Drain();
  ASSERT_EQ(events.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(events[i], std::to_string(i));
  EXPECT_EQ(alerts, std::vector<std::string>{"a"});
  bus.Stop();
}

TEST(InProcessBusTest, FullQueueRefusesInsteadOfGrowing) {
  InProcessBus bus(/*max_queued_bytes=*/10);
  std::atomic<bool> release{false};
  std::atomic<int> handled{0};
  bus.Subscribe("events", [&](std::string_view, const std::string&) {
    while (!release) std::this_thread::yield();
    ++handled;
  });
  ASSERT_TRUE(bus.Start().ok());
  ASSERT_TRUE(bus.Publish("events", "0123456789").ok());  // taken by the (blocked) handler
  // Wait until the first message left the queue, then fill it.
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += bus.Publish("events", "0123456789").ok() ? 1 : 0;
  EXPECT_LE(accepted, 2) << "the queue must refuse once it holds max_queued_bytes";
  release = true;
  bus.Drain();
  EXPECT_EQ(handled.load(), 1 + accepted);
  bus.Stop();
}

TEST(InProcessBusTest, PublishBeforeStartOrAfterStopIsRefused) {
  InProcessBus bus;
  EXPECT_FALSE(bus.Publish("events", "x").ok());
  ASSERT_TRUE(bus.Start().ok());
  bus.Stop();
  EXPECT_FALSE(bus.Publish("events", "x").ok());
}

TEST(InProcessBusTest, AThrowingHandlerDoesNotStopDelivery) {
  InProcessBus bus;
  int seen = 0;
  bus.Subscribe("events", [&](std::string_view, const std::string& p) {
    ++seen;
    if (p == "bad") throw std::runtime_error("boom");
  });
  ASSERT_TRUE(bus.Start().ok());
  ASSERT_TRUE(bus.Publish("events", "bad").ok());
  ASSERT_TRUE(bus.Publish("events", "good").ok());
  bus.Drain();
  EXPECT_EQ(seen, 2);
  bus.Stop();
}

}  // namespace
}  // namespace fg::bus
