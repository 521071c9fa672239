#pragma once

// A node's membership of its cluster (docs/cluster.md): the nodes that share
// one store, each registered in its NodeRegistry with the base URL devices
// reach it at and its position (url_order) in the AIA and CDP of new device
// certificates.
//
// NodeMembership runs inside serve. At start it makes sure this node is
// registered (a data dir made before clusters existed has no DIR/node.id:
// one is made and registered), then every `cluster.heartbeat_s` it writes a
// heartbeat with the node's health as JSON:
//   {"store": "ok" | "unreachable: <why>", "version": "0.1.0", "started_ms": N}
// and re-reads the node list: the URL list goes to `on_urls` (the CA signs
// with it) and the femtoguard_cluster_nodes{state="up|down"} gauges are set.
// Refresh() does the re-read at once, for the change follower on a kNode
// change.
//
// A node the operator removed (`node remove`) is not registered again: it
// keeps serving, but no new certificate names it, and it says so in its log.
//
// Thread-safety: thread-safe. Stop() (or the destructor) joins the
// heartbeat thread.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/time.h"
#include "store/store.h"

namespace fg {

class CertificateAuthority;  // pki/ca.h

// The version a node reports in its heartbeat (and `femtoguard --version`).
inline constexpr char kFemtoguardVersion[] = "0.1.0";

// "node-<8 lower-case hex>", random.
std::string NewNodeId();
bool IsNodeId(std::string_view id);
// DIR/node.id: NotFound when absent, InvalidArgument when it holds no node id.
Result<std::string> ReadNodeId(const DataDir& dir);

// A node is down when its last heartbeat is older than this many intervals.
inline constexpr int kHeartbeatsBeforeDown = 3;
enum class NodeState { kUp, kDown, kNever };  // kNever: registered, no heartbeat yet
NodeState StateOf(const NodeInfo& node, UnixMillis now, int heartbeat_s);
std::string_view NodeStateName(NodeState s);

// The base URLs of `nodes` (already in url_order), for
// CertificateAuthority::SetNodeUrls.
std::vector<std::string> NodeBaseUrls(const std::vector<NodeInfo>& nodes);

class NodeMembership {
 public:
  struct Options {
    std::string public_url;  // registered when this node has no row yet
    int heartbeat_s = 5;
    // The store's health (Store::Health); called for every heartbeat and
    // every /healthz.
    std::function<StoreHealth()> store_health;
    // Receives the cluster's base URLs in url_order after every re-read
    // (never an empty list: nothing is called then).
    std::function<void(std::vector<std::string>)> on_urls;
  };

  // Reads (or, for a pre-cluster data dir, creates) DIR/node.id, registers
  // the node when the store has no row for it, reads the node list once,
  // and starts the heartbeat thread. Fails when the store cannot be read
  // or written at all: serve must not start as a node nobody can see.
  static Result<std::unique_ptr<NodeMembership>> Start(const DataDir& dir, NodeRegistry& nodes, Options options);
  // Start for serve: config public_url and cluster.heartbeat_s, the store's
  // Health(), and the URL list into `ca` (CertificateAuthority::SetNodeUrls).
  static Result<std::unique_ptr<NodeMembership>> StartForNode(const DataDir& dir, const Config& config, Store& store,
                                                              CertificateAuthority& ca);
  ~NodeMembership();
  NodeMembership(const NodeMembership&) = delete;
  NodeMembership& operator=(const NodeMembership&) = delete;

  void Stop();
  // Re-reads the node list: URLs to on_urls, the up/down gauges.
  Status Refresh();
  // Writes one heartbeat now (the thread does it every heartbeat_s).
  Status Heartbeat();

  const std::string& id() const { return id_; }
  // The body of /healthz: {"status":"ok","store":"ok","node":ID} or, when
  // the store takes no writes, {"status":"degraded","store":"unreachable:
  // ...","node":ID}. Always served with 200: the node still answers OCSP
  // and admission from its last state.
  std::string HealthzJson() const;
  // The heartbeat's health JSON.
  std::string HealthJson() const;

 private:
  NodeMembership(NodeRegistry& nodes, std::string id, Options options);
  void Run();

  // Constant after construction.
  NodeRegistry& nodes_;
  const std::string id_;
  const Options options_;
  const UnixMillis started_ms_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;        // guarded by mutex_
  bool warned_removed_ = false;  // guarded by mutex_
  bool warned_store_ = false;    // guarded by mutex_
  std::thread thread_;
};

}  // namespace fg
