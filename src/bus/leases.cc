#include "bus/leases.h"
#include "bus/nats_link.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace fg::bus {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string LeaseKey(uint32_t p) { return "p." + std::to_string(p); }

bool ValidNodeId(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}


}  // namespace

struct PartitionLeases::Nats : NatsLink {
  kvStore* kv = nullptr;
  ~Nats() {
    if (kv) kvStore_Destroy(kv);
  }
};

PartitionLeases::PartitionLeases(LeaseOptions options)
    : options_(std::move(options)), nats_(std::make_unique<Nats>()), opened_ms_(SteadyMs()) {}

PartitionLeases::~PartitionLeases() = default;

Result<std::unique_ptr<PartitionLeases>> PartitionLeases::Open(const LeaseOptions& options) {
  if (options.servers.empty()) return Status::InvalidArgument("leases: no NATS server");
  if (!ValidNodeId(options.node_id))
    return Status::InvalidArgument("leases: node id must be 1-64 of A-Z a-z 0-9 _ -");
  if (options.partitions < 1 || options.partitions > 1024) {
    return Status::InvalidArgument("leases: partitions must be 1 to 1024");
  }
  std::unique_ptr<PartitionLeases> l(new PartitionLeases(options));
  Nats& n = *l->nats_;
  NatsLinkOptions lo;
  lo.name = "femtoguard-leases-" + options.node_id;
  if (Status c = n.Connect(options.servers, lo); !c.ok()) return Status::Unavailable("leases: " + c.message());
  natsStatus s = js_KeyValue(&n.kv, n.js, options.bucket.c_str());
  if (s != NATS_OK) {
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = options.bucket.c_str();
    kc.History = 1;
    kc.TTL = options.ttl_ms * 1000000;  // nanoseconds, as the stream's max age
    kc.Replicas = options.replicas;
    kc.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&n.kv, n.js, &kc);
    if (s != NATS_OK) {
      const std::string created = NatsText(s);
      // Another node may have made it between our look-up and our create.
      s = js_KeyValue(&n.kv, n.js, options.bucket.c_str());
      if (s != NATS_OK)
        return Status::Unavailable("leases: cannot create bucket " + options.bucket + ": " +
                                   created);
    }
  }
  if (s != NATS_OK) return Status::Unavailable("leases: bucket " + options.bucket + ": " + NatsText(s));
  return l;
}

Status PartitionLeases::Tick() {
  kvStore* kv = nats_->kv;
  const int64_t now = SteadyMs();
  natsStatus s = kvStore_PutString(nullptr, kv, ("node." + options_.node_id).c_str(), "alive");
  if (s != NATS_OK) {
    // Cut off: what we hold may already be someone else's once its TTL
    // could have run out.
    if (now - last_renewed_ms_ >= options_.ttl_ms) held_.clear();
    return Status::Unavailable("leases: heartbeat: " + NatsText(s));
  }
  kvKeysList keys{};
  size_t live = 1;
  if (kvStore_Keys(&keys, kv, nullptr) == NATS_OK) {
    size_t nodes = 0;
    for (int i = 0; i < keys.Count; ++i)
      nodes += std::string_view(keys.Keys[i]).rfind("node.", 0) == 0;
    kvKeysList_Destroy(&keys);
    // min_nodes only while the others may still be starting: a node that
    // never came must not leave partitions unowned.
    const size_t floor = now - opened_ms_ < options_.ttl_ms ? static_cast<size_t>(std::max(0, options_.min_nodes)) : 1;
    live = std::max<size_t>({1, nodes, floor});
  }
  // Renew (compare-and-set on our last revision): a failed CAS is a lease lost.
  for (auto it = held_.begin(); it != held_.end();) {
    uint64_t rev = 0;
    s = kvStore_UpdateString(&rev, kv, LeaseKey(it->first).c_str(), options_.node_id.c_str(),
                             it->second);
    if (s == NATS_OK) {
      it->second = rev;
      ++it;
    } else {
      spdlog::warn("leases: partition {} lost ({})", it->first, NatsText(s));
      it = held_.erase(it);
    }
  }
  last_renewed_ms_ = now;
  const size_t share = (static_cast<size_t>(options_.partitions) + live - 1) / live;
  while (held_.size() > share) {  // a node joined: hand over the highest
    const uint32_t p = held_.rbegin()->first;
    held_.erase(p);
    if (kvStore_Delete(kv, LeaseKey(p).c_str()) != NATS_OK) {
      spdlog::warn("leases: partition {} not released; it expires instead", p);
    }
  }
  for (uint32_t p = 0; p < static_cast<uint32_t>(options_.partitions) && held_.size() < share;
       ++p) {
    if (held_.count(p)) continue;
    uint64_t rev = 0;
    if (kvStore_CreateString(&rev, kv, LeaseKey(p).c_str(), options_.node_id.c_str()) == NATS_OK)
      held_[p] = rev;
  }
  return Status::Ok();
}

std::set<uint32_t> PartitionLeases::owned() const {
  if (SteadyMs() - last_renewed_ms_ >= options_.ttl_ms) return {};
  std::set<uint32_t> out;
  for (const auto& [p, rev] : held_) out.insert(p);
  return out;
}

void PartitionLeases::Release() {
  for (const auto& [p, rev] : held_) (void)kvStore_Delete(nats_->kv, LeaseKey(p).c_str());
  held_.clear();
  (void)kvStore_Delete(nats_->kv, ("node." + options_.node_id).c_str());
}

}  // namespace fg::bus
