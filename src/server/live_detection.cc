#include "server/live_detection.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/event_codec.h"
#include "common/metrics.h"
#include "common/time.h"
#include "detect/default_rules.h"
#include "ingest/decoder.h"
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

// "a=1&b=x" -> value of `key` (no percent-decoding: values are ids).
std::string QueryParam(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string_view kv = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return std::string(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return {};
}

bool ValidImsi(std::string_view s) {
  return s.size() >= 5 && s.size() <= 15 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

class LiveDetection::Impl {
 public:
  Store* store = nullptr;
  std::unique_ptr<Pseudonymizer> pseudonymizer;
  std::unique_ptr<response::Responder> responder;
  std::unique_ptr<bus::InProcessBus> bus;
  std::function<void(std::string_view, std::string_view)> on_session_down;  // fixed after Start

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

  void OnBatch(const std::string& payload) {
    // The lock is let go every few hundred events so that a payment check
    // waits for a slice of a batch, not for a whole megabyte of events.
    constexpr size_t kSlice = 256;
    std::unique_lock lock(mutex);
    size_t n = 0;
    Status s = bus::ForEachEvent(payload, [&](const detect::Event& e) {
      engine->Process(e);
      watermark = std::max(watermark, e.ts_ms);
      if (++n % kSlice == 0) LetQueriesIn(lock);
    });
    if (!s.ok()) {
      Metrics::Global().GetCounter("femtoguard_bus_bad_batches_total", {}, "Undecodable event batches").Inc();
      spdlog::error("detection: {}", s.ToString());
    }
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

  void OnAlert(const detect::Alert& alert) {
    auto handled = responder->Handle(alert);
    if (!handled.ok()) spdlog::error("alert {} ({}): {}", alert.id, alert.rule, handled.status().ToString());
  }
};

LiveDetection::LiveDetection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LiveDetection::~LiveDetection() { Stop(); }

Result<std::unique_ptr<LiveDetection>> LiveDetection::Start(Store& store, const DataDir& dir, Options options) {
  auto impl = std::make_unique<Impl>();
  impl->store = &store;
  FG_ASSIGN_OR_RETURN(std::string key, dir.LoadPseudonymKey());
  impl->pseudonymizer = std::make_unique<Pseudonymizer>(std::move(key));

  std::string rules_path = options.rules_path;
  if (rules_path.empty() && std::filesystem::exists(dir.root() / "rules.yaml")) {
    rules_path = (dir.root() / "rules.yaml").string();
  }
  auto rules = detect::LoadRulesOrDefault(rules_path);
  if (!rules.ok()) return Status::InvalidArgument("rules " + rules_path + ": " + rules.status().message());

  detect::World world;
  ingest::SeedOptions seed;
  seed.devices = true;
  seed.blocks = true;
  FG_RETURN_IF_ERROR(ingest::SeedFromStore(store, seed, &world, &*rules));
  std::string cells_path = options.cells_path;
  if (cells_path.empty() && std::filesystem::exists(dir.root() / "cells.csv")) {
    cells_path = (dir.root() / "cells.csv").string();
  }
  if (!cells_path.empty()) {
    FG_ASSIGN_OR_RETURN(CellDb cells, CellDb::Load(cells_path));
    spdlog::info("detection: {} macro cells from {}", cells.size(), cells_path);
    world.SetCells(std::move(cells));
  }
  spdlog::info("detection: {} devices, {} rules", world.device_count(), rules->rules().size());

  impl->responder = std::make_unique<response::Responder>(store, options.response);
  impl->on_session_down = std::move(options.on_session_down);
  Impl* self = impl.get();
  impl->engine = std::make_unique<detect::Engine>(std::move(world), std::move(rules).value(),
                                                  [self](const detect::Alert& a) { self->OnAlert(a); });
  impl->bus = std::make_unique<bus::InProcessBus>();
  impl->bus->Subscribe(std::string(kEventsSubject),
                       [self](std::string_view, const std::string& payload) { self->OnBatch(payload); });
  FG_RETURN_IF_ERROR(impl->bus->Start());
  return std::unique_ptr<LiveDetection>(new LiveDetection(std::move(impl)));
}

void LiveDetection::Stop() {
  if (impl_ && impl_->bus) impl_->bus->Stop();
}

void LiveDetection::Drain() { impl_->bus->Drain(); }

HttpResponse LiveDetection::PostEvents(const HttpRequest& request) {
  // The body may hold raw subscriber identities: it is decoded here, once,
  // and wiped, so that only pseudonyms go further (the bus carries decoded
  // events). The request object is ours (the server's buffer).
  char* body = const_cast<char*>(request.body.data());
  const size_t size = request.body.size();
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

  if (accepted > 0) {
    if (Status s = impl_->bus->Publish(kEventsSubject, std::move(batch)); !s.ok()) {
      IngestCounter("refused").Inc(accepted);
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
  {
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

HttpResponse LiveDetection::ListAlerts(const HttpRequest& request) {
  AlertFilter f;
  f.rule = QueryParam(request.query, "rule");
  f.device = QueryParam(request.query, "device");
  std::string state = QueryParam(request.query, "state");
  if (!state.empty()) {
    bool found = false;
    for (AlertState s : {AlertState::kOpen, AlertState::kPendingApproval, AlertState::kActed, AlertState::kDismissed}) {
      if (AlertStateName(s) == state) {
        f.state = s;
        found = true;
      }
    }
    if (!found) return JsonError(400, "state must be open, pending_approval, acted or dismissed");
  }
  std::string limit = QueryParam(request.query, "limit");
  if (!limit.empty()) {
    try {
      f.limit = static_cast<size_t>(std::stoul(limit));
    } catch (...) {
      return JsonError(400, "limit must be a number");
    }
    f.limit = std::min<size_t>(f.limit, 10000);
  }
  auto alerts = impl_->store->ListAlerts(f);
  if (!alerts.ok()) return JsonError(503, alerts.status().message());
  json out = json::array();
  for (const StoredAlert& a : *alerts) {
    json j = json::parse(a.json, nullptr, false);
    if (j.is_discarded()) continue;
    j["state"] = AlertStateName(a.state);
    j["actions_done"] = a.actions_done;
    j["actions_pending"] = a.actions_pending;
    out.push_back(std::move(j));
  }
  return HttpResponse::Json(200, json{{"alerts", out}}.dump() + "\n");
}

Status LiveDetection::Publish(const detect::Event& event) {
  std::string batch;
  bus::BeginBatch(&batch);
  bus::AppendEvent(event, &batch);
  bus::FinishBatch(&batch, 1);
  return impl_->bus->Publish(kEventsSubject, std::move(batch));
}

void LiveDetection::ApplyChange(const Change& change) {
  Store& store = *impl_->store;
  switch (change.kind) {
    case ChangeKind::kDevice: {
      auto d = store.GetDevice(change.key);
      if (!d.ok()) return;
      Impl::QueryLock lock(*impl_);
      impl_->engine->world().Register(*d);
      return;
    }
    case ChangeKind::kEndpoint: {
      auto endpoints = store.ListEndpoints();
      if (!endpoints.ok()) return;
      Impl::QueryLock lock(*impl_);
      for (const Endpoint& e : *endpoints) {
        if (e.address == change.key) {
          impl_->engine->world().SetEndpointStatus(e.address, EndpointStatusName(e.status));
        }
      }
      return;
    }
    case ChangeKind::kBlock:
      ApplyChanges({change});  // reads the block list
      return;
    default:
      return;
  }
}

void LiveDetection::ApplyChanges(const std::vector<Change>& changes) {
  // The block list is read once for the whole page: a detector blocking
  // thousands of clones at once must not cost a full list per block.
  std::optional<std::unordered_set<std::string>> present;
  for (const Change& change : changes) {
    if (change.kind != ChangeKind::kBlock) {
      ApplyChange(change);
      continue;
    }
    if (!present) {
      auto blocks = impl_->store->ListBlocks();
      if (!blocks.ok()) continue;
      present.emplace();
      for (const Block& b : *blocks) present->insert(b.kind + ":" + b.value);
    }
    ApplyBlock(change.key, present->count(change.key) > 0);
  }
}

void LiveDetection::ApplyBlock(const std::string& key, bool present) {
  size_t colon = key.find(':');
  if (colon == std::string::npos) return;
  std::string kind = key.substr(0, colon), value = key.substr(colon + 1);
  Impl::QueryLock lock(*impl_);
  detect::World& world = impl_->engine->world();
  if (kind == "device") {
    detect::DeviceIdx i = present ? world.Intern(value) : world.Find(value);
    if (i != detect::kNoDevice) world.device(i).blocked = present;
  } else if (kind == "payments") {
    detect::SubjectId s;
    if (detect::SubjectId::FromString(value, &s)) world.MutableSubscriber(s).payments_held = present;
  }
}

response::Responder& LiveDetection::responder() { return *impl_->responder; }
const detect::RuleSet& LiveDetection::rules() const { return impl_->engine->rules(); }
const Pseudonymizer& LiveDetection::pseudonymizer() const { return *impl_->pseudonymizer; }

}  // namespace fg
