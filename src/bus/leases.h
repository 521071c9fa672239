#pragma once

// Partition ownership for cluster-mode detection (docs/stream.md, step 1 of
// "Consumption"): one lease per partition in a JetStream key-value bucket,
// so that each partition is worked on by one node at a time, moves within
// 10 s when its node dies, and is shared out again when a node joins.
//
// Bucket FG_LEASES (R`replicas`, history 1, TTL `ttl_ms`): key "p.<N>" =
// the owning node's id; key "node.<id>" = a node's heartbeat. Each Tick():
//   1. heartbeat; live nodes = the "node.*" keys not yet expired;
//   2. renew every held lease by compare-and-set on the revision this node
//      last wrote: a lease whose CAS fails is lost at once (another node
//      took it after it expired) and is no longer reported as owned;
//   3. share = ceil(partitions / live nodes): release the surplus (highest
//      partitions first, deleted so that a joining node can take them at
//      once), or take free leases (create-if-absent: one winner) up to it.
// A dead node's leases expire ttl_ms after its last renewal, and another
// node's next Tick takes them: takeover <= ttl_ms + tick interval.
//
// Not wired into serve yet (consumption is not built); tested on its own.
// Thread-safety: not thread-safe; one thread ticks.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace fg::bus {

struct LeaseOptions {
  std::vector<std::string> servers;  // nats://...
  std::string bucket = "FG_LEASES";
  std::string node_id;  // [A-Za-z0-9_-]+
  int partitions = 16;
  int replicas = 3;
  int64_t ttl_ms = 6000;  // with a 2 s tick: takeover within 8 s
  // Share as if at least this many nodes were live, for the first ttl_ms
  // (replay starts N workers at once: none should take every partition in
  // its first tick; one that never comes leaves nothing unowned).
  int min_nodes = 1;
};

class PartitionLeases {
 public:
  static Result<std::unique_ptr<PartitionLeases>> Open(const LeaseOptions& options);
  ~PartitionLeases();  // does not release: a stopped node's leases expire (Release() hands them
                       // over at once)
  PartitionLeases(const PartitionLeases&) = delete;
  PartitionLeases& operator=(const PartitionLeases&) = delete;

  // One round (above). An error when the bucket cannot be reached: the
  // leases held are then kept only until their TTL could have run out,
  // after which owned() is empty (a node cut off must stop working).
  Status Tick();
  // The partitions this node may work on now.
  std::set<uint32_t> owned() const;
  // Deletes every lease held and the heartbeat (a clean stop).
  void Release();

 private:
  struct Nats;
  explicit PartitionLeases(LeaseOptions options);

  const LeaseOptions options_;
  std::unique_ptr<Nats> nats_;
  std::map<uint32_t, uint64_t> held_;  // partition -> revision we last wrote
  int64_t last_renewed_ms_ = 0;        // steady clock of the last successful renewal round
  int64_t opened_ms_ = 0;              // steady clock at Open (min_nodes applies for ttl_ms)
};

}  // namespace fg::bus
