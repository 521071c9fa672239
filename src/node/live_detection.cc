#include "node/live_detection.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/event_codec.h"
#include "bus/stream_detection.h"
#include "common/metrics.h"
#include "common/ossl.h"
#include "common/time.h"
#include "detect/default_rules.h"
#include "ingest/decoder.h"
#include "ingest/journal.h"
#include "ingest/seed.h"

namespace fg {
namespace {

using nlohmann::json;

constexpr std::string_view kEventsSubject = "events";
constexpr size_t kMaxReportedErrors = 100;

Counter& IngestCounter(std::string_view result) {
  return Metrics::Global().GetCounter("femtoguard_ingest_events_total",
                                      "result=\"" + std::string(result) + "\"",
                                      "Events received over HTTP, by outcome");
}

HttpResponse JsonError(int status, std::string_view message) {
  return HttpResponse::Json(status, json{{"error", message}}.dump() + "\n");
}

// Idempotency-Key: what a client may name a batch with.
bool ValidBatchId(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// A bus message is the journal seq (8 bytes, 0 = not journaled) and a batch.
std::string BusMessage(uint64_t seq, std::string_view batch) {
  std::string m;
  m.reserve(sizeof seq + batch.size());
  m.append(reinterpret_cast<const char*>(&seq), sizeof seq);
  m.append(batch);
  return m;
}

bool ValidImsi(std::string_view s) {
  return s.size() >= 5 && s.size() <= 15 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// An alert dismissed as a false positive (issue 14): what the engine put
// into the World when it fired (suspicion, a status, a block, a payment
// hold) is set back to what the store now says. The caller holds the
// engine's lock.
void ApplyUndoToWorld(Store& store, detect::World& world, const StoredAlert& alert) {
  if (!alert.device.empty()) {
    detect::DeviceIdx i = world.Find(alert.device);
    if (i != detect::kNoDevice) {
      // The status the store has, not the one the alert assumed.
      if (auto d = store.GetDevice(alert.device); d.ok()) world.Register(*d);
      detect::DeviceState& d = world.device(i);
      d.suspect_until_ms = 0;
      d.suspect_rule.clear();
      d.blocked = store.GetBlock("device", alert.device).ok();
    }
  }
  json j = json::parse(alert.json, nullptr, false);
  if (!j.is_object() || !j.contains("subjects") || !j["subjects"].is_array()) return;
  for (const json& s : j["subjects"]) {
    detect::SubjectId id;
    if (!s.is_string() || !detect::SubjectId::FromString(s.get<std::string>(), &id)) continue;
    if (world.subscriber(id) == nullptr) continue;
    world.MutableSubscriber(id).payments_held = store.GetBlock("payments", s.get<std::string>()).ok();
  }
}

}  // namespace

class LiveDetection::Impl {
 public:
  Store* store = nullptr;
  std::unique_ptr<Pseudonymizer> pseudonymizer;
  // Declared before the responder, which calls Checkpoint() from its own
  // thread until it is destroyed: the journal outlives it.
  std::unique_ptr<ingest::Journal> journal;
  // The same journal for Checkpoint(), which the responder's thread may call
  // while Start() is still replaying (before `journal` is set).
  std::atomic<ingest::Journal*> checkpoint_journal{nullptr};
  std::atomic<uint64_t> processed_seq{0};  // last journal record detection has processed
  std::unique_ptr<response::Responder> responder;
  std::unique_ptr<bus::InProcessBus> bus;
  std::unique_ptr<bus::JetStreamProducer> producer;  // cluster mode; null: the journal and `bus`
  std::unique_ptr<bus::StreamDetection> stream_detection;  // cluster mode: detection of owned partitions
  std::shared_ptr<const CellDb> cells;                     // shared by the partitions' Worlds
  std::function<void(std::string_view, std::string_view)> on_session_down;  // fixed after Start
  uint64_t current_seq = 0;                // record being processed; guarded by mutex

  // The --rules / cells flags and the data dir, for a reload (constant).
  std::string rules_flag;
  std::string cells_flag;
  std::filesystem::path data_root;
  std::string RulesPath() const {
    if (rules_flag.empty() && std::filesystem::exists(data_root / "rules.yaml")) return (data_root / "rules.yaml").string();
    return rules_flag;
  }
  std::string CellsPath() const {
    if (cells_flag.empty() && std::filesystem::exists(data_root / "cells.csv")) return (data_root / "cells.csv").string();
    return cells_flag;
  }

  std::mutex mutex;  // guards engine (and its World) and watermark
  std::unique_ptr<detect::Engine> engine;
  UnixMillis watermark = 0;

  // Queries (payment checks) that asked for `mutex` and those that are done
  // with it. std::mutex is not fair: without these, the dispatcher takes the
  // lock back right after letting go of it and a payment check waits for the
  // whole stream (seen as a 1.3 s p99 while a day of events streamed in).
  std::atomic<uint64_t> queries_arrived{0};
  std::atomic<uint64_t> queries_served{0};

  // Holds `mutex` for a query; counted so that the dispatcher lets it in at
  // its next slice boundary.
  class QueryLock {
   public:
    explicit QueryLock(Impl& impl) : impl_(impl) {
      impl_.queries_arrived.fetch_add(1, std::memory_order_acq_rel);
      impl_.mutex.lock();
    }
    ~QueryLock() {
      impl_.mutex.unlock();
      impl_.queries_served.fetch_add(1, std::memory_order_acq_rel);
    }
    QueryLock(const QueryLock&) = delete;
    QueryLock& operator=(const QueryLock&) = delete;

   private:
    Impl& impl_;
  };

  std::mutex decoders_mutex;
  std::vector<std::unique_ptr<ingest::EventDecoder>> decoders;  // idle decoders, guarded

  std::unique_ptr<ingest::EventDecoder> TakeDecoder() {
    {
      std::lock_guard lock(decoders_mutex);
      if (!decoders.empty()) {
        auto d = std::move(decoders.back());
        decoders.pop_back();
        return d;
      }
    }
    return std::make_unique<ingest::EventDecoder>(*pseudonymizer);
  }
  void ReturnDecoder(std::unique_ptr<ingest::EventDecoder> d) {
    std::lock_guard lock(decoders_mutex);
    decoders.push_back(std::move(d));
  }

  void OnMessage(const std::string& message) {
    uint64_t seq = 0;
    if (message.size() < sizeof seq) return;
    std::memcpy(&seq, message.data(), sizeof seq);
    OnBatch(seq, std::string_view(message).substr(sizeof seq));
  }

  void OnBatch(uint64_t seq, std::string_view payload) {
    // The lock is let go every few hundred events so that a payment check
    // waits for a slice of a batch, not for a whole megabyte of events.
    constexpr size_t kSlice = 256;
    {
      std::unique_lock lock(mutex);
      current_seq = seq;
      batch_received = std::chrono::steady_clock::now();  // start of femtoguard_event_to_action_seconds
      size_t n = 0;
      Status s = bus::ForEachEvent(payload, [&](const detect::Event& e) {
        engine->Process(e);
        watermark = std::max(watermark, e.ts_ms);
        if (++n % kSlice == 0) LetQueriesIn(lock);
      });
      current_seq = 0;
      if (!s.ok()) {
        Metrics::Global().GetCounter("femtoguard_bus_bad_batches_total", {}, "Undecodable event batches").Inc();
        spdlog::error("detection: {}", s.ToString());
      }
    }
    if (seq != 0) {
      processed_seq.store(seq, std::memory_order_release);
      Checkpoint();
    }
  }

  // The journal may forget what detection has processed and whose responses
  // have all landed.
  void Checkpoint(bool force = false) {
    ingest::Journal* j = checkpoint_journal.load(std::memory_order_acquire);
    if (j == nullptr) return;
    const uint64_t pending = responder->LowestPendingSeq();
    const uint64_t done = std::min(processed_seq.load(std::memory_order_acquire), pending - 1);
    j->Checkpoint(done, force);
  }

  // Between two slices of a batch: lets every query that is waiting for the
  // lock now go first (those arriving later wait for the next slice, so a
  // steady stream of queries cannot starve detection). Bounded: a query that
  // takes longer than 50 ms does not stall the stream.
  void LetQueriesIn(std::unique_lock<std::mutex>& lock) {
    const uint64_t target = queries_arrived.load(std::memory_order_acquire);
    if (queries_served.load(std::memory_order_acquire) >= target) return;
    lock.unlock();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    while (queries_served.load(std::memory_order_acquire) < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    lock.lock();
  }

  // Called by the engine, `mutex` held, after the engine has put the
  // decision into effect in the World (Engine::ApplyLocalEffects: the payment
  // check holds, detection sees the block). The store writes go to the
  // responder's queue and never hold up the stream or a payment check.
  void OnAlert(const detect::Alert& alert) {
    // The journal replay at start fires the alerts of the replayed events
    // again, with their stable ids. One an operator has since dismissed as a
    // false positive is not enforced again, and the World is set back at
    // once, so that the events after it are judged as they were (a cell the
    // replay re-suspended would otherwise raise device.inactive anew). Only
    // during the replay: the live stream never waits for the store.
    if (replaying) {
      auto stored = store->GetAlert(alert.id);
      if (stored.ok() && stored->false_positive) {
        ApplyUndoToWorld(*store, engine->world(), *stored);
        return;
      }
    }
    responder->Submit(alert, current_seq, batch_received);
  }
  std::chrono::steady_clock::time_point batch_received{};  // guarded by mutex
  bool replaying = false;  // during the journal replay in Start() (engine thread only)
};

LiveDetection::LiveDetection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LiveDetection::~LiveDetection() { Stop(); }

Result<std::unique_ptr<LiveDetection>> LiveDetection::Start(Store& store, const DataDir& dir, Options options) {
  auto impl = std::make_unique<Impl>();
  impl->store = &store;
  FG_ASSIGN_OR_RETURN(std::string key, dir.LoadPseudonymKey());
  impl->pseudonymizer = std::make_unique<Pseudonymizer>(std::move(key));

  impl->rules_flag = options.rules_path;
  impl->cells_flag = options.cells_path;
  impl->data_root = dir.root();
  std::string rules_path = impl->RulesPath();
  auto rules = detect::LoadRulesOrDefault(rules_path);
  if (!rules.ok()) return Status::InvalidArgument("rules " + rules_path + ": " + rules.status().message());

  detect::World world;
  ingest::SeedOptions seed;
  seed.devices = true;
  seed.blocks = true;
  FG_RETURN_IF_ERROR(ingest::SeedFromStore(store, seed, &world, &*rules));
  std::string cells_path = impl->CellsPath();
  if (!cells_path.empty()) {
    FG_ASSIGN_OR_RETURN(CellDb cells, CellDb::Load(cells_path));
    spdlog::info("detection: {} macro cells from {}", cells.size(), cells_path);
    world.SetCells(std::move(cells));
  }
  spdlog::info("detection: {} devices, {} rules", world.device_count(), rules->rules().size());

  Impl* self = impl.get();
  // Once an alert's writes have landed, the journal may move past it.
  options.response.landed = [self, landed = std::move(options.response.landed)](const detect::Alert& a) {
    if (landed) landed(a);
    self->Checkpoint();
  };
  impl->responder = std::make_unique<response::Responder>(store, options.response);
  impl->on_session_down = std::move(options.on_session_down);
  impl->engine = std::make_unique<detect::Engine>(std::move(world), std::move(rules).value(),
                                                  [self](const detect::Alert& a) { self->OnAlert(a); });
  // What was acknowledged before a crash (or a kill -9) is processed again,
  // in order, before anything new: records before the checkpoint rebuild
  // detection state, those after it are the interrupted work (their alerts
  // have stable ids; the responder skips those already stored).
  ingest::Journal::Options jo;
  jo.dir = options.journal_dir.empty() ? dir.root() / "journal" : std::filesystem::path(options.journal_dir);
  jo.retain_bytes = options.journal_retain_bytes;
  jo.max_backlog_bytes = options.journal_max_backlog_bytes;
  uint64_t replayed = 0;
  impl->replaying = true;
  auto journal = ingest::Journal::Open(jo, [self, &replayed](const ingest::Journal::Record& r) {
    self->OnBatch(r.seq, r.payload);
    ++replayed;
  });
  impl->replaying = false;
  if (!journal.ok()) return Status::Internal("ingest journal: " + journal.status().message());
  impl->journal = std::move(journal).value();
  impl->checkpoint_journal.store(impl->journal.get(), std::memory_order_release);
  if (replayed) spdlog::info("detection: {} journal records processed at start", replayed);
  impl->Checkpoint(/*force=*/true);

  if (!options.stream.servers.empty()) {
    FG_ASSIGN_OR_RETURN(impl->producer, bus::JetStreamProducer::Connect(options.stream));
    spdlog::info("detection: POST /v1/events publishes to the JetStream stream {} ({} servers, {} partitions)",
                 options.stream.stream, options.stream.servers.size(), options.stream.partitions);
    // Detection runs on the partitions this node holds the lease of, each
    // seeded from the store (docs/stream.md); the local engine above keeps
    // only what the change feed tells it (payment holds, the registry).
    if (!cells_path.empty()) {
      FG_ASSIGN_OR_RETURN(CellDb shared, CellDb::Load(cells_path));
      impl->cells = std::make_shared<const CellDb>(std::move(shared));
    }
    bus::StreamDetectionOptions so;
    so.servers = options.stream.servers;
    so.node_id = options.node_id.empty() ? "node-local" : options.node_id;
    so.partitions = options.stream.partitions;
    so.replicas = options.stream.replicas;
    so.publish_alerts = true;
    so.publish_exposure = true;
    so.seed = [self](bus::Stage) -> Result<std::pair<detect::World, detect::RuleSet>> {
      FG_ASSIGN_OR_RETURN(detect::RuleSet rules, detect::LoadRulesOrDefault(self->RulesPath()));
      detect::World world;
      ingest::SeedOptions seed;
      seed.devices = true;
      seed.blocks = true;
      seed.manual_blocks_only = true;
      FG_RETURN_IF_ERROR(ingest::SeedFromStore(*self->store, seed, &world, &rules));
      if (self->cells) world.SetCells(self->cells);
      return std::make_pair(std::move(world), std::move(rules));
    };
    // Stored (once by id: a partition's new owner re-raises what its old
    // owner may not have landed, and the responder skips what it did).
    so.on_alert = [self](const detect::Alert& a, uint32_t) -> Status {
      return self->responder->Handle(a).status();
    };
    // A partition rebuilt from the stream raises its old alerts again, in
    // event time; one an operator has since dismissed as a false positive
    // is set back in the World at once (as the journal replay does).
    so.on_replayed = [self](const detect::Alert& a, detect::World& world) {
      auto stored = self->store->GetAlert(a.id);
      if (stored.ok() && stored->false_positive) ApplyUndoToWorld(*self->store, world, *stored);
    };
    FG_ASSIGN_OR_RETURN(impl->stream_detection, bus::StreamDetection::Start(std::move(so)));
  }
  impl->bus = std::make_unique<bus::InProcessBus>();
  impl->bus->Subscribe(std::string(kEventsSubject),
                       [self](std::string_view, const std::string& message) { self->OnMessage(message); });
  FG_RETURN_IF_ERROR(impl->bus->Start());
  return std::unique_ptr<LiveDetection>(new LiveDetection(std::move(impl)));
}

void LiveDetection::Stop() {
  if (!impl_ || !impl_->bus) return;
  if (impl_->stream_detection) impl_->stream_detection->Stop();
  impl_->bus->Stop();
  // Responses still queued are not lost (the checkpoint stays behind them),
  // but a clean stop gives them a moment to land.
  impl_->responder->WaitIdle(2000);
  impl_->Checkpoint(/*force=*/true);
}

void LiveDetection::Drain() { impl_->bus->Drain(); }

bool LiveDetection::DrainResponses(int timeout_ms) {
  Drain();
  return impl_->responder->WaitIdle(timeout_ms);
}

HttpResponse LiveDetection::PostEvents(const HttpRequest& request) {
  // The body may hold raw subscriber identities: it is decoded here, once,
  // and wiped, so that only pseudonyms go further (the bus carries decoded
  // events). The request object is ours (the server's buffer).
  char* body = const_cast<char*>(request.body.data());
  const size_t size = request.body.size();
  static Counter& duplicates = Metrics::Global().GetCounter(
      "femtoguard_ingest_duplicate_batches_total", {}, "POST /v1/events batches already taken (same Idempotency-Key)");
  const std::string batch_id(request.Header("Idempotency-Key"));
  if (!batch_id.empty() && !ValidBatchId(batch_id)) {
    OPENSSL_cleanse(body, size);
    IngestCounter("bad_batch_id").Inc();
    return JsonError(400, "Idempotency-Key must be 1 to 128 of A-Z a-z 0-9 . _ : -");
  }
  const auto duplicate_reply = [&](uint64_t seq) {
    OPENSSL_cleanse(body, size);
    if (Status s = impl_->journal->Sync(seq); !s.ok()) return JsonError(503, s.message());
    duplicates.Inc();
    return HttpResponse::Json(
        200, json{{"accepted", 0}, {"duplicate", true}, {"unknown_type", 0}, {"malformed", json::array()}}.dump() +
                 "\n");
  };
  if (!batch_id.empty() && !impl_->producer) {
    if (auto seq = impl_->journal->FindBatch(batch_id)) return duplicate_reply(*seq);
  }
  auto decoder = impl_->TakeDecoder();
  detect::Event event;
  std::string batch;
  bus::BeginBatch(&batch);
  uint32_t accepted = 0, unknown = 0, malformed = 0;
  std::vector<std::pair<std::string, std::string>> ended;  // (device, session) of session.down lines
  json errors = json::array();
  size_t pos = 0;
  uint64_t line_no = 0;
  while (pos < size) {
    size_t nl = std::string_view(body + pos, size - pos).find('\n');
    size_t len = nl == std::string_view::npos ? size - pos : nl;
    ++line_no;
    std::string_view line(body + pos, len);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos += len + 1;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    switch (decoder->DecodeCopy(line, &event)) {
      case ingest::DecodeResult::kOk:
        event.line = line_no;
        bus::AppendEvent(event, &batch);
        ++accepted;
        if (event.type == detect::EventType::kSessionDown && impl_->on_session_down) {
          ended.emplace_back(event.device, event.session);
        }
        break;
      case ingest::DecodeResult::kUnknownType:
        ++unknown;
        break;
      case ingest::DecodeResult::kMalformed:
        ++malformed;
        if (errors.size() < kMaxReportedErrors) errors.push_back({{"line", line_no}, {"error", decoder->error()}});
        break;
    }
  }
  OPENSSL_cleanse(body, size);
  impl_->ReturnDecoder(std::move(decoder));
  bus::FinishBatch(&batch, accepted);

  if (accepted > 0 && impl_->producer) {
    // Cluster mode: stored by JetStream (a quorum of its servers) before the
    // 200. Without an Idempotency-Key the batch gets a random id: stored
    // once, but a client's blind re-send is a new batch.
    std::string id = batch_id;
    if (id.empty()) {
      unsigned char r[12];
      if (RAND_bytes(r, sizeof r) != 1) return JsonError(500, "no randomness for a batch id");
      id = "auto-" + ossl::HexLower(r, sizeof r);
    }
    auto published = impl_->producer->PublishBatch(batch, id);
    if (!published.ok()) {
      IngestCounter("refused").Inc(accepted);
      static std::atomic<UnixMillis> last_logged{0};
      const UnixMillis now = NowMillis();
      if (UnixMillis last = last_logged.load(); now - last >= 10000 && last_logged.compare_exchange_strong(last, now)) {
        spdlog::warn("ingest: {} events refused ({}); counted in femtoguard_ingest_events_total and "
                     "femtoguard_bus_publish_total",
                     accepted, published.status().message());
      }
      HttpResponse r = JsonError(503, "event stream: " + published.status().message());
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    if (published->parts > 0 && published->duplicates == published->parts) {
      duplicates.Inc();
      return HttpResponse::Json(
          200, json{{"accepted", 0}, {"duplicate", true}, {"unknown_type", 0}, {"malformed", json::array()}}.dump() +
                   "\n");
    }
  } else if (accepted > 0) {
    // On disk (group commit) before the 200; on the bus in journal order.
    auto seq = impl_->journal->Append(batch_id, batch, [&](uint64_t seq) {
      return impl_->bus->Publish(kEventsSubject, BusMessage(seq, batch));
    });
    if (!seq.ok() && seq.status().code() == StatusCode::kAlreadyExists) {
      return duplicate_reply(std::stoull(seq.status().message()));  // a concurrent repeat won the race
    }
    Status s = seq.ok() ? impl_->journal->Sync(*seq) : seq.status();
    if (!s.ok()) {
      IngestCounter("refused").Inc(accepted);
      // One line per 10 s at most: a full bus or disk refuses every batch.
      static std::atomic<UnixMillis> last_logged{0};
      const UnixMillis now = NowMillis();
      if (UnixMillis last = last_logged.load(); now - last >= 10000 && last_logged.compare_exchange_strong(last, now)) {
        spdlog::warn("ingest: {} events refused ({}); refusals are counted in femtoguard_ingest_events_total",
                     accepted, s.message());
      }
      HttpResponse r = JsonError(503, s.message());
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
  }
  for (const auto& [device, session] : ended) impl_->on_session_down(device, session);
  IngestCounter("ok").Inc(accepted);
  if (unknown) IngestCounter("unknown_type").Inc(unknown);
  if (malformed) IngestCounter("malformed").Inc(malformed);
  json reply = {{"accepted", accepted}, {"unknown_type", unknown}, {"malformed", errors}};
  // Malformed lines are skipped, the rest is taken: 200 either way, with the
  // list; a body with nothing usable at all is a 400.
  const int status = (accepted == 0 && malformed > 0) ? 400 : 200;
  return HttpResponse::Json(status, reply.dump() + "\n");
}

HttpResponse LiveDetection::PaymentCheck(const HttpRequest& request) {
  static Histogram& latency = Metrics::Global().GetHistogram(
      "femtoguard_payment_check_seconds", {}, "Payment check latency (POST /v1/payment/check), bad requests included");
  ScopedTimer timer(latency);
  static Counter& bad = Metrics::Global().GetCounter("femtoguard_payment_check_bad_requests_total", {},
                                                     "Malformed payment check requests");
  json in = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  OPENSSL_cleanse(const_cast<char*>(request.body.data()), request.body.size());
  if (!in.is_object() || !in.contains("imsi") || !in["imsi"].is_string()) {
    bad.Inc();
    return JsonError(400, "body must be a JSON object with a string \"imsi\"");
  }
  std::string imsi = in["imsi"].get<std::string>();
  in["imsi"] = "";
  if (!ValidImsi(imsi)) {
    OPENSSL_cleanse(imsi.data(), imsi.size());
    bad.Inc();
    return JsonError(400, "\"imsi\" must be 5 to 15 digits");
  }
  detect::PayChannel channel = detect::PayChannel::kNone;
  if (in.contains("channel")) {
    std::string c = in["channel"].is_string() ? in["channel"].get<std::string>() : "";
    if (c == "sms_otp") channel = detect::PayChannel::kSmsOtp;
    else if (c == "ars") channel = detect::PayChannel::kArs;
    else if (c == "none") channel = detect::PayChannel::kNone;
    else {
      OPENSSL_cleanse(imsi.data(), imsi.size());
      bad.Inc();
      return JsonError(400, "\"channel\" must be sms_otp, ars or none");
    }
  }
  double amount = 0;
  if (in.contains("amount")) {
    if (!in["amount"].is_number() || in["amount"].get<double>() < 0) {
      OPENSSL_cleanse(imsi.data(), imsi.size());
      bad.Inc();
      return JsonError(400, "\"amount\" must be a non-negative number");
    }
    amount = in["amount"].get<double>();
  }
  UnixMillis ts = 0;
  if (in.contains("ts")) {
    auto parsed = in["ts"].is_string() ? ParseRfc3339(in["ts"].get<std::string>()) : Result<UnixMillis>(Status::InvalidArgument("x"));
    if (!parsed.ok()) {
      OPENSSL_cleanse(imsi.data(), imsi.size());
      bad.Inc();
      return JsonError(400, "\"ts\" must be an RFC 3339 time");
    }
    ts = *parsed;
  }
  detect::SubjectId subject;
  impl_->pseudonymizer->PseudonymizeBytes("imsi", imsi, subject.bytes.data());
  OPENSSL_cleanse(imsi.data(), imsi.size());

  detect::PaymentDecision d;
  if (impl_->stream_detection) {
    // Cluster mode: holds from the store (this node's World follows the
    // change feed); exposure as the subscriber's keyed stage last judged
    // it, from the exposure bucket, whichever node that stage runs on.
    // Without "ts" the check is at the wall clock (live events' time).
    const UnixMillis now = ts ? ts : NowMillis();
    bool held = false;
    {
      Impl::QueryLock lock(*impl_);
      const detect::SubscriberState* st = impl_->engine->world().subscriber(subject);
      held = st && st->payments_held;
    }
    if (held) d.reasons.push_back("payments_held");
    auto x = impl_->stream_detection->GetExposure(subject);
    bool exposed = false;
    if (!x.ok()) {
      // Deny when in doubt would refuse every payment while NATS is away;
      // a second factor is the safe middle.
      d.reasons.push_back("exposure_unknown");
      exposed = true;
    } else if (x->has_value() && now <= (*x)->until_ms && now >= (*x)->served_ms) {
      exposed = true;
      d.reasons.push_back("femto_" + (*x)->risk);
      d.femto = (*x)->femto;
    }
    if (held) {
      d.verdict = detect::PaymentVerdict::kDeny;
    } else if (exposed) {
      d.verdict = (channel == detect::PayChannel::kSmsOtp || channel == detect::PayChannel::kArs) && !d.femto.empty()
                      ? detect::PaymentVerdict::kDeny
                      : detect::PaymentVerdict::kStepUp;
    }
  } else {
    Impl::QueryLock lock(*impl_);
    // Judged at the stream's event time (what the detectors have seen),
    // unless the caller names the payment's own time.
    UnixMillis now = ts ? ts : (impl_->watermark ? impl_->watermark : NowMillis());
    const detect::RuleConfig* rule = impl_->engine->rules().Find("payment.risk");
    static const detect::RuleParams kNoParams;
    d = detect::CheckPayment(impl_->engine->world(), rule ? rule->params : kNoParams, subject, channel, amount, now);
  }
  Metrics::Global()
      .GetCounter("femtoguard_payment_checks_total",
                  "decision=\"" + std::string(detect::PaymentVerdictName(d.verdict)) + "\"",
                  "Payment checks by decision")
      .Inc();
  json out = {{"decision", detect::PaymentVerdictName(d.verdict)},
              {"reasons", d.reasons},
              {"subject", subject.ToString("imsi")}};
  if (!d.femto.empty()) out["femtocell"] = d.femto;
  return HttpResponse::Json(200, out.dump() + "\n");
}

Status LiveDetection::Publish(const detect::Event& event) {
  std::string batch;
  bus::BeginBatch(&batch);
  bus::AppendEvent(event, &batch);
  bus::FinishBatch(&batch, 1);
  if (impl_->producer) {
    // Cluster mode: the SeGW's session events go to the stream, where the
    // device's partition (and the cross-device rules of every partition)
    // see them; the SeGW's decision is already made, only this waits.
    unsigned char r[12];
    if (RAND_bytes(r, sizeof r) != 1) return Status::Internal("no randomness for a batch id");
    auto published = impl_->producer->PublishBatch(batch, "gate-" + ossl::HexLower(r, sizeof r));
    if (!published.ok()) {
      IngestCounter("refused").Inc();
      return published.status();
    }
    return Status::Ok();
  }
  // Journaled like HTTP batches (nobody waits for the disk here: the SeGW's
  // decision is already made). Should the journal refuse (a full disk), the
  // event still reaches detection, unjournaled.
  bool bus_refused = false;
  auto seq = impl_->journal->Append({}, batch, [&](uint64_t seq) {
    Status s = impl_->bus->Publish(kEventsSubject, BusMessage(seq, batch));
    bus_refused = !s.ok();
    return s;
  });
  if (seq.ok()) return Status::Ok();
  if (bus_refused) return seq.status();
  static std::atomic<bool> told{false};
  if (!told.exchange(true)) {
    spdlog::warn("detection feed: journal: {}; SeGW events go to detection unjournaled (counted) until it is back",
                 seq.status().message());
  }
  Metrics::Global()
      .GetCounter("femtoguard_ingest_unjournaled_total", {}, "Node events that reached detection without the journal")
      .Inc();
  return impl_->bus->Publish(kEventsSubject, BusMessage(0, batch));
}

void LiveDetection::ApplyChange(const Change& change) {
  Store& store = *impl_->store;
  switch (change.kind) {
    case ChangeKind::kDevice: {
      auto d = store.GetDevice(change.key);
      if (!d.ok()) return;
      ForEachWorld([&](detect::World& world) { world.Register(*d); });
      return;
    }
    case ChangeKind::kEndpoint: {
      auto endpoints = store.ListEndpoints();
      if (!endpoints.ok()) return;
      ForEachWorld([&](detect::World& world) {
        for (const Endpoint& e : *endpoints) {
          if (e.address == change.key) world.SetEndpointStatus(e.address, EndpointStatusName(e.status));
        }
      });
      return;
    }
    case ChangeKind::kBlock:
      (void)ApplyChanges(std::span<const Change>(&change, 1));  // reads the block list
      return;
    case ChangeKind::kAlert: {
      // An alert dismissed as a false positive (issue 14): what the engine
      // put into the World when it fired (suspicion, a status, a block, a
      // payment hold) is set back to what the store now says.
      auto a = store.GetAlert(change.key);
      if (!a.ok() || !a->false_positive) return;
      ResyncAfterUndo(*a);
      return;
    }
    default:
      return;
  }
}

void LiveDetection::ResyncAfterUndo(const StoredAlert& alert) {
  ForEachWorld([&](detect::World& world) { ApplyUndoToWorld(*impl_->store, world, alert); });
}

Status LiveDetection::ApplyChanges(std::span<const Change> changes) {
  // The block list is read once for the whole page: a detector blocking
  // thousands of clones at once must not cost a full list per block.
  std::optional<std::unordered_set<std::string>> present, by_alert;
  Status result = Status::Ok();
  for (const Change& change : changes) {
    if (change.kind != ChangeKind::kBlock) {
      ApplyChange(change);
      continue;
    }
    if (!present) {
      auto blocks = impl_->store->ListBlocks();
      if (!blocks.ok()) {
        result = blocks.status();
        continue;
      }
      present.emplace();
      by_alert.emplace();
      for (const Block& b : *blocks) {
        present->insert(b.kind + ":" + b.value);
        if (!b.alert_id.empty()) by_alert->insert(b.kind + ":" + b.value);
      }
    }
    ApplyBlock(change.key, present->count(change.key) > 0, by_alert->count(change.key) > 0);
  }
  return result;
}

void LiveDetection::ApplyBlock(const std::string& key, bool present, bool by_alert) {
  size_t colon = key.find(':');
  if (colon == std::string::npos) return;
  std::string kind = key.substr(0, colon), value = key.substr(colon + 1);
  auto apply = [&](detect::World& world) {
    if (kind == "device") {
      detect::DeviceIdx i = present ? world.Intern(value) : world.Find(value);
      if (i != detect::kNoDevice) world.device(i).blocked = present;
    } else if (kind == "payments") {
      detect::SubjectId s;
      if (detect::SubjectId::FromString(value, &s)) world.MutableSubscriber(s).payments_held = present;
    }
  };
  {
    Impl::QueryLock lock(*impl_);
    apply(impl_->engine->world());
  }
  // The stream's engines put an alert's block in place themselves, in
  // event time; a block by hand (or a removal) reaches them here.
  if (impl_->stream_detection && !(present && by_alert)) impl_->stream_detection->ForEachWorld(apply);
}

void LiveDetection::ForEachWorld(const std::function<void(detect::World&)>& fn) {
  {
    Impl::QueryLock lock(*impl_);
    fn(impl_->engine->world());
  }
  if (impl_->stream_detection) impl_->stream_detection->ForEachWorld(fn);
}

response::Responder& LiveDetection::responder() { return *impl_->responder; }
const detect::RuleSet& LiveDetection::rules() const { return impl_->engine->rules(); }

std::optional<detect::RuleConfig> LiveDetection::FindRule(std::string_view rule) const {
  Impl::QueryLock lock(*impl_);
  const detect::RuleConfig* found = impl_->engine->rules().Find(rule);
  if (found == nullptr) return std::nullopt;
  return *found;
}

Result<std::string> LiveDetection::ReloadRules() {
  // Everything that can fail happens before the lock: a bad file changes nothing.
  const std::string path = impl_->RulesPath();
  auto rules = detect::LoadRulesOrDefault(path);
  if (!rules.ok()) return Status::InvalidArgument(rules.status().message());  // names the file and the line
  detect::World scratch;  // SeedFromStore also reads endpoints; only the rules' legacy credentials are kept
  ingest::SeedOptions seed;
  seed.devices = false;
  seed.blocks = false;
  FG_RETURN_IF_ERROR(ingest::SeedFromStore(*impl_->store, seed, &scratch, &*rules));
  const size_t count = rules->rules().size();
  size_t restarted = 0;
  {
    Impl::QueryLock lock(*impl_);
    restarted = impl_->engine->ReplaceRules(std::move(rules).value());
  }
  return (path.empty() ? std::string("built-in rules") : path) + ": " + std::to_string(count) + " rules, " +
         std::to_string(restarted) + " detector(s) restarted";
}

Result<std::string> LiveDetection::ReloadCells() {
  const std::string path = impl_->CellsPath();
  if (path.empty()) return std::string("no cell database");
  FG_ASSIGN_OR_RETURN(CellDb cells, CellDb::Load(path));
  const size_t n = cells.size();
  {
    Impl::QueryLock lock(*impl_);
    impl_->engine->world().SetCells(std::move(cells));
  }
  return path + ": " + std::to_string(n) + " macro cells";
}
const Pseudonymizer& LiveDetection::pseudonymizer() const { return *impl_->pseudonymizer; }

}  // namespace fg
