#include "bus/stream_detection.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bus/event_codec.h"
#include "bus/jetstream.h"
#include "bus/leases.h"
#include "bus/nats_link.h"
#include "bus/wire.h"
#include "common/metrics.h"
#include "detect/detectors/common.h"
#include <nlohmann/json.hpp>

namespace fg::bus {
namespace {

using detect::Alert;
using detect::Event;
using detect::EventType;

constexpr uint64_t kEnd = std::numeric_limits<uint64_t>::max();
// First word of a derived message ("FGD1", little-endian), then the
// source partition and the record count.
constexpr uint32_t kDerivedMagic = 0x31444746u;

Counter& StageCounter(std::string_view what) {
  return Metrics::Global().GetCounter("femtoguard_stream_processed_total",
                                      "what=\"" + std::string(what) + "\"",
                                      "Cluster-mode detection: events, payments and alerts processed from the stream");
}

Status EnsureStream(jsCtx* js, const std::string& name, const std::string& subjects, int replicas,
                    const std::atomic<bool>& stopping) {
  for (int attempt = 0;; ++attempt) {
    if (stopping) return Status::Unavailable("stopping");
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      return Status::Ok();
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char* list[] = {subjects.c_str()};
    sc.Name = name.c_str();
    sc.Subjects = list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    sc.Retention = js_LimitsPolicy;
    s = js_AddStream(&si, js, &sc, nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      return Status::Ok();
    }
    if (jerr == JSStreamNameExistErr) continue;
    if (attempt >= 20) return Status::Unavailable("stream detection: stream " + name + ": " + NatsText(s));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Result<kvStore*> OpenBucket(jsCtx* js, const std::string& bucket, int replicas, const std::atomic<bool>& stopping) {
  kvStore* kv = nullptr;
  for (int attempt = 0;; ++attempt) {
    if (stopping) return Status::Unavailable("stopping");
    if (js_KeyValue(&kv, js, bucket.c_str()) == NATS_OK) return kv;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket.c_str();
    kc.History = 1;
    kc.Replicas = replicas;
    kc.StorageType = js_FileStorage;
    natsStatus s = js_CreateKeyValue(&kv, js, &kc);
    if (s == NATS_OK) return kv;
    if (attempt >= 20) return Status::Unavailable("stream detection: bucket " + bucket + ": " + NatsText(s));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}


// An ephemeral pull consumer over `filter`, from a stream sequence on; made
// again from where it was when the server behind it goes away, or when the
// client lost a message the server delivered.
//
// A lost delivery is real: cnats drops a subscription's messages beyond its
// pending limit (64 MiB) when the fetching thread is slower than the
// socket, which a partition rebuilt from a backlog of 256 KiB derived
// messages on a starved machine reached. A consumer with AckPolicy none
// numbers its deliveries 1, 2, 3...: a number skipped is a message lost,
// and the reader starts a new consumer after the last message it returned
// rather than return what came after the hole. Each fetch also asks for at
// most kFetchBytes, so the pending limit is not approached in the first place.
class Reader {
 public:
  static constexpr int64_t kFetchBytes = int64_t{8} << 20;

  Reader(jsCtx* js, std::string stream, std::string filter, int pending_msgs = 0, int pending_bytes = 0)
      : js_(js), stream_(std::move(stream)), filter_(std::move(filter)), pending_msgs_(pending_msgs),
        pending_bytes_(pending_bytes) {}
  ~Reader() { Drop(); }

  struct Msg {
    uint64_t seq = 0;
    bool end = false;
    bool batch_end = false;  // a batch's (or the input's) end marker
    std::string data;
  };

  // Up to `batch` messages; empty when none came within wait_ms (or at
  // once with nowait). An error means nothing was lost: the next call
  // starts again after the last message returned.
  Status Fetch(int batch, int wait_ms, bool nowait, std::vector<Msg>* out) {
    out->clear();
    if (sub_ == nullptr) {
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = stream_.c_str();
      so.Config.DeliverPolicy = js_DeliverByStartSequence;
      so.Config.OptStartSeq = next_;
      so.Config.AckPolicy = js_AckNone;
      so.Config.InactiveThreshold = int64_t{30} * 1000 * 1000 * 1000;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = js_PullSubscribe(&sub_, js_, filter_.c_str(), nullptr, nullptr, &so, &jerr);
      if (s != NATS_OK) {
        sub_ = nullptr;
        return Status::Unavailable("consumer on " + filter_ + ": " + NatsText(s));
      }
      if (pending_msgs_ > 0 || pending_bytes_ > 0) {
        int msgs = 0, bytes = 0;
        natsSubscription_GetPendingLimits(sub_, &msgs, &bytes);
        natsSubscription_SetPendingLimits(sub_, pending_msgs_ > 0 ? pending_msgs_ : msgs,
                                          pending_bytes_ > 0 ? pending_bytes_ : bytes);
      }
    }
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = batch;
    req.MaxBytes = kFetchBytes;
    req.NoWait = nowait;
    req.Expires = int64_t{std::max(wait_ms, 10)} * 1000 * 1000;
    natsMsgList list{};
    natsStatus s = natsSubscription_FetchRequest(&list, sub_, &req);
    if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) return Status::Ok();
    if (s != NATS_OK) {
      Drop();
      return Status::Unavailable("fetch on " + filter_ + ": " + NatsText(s));
    }
    bool hole = false;
    for (int i = 0; i < list.Count && !hole; ++i) {
      natsMsg* m = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) continue;
      const uint64_t seq = meta->Sequence.Stream;
      const uint64_t delivery = meta->Sequence.Consumer;
      jsMsgMetaData_Destroy(meta);
      if (delivery != received_ + 1) {
        hole = true;  // deliveries received_+1 .. delivery-1 never reached us
        break;
      }
      received_ = delivery;
      if (seq < next_) continue;  // already returned (a consumer made again)
      Msg msg;
      msg.seq = seq;
      const char* end = nullptr;
      msg.end = natsMsgHeader_Get(m, kEndHeader, &end) == NATS_OK;
      msg.batch_end = msg.end || natsMsgHeader_Get(m, kBatchEndHeader, &end) == NATS_OK;
      msg.data.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
      next_ = msg.seq + 1;
      out->push_back(std::move(msg));
    }
    natsMsgList_Destroy(&list);
    if (hole) Restart("a delivery was lost");
    return Status::Ok();
  }

  // Messages matching the filter not yet returned (the consumer's count,
  // from the stream's state now, plus any delivered to this client and not
  // yet returned): what an empty fetch cannot promise. 0 = caught up.
  Result<uint64_t> Pending() {
    if (sub_ == nullptr) return Status::Unavailable("no consumer on " + filter_);
    // Dropped by the client: those deliveries will never be returned, so
    // they must be asked for again.
    int64_t dropped = 0;
    if (natsSubscription_GetDropped(sub_, &dropped) == NATS_OK && dropped > 0) {
      Restart("deliveries were dropped");
      return uint64_t{1};
    }
    jsConsumerInfo* ci = nullptr;
    natsStatus s = natsSubscription_GetConsumerInfo(&ci, sub_, nullptr, nullptr);
    if (s != NATS_OK) {
      Drop();
      return Status::Unavailable("consumer info on " + filter_ + ": " + NatsText(s));
    }
    uint64_t pending = ci->NumPending;
    // Delivered to this client but not returned by a Fetch yet (it came
    // after a fetch had given up): still to come, as far as the caller is
    // concerned.
    if (ci->Delivered.Consumer > received_) pending += ci->Delivered.Consumer - received_;
    jsConsumerInfo_Destroy(ci);
    return pending;
  }

  // A new consumer from after the last message returned.
  void Restart(const char* why) {
    if (restarts_++ % 20 == 0)
      spdlog::warn("stream detection: {} on {}; reading again from stream sequence {}", why, filter_, next_);
    static Counter& lost = Metrics::Global().GetCounter(
        "femtoguard_stream_consumer_restarts_total", {},
        "Stream consumers made again because the client lost deliveries (read again, nothing skipped)");
    lost.Inc();
    Drop();
  }

 private:
  void Drop() {
    received_ = 0;  // the next consumer counts from 0
    if (sub_) {
      natsSubscription_Unsubscribe(sub_);
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
  }
  jsCtx* js_;
  std::string stream_, filter_;
  natsSubscription* sub_ = nullptr;
  int pending_msgs_, pending_bytes_;
  uint64_t next_ = 1;
  uint64_t received_ = 0;  // the last delivery number of this consumer seen
  uint64_t restarts_ = 0;
};

// ---- the derived records (device stage -> subscriber stage) ----

struct Risk {
  bool registered = false;
  uint8_t status = 0;
  bool blocked = false;
  UnixMillis suspect_until_ms = 0;
  std::string suspect_rule;
  bool operator==(const Risk&) const = default;
};

struct Record {
  uint32_t src = 0;  // device partition that made it
  uint64_t seq = 0;  // stream sequence of the message it came from
  uint32_t idx = 0;  // event index in that message
  uint32_t k = 0;    // record index for that event
  UnixMillis ts = 0;
  bool risk = false;
  std::string device;  // risk
  Risk r;
  Event event;  // not risk
  auto Order() const { return std::tie(ts, seq, src, idx, k); }
  auto Origin() const { return std::tie(seq, idx, k); }
};

using wire::Put;
using wire::PutStr;

void EncodeHead(std::string* o, bool risk, uint64_t seq, uint32_t idx, uint32_t k, UnixMillis ts) {
  Put<uint8_t>(o, risk ? 1 : 0);
  Put<uint64_t>(o, seq);
  Put<uint32_t>(o, idx);
  Put<uint32_t>(o, k);
  Put<uint64_t>(o, static_cast<uint64_t>(ts));
}

// Derived records for one subscriber partition, encoded as they are made,
// cut into messages of ~256 KB (NATS refuses more than 1 MB).
struct Outbox {
  std::vector<std::pair<uint32_t, std::string>> done;  // (count, body)
  std::string body;
  uint32_t count = 0;
  std::string scratch;  // one event's batch encoding
  void Next() {
    ++count;
    if (body.size() >= (256u << 10)) {
      done.emplace_back(count, std::move(body));
      body.clear();
      count = 0;
    }
  }
  void Event(uint64_t seq, uint32_t idx, uint32_t k, const detect::Event& e) {
    EncodeHead(&body, false, seq, idx, k, e.ts_ms);
    scratch.clear();
    BeginBatch(&scratch);
    AppendEvent(e, &scratch);
    FinishBatch(&scratch, 1);
    PutStr(&body, scratch);
    Next();
  }
  void RiskOf(uint64_t seq, uint32_t idx, uint32_t k, UnixMillis ts, std::string_view device, const Risk& r) {
    EncodeHead(&body, true, seq, idx, k, ts);
    PutStr(&body, device);
    Put<uint8_t>(&body, r.registered);
    Put<uint8_t>(&body, r.status);
    Put<uint8_t>(&body, r.blocked);
    Put<uint64_t>(&body, static_cast<uint64_t>(r.suspect_until_ms));
    PutStr(&body, r.suspect_rule);
    Next();
  }
  void Close() {
    if (count) done.emplace_back(count, std::move(body));
    body.clear();
    count = 0;
  }
};

Status DecodeRecords(std::string_view data, std::vector<std::unique_ptr<Record>>* out) {
  wire::Reader in(data);
  const Status truncated = Status::InvalidArgument("derived: truncated");
  uint32_t magic = 0, src = 0, count = 0;
  if (!in.Get(&magic) || magic != kDerivedMagic) return Status::InvalidArgument("derived: bad magic");
  if (!in.Get(&src) || !in.Get(&count)) return truncated;
  for (uint32_t i = 0; i < count; ++i) {
    auto owned = std::make_unique<Record>();
    Record& r = *owned;
    r.src = src;
    uint8_t risk = 0;
    if (!in.Get(&risk) || !in.Get(&r.seq) || !in.Get(&r.idx) || !in.Get(&r.k) || !in.Get(&r.ts)) return truncated;
    r.risk = risk != 0;
    if (r.risk) {
      uint8_t registered = 0, blocked = 0;
      if (!in.GetStr(&r.device) || !in.Get(&registered) || !in.Get(&r.r.status) || !in.Get(&blocked) ||
          !in.Get(&r.r.suspect_until_ms) || !in.GetStr(&r.r.suspect_rule)) {
        return truncated;
      }
      r.r.registered = registered != 0;
      r.r.blocked = blocked != 0;
    } else {
      std::string_view one;
      if (!in.GetStr(&one)) return truncated;
      FG_RETURN_IF_ERROR(ForEachEvent(one, [&](const Event& e) { r.event = e; }));
    }
    out->push_back(std::move(owned));
  }
  return Status::Ok();
}

Risk RiskOf(const detect::World& w, std::string_view device) {
  Risk r;
  detect::DeviceIdx d = w.Find(device);
  if (d == detect::kNoDevice) return r;
  const detect::DeviceState& s = w.device(d);
  r.registered = s.registered;
  r.status = static_cast<uint8_t>(s.status);
  r.blocked = s.blocked;
  r.suspect_until_ms = s.suspect_until_ms;
  r.suspect_rule = s.suspect_rule;
  return r;
}

bool ServesSubscriber(EventType t) {
  return t == EventType::kUeAttach || t == EventType::kUeDetach || t == EventType::kSmsDeliver;
}

uint32_t SubscriberPartition(const Event& e, uint32_t partitions) {
  return PartitionOf(std::string_view(reinterpret_cast<const char*>(e.imsi.bytes.data()), e.imsi.bytes.size()),
                     partitions);
}

// Rules judged by key instead of by device: payment.risk (by subscriber)
// and cell.unregistered (by the reported cell's pci:earfcn).
bool KeyedRule(std::string_view rule) { return rule == "payment.risk" || rule == "cell.unregistered"; }

std::vector<detect::DetectorInfo> DetectorsOf(Stage stage) {
  std::vector<detect::DetectorInfo> out;
  for (const auto& d : detect::AllDetectors()) {
    if (KeyedRule(d.rule) == (stage == Stage::kSubscriber)) out.push_back(d);
  }
  return out;
}

uint32_t CellPartition(const detect::Neighbor& n, uint32_t partitions) {
  return PartitionOf(std::to_string(n.pci) + ":" + std::to_string(n.earfcn), partitions);
}

// Progress of every partition, kept current by a watcher on the bucket and,
// in case the watcher falls silent (its consumer lost while a server
// stalled), by reading the partitions' keys every few seconds. Each key
// keeps the value of its highest bucket revision seen, so the two sources
// never move a value back.
class Board {
 public:
  ~Board() { Stop(); }
  Status Start(kvStore* kv, uint32_t partitions) {
    kv_ = kv;
    for (uint32_t p = 0; p < partitions; ++p)
      for (const char* prefix : {"wm.", "sack.", "done."}) keys_.push_back(prefix + std::to_string(p));
    natsStatus s = NATS_OK;
    // Right after another process made the bucket, the cluster may not
    // route to its stream yet.
    for (int attempt = 0; attempt < 40; ++attempt) {
      s = kvStore_WatchAll(&watcher_, kv, nullptr);
      if (s == NATS_OK) break;
      watcher_ = nullptr;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (s != NATS_OK) return Status::Unavailable("progress watcher: " + NatsText(s));
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }
  void Stop() {
    stop_ = true;
    {
      std::lock_guard lock(watcher_mutex_);
      if (watcher_) kvWatcher_Stop(watcher_);
    }
    if (thread_.joinable()) thread_.join();
    if (watcher_) kvWatcher_Destroy(watcher_);
    watcher_ = nullptr;
  }
  uint64_t Get(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = values_.find(key);
    return it == values_.end() ? 0 : it->second.value;
  }
  // The lowest value over prefix0..prefix<partitions-1>, and the partition
  // that has it.
  std::pair<uint64_t, uint32_t> Min(const std::string& prefix, uint32_t partitions) const {
    std::lock_guard lock(mutex_);
    std::pair<uint64_t, uint32_t> m{kEnd, 0};
    for (uint32_t p = 0; p < partitions; ++p) {
      auto it = values_.find(prefix + std::to_string(p));
      const uint64_t v = it == values_.end() ? 0 : it->second.value;
      if (v < m.first) m = {v, p};
    }
    return m;
  }
  bool Wait(const std::function<bool()>& pred, int64_t timeout_ms) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), pred);
  }
  bool AllPresent(const std::string& prefix, uint32_t partitions) const {  // mutex held
    for (uint32_t p = 0; p < partitions; ++p)
      if (!values_.count(prefix + std::to_string(p))) return false;
    return true;
  }

 private:
  struct Value {
    uint64_t value = 0;
    uint64_t revision = 0;
  };
  void Apply(kvEntry* e) {
    const std::string key = kvEntry_Key(e);
    const std::string value(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
    const bool deleted = kvEntry_Operation(e) != kvOp_Put;
    const uint64_t revision = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    {
      std::lock_guard lock(mutex_);
      auto it = values_.find(key);
      if (it != values_.end() && it->second.revision >= revision) return;
      if (deleted) {
        values_.erase(key);
      } else {
        values_[key] = {value == "end" ? kEnd : std::strtoull(value.c_str(), nullptr, 10), revision};
      }
    }
    cv_.notify_all();
  }
  // Reads every partition's keys (what the watcher may have missed).
  void Poll() {
    for (const std::string& key : keys_) {
      if (stop_) return;
      kvEntry* e = nullptr;
      const natsStatus s = kvStore_Get(&e, kv_, key.c_str());
      if (s == NATS_OK && e != nullptr) Apply(e);
      else if (s != NATS_NOT_FOUND) return;  // the bucket does not answer: next time
    }
  }
  void Run() {
    auto polled = std::chrono::steady_clock::now();
    int errors = 0;
    while (!stop_) {
      kvEntry* e = nullptr;
      natsStatus s = kvWatcher_Next(&e, watcher_, 500);
      if (s == NATS_OK && e != nullptr) {
        Apply(e);
      } else if (s != NATS_OK && s != NATS_TIMEOUT && !stop_) {
        // The watcher is gone (its subscription closed): make another,
        // which also delivers every key's latest value again.
        if (errors++ % 20 == 0) spdlog::warn("stream detection: progress watcher: {}; watching again", NatsText(s));
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        kvWatcher* again = nullptr;
        if (kvStore_WatchAll(&again, kv_, nullptr) == NATS_OK) {
          std::lock_guard lock(watcher_mutex_);
          if (stop_) {
            kvWatcher_Destroy(again);
          } else {
            kvWatcher_Destroy(watcher_);
            watcher_ = again;
            errors = 0;
          }
        }
      }
      if (std::chrono::steady_clock::now() - polled > std::chrono::seconds(3)) {
        Poll();
        polled = std::chrono::steady_clock::now();
      }
    }
  }
  kvStore* kv_ = nullptr;
  std::vector<std::string> keys_;
  std::mutex watcher_mutex_;  // watcher_ replaced by Run() vs. Stop()
  kvWatcher* watcher_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, Value> values_;
};

}  // namespace

std::string EndSubject(const std::string& prefix, uint32_t partition) {
  return prefix + ".ev." + std::to_string(partition) + "._end_";
}

std::string ExposureKey(const detect::SubjectId& s) {
  static const char* hex = "0123456789abcdef";
  std::string k = "s.";
  for (uint8_t b : s.bytes) {
    k.push_back(hex[b >> 4]);
    k.push_back(hex[b & 15]);
  }
  return k;
}

struct StreamDetection::Impl {
  StreamDetectionOptions o;
  NatsLink link;
  kvStore* progress = nullptr;
  std::atomic<kvStore*> exposure{nullptr};  // read by GetExposure from any thread
  Board board;
  std::unique_ptr<PartitionLeases> leases;
  std::thread lease_thread;
  std::atomic<bool> stopping{false};

  struct Worker {
    uint32_t partition = 0;
    std::atomic<bool> stop{false};
    std::atomic<bool> finished{false};
    std::mutex mutex;  // guards the engines (ForEachWorld)
    std::unique_ptr<detect::Engine> device;
    std::unique_ptr<detect::Engine> subscriber;
    std::thread thread;
  };
  std::mutex workers_mutex;
  std::map<uint32_t, std::unique_ptr<Worker>> workers;

  std::atomic<uint64_t> n_events{0}, n_payments{0}, n_alerts{0}, n_suppressed{0}, n_derived{0};

  ~Impl() {
    if (progress) kvStore_Destroy(progress);
    if (exposure.load()) kvStore_Destroy(exposure.load());
  }

  // The keyed stage's judgement of `subs` after a round, written where it
  // changed (`written`: what this owner last wrote).
  void WriteExposure(detect::Engine& engine, const std::vector<detect::SubjectId>& subs, UnixMillis now,
                     std::unordered_map<detect::SubjectId, std::string, detect::SubjectIdHash>& written) {
    const detect::RuleConfig* rule = engine.rules().Find("payment.risk");
    static const detect::RuleParams kNoParams;
    const detect::RuleParams& params = rule ? rule->params : kNoParams;
    const UnixMillis exposure_ms = params.GetInt("exposure_s", 1800) * 1000;
    const detect::World& world = engine.world();
    for (const detect::SubjectId& sub : subs) {
      std::string value;
      const detect::SubscriberState* st = world.subscriber(sub);
      if (st && st->last_femto != detect::kNoDevice && now - st->last_femto_ms <= exposure_ms) {
        std::string_view risk = detect::detectors::FemtoRisk(world, st->last_femto, now);
        if (!risk.empty()) {
          const detect::DeviceState& f = world.device(st->last_femto);
          UnixMillis until = st->last_femto_ms + exposure_ms;
          if (risk == "suspect") until = std::min(until, f.suspect_until_ms);
          nlohmann::json j = {{"femto", f.id}, {"risk", risk}, {"served_ms", st->last_femto_ms},
                              {"until_ms", until}, {"as_of_ms", now}};
          value = j.dump();
        }
      }
      auto it = written.find(sub);
      if (it == written.end() ? value.empty() : false) continue;
      if (it != written.end() && it->second == value) continue;
      const std::string key = ExposureKey(sub);
      natsStatus s = value.empty() ? kvStore_Delete(exposure.load(), key.c_str())
                                   : kvStore_PutString(nullptr, exposure.load(), key.c_str(), value.c_str());
      if (s != NATS_OK) {
        spdlog::warn("stream detection: exposure of a subscriber not written: {}", NatsText(s));
        continue;
      }
      if (value.empty()) written.erase(sub);
      else written[sub] = value;
    }
  }

  // Writes a progress key, retrying until it is written or the partition is
  // given up (a progress write lost would hold every keyed stage back).
  void Put(const std::string& key, uint64_t v, const Worker& w) {
    const std::string text = v == kEnd ? "end" : std::to_string(v);
    for (int attempt = 0; !stopping && !w.stop; ++attempt) {
      natsStatus s = kvStore_PutString(nullptr, progress, key.c_str(), text.c_str());
      if (s == NATS_OK) return;
      if (attempt % 50 == 0) spdlog::warn("stream detection: progress {} not written yet: {}", key, NatsText(s));
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (attempt + 1), 1000)));
    }
  }

  // Hands an alert on, retrying until it is durable (or the partition is
  // given up: the next owner hands it on again).
  bool Hand(const Alert& a, Worker& w) {
    for (int attempt = 0; !w.stop; ++attempt) {
      Status s = o.on_alert(a, w.partition);
      if (s.ok() && o.publish_alerts) s = PublishAlert(a);
      if (s.ok()) {
        ++n_alerts;
        StageCounter("alert").Inc();
        return true;
      }
      if (attempt == 0) spdlog::warn("stream detection: alert {} not landed yet: {}", a.id, s.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (attempt + 1), 2000)));
    }
    return false;
  }

  Status PublishAlert(const Alert& a) {
    const std::string subject = o.prefix + ".alerts." + a.rule;
    const std::string json = a.ToJson();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = a.id.c_str();
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsPubAck* ack = nullptr;
    natsStatus s = js_Publish(&ack, link.js, subject.c_str(), json.data(), static_cast<int>(json.size()), &po, &jerr);
    if (s != NATS_OK) return Status::Unavailable("alert stream: " + NatsText(s));
    jsPubAck_Destroy(ack);
    return Status::Ok();
  }

  Status Publish(const std::string& subject, const std::string& payload, Worker& w) {
    for (int attempt = 0; !w.stop; ++attempt) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      jsPubAck* ack = nullptr;
      natsStatus s = js_Publish(&ack, link.js, subject.c_str(), payload.data(),
                                static_cast<int>(payload.size()), nullptr, &jerr);
      if (s == NATS_OK) {
        jsPubAck_Destroy(ack);
        ++n_derived;
        return Status::Ok();
      }
      if (attempt == 0) spdlog::warn("stream detection: derived publish on {}: {}", subject, NatsText(s));
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (attempt + 1), 1000)));
    }
    return Status::Unavailable("stopping");
  }

  void RunWorker(Worker& w);

  // Connection, streams, buckets, the progress watcher and the leases; each
  // step once (a failed call is retried from where it stopped). `leases`
  // is set last: non-null means ready.
  bool derived_ready = false, alerts_ready = false, board_started = false;
  Status Setup() {
    if (link.conn == nullptr) {
      NatsLinkOptions lo;
      lo.name = "femtoguard-detect-" + o.node_id;
      lo.js_wait_ms = 3000;
      lo.retry_on_failed_connect = !o.finite;
      if (Status c = link.Connect(o.servers, lo); !c.ok()) return Status::Unavailable("stream detection: " + c.message());
    }
    if (!derived_ready) {
      FG_RETURN_IF_ERROR(EnsureStream(link.js, o.derived_stream, o.prefix + ".sub.>", o.replicas, stopping));
      derived_ready = true;
    }
    if (o.publish_alerts && !alerts_ready) {
      FG_RETURN_IF_ERROR(EnsureStream(link.js, o.alert_stream, o.prefix + ".alerts.>", o.replicas, stopping));
      alerts_ready = true;
    }
    if (o.publish_exposure && exposure.load() == nullptr) {
      FG_ASSIGN_OR_RETURN(kvStore * kv, OpenBucket(link.js, o.exposure_bucket, o.replicas, stopping));
      exposure.store(kv);
    }
    if (progress == nullptr) {
      FG_ASSIGN_OR_RETURN(progress, OpenBucket(link.js, o.progress_bucket, o.replicas, stopping));
    }
    if (!board_started) {
      FG_RETURN_IF_ERROR(board.Start(progress, static_cast<uint32_t>(o.partitions)));
      board_started = true;
    }
    LeaseOptions lo;
    lo.servers = o.servers;
    lo.bucket = o.lease_bucket;
    lo.node_id = o.node_id;
    lo.partitions = o.partitions;
    lo.replicas = o.replicas;
    lo.ttl_ms = o.lease_ttl_ms;
    lo.min_nodes = o.min_nodes;
    FG_ASSIGN_OR_RETURN(leases, PartitionLeases::Open(lo));
    return Status::Ok();
  }
};

void StreamDetection::Impl::RunWorker(Worker& w) {
  const uint32_t N = w.partition;
  const auto P = static_cast<uint32_t>(o.partitions);
  auto dev_seed = o.seed(Stage::kDevice);
  auto sub_seed = o.seed(Stage::kSubscriber);
  if (!dev_seed.ok() || !sub_seed.ok()) {
    spdlog::error("stream detection: partition {}: cannot seed: {}", N,
                  (!dev_seed.ok() ? dev_seed.status() : sub_seed.status()).message());
    w.finished = true;
    return;
  }
  // Where the previous owner got to: alerts of messages up to here landed.
  const uint64_t dev_floor = board.Get("wm." + std::to_string(N));
  const uint64_t sub_floor = board.Get("sack." + std::to_string(N));
  spdlog::info("stream detection: partition {} taken (device stage landed up to {}, subscriber stage up to {})",
               N, dev_floor, sub_floor);

  std::vector<Alert> raised;
  auto collect = [&raised](const Alert& a) { raised.push_back(a); };
  {
    std::lock_guard lock(w.mutex);
    w.device = std::make_unique<detect::Engine>(std::move(dev_seed->first), std::move(dev_seed->second), collect,
                                                DetectorsOf(Stage::kDevice));
    w.device->SetLocality([N, P](std::string_view device) { return PartitionOf(device, P) == N; });
    w.subscriber = std::make_unique<detect::Engine>(std::move(sub_seed->first), std::move(sub_seed->second), collect,
                                                    DetectorsOf(Stage::kSubscriber));
  }
  Reader dev_reader(link.js, o.event_stream, o.prefix + ".ev." + std::to_string(N) + ".>", o.reader_pending_msgs,
                    o.reader_pending_bytes);
  Reader sub_reader(link.js, o.derived_stream, o.prefix + ".sub." + std::to_string(N) + ".>",
                    o.reader_pending_msgs, o.reader_pending_bytes);
  std::unordered_map<std::string, Risk> sent;    // device -> risk last published
  std::map<uint32_t, std::tuple<uint64_t, uint32_t, uint32_t>> seen;  // src -> last origin applied
  std::vector<std::unique_ptr<Record>> buffer;  // subscriber stage, not yet complete
  // Exposure bookkeeping (publish_exposure): who each femtocell served,
  // what was written.
  std::unordered_map<std::string, std::vector<detect::SubjectId>> served_by;
  std::unordered_map<detect::SubjectId, std::string, detect::SubjectIdHash> written;
  std::vector<detect::SubjectId> dirty;
  uint64_t dev_progress = dev_floor;            // written to wm.<N>
  bool dev_ended = false;
  uint64_t sub_progress = sub_floor;
  std::vector<Reader::Msg> msgs;
  Event meas;  // a cell report cut for one cell partition
  uint64_t last_gate = 0;
  auto gate_moved = std::chrono::steady_clock::now();
  auto wait_logged = gate_moved;

  while (!w.stop) {
    // ---- device stage ----
    if (!dev_ended) {
      Status s = dev_reader.Fetch(256, buffer.empty() ? 200 : 20, false, &msgs);
      if (!s.ok()) {
        spdlog::warn("stream detection: partition {}: {}", N, s.message());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      std::map<uint32_t, Outbox> out;  // by subscriber partition
      std::vector<std::pair<uint64_t, Alert>> to_hand;
      {
        std::lock_guard lock(w.mutex);
        detect::World& world = w.device->world();
        for (const Reader::Msg& m : msgs) {
          raised.clear();
          uint32_t idx = 0;
          auto risk_check = [&](std::string_view device, UnixMillis ts, uint32_t& k) {
            if (device.empty()) return;
            Risk r = RiskOf(world, device);
            auto [it, fresh] = sent.try_emplace(std::string(device));
            if (!fresh && it->second == r) return;
            it->second = r;
            for (uint32_t q = 0; q < P; ++q) out[q].RiskOf(m.seq, idx, k, ts, device, r);
            ++k;
          };
          if (m.end) {
            w.device->Flush(std::numeric_limits<UnixMillis>::max());
            uint32_t k = 0;
            for (const Alert& a : raised) risk_check(a.device, a.ts_ms, k);
            dev_ended = true;
          } else {
            Status d = ForEachEvent(m.data, [&](const Event& e) {
              uint32_t k = 0;
              const size_t raised_before = raised.size();
              const bool foreign = !e.device.empty() && PartitionOf(e.device, P) != N;
              if (foreign) {
                w.device->ProcessForeign(e);  // a copy: cross-device detectors' state
              } else if (e.type == EventType::kMeasReport) {
                // Judged by cell: to each cell's partition, with the
                // neighbours that partition owns.
                std::map<uint32_t, std::vector<detect::Neighbor>> parts;
                for (const detect::Neighbor& nb : e.neighbors) parts[CellPartition(nb, P)].push_back(nb);
                if (parts.size() == 1) {
                  out[parts.begin()->first].Event(m.seq, idx, k++, e);
                } else {
                  meas = e;
                  for (auto& [q, nbs] : parts) {
                    meas.neighbors = std::move(nbs);
                    out[q].Event(m.seq, idx, k++, meas);
                  }
                }
              } else if (e.type == EventType::kPaymentAuth) {
                if (!e.imsi.empty()) out[SubscriberPartition(e, P)].Event(m.seq, idx, k++, e);
              } else {
                const size_t before = raised.size();
                // What the subscriber stage already has for this femtocell:
                // its state before its first event here (both stages start
                // from the same registry).
                if (!e.device.empty() && !sent.count(e.device)) sent.emplace(e.device, RiskOf(world, e.device));
                w.device->Process(e);
                ++n_events;
                StageCounter("event").Inc();
                if (ServesSubscriber(e.type) && !e.imsi.empty())
                  out[SubscriberPartition(e, P)].Event(m.seq, idx, k++, e);
                risk_check(e.device, e.ts_ms, k);
                for (size_t i = before; i < raised.size(); ++i)
                  if (raised[i].device != e.device) risk_check(raised[i].device, e.ts_ms, k);
              }
              if (foreign) {
                for (size_t i = raised_before; i < raised.size(); ++i) risk_check(raised[i].device, e.ts_ms, k);
              }
              ++idx;
            });
            if (!d.ok()) spdlog::error("stream detection: partition {}: message {}: {}", N, m.seq, d.message());
          }
          for (Alert& a : raised) {
            if (m.seq <= dev_floor) {
              if (o.on_replayed) o.on_replayed(a, world);
              ++n_suppressed;
              continue;
            }
            to_hand.emplace_back(m.seq, std::move(a));
          }
          raised.clear();
        }
      }
      // Derived records first (the subscriber stage must find them once it
      // sees our progress), then the alerts, then the progress.
      for (auto& [q, box] : out) {
        box.Close();
        const std::string subject = o.prefix + ".sub." + std::to_string(q) + ".d";
        for (auto& [count, body] : box.done) {
          std::string payload;
          payload.reserve(body.size() + 12);
          wire::Put<uint32_t>(&payload, kDerivedMagic);
          wire::Put<uint32_t>(&payload, N);
          wire::Put<uint32_t>(&payload, count);
          payload += body;
          if (w.stop || !Publish(subject, payload, w).ok()) break;
        }
      }
      for (auto& [seq, a] : to_hand)
        if (!Hand(a, w)) break;
      if (w.stop) break;
      // Progress moves marker by marker: every partition gets every batch's
      // end marker, so a partition's progress past a marker means the
      // whole batch (and all before it) is processed here, quiet partition
      // or not; and the keyed stage's gate never opens on half a batch.
      uint64_t now_progress = dev_progress;
      for (const Reader::Msg& m : msgs)
        if (m.batch_end) now_progress = std::max(now_progress, m.seq);
      // An empty fetch may also mean a consumer that died with its server
      // (a stream leader killed): asking for its state makes it again then.
      if (msgs.empty()) (void)dev_reader.Pending();
      if (dev_ended) now_progress = kEnd;
      if (now_progress != dev_progress) {
        dev_progress = now_progress;
        Put("wm." + std::to_string(N), dev_progress, w);
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    // ---- subscriber stage ----
    const std::pair<uint64_t, uint32_t> lowest = board.Min("wm.", P);
    const uint64_t gate = lowest.first;
    {
      // Records that wait long for one partition's progress: say which.
      const auto now = std::chrono::steady_clock::now();
      if (gate != last_gate || buffer.empty()) {
        last_gate = gate;
        gate_moved = now;
      } else if (now - gate_moved > std::chrono::seconds(30) && now - wait_logged > std::chrono::seconds(30)) {
        wait_logged = now;
        spdlog::warn("stream detection: partition {}: {} keyed records wait for partition {} (progress {})", N,
                     buffer.size(), lowest.second, gate);
      }
    }
    // Everything published before the gate was read is in the stream: read
    // until the consumer says nothing is left (a NoWait fetch may come back
    // empty while messages are still on their way to it).
    bool drained = false;
    for (int round = 0; !w.stop; ++round) {
      Status s = sub_reader.Fetch(512, round == 0 ? 10 : 50, round == 0, &msgs);
      if (!s.ok()) {
        spdlog::warn("stream detection: partition {}: {}", N, s.message());
        break;
      }
      if (msgs.empty()) {
        auto pending = sub_reader.Pending();
        if (!pending.ok()) {
          spdlog::warn("stream detection: partition {}: {}", N, pending.status().message());
          break;
        }
        if (*pending == 0) {
          drained = true;
          break;
        }
        // Said to be there, yet no fetch brings it (~5 s): ask a new
        // consumer.
        if (round >= 100 && round % 100 == 0) sub_reader.Restart("messages pending but not delivered");
        continue;
      }
      for (const Reader::Msg& m : msgs) {
        const size_t before = buffer.size();
        if (Status d = DecodeRecords(m.data, &buffer); !d.ok()) {
          spdlog::error("stream detection: partition {}: derived message {}: {}", N, m.seq, d.message());
          buffer.resize(before);
          continue;
        }
        // Drop what a rebuild of a device partition published again.
        size_t keep = before;
        for (size_t i = before; i < buffer.size(); ++i) {
          const Record& r = *buffer[i];
          auto it = seen.find(r.src);
          if (it != seen.end() && r.Origin() <= it->second) continue;
          seen[r.src] = r.Origin();
          if (keep != i) buffer[keep] = std::move(buffer[i]);
          ++keep;
        }
        buffer.resize(keep);
      }
    }
    if (!drained) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (buffer.empty() && gate == kEnd) {
      // Written before `finished`: the lease thread stops a finished
      // worker, and a stopped Put gives up.
      Put("done." + std::to_string(N), 1, w);
      w.finished = true;
      break;
    }
    if (buffer.empty() || gate == 0) continue;
    auto complete_end =
        std::partition(buffer.begin(), buffer.end(), [gate](const auto& r) { return r->seq <= gate; });
    if (complete_end == buffer.begin()) continue;
    std::sort(buffer.begin(), complete_end, [](const auto& a, const auto& b) { return a->Order() < b->Order(); });
    std::vector<std::pair<uint64_t, Alert>> to_hand;
    {
      std::lock_guard lock(w.mutex);
      detect::World& world = w.subscriber->world();
      dirty.clear();
      for (auto pos = buffer.begin(); pos != complete_end; ++pos) {
        Record* it = pos->get();
        if (o.publish_exposure) {
          if (it->risk) {
            auto f = served_by.find(it->device);
            if (f != served_by.end()) dirty.insert(dirty.end(), f->second.begin(), f->second.end());
          } else if (ServesSubscriber(it->event.type)) {
            auto& list = served_by[it->event.device];
            if (std::find(list.begin(), list.end(), it->event.imsi) == list.end()) list.push_back(it->event.imsi);
            dirty.push_back(it->event.imsi);
          }
        }
        if (it->risk) {
          detect::DeviceIdx d = world.Intern(it->device);
          detect::DeviceState& st = world.device(d);
          st.registered = it->r.registered;
          st.status = static_cast<DeviceStatus>(it->r.status);
          st.blocked = it->r.blocked;
          st.suspect_until_ms = it->r.suspect_until_ms;
          st.suspect_rule = it->r.suspect_rule;
        } else if (it->event.type == EventType::kPaymentAuth || it->event.type == EventType::kMeasReport) {
          raised.clear();
          w.subscriber->Process(it->event);
          ++n_payments;
          StageCounter("keyed").Inc();
          for (Alert& a : raised) {
            if (it->seq <= sub_floor) {
              if (o.on_replayed) o.on_replayed(a, world);
              ++n_suppressed;
              continue;
            }
            to_hand.emplace_back(it->seq, std::move(a));
          }
          raised.clear();
        } else {
          world.Apply(it->event);
        }
      }
      if (o.publish_exposure && !dirty.empty()) {
        std::sort(dirty.begin(), dirty.end(), [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
        dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
        WriteExposure(*w.subscriber, dirty, (*std::prev(complete_end))->ts, written);
      }
      if (gate == kEnd) {
        raised.clear();
        w.subscriber->Flush(std::numeric_limits<UnixMillis>::max());
        for (Alert& a : raised) to_hand.emplace_back(kEnd, std::move(a));
        raised.clear();
      }
    }
    buffer.erase(buffer.begin(), complete_end);
    for (auto& [seq, a] : to_hand)
      if (!Hand(a, w)) break;
    if (w.stop) break;
    if (gate != kEnd && gate > sub_progress) {
      sub_progress = gate;
      Put("sack." + std::to_string(N), sub_progress, w);
    }
  }
  w.finished = true;
}

StreamDetection::StreamDetection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StreamDetection::~StreamDetection() { Stop(); }

Result<std::unique_ptr<StreamDetection>> StreamDetection::Start(StreamDetectionOptions options) {
  if (!options.seed || !options.on_alert) return Status::InvalidArgument("stream detection: seed and on_alert are required");
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  auto from_env = [](int& v, const char* name) {
    if (v > 0) return;
    if (const char* e = std::getenv(name); e && *e) v = std::max(0, std::atoi(e));
  };
  from_env(impl->o.reader_pending_msgs, "FEMTOGUARD_STREAM_PENDING_MSGS");
  from_env(impl->o.reader_pending_bytes, "FEMTOGUARD_STREAM_PENDING_BYTES");
  Impl& m = *impl;
  // A replay worker fails at once without NATS; serve starts at once and
  // sets up in the background (ingest answers 503 and payment checks
  // step_up until then).
  if (m.o.finite) FG_RETURN_IF_ERROR(m.Setup());
  Impl* self = impl.get();
  m.lease_thread = std::thread([self] {
    const int64_t tick_ms = std::max<int64_t>(200, self->o.lease_ttl_ms / 3);
    while (!self->stopping) {
      if (!self->leases) {
        if (Status s = self->Setup(); !s.ok()) {
          spdlog::warn("stream detection: {}; retrying", s.message());
          for (int slept = 0; slept < 1000 && !self->stopping; slept += 50)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        spdlog::info("stream detection: connected to the event stream");
      }
      if (Status s = self->leases->Tick(); !s.ok()) spdlog::warn("stream detection: {}", s.message());
      std::set<uint32_t> owned = self->leases->owned();
      std::vector<std::unique_ptr<Impl::Worker>> gone;
      {
        std::lock_guard lock(self->workers_mutex);
        for (auto it = self->workers.begin(); it != self->workers.end();) {
          if (!owned.count(it->first) || it->second->finished) {
            if (!owned.count(it->first)) spdlog::info("stream detection: partition {} handed over", it->first);
            it->second->stop = true;
            gone.push_back(std::move(it->second));
            it = self->workers.erase(it);
          } else {
            ++it;
          }
        }
      }
      for (auto& w : gone) {
        if (w->thread.joinable()) w->thread.join();
        if (self->o.on_ownership) self->o.on_ownership(w->partition, false);
      }
      for (uint32_t p : owned) {
        std::lock_guard lock(self->workers_mutex);
        if (self->workers.count(p)) continue;
        if (self->o.finite && self->board.Get("done." + std::to_string(p))) continue;
        auto w = std::make_unique<Impl::Worker>();
        w->partition = p;
        Impl::Worker* wp = w.get();
        self->workers[p] = std::move(w);
        if (self->o.on_ownership) self->o.on_ownership(p, true);
        wp->thread = std::thread([self, wp] { self->RunWorker(*wp); });
      }
      {
        static Gauge& owned_gauge = Metrics::Global().GetGauge(
            "femtoguard_stream_partitions_owned", {}, "Event stream partitions this node works on (cluster mode)");
        std::lock_guard lock(self->workers_mutex);
        owned_gauge.Set(static_cast<int64_t>(self->workers.size()));
      }
      for (int64_t slept = 0; slept < tick_ms && !self->stopping; slept += 50)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  return std::unique_ptr<StreamDetection>(new StreamDetection(std::move(impl)));
}

bool StreamDetection::Wait(int64_t timeout_ms) {
  const auto P = static_cast<uint32_t>(impl_->o.partitions);
  const std::string prefix = "done.";
  return impl_->board.Wait([&] { return impl_->board.AllPresent(prefix, P); }, timeout_ms);
}

void StreamDetection::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  if (impl_->lease_thread.joinable()) impl_->lease_thread.join();
  std::map<uint32_t, std::unique_ptr<Impl::Worker>> workers;
  {
    std::lock_guard lock(impl_->workers_mutex);
    workers.swap(impl_->workers);
  }
  for (auto& [p, w] : workers) w->stop = true;
  for (auto& [p, w] : workers)
    if (w->thread.joinable()) w->thread.join();
  if (impl_->leases) impl_->leases->Release();
  impl_->board.Stop();
}

void StreamDetection::ForEachWorld(const std::function<void(detect::World&)>& fn) {
  std::lock_guard lock(impl_->workers_mutex);
  for (auto& [p, w] : impl_->workers) {
    std::lock_guard wl(w->mutex);
    if (w->device) fn(w->device->world());
    if (w->subscriber) fn(w->subscriber->world());
  }
}

StreamDetectionStats StreamDetection::stats() const {
  StreamDetectionStats s;
  s.events = impl_->n_events;
  s.keyed = impl_->n_payments;
  s.alerts = impl_->n_alerts;
  s.suppressed = impl_->n_suppressed;
  s.derived = impl_->n_derived;
  return s;
}

Result<std::optional<Exposure>> StreamDetection::GetExposure(const detect::SubjectId& subscriber) {
  kvStore* kv = impl_->exposure.load();
  if (kv == nullptr) return Status::Unavailable("no exposure bucket");
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv, ExposureKey(subscriber).c_str());
  if (s == NATS_NOT_FOUND) return std::optional<Exposure>();
  if (s != NATS_OK) return Status::Unavailable("exposure bucket: " + NatsText(s));
  auto j = nlohmann::json::parse(kvEntry_ValueString(e), nullptr, false);
  kvEntry_Destroy(e);
  if (!j.is_object()) return std::optional<Exposure>();
  Exposure x;
  x.femto = j.value("femto", "");
  x.risk = j.value("risk", "");
  x.served_ms = j.value("served_ms", int64_t{0});
  x.until_ms = j.value("until_ms", int64_t{0});
  x.as_of_ms = j.value("as_of_ms", int64_t{0});
  return std::optional<Exposure>(x);
}

std::vector<uint32_t> StreamDetection::owned() const {
  std::lock_guard lock(impl_->workers_mutex);
  std::vector<uint32_t> out;
  for (auto& [p, w] : impl_->workers) out.push_back(p);
  return out;
}

}  // namespace fg::bus
