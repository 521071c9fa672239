// NodeMembership (docs/cluster.md): registration at start, heartbeats with
// the store's health, the URL list in url_order, /healthz when the store
// takes no writes, and a node the operator removed staying removed.

#include "node/node_membership.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "testing/harness.h"

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The NodeRegistry role in memory: NodeMembership takes nothing else.
class FakeNodes : public NodeRegistry {
 public:
  Status UpsertNode(const NodeInfo& node, const AuditContext&) override {
    std::lock_guard lock(mutex_);
    ++upserts;
    for (NodeInfo& n : nodes) {
      if (n.id == node.id) {
        n.public_url = node.public_url;
        n.url_order = node.url_order;
        return Status::Ok();
      }
    }
    nodes.push_back(node);
    return Status::Ok();
  }
  Status HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health) override {
    std::lock_guard lock(mutex_);
    if (!writable) return Status::Unavailable("no primary");
    for (NodeInfo& n : nodes) {
      if (n.id == id) {
        n.heartbeat_ms = when;
        n.health = std::string(health);
        ++heartbeats;
        return Status::Ok();
      }
    }
    return Status::NotFound("no such node");
  }
  Result<std::vector<NodeInfo>> ListNodes() override {
    std::lock_guard lock(mutex_);
    std::vector<NodeInfo> out = nodes;
    std::stable_sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) {
      return std::tie(a.url_order, a.joined_ms) < std::tie(b.url_order, b.joined_ms);
    });
    return out;
  }
  Status RemoveNode(std::string_view id, const AuditContext&) override {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(nodes.begin(), nodes.end(), [id](const NodeInfo& n) { return n.id == id; });
    if (it == nodes.end()) return Status::NotFound("no such node");
    nodes.erase(it);
    return Status::Ok();
  }
  NodeInfo Get(const std::string& id) {
    std::lock_guard lock(mutex_);
    for (const NodeInfo& n : nodes) {
      if (n.id == id) return n;
    }
    return {};
  }

  std::mutex mutex_;
  std::vector<NodeInfo> nodes;
  bool writable = true;
  int upserts = 0;
  int heartbeats = 0;
};

class NodeMembershipTest : public ::testing::Test {
 protected:
  NodeMembership::Options Options() {
    NodeMembership::Options o;
    o.public_url = "http://self.example:8440";
    o.heartbeat_s = 3600;  // the tests call Heartbeat() themselves
    o.store_health = [this] {
      StoreHealth h;
      h.writable = writable_;
      if (!writable_) h.detail = "no primary among db1, db2";
      return h;
    };
    o.on_urls = [this](std::vector<std::string> urls) {
      std::lock_guard lock(urls_mutex_);
      urls_ = std::move(urls);
    };
    return o;
  }
  std::vector<std::string> Urls() {
    std::lock_guard lock(urls_mutex_);
    return urls_;
  }

  testing::TempDir tmp_;
  DataDir dir_{tmp_.path()};
  FakeNodes nodes_;
  bool writable_ = true;
  std::mutex urls_mutex_;
  std::vector<std::string> urls_;
};

TEST_F(NodeMembershipTest, APreClusterDataDirGetsAnIdAndIsRegistered) {
  ASSERT_FALSE(std::filesystem::exists(dir_.NodeIdPath()));
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto id = ReadNodeId(dir_);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(IsNodeId(*id));
  EXPECT_EQ((*m)->id(), *id);
  auto perms = std::filesystem::status(dir_.NodeIdPath()).permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all, std::filesystem::perms(0644));
  NodeInfo self = nodes_.Get(*id);
  EXPECT_EQ(self.public_url, "http://self.example:8440");
  EXPECT_GT(self.heartbeat_ms, 0);  // the first heartbeat is at start
  auto health = nlohmann::json::parse(self.health);
  EXPECT_EQ(health["store"], "ok");
  EXPECT_EQ(health["version"], kFemtoguardVersion);
  EXPECT_GT(health["started_ms"].get<int64_t>(), 0);
  EXPECT_THAT(Urls(), ElementsAre("http://self.example:8440"));
}

TEST_F(NodeMembershipTest, ARegisteredNodeIsNotRegisteredAgain) {
  ASSERT_TRUE(WriteFileAtomic(dir_.NodeIdPath(), "node-0000abcd\n", 0644).ok());
  NodeInfo known{"node-0000abcd", "http://set-by-operator:8440", 3, 1000, 0, ""};
  ASSERT_TRUE(nodes_.UpsertNode(known, {"test", "setup"}).ok());
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(nodes_.upserts, 1);  // only the setup's
  // The operator's URL and order stand: not overwritten by config public_url.
  EXPECT_EQ(nodes_.Get("node-0000abcd").public_url, "http://set-by-operator:8440");
  EXPECT_EQ(nodes_.Get("node-0000abcd").url_order, 3);
}

TEST_F(NodeMembershipTest, ABrokenNodeIdFileStopsTheStart) {
  ASSERT_TRUE(WriteFileAtomic(dir_.NodeIdPath(), "node-XYZ\n", 0644).ok());
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(nodes_.nodes.empty());  // nothing registered under a made-up name
}

TEST_F(NodeMembershipTest, RefreshFollowsTheOperatorsOrder) {
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(nodes_.UpsertNode({"node-000000bb", "http://b:8440", 0, 2000, 0, ""}, {"t", "t"}).ok());
  ASSERT_TRUE(nodes_.UpsertNode({(*m)->id(), "http://self.example:8440", 1, 0, 0, ""}, {"t", "t"}).ok());
  ASSERT_TRUE((*m)->Refresh().ok());
  EXPECT_THAT(Urls(), ElementsAre("http://b:8440", "http://self.example:8440"));
}

TEST_F(NodeMembershipTest, HealthzSaysDegradedWhileTheStoreTakesNoWrites) {
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_TRUE(m.ok());
  auto ok = nlohmann::json::parse((*m)->HealthzJson());
  EXPECT_EQ(ok["status"], "ok");
  EXPECT_EQ(ok["store"], "ok");
  EXPECT_EQ(ok["node"], (*m)->id());

  writable_ = false;
  nodes_.writable = false;
  auto degraded = nlohmann::json::parse((*m)->HealthzJson());
  EXPECT_EQ(degraded["status"], "degraded");
  EXPECT_EQ(degraded["store"], "unreachable: no primary among db1, db2");
  // The heartbeat fails (and says why) without taking anything down.
  Status beat = (*m)->Heartbeat();
  EXPECT_EQ(beat.code(), StatusCode::kUnavailable);
  EXPECT_THAT((*m)->HealthJson(), HasSubstr("unreachable: no primary"));

  writable_ = true;
  nodes_.writable = true;
  EXPECT_TRUE((*m)->Heartbeat().ok());
  EXPECT_EQ(nlohmann::json::parse((*m)->HealthzJson())["status"], "ok");
}

TEST_F(NodeMembershipTest, ARemovedNodeStaysRemoved) {
  auto m = NodeMembership::Start(dir_, nodes_, Options());
  ASSERT_TRUE(m.ok());
  const std::string id = (*m)->id();
  ASSERT_TRUE(nodes_.RemoveNode(id, {"cli:op", "node remove"}).ok());
  EXPECT_EQ((*m)->Heartbeat().code(), StatusCode::kNotFound);
  EXPECT_TRUE((*m)->Refresh().ok());
  EXPECT_TRUE(nodes_.nodes.empty()) << "a heartbeat must not re-register a node the operator removed";
}

TEST_F(NodeMembershipTest, TheThreadHeartbeatsEveryInterval) {
  auto o = Options();
  o.heartbeat_s = 1;
  auto m = NodeMembership::Start(dir_, nodes_, o);
  ASSERT_TRUE(m.ok());
  const int first = nodes_.heartbeats;
  // Polled: at least two more heartbeats within 5 s.
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(nodes_.mutex_);
      if (nodes_.heartbeats >= first + 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::lock_guard lock(nodes_.mutex_);
  EXPECT_GE(nodes_.heartbeats, first + 2);
}

TEST(NodeStateTest, DownAfterThreeSilentIntervals) {
  NodeInfo n;
  EXPECT_EQ(StateOf(n, 100000, 5), NodeState::kNever);
  n.heartbeat_ms = 100000;
  EXPECT_EQ(StateOf(n, 100000 + 15000, 5), NodeState::kUp);
  EXPECT_EQ(StateOf(n, 100000 + 15001, 5), NodeState::kDown);
  EXPECT_TRUE(IsNodeId("node-0123abcd"));
  EXPECT_FALSE(IsNodeId("node-0123ABCD"));
  EXPECT_FALSE(IsNodeId("node-0123abc"));
  EXPECT_FALSE(IsNodeId("node-0123abcde"));
  EXPECT_TRUE(IsNodeId(NewNodeId()));
}

}  // namespace
}  // namespace fg
