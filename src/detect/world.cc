#include "detect/world.h"

#include <algorithm>
#include <cstring>

namespace fg::detect {
namespace {

// Bounds on the per-device live state, so that a stream that never says
// session.down / ue.detach cannot grow a device without limit. The oldest
// entry goes first.
constexpr size_t kMaxSessions = 8;
constexpr size_t kMaxAttached = 128;

}  // namespace

bool DeviceState::IsCsgMember(const SubjectId& s) const { return std::binary_search(csg.begin(), csg.end(), s); }

namespace {

uint64_t IdHash(std::string_view id) { return std::hash<std::string_view>{}(id); }
uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1u; }

uint64_t SubjectHash(const SubjectId& s) {
  // HMAC output: any 8 bytes are uniformly distributed.
  uint64_t h;
  std::memcpy(&h, s.bytes.data() + 4, 8);
  return h;
}

}  // namespace

DeviceIdx World::Find(std::string_view device_id) const {
  if (last_found_ != kNoDevice && devices_[last_found_].id == device_id) return last_found_;
  if (id_slots_.empty()) return kNoDevice;
  uint64_t h = IdHash(device_id);
  uint32_t tag = Tag(h);
  size_t mask = id_slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const IdSlot& slot = id_slots_[i];
    if (slot.idx_plus1 == 0) return kNoDevice;
    if (slot.tag == tag && devices_[slot.idx_plus1 - 1].id == device_id) {
      last_found_ = slot.idx_plus1 - 1;
      return last_found_;
    }
  }
}

void World::InsertId(DeviceIdx idx, uint64_t hash) {
  if ((devices_.size() + 1) * 4 > id_slots_.size() * 3) {
    // Grow (x2, at least 1024) and re-place every id.
    std::vector<IdSlot> bigger(std::max<size_t>(1024, id_slots_.size() * 2));
    id_slots_.swap(bigger);
    size_t mask = id_slots_.size() - 1;
    for (const IdSlot& old : bigger) {
      if (old.idx_plus1 == 0) continue;
      uint64_t h = IdHash(devices_[old.idx_plus1 - 1].id);
      size_t i = h & mask;
      while (id_slots_[i].idx_plus1 != 0) i = (i + 1) & mask;
      id_slots_[i] = old;
    }
  }
  size_t mask = id_slots_.size() - 1;
  size_t i = hash & mask;
  while (id_slots_[i].idx_plus1 != 0) i = (i + 1) & mask;
  id_slots_[i] = IdSlot{Tag(hash), idx + 1};
}

DeviceIdx World::Intern(std::string_view device_id) {
  DeviceIdx found = Find(device_id);
  if (found != kNoDevice) return found;
  DeviceIdx idx = static_cast<DeviceIdx>(devices_.size());
  InsertId(idx, IdHash(device_id));  // before the push: sizes the table for it
  DeviceState state;
  state.id = std::string(device_id);
  devices_.push_back(std::move(state));
  return idx;
}

DeviceIdx World::Register(const Device& d) {
  const size_t count_before = devices_.size();
  DeviceIdx idx = Intern(d.id);
  const bool new_record = devices_.size() > count_before;  // appended: indexes pick it up incrementally
  DeviceState& s = devices_[idx];
  s.registered = true;
  s.status = d.status;
  s.mode = d.mode;
  const bool site_moved = s.site.has_value() != d.site.has_value() ||
                          (d.site && (s.site->lat != d.site->lat || s.site->lon != d.site->lon));
  if (site_moved && !new_record) ++sites_version_;
  s.site = d.site;
  s.prefixes = d.prefixes;
  s.prefixes.shrink_to_fit();
  s.csg.clear();
  for (const std::string& member : d.csg) {
    SubjectId id;
    if (SubjectId::FromString(member, &id)) s.csg.push_back(id);
  }
  std::sort(s.csg.begin(), s.csg.end());
  s.csg.truncate(static_cast<size_t>(std::unique(s.csg.begin(), s.csg.end()) - s.csg.begin()));
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
  auto it = by_cert_fp_.find(fp);
  return it == by_cert_fp_.end() ? kNoDevice : it->second;
}

std::optional<std::string> World::EndpointStatus(std::string_view endpoint) const {
  if (endpoints_.empty()) return std::nullopt;
  EndpointKey query = ParseEndpointKey(endpoint);
  auto it = DecidingEndpoint(
      endpoints_.begin(), endpoints_.end(), query, [](const KnownEndpoint& e) -> const EndpointKey& { return e.key; },
      [](const KnownEndpoint& e) { return ParseEndpointUse(e.status); });
  if (it == endpoints_.end()) return std::nullopt;
  return it->status;
}

void World::SetEndpointStatus(std::string_view endpoint, std::string_view status) {
  EndpointKey key = ParseEndpointKey(endpoint);
  if (key.host.empty()) return;
  for (KnownEndpoint& e : endpoints_) {
    if (e.key == key) {
      e.status = std::string(status);
      return;
    }
  }
  endpoints_.push_back(KnownEndpoint{std::move(key), std::string(status)});
}

const SubscriberState* World::subscriber(const SubjectId& s) const {
  if (sub_slots_.empty() || s.empty()) return nullptr;
  size_t mask = sub_slots_.size() - 1;
  for (size_t i = SubjectHash(s) & mask;; i = (i + 1) & mask) {
    const SubscriberSlot& slot = sub_slots_[i];
    if (slot.id == s) return &slot.state;
    if (slot.id.empty()) return nullptr;
  }
}

void World::GrowSubscribers() {
  std::vector<SubscriberSlot> bigger(std::max<size_t>(1024, sub_slots_.size() * 2));
  sub_slots_.swap(bigger);
  const size_t mask = sub_slots_.size() - 1;
  // Every record lands on a random line of the new table: prefetch the
  // destination a few records ahead (at a million subscribers a plain
  // rehash waits on memory for each record).
  constexpr size_t kAhead = 16;
  for (size_t k = 0; k < bigger.size(); ++k) {
    if (k + kAhead < bigger.size() && !bigger[k + kAhead].id.empty()) {
      __builtin_prefetch(&sub_slots_[SubjectHash(bigger[k + kAhead].id) & mask], 1);
    }
    const SubscriberSlot& old = bigger[k];
    if (old.id.empty()) continue;
    size_t i = SubjectHash(old.id) & mask;
    while (!sub_slots_[i].id.empty()) i = (i + 1) & mask;
    sub_slots_[i] = old;
  }
}

SubscriberState& World::MutableSubscriber(const SubjectId& s) {
  if (s.empty()) {
    absent_subscriber_ = SubscriberState{};
    return absent_subscriber_;
  }
  if ((subscriber_count_ + 1) * 4 > sub_slots_.size() * 3) GrowSubscribers();
  size_t mask = sub_slots_.size() - 1;
  for (size_t i = SubjectHash(s) & mask;; i = (i + 1) & mask) {
    SubscriberSlot& slot = sub_slots_[i];
    if (slot.id == s) return slot.state;
    if (slot.id.empty()) {
      slot.id = s;
      slot.state = SubscriberState{};
      ++subscriber_count_;
      return slot.state;
    }
  }
}

namespace {

constexpr size_t kLine = 64;
constexpr size_t kSubscriberEventLines = 3;  // world.h: id .. attached
static_assert(sizeof(DeviceState) <= 5 * kLine, "DeviceState: keep the line groups of world.h");

void PrefetchLines(const void* p, size_t lines) {
  const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < lines; ++i) __builtin_prefetch(c + i * kLine);
}

// Events about a subscriber at a femtocell read the first three lines of
// its record only (world.h); the others read all of it.
bool SubscriberEvent(EventType t) {
  return t == EventType::kUeAttach || t == EventType::kUeDetach || t == EventType::kSmsDeliver ||
         t == EventType::kPaymentAuth;
}

}  // namespace

void World::Prefetch(const Event& e, int stage) const {
  // The device's slot: its index without comparing ids (a tag match is
  // good enough for a hint).
  auto device_index = [&]() -> DeviceIdx {
    if (id_slots_.empty() || e.device.empty()) return kNoDevice;
    uint64_t h = IdHash(e.device);
    uint32_t tag = Tag(h);
    size_t mask = id_slots_.size() - 1;
    for (size_t i = h & mask, n = 0; n < 8; i = (i + 1) & mask, ++n) {
      const IdSlot& slot = id_slots_[i];
      if (slot.idx_plus1 == 0) return kNoDevice;
      if (slot.tag == tag) return slot.idx_plus1 - 1;
    }
    return kNoDevice;
  };
  // payment.auth names no device: the femtocell that last served the
  // subscriber is the one its risk check reads.
  auto event_device = [&]() -> DeviceIdx {
    if (e.type != EventType::kPaymentAuth) return device_index();
    const SubscriberState* s = subscriber(e.imsi);
    return s ? s->last_femto : kNoDevice;
  };
  switch (stage) {
    case 0:
      if (!id_slots_.empty() && !e.device.empty()) {
        __builtin_prefetch(&id_slots_[IdHash(e.device) & (id_slots_.size() - 1)]);
      }
      if (!sub_slots_.empty() && !e.imsi.empty()) {
        __builtin_prefetch(&sub_slots_[SubjectHash(e.imsi) & (sub_slots_.size() - 1)]);
      }
      break;
    case 1:
      if (DeviceIdx d = event_device(); d != kNoDevice && d < devices_.size()) {
        PrefetchLines(&devices_[d], SubscriberEvent(e.type) ? kSubscriberEventLines : sizeof(DeviceState) / kLine);
      }
      break;
    default:
      if (e.type == EventType::kPaymentAuth) break;  // reads no per-device list
      if (DeviceIdx d = device_index(); d != kNoDevice && d < devices_.size()) {
        const DeviceState& s = devices_[d];
        const bool attach_or_sms = e.type == EventType::kUeAttach || e.type == EventType::kSmsDeliver;
        if (attach_or_sms && s.csg.on_heap()) __builtin_prefetch(s.csg.data());
        if (e.type == EventType::kUeAttach || e.type == EventType::kUeDetach) {
          if (s.attached.on_heap()) __builtin_prefetch(s.attached.data());
        }
        if (!SubscriberEvent(e.type)) {
          if (!s.sessions.empty()) __builtin_prefetch(s.sessions.data());
          if (!s.prefixes.empty()) __builtin_prefetch(s.prefixes.data());
        }
      }
      break;
  }
}

size_t World::MemoryBytes() const {
  size_t bytes = devices_.capacity() * sizeof(DeviceState) + id_slots_.capacity() * sizeof(IdSlot) +
                 sub_slots_.capacity() * sizeof(SubscriberSlot);
  auto heap = [](const std::string& str) { return str.capacity() > 15 ? str.capacity() + 1 : 0; };
  for (size_t i = 0; i < devices_.size(); ++i) {
    const DeviceState& d = devices_[i];
    bytes += heap(d.id) + heap(d.cert_fp) + heap(d.suspect_rule);
    auto heap_ids = [](const auto& list) { return list.on_heap() ? list.capacity() * sizeof(SubjectId) : 0; };
    bytes += d.prefixes.capacity() * sizeof(std::string) + heap_ids(d.csg) + heap_ids(d.attached) +
             d.sessions.capacity() * sizeof(LiveSession);
    for (const auto& p : d.prefixes) bytes += heap(p);
    for (const auto& l : d.sessions) bytes += heap(l.session) + heap(l.src_ip) + heap(l.endpoint);
  }
  for (const auto& [fp, idx] : by_cert_fp_) bytes += sizeof(fp) + heap(fp) + 32;
  return bytes;
}

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
        if (attached.size() >= kMaxAttached) attached.erase_at(0);
        attached.push_back(e.imsi);
      }
      SubscriberState& sub = MutableSubscriber(e.imsi);
      sub.last_femto = d;
      sub.last_femto_ms = e.ts_ms;
      break;
    }
    case EventType::kUeDetach: {
      DeviceIdx d = Find(e.device);
      if (d == kNoDevice) break;
      auto& attached = devices_[d].attached;
      attached.erase_value(e.imsi);
      // Served until now: exposure runs from the detach.
      const SubscriberState* sub = subscriber(e.imsi);
      if (sub && sub->last_femto == d) MutableSubscriber(e.imsi).last_femto_ms = e.ts_ms;
      break;
    }
    case EventType::kSmsDeliver: {
      DeviceIdx d = Intern(e.device);
      SubscriberState& sub = MutableSubscriber(e.imsi);
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
    case EventType::kS1Setup:
    case EventType::kNgSetup:
      break;  // read by detectors; no shared state
  }
}

}  // namespace fg::detect
