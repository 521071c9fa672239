#pragma once

// The engine's in-memory copy of what admission needs from the store:
// devices (status, registered prefixes parsed once, site, last seen),
// certificates by serial and by fingerprint, endpoints and blocks. Loaded
// whole at start; then one key at a time from the change feed.
//
// Not synchronised: the engine guards it with a shared mutex (readers share,
// Apply* take it exclusively). Only DeviceView::seen_ms is written by readers
// (atomics).

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/ip.h"
#include "common/device.h"
#include "common/endpoint.h"
#include "store/store.h"

namespace fg::admission {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

struct DeviceView {
  std::string id;
  DeviceStatus status = DeviceStatus::kProvisioned;
  std::optional<Site> site;
  std::vector<IpPrefix> prefixes;
  std::vector<std::string> prefix_text;  // as registered, for evidence
  std::string cert_fp;                   // registry's expected certificate, may be empty
  UnixMillis created_ms = 0;
  // last_seen_ms as the store has it (advanced by Engine::FlushLastSeen).
  mutable std::atomic<UnixMillis> store_seen_ms{0};
  // max(last seen, registration), advanced by admitted sessions.
  mutable std::atomic<UnixMillis> seen_ms{0};
};

struct CertView {
  std::string serial;
  std::string device;
  std::string cert_fp;
  CertStatus status = CertStatus::kValid;
  UnixMillis not_before_ms = 0;
  UnixMillis not_after_ms = 0;
};

// EndpointKey, ParseEndpointKey, SameEndpoint: common/endpoint.h (one rule
// for admission and detection).
struct EndpointView {
  std::string address;
  EndpointKey key;
  EndpointStatus status = EndpointStatus::kActive;
};

struct BlockView {
  std::string kind;
  std::string value;
  std::string alert_id;
  std::optional<IpPrefix> line;  // kind "line"
};

// True when already in the normal form below (no copy needed).
bool IsNormalSerial(std::string_view serial);
bool IsNormalFingerprint(std::string_view fp);
// Upper-case hex without leading zeros or separators (ossl::SerialToHex form).
std::string NormalizeSerial(std::string_view serial);
// "sha256:<lower hex>"; a bare 64-digit hex gets the prefix.
std::string NormalizeFingerprint(std::string_view fp);

// The store roles the snapshot reads (and the engine: last-seen times go to
// the device registry). A node passes its Store, which has them all.
struct SnapshotSources {
  DeviceRegistry& devices;
  CertificateLedger& certs;
  EndpointRegistry& endpoints;
  ResponseLedger& blocks;

  SnapshotSources(DeviceRegistry& d, CertificateLedger& c, EndpointRegistry& e, ResponseLedger& b)
      : devices(d), certs(c), endpoints(e), blocks(b) {}
  SnapshotSources(Store& store)  // NOLINT(google-explicit-constructor): every role of one store
      : SnapshotSources(store, store, store, store) {}
};

class Snapshot {
 public:
  Snapshot() = default;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Everything from the store (replaces the current contents only on success).
  static Result<std::unique_ptr<Snapshot>> Load(SnapshotSources store);

  // Re-read one key. On a store error the key is marked stale (decisions
  // that depend on it fail closed) and the error is returned.
  Status ApplyDevice(DeviceRegistry& devices, CertificateLedger& certs, std::string_view id);
  Status ApplyCertificate(CertificateLedger& certs, std::string_view serial);
  Status ReloadEndpoints(EndpointRegistry& endpoints);
  Status ReloadBlocks(ResponseLedger& blocks);

  const DeviceView* FindDevice(std::string_view id) const;
  const CertView* FindCertBySerial(std::string_view serial) const;
  const CertView* FindCertByFp(std::string_view fp) const;
  // Device whose registry entry names this certificate fingerprint, or nullptr.
  const std::string* RegisteredFpOwner(std::string_view fp) const;
  const std::vector<EndpointView>& endpoints() const { return endpoints_; }
  // A stored block of the device, else one decided but not stored yet.
  const BlockView* DeviceBlock(std::string_view device) const;
  // Blocks a response has decided whose store write has not landed (or not
  // yet reached this snapshot through the change feed): enforced the same.
  void SetPendingBlocks(StringMap<BlockView> pending) { pending_device_blocks_ = std::move(pending); }
  const BlockView* LineBlock(const IpAddr& ip) const;

  bool DeviceStale(std::string_view id) const { return stale_devices_.count(id) > 0; }
  bool CertStale(std::string_view serial) const { return stale_certs_.count(serial) > 0; }
  bool AnyCertStale() const { return !stale_certs_.empty(); }
  bool endpoints_stale() const { return endpoints_stale_; }
  bool blocks_stale() const { return blocks_stale_; }

  size_t device_count() const { return devices_.size(); }
  // Calls f(const DeviceView&) for every device.
  template <typename F>
  void ForEachDevice(F&& f) const {
    for (const auto& [id, d] : devices_) f(*d);
  }

 private:
  void PutDevice(const Device& d);
  void PutCert(const Certificate& c);
  void SetEndpoints(const std::vector<Endpoint>& eps);
  void SetBlocks(const std::vector<Block>& blocks);

  StringMap<std::unique_ptr<DeviceView>> devices_;
  StringMap<CertView> certs_by_serial_;
  StringMap<const CertView*> cert_by_fp_;  // into certs_by_serial_ (node pointers are stable)
  StringMap<std::string> registered_fp_owner_;
  std::vector<EndpointView> endpoints_;
  StringMap<BlockView> device_blocks_;
  StringMap<BlockView> pending_device_blocks_;
  std::vector<BlockView> line_blocks_;
  StringSet stale_devices_;
  StringSet stale_certs_;
  bool endpoints_stale_ = false;
  bool blocks_stale_ = false;
};

}  // namespace fg::admission
