#include "detect/world.h"

#include <algorithm>

namespace fg::detect {
namespace {

// Bounds on the per-device live state, so that a stream that never says
// session.down / ue.detach cannot grow a device without limit. The oldest
// entry goes first.
constexpr size_t kMaxSessions = 8;
constexpr size_t kMaxAttached = 128;

}  // namespace

bool DeviceState::IsCsgMember(const SubjectId& s) const { return std::binary_search(csg.begin(), csg.end(), s); }

DeviceIdx World::Find(std::string_view device_id) const {
  auto it = by_id_.find(std::string(device_id));
  return it == by_id_.end() ? kNoDevice : it->second;
}

DeviceIdx World::Intern(std::string_view device_id) {
  std::string key(device_id);
  auto it = by_id_.find(key);
  if (it != by_id_.end()) return it->second;
  DeviceIdx idx = static_cast<DeviceIdx>(devices_.size());
  DeviceState state;
  state.id = key;
  devices_.push_back(std::move(state));
  by_id_.emplace(std::move(key), idx);
  return idx;
}

DeviceIdx World::Register(const Device& d) {
  DeviceIdx idx = Intern(d.id);
  DeviceState& s = devices_[idx];
  s.registered = true;
  s.status = d.status;
  s.mode = d.mode;
  s.site = d.site;
  s.prefixes = d.prefixes;
  s.prefixes.shrink_to_fit();
  s.csg.clear();
  for (const std::string& member : d.csg) {
    SubjectId id;
    if (SubjectId::FromString(member, &id)) s.csg.push_back(id);
  }
  std::sort(s.csg.begin(), s.csg.end());
  s.csg.erase(std::unique(s.csg.begin(), s.csg.end()), s.csg.end());
  s.csg.shrink_to_fit();
  if (s.cert_fp != d.cert_fp) {
    if (!s.cert_fp.empty()) {
      auto it = by_cert_fp_.find(s.cert_fp);
      if (it != by_cert_fp_.end() && it->second == idx) by_cert_fp_.erase(it);
    }
    s.cert_fp = d.cert_fp;
    if (!s.cert_fp.empty()) by_cert_fp_[s.cert_fp] = idx;
  }
  s.max_ues = d.max_ues;
  return idx;
}

DeviceIdx World::DeviceOfCertFp(std::string_view fp) const {
  auto it = by_cert_fp_.find(std::string(fp));
  return it == by_cert_fp_.end() ? kNoDevice : it->second;
}

std::optional<std::string> World::EndpointStatus(std::string_view endpoint) const {
  auto it = endpoints_.find(std::string(endpoint));
  if (it == endpoints_.end()) return std::nullopt;
  return it->second;
}

void World::SetEndpointStatus(std::string_view endpoint, std::string_view status) {
  endpoints_[std::string(endpoint)] = std::string(status);
}

const SubscriberState* World::subscriber(const SubjectId& s) const {
  auto it = subscribers_.find(s);
  return it == subscribers_.end() ? nullptr : &it->second;
}

SubscriberState& World::MutableSubscriber(const SubjectId& s) { return subscribers_[s]; }

void World::MarkSuspect(DeviceIdx d, UnixMillis until_ms, std::string_view rule) {
  if (d >= devices_.size()) return;
  DeviceState& s = devices_[d];
  if (until_ms > s.suspect_until_ms) {
    s.suspect_until_ms = until_ms;
    s.suspect_rule = std::string(rule);
  }
}

void World::Apply(const Event& e) {
  switch (e.type) {
    case EventType::kSessionUp: {
      DeviceState& s = devices_[Intern(e.device)];
      std::erase_if(s.sessions, [&](const LiveSession& l) { return l.session == e.session; });
      if (s.sessions.size() >= kMaxSessions) s.sessions.erase(s.sessions.begin());
      s.sessions.push_back(LiveSession{e.session, e.src_ip, e.endpoint, e.ts_ms});
      break;
    }
    case EventType::kSessionDown: {
      DeviceIdx d = Find(e.device);
      if (d == kNoDevice) break;
      auto& sessions = devices_[d].sessions;
      if (e.session.empty()) {
        sessions.clear();  // the device's line went down as a whole
      } else {
        std::erase_if(sessions, [&](const LiveSession& l) { return l.session == e.session; });
      }
      break;
    }
    case EventType::kUeAttach: {
      DeviceIdx d = Intern(e.device);
      auto& attached = devices_[d].attached;
      if (std::find(attached.begin(), attached.end(), e.imsi) == attached.end()) {
        if (attached.size() >= kMaxAttached) attached.erase(attached.begin());
        attached.push_back(e.imsi);
      }
      SubscriberState& sub = subscribers_[e.imsi];
      sub.last_femto = d;
      sub.last_femto_ms = e.ts_ms;
      break;
    }
    case EventType::kUeDetach: {
      DeviceIdx d = Find(e.device);
      if (d == kNoDevice) break;
      auto& attached = devices_[d].attached;
      std::erase(attached, e.imsi);
      // Served until now: exposure runs from the detach.
      auto it = subscribers_.find(e.imsi);
      if (it != subscribers_.end() && it->second.last_femto == d) it->second.last_femto_ms = e.ts_ms;
      break;
    }
    case EventType::kSmsDeliver: {
      DeviceIdx d = Intern(e.device);
      SubscriberState& sub = subscribers_[e.imsi];
      sub.last_femto = d;
      sub.last_femto_ms = e.ts_ms;
      break;
    }
    case EventType::kDeviceStatus: {
      auto status = ParseDeviceStatus(e.status);
      if (!status.ok()) break;  // the decoder validates; nothing to apply otherwise
      DeviceState& s = devices_[Intern(e.device)];
      // A registry change names the device: from now on it is known.
      s.registered = true;
      s.status = *status;
      break;
    }
    case EventType::kEndpointStatus:
      SetEndpointStatus(e.endpoint, e.status);
      break;
    case EventType::kLocationReport:
    case EventType::kRemScan:
    case EventType::kPaymentAuth:
    case EventType::kMeasReport:
      break;  // read by detectors; no shared state
  }
}

}  // namespace fg::detect
