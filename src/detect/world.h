#pragma once

// The shared state the detectors read: the registry, the cell database,
// endpoint statuses, live sessions, which femtocell serves which subscriber,
// which devices are suspect and which subscribers' payments are held.
// The engine owns it and updates it AFTER the detectors have seen an event
// (so a detector sees the world as it was before the event). Detectors keep
// their own, rule-specific state; they never write here.
//
// Memory: ~ a few hundred bytes per device and ~64 B per subscriber.
// Single-threaded (one engine = one thread).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/celldb.h"
#include "common/device.h"
#include "common/net.h"
#include "common/time.h"
#include "detect/event.h"
#include "detect/rules.h"

namespace fg::detect {

using DeviceIdx = uint32_t;
inline constexpr DeviceIdx kNoDevice = 0xffffffffu;

struct LiveSession {
  std::string session;
  std::string src_ip;
  std::string endpoint;
  UnixMillis since_ms = 0;
};

struct DeviceState {
  std::string id;
  bool registered = false;  // in the registry (else first seen in events)
  DeviceStatus status = DeviceStatus::kProvisioned;
  AccessMode mode = AccessMode::kClosed;
  std::optional<Site> site;
  std::vector<std::string> prefixes;  // CIDR strings (use fg::IpInPrefix)
  std::vector<SubjectId> csg;         // sorted: std::binary_search
  std::string cert_fp;                // registered certificate fp, may be empty
  int max_ues = 0;                    // 0 = not set

  std::vector<LiveSession> sessions;  // live now
  std::vector<SubjectId> attached;    // subscribers attached now (small)

  // Suspicion (set by the engine when an alert of severity >= high names the device).
  UnixMillis suspect_until_ms = 0;
  std::string suspect_rule;
  bool blocked = false;  // `block` action or store block

  bool IsCsgMember(const SubjectId& s) const;
  bool Suspect(UnixMillis now) const { return suspect_until_ms > now; }
  bool Active() const { return status == DeviceStatus::kActive; }
};

struct SubscriberState {
  DeviceIdx last_femto = kNoDevice;  // femtocell that last served them (attach or SMS)
  UnixMillis last_femto_ms = 0;
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

  // Registered certificate fingerprint -> device (from the registry's cert_fp).
  DeviceIdx DeviceOfCertFp(std::string_view fp) const;

  // ---- endpoints ----
  // Status by address as events/store name it; nullopt = unknown endpoint.
  std::optional<std::string> EndpointStatus(std::string_view endpoint) const;
  void SetEndpointStatus(std::string_view endpoint, std::string_view status);

  // ---- subscribers ----
  const SubscriberState* subscriber(const SubjectId& s) const;
  SubscriberState& MutableSubscriber(const SubjectId& s);
  size_t subscriber_count() const { return subscribers_.size(); }

  // ---- cells ----
  const CellDb& cells() const { return cells_; }
  void SetCells(CellDb cells) { cells_ = std::move(cells); }

  // ---- engine-side updates ----
  // Applies an event's effect (sessions, attachments, exposure, statuses).
  void Apply(const Event& e);
  void MarkSuspect(DeviceIdx d, UnixMillis until_ms, std::string_view rule);

 private:
  std::vector<DeviceState> devices_;
  std::unordered_map<std::string, DeviceIdx> by_id_;
  std::unordered_map<std::string, DeviceIdx> by_cert_fp_;
  std::unordered_map<std::string, std::string> endpoints_;
  std::unordered_map<SubjectId, SubscriberState, SubjectIdHash> subscribers_;
  CellDb cells_;
};

}  // namespace fg::detect
