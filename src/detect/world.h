#pragma once

// The shared state the detectors read: the registry, the cell database,
// endpoint statuses, live sessions, which femtocell serves which subscriber,
// which devices are suspect and which subscribers' payments are held.
// The engine owns it and updates it AFTER the detectors have seen an event
// (so a detector sees the world as it was before the event). Detectors keep
// their own, rule-specific state; they never write here.
//
// Memory: ~ a few hundred bytes per device and ~64 B per subscriber.
// Single-threaded (one engine = one thread). Even the const lookups are not
// safe to run concurrently (Find keeps a one-entry cache): readers outside
// the engine thread (the payment check) must hold the engine's lock.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/celldb.h"
#include "common/device.h"
#include "common/endpoint.h"
#include "common/net.h"
#include "common/time.h"
#include "detect/event.h"
#include "detect/rules.h"
#include "detect/subject_list.h"

namespace fg::detect {

using DeviceIdx = uint32_t;
inline constexpr DeviceIdx kNoDevice = 0xffffffffu;

struct LiveSession {
  std::string session;
  std::string src_ip;
  std::string endpoint;
  UnixMillis since_ms = 0;
};

// Laid out by use (alignas: a record never straddles a line more than it
// must). At fleet scale every event's record is a random memory access, so
// replay prefetches only the lines an event type reads (World::Prefetch):
// subscriber events (ue.*, sms.deliver, payment.auth's last femtocell), 3/4
// of the stream, read the first three lines only, the CSG and the attached
// subscribers included (inline up to a handful each: no access of their own).
struct alignas(64) DeviceState {
  static constexpr size_t kCsgInline = 6;
  static constexpr size_t kAttachedInline = 3;
  // Lines 0-2 (176 bytes): identity, access, suspicion, CSG, attached.
  std::string id;
  bool registered = false;  // in the registry (else first seen in events)
  DeviceStatus status = DeviceStatus::kProvisioned;
  AccessMode mode = AccessMode::kClosed;
  bool blocked = false;  // `block` action or store block
  int max_ues = 0;       // 0 = not set
  // Set by the engine when an alert of severity >= high names the device.
  UnixMillis suspect_until_ms = 0;
  SubjectList<kCsgInline> csg;                // sorted: std::binary_search
  SubjectList<kAttachedInline> attached;      // subscribers attached now, oldest first

  // Lines 2-4: site, sessions and credentials (session and location events).
  std::optional<Site> site;
  std::vector<LiveSession> sessions;  // live now
  std::vector<std::string> prefixes;  // CIDR strings (use fg::IpInPrefix)
  std::string cert_fp;                // registered certificate fp, may be empty
  std::string suspect_rule;

  bool IsCsgMember(const SubjectId& s) const;
  bool Suspect(UnixMillis now) const { return suspect_until_ms > now; }
  bool Active() const { return status == DeviceStatus::kActive; }
};

struct SubscriberState {  // 16 bytes: with its id, a table slot is 32
  UnixMillis last_femto_ms = 0;
  DeviceIdx last_femto = kNoDevice;  // femtocell that last served them (attach or SMS)
  bool payments_held = false;
};

class World {
 public:
  // ---- registry ----
  DeviceIdx Find(std::string_view device_id) const;  // kNoDevice if never seen
  // Existing index, or a new unregistered record.
  DeviceIdx Intern(std::string_view device_id);
  DeviceState& device(DeviceIdx i) { return devices_[i]; }
  const DeviceState& device(DeviceIdx i) const { return devices_[i]; }
  size_t device_count() const { return devices_.size(); }
  // Adds or replaces a registry record (registry file or store).
  DeviceIdx Register(const Device& d);  // csg strings are "imsi:<hex>" pseudonyms

  // Moves when a registered site is added, changed or removed after the
  // record existed (a customer who moved house, a device first seen in
  // events and registered later): spatial indexes of sites rebuild then.
  uint64_t sites_version() const { return sites_version_; }

  // Registered certificate fingerprint -> device (from the registry's cert_fp).
  DeviceIdx DeviceOfCertFp(std::string_view fp) const;

  // ---- endpoints ----
  // The status of the known endpoint that decides for `endpoint` (the
  // matching rule of common/endpoint.h, shared with admission: no port =
  // every port of the host; active before draining before retired);
  // nullopt = no known endpoint matches.
  std::optional<std::string> EndpointStatus(std::string_view endpoint) const;
  void SetEndpointStatus(std::string_view endpoint, std::string_view status);

  // ---- subscribers ----
  // The pointer / reference is valid until the World next changes (the
  // table is open-addressed and moves records when it grows): use it, do
  // not keep it.
  const SubscriberState* subscriber(const SubjectId& s) const;
  SubscriberState& MutableSubscriber(const SubjectId& s);
  size_t subscriber_count() const { return subscriber_count_; }

  // ---- cells ----
  const CellDb& cells() const { return *cells_; }
  void SetCells(CellDb cells) { cells_ = std::make_shared<const CellDb>(std::move(cells)); }
  // One database shared by several Worlds (the partitions of a stream
  // node): it is never changed once set.
  void SetCells(std::shared_ptr<const CellDb> cells) { cells_ = std::move(cells); }

  // ---- engine-side updates ----
  // Applies an event's effect (sessions, attachments, exposure, statuses).
  void Apply(const Event& e);
  void MarkSuspect(DeviceIdx d, UnixMillis until_ms, std::string_view rule);

  // A hint for a caller that knows the events to come (replay decodes a few
  // ahead): brings the records `e` will touch towards the cache, in three
  // dependent stages - 0: the index slots of its device and subscriber,
  // 1: the device record, 2: the device's CSG / attached / session lists.
  // Run the stages a few events apart, in order. Changes nothing.
  void Prefetch(const Event& e, int stage) const;

  // Approximate heap + table bytes of the registry, live state and
  // subscribers (for stats; the cell database is not counted).
  size_t MemoryBytes() const;

 private:
  uint64_t sites_version_ = 0;
  // Heterogeneous lookup: no std::string built to find a string_view.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  // Device id -> index: open addressing, 8 bytes a slot (hash tag + index
  // + 1; 0 = empty), one probe sequence in one array instead of a node per
  // device. Ids are compared in devices_.
  struct IdSlot {
    uint32_t tag = 0;
    uint32_t idx_plus1 = 0;
  };
  // Subscribers: open addressing on the pseudonym (uniform HMAC bytes; the
  // all-zero id, "absent", marks an empty slot).
  // 32 bytes, aligned so that a slot never straddles two cache lines.
  struct alignas(32) SubscriberSlot {
    SubjectId id;
    SubscriberState state;
  };
  static_assert(sizeof(SubscriberSlot) == 32);

  // Device records in fixed chunks of 1024: no slack beyond one chunk and
  // no move of the existing records when the fleet grows (a vector would
  // keep up to half its capacity spare and copy 250 MB to grow).
  class DeviceChunks {
   public:
    static constexpr size_t kShift = 10;
    static constexpr size_t kMask = (size_t{1} << kShift) - 1;
    DeviceState& operator[](size_t i) { return chunks_[i >> kShift][i & kMask]; }
    const DeviceState& operator[](size_t i) const { return chunks_[i >> kShift][i & kMask]; }
    size_t size() const { return size_; }
    size_t capacity() const { return chunks_.size() << kShift; }
    void push_back(DeviceState s) {
      if (size_ == capacity()) chunks_.push_back(std::make_unique<DeviceState[]>(size_t{1} << kShift));
      (*this)[size_++] = std::move(s);
    }

   private:
    std::vector<std::unique_ptr<DeviceState[]>> chunks_;
    size_t size_ = 0;
  };

  void InsertId(DeviceIdx idx, uint64_t hash);
  void GrowSubscribers();

  DeviceChunks devices_;
  std::vector<IdSlot> id_slots_;  // power-of-two size, load <= 3/4
  mutable DeviceIdx last_found_ = kNoDevice;  // detectors look one event's device up many times
  StringMap<DeviceIdx> by_cert_fp_;
  struct KnownEndpoint {
    EndpointKey key;     // normalized (common/endpoint.h)
    std::string status;  // active, draining, retired (as given)
  };
  std::vector<KnownEndpoint> endpoints_;
  std::vector<SubscriberSlot> sub_slots_;  // power-of-two size, load <= 3/4
  size_t subscriber_count_ = 0;
  SubscriberState absent_subscriber_;  // MutableSubscriber of the all-zero id: never stored
  std::shared_ptr<const CellDb> cells_ = std::make_shared<const CellDb>();
};

}  // namespace fg::detect
