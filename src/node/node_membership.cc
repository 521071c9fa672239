#include "node/node_membership.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "common/metrics.h"
#include "common/ossl.h"
#include "pki/ca.h"

namespace fg {

std::string NewNodeId() {
  unsigned char raw[4];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    // A node id is a name, not a secret: another random source will do.
    std::random_device rd;
    for (unsigned char& b : raw) b = static_cast<unsigned char>(rd());
  }
  return "node-" + ossl::HexLower(raw, sizeof raw);
}

bool IsNodeId(std::string_view id) {
  if (id.size() != 13 || id.substr(0, 5) != "node-") return false;
  return std::all_of(id.begin() + 5, id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) ||
                                                                    (c >= 'a' && c <= 'f'); });
}

Result<std::string> ReadNodeId(const DataDir& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir.NodeIdPath(), ec)) {
    return Status::NotFound("no node id in " + dir.root().string());
  }
  FG_ASSIGN_OR_RETURN(std::string text, ReadFile(dir.NodeIdPath()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!IsNodeId(text)) {
    return Status::InvalidArgument(dir.NodeIdPath().string() + ": not a node id (node-<8 hex digits>)");
  }
  return text;
}

NodeState StateOf(const NodeInfo& node, UnixMillis now, int heartbeat_s) {
  if (node.heartbeat_ms == 0) return NodeState::kNever;
  const UnixMillis limit = static_cast<UnixMillis>(kHeartbeatsBeforeDown) * heartbeat_s * 1000;
  return now - node.heartbeat_ms > limit ? NodeState::kDown : NodeState::kUp;
}

std::string_view NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp: return "up";
    case NodeState::kDown: return "down";
    case NodeState::kNever: return "never";
  }
  return "down";
}

std::vector<std::string> NodeBaseUrls(const std::vector<NodeInfo>& nodes) {
  std::vector<std::string> urls;
  for (const NodeInfo& n : nodes) {
    if (!n.public_url.empty()) urls.push_back(n.public_url);
  }
  return urls;
}

NodeMembership::NodeMembership(NodeRegistry& nodes, std::string id, Options options)
    : nodes_(nodes), id_(std::move(id)), options_(std::move(options)), started_ms_(NowMillis()) {}

Result<std::unique_ptr<NodeMembership>> NodeMembership::Start(const DataDir& dir, NodeRegistry& nodes,
                                                              Options options) {
  std::string id;
  if (auto read = ReadNodeId(dir); read.ok()) {
    id = std::move(read).value();
  } else if (read.status().code() == StatusCode::kNotFound) {
    // A data dir from before clusters: it becomes the first node.
    id = NewNodeId();
    FG_RETURN_IF_ERROR(WriteFileAtomic(dir.NodeIdPath(), id + "\n", 0644));
    spdlog::info("cluster: this data dir had no node id; it is now node {}", id);
  } else {
    return read.status();
  }
  FG_ASSIGN_OR_RETURN(std::vector<NodeInfo> known, nodes.ListNodes());
  const bool registered =
      std::any_of(known.begin(), known.end(), [&id](const NodeInfo& n) { return n.id == id; });
  if (!registered) {
    NodeInfo self;
    self.id = id;
    self.public_url = options.public_url;
    self.url_order = 0;
    self.joined_ms = NowMillis();
    FG_RETURN_IF_ERROR(nodes.UpsertNode(self, AuditContext{"serve", "node registered at start"}));
    spdlog::info("cluster: registered node {} at {}", id, options.public_url);
  }
  std::unique_ptr<NodeMembership> m(new NodeMembership(nodes, std::move(id), std::move(options)));
  if (Status s = m->Heartbeat(); !s.ok()) spdlog::warn("cluster: first heartbeat: {}", s.ToString());
  if (Status s = m->Refresh(); !s.ok()) spdlog::warn("cluster: node list: {}", s.ToString());
  NodeMembership* self = m.get();
  m->thread_ = std::thread([self] { self->Run(); });
  return m;
}

Result<std::unique_ptr<NodeMembership>> NodeMembership::StartForNode(const DataDir& dir, const Config& config,
                                                                     Store& store, CertificateAuthority& ca) {
  Options options;
  options.public_url = config.public_url;
  options.heartbeat_s = config.cluster_heartbeat_s;
  options.store_health = [&store] { return store.Health(); };
  options.on_urls = [&ca](std::vector<std::string> urls) { ca.SetNodeUrls(std::move(urls)); };
  return Start(dir, store, std::move(options));
}

NodeMembership::~NodeMembership() { Stop(); }

void NodeMembership::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NodeMembership::Run() {
  const auto interval = std::chrono::seconds(std::max(1, options_.heartbeat_s));
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    Status beat = Heartbeat();
    Status read = Refresh();
    lock.lock();
    // One warning per outage, not one per heartbeat; the recovery is logged.
    const Status& failed = !beat.ok() ? beat : read;
    if (!failed.ok() && failed.code() != StatusCode::kNotFound) {
      if (!warned_store_) spdlog::warn("cluster: heartbeat: {} (serving from the last state)", failed.ToString());
      warned_store_ = true;
    } else if (failed.ok() && warned_store_) {
      spdlog::info("cluster: heartbeat: the store takes writes again");
      warned_store_ = false;
    }
  }
}

Status NodeMembership::Heartbeat() {
  Status s = nodes_.HeartbeatNode(id_, NowMillis(), HealthJson());
  if (s.code() == StatusCode::kNotFound) {
    std::lock_guard lock(mutex_);
    if (!warned_removed_) {
      spdlog::warn("cluster: node {} was removed from the cluster (`node remove`); it still serves, but new "
                   "certificates do not name it (`node join` a fresh data dir to add it back)",
                   id_);
    }
    warned_removed_ = true;
  }
  return s;
}

Status NodeMembership::Refresh() {
  FG_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, nodes_.ListNodes());
  const UnixMillis now = NowMillis();
  int64_t up = 0, down = 0;
  for (const NodeInfo& n : nodes) {
    // Our own row counts as up: we are the one asking.
    if (n.id == id_ || StateOf(n, now, options_.heartbeat_s) == NodeState::kUp) {
      ++up;
    } else {
      ++down;
    }
  }
  Metrics& m = Metrics::Global();
  const char* help = "Nodes of the cluster by state (down: no heartbeat for 3 intervals, or never)";
  m.GetGauge("femtoguard_cluster_nodes", "state=\"up\"", help).Set(up);
  m.GetGauge("femtoguard_cluster_nodes", "state=\"down\"", help).Set(down);
  std::vector<std::string> urls = NodeBaseUrls(nodes);
  if (!urls.empty() && options_.on_urls) options_.on_urls(std::move(urls));
  return Status::Ok();
}

std::string NodeMembership::HealthJson() const {
  StoreHealth h = options_.store_health ? options_.store_health() : StoreHealth{};
  nlohmann::ordered_json j;
  j["store"] = h.writable ? std::string("ok") : "unreachable: " + h.detail;
  j["version"] = kFemtoguardVersion;
  j["started_ms"] = started_ms_;
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::string NodeMembership::HealthzJson() const {
  StoreHealth h = options_.store_health ? options_.store_health() : StoreHealth{};
  nlohmann::ordered_json j;
  j["status"] = h.writable ? "ok" : "degraded";
  j["store"] = h.writable ? std::string("ok") : "unreachable: " + h.detail;
  j["node"] = id_;
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace fg
