#include "bus/jetstream.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "bus/event_codec.h"
#include "bus/nats_link.h"
#include "common/metrics.h"

namespace fg::bus {
namespace {

using Clock = std::chrono::steady_clock;

Counter& PublishCounter(std::string_view result) {
  return Metrics::Global().GetCounter(
      "femtoguard_bus_publish_total", "result=\"" + std::string(result) + "\"",
      "Messages published to JetStream, by outcome (ok, duplicate, error)");
}

std::string NatsError(natsStatus s, int jerr) {
  std::string m = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last)
    m += std::string(": ") + last;
  if (jerr != 0) m += " (JetStream error " + std::to_string(jerr) + ")";
  return m;
}

// A failure worth retrying within the publish deadline: no server, no
// stream leader yet (an election after a kill), a timeout.
bool Transient(natsStatus s, jsErrCode jerr) {
  if (s == NATS_OK) return false;
  // cnats reports "no responders" on a JetStream API subject as
  // JSNotEnabledErr; while a stream has no leader that is what a publish
  // gets, so it is retried like any other absence.
  if (s == NATS_NO_RESPONDERS) return true;
  if (jerr == JSStreamNotFoundErr) return false;
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_NOT_YET_CONNECTED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_CONNECTION_CLOSED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_NO_SERVER:
      return true;
    default:
      // JetStream answers 503 ("JetStream system temporarily unavailable")
      // while a stream's RAFT group elects a leader.
      return jerr == 0 || jerr == 10008 /* cluster not available */;
  }
}

std::string Description(int partitions) {
  return "femtoguard events; partitions=" + std::to_string(partitions);
}

bool ValidMsgIdBase(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
           c == '-';
  });
}

}  // namespace

struct JetStreamProducer::Nats : NatsLink {
  std::mutex mutex;  // guards stream_ready
  bool stream_ready = false;
};

Result<std::vector<std::string>> ParseBusUrl(std::string_view url) {
  std::vector<std::string> servers;
  size_t pos = 0;
  while (pos <= url.size()) {
    size_t comma = url.find(',', pos);
    std::string_view one =
        url.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? url.size() + 1 : comma + 1;
    if (one.rfind("nats://", 0) != 0 || one.size() == 7) {
      return Status::InvalidArgument("bus URL: each server must be nats://HOST[:PORT], got \"" +
                                     std::string(one) + "\"");
    }
    std::string_view hostport = one.substr(7);
    if (hostport.find_first_of("/?@ ") != std::string_view::npos) {
      return Status::InvalidArgument(
          "bus URL: nats://HOST[:PORT] without path, query or credentials, got \"" +
          std::string(one) + "\"");
    }
    if (size_t colon = hostport.rfind(':');
        colon != std::string_view::npos && hostport.find(']') == std::string_view::npos) {
      std::string_view port = hostport.substr(colon + 1);
      if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
          std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
        return Status::InvalidArgument("bus URL: bad port in \"" + std::string(one) + "\"");
      }
    }
    servers.emplace_back(one);
  }
  if (servers.empty()) return Status::InvalidArgument("bus URL: no server");
  return servers;
}

uint32_t PartitionOf(std::string_view key, uint32_t partitions) {
  uint32_t h = 2166136261u;  // FNV-1a, 32 bit: fixed, so every producer agrees
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return partitions == 0 ? 0 : h % partitions;
}

uint32_t EventPartition(const detect::Event& e, uint32_t partitions) {
  if (!e.device.empty() && e.type != detect::EventType::kPaymentAuth)
    return PartitionOf(e.device, partitions);
  const detect::SubjectId& s = !e.imsi.empty() ? e.imsi : !e.msisdn.empty() ? e.msisdn : e.imei;
  return PartitionOf(
      std::string_view(reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size()), partitions);
}

bool SharedAcrossPartitions(detect::EventType t) {
  using detect::EventType;
  return t == EventType::kSessionUp || t == EventType::kSessionDown || t == EventType::kS1Setup ||
         t == EventType::kNgSetup;
}

std::string SubjectToken(std::string_view device) {
  if (device.empty()) return "_";
  std::string t(device);
  for (char& c : t) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '.' || c == '*' || c == '>' || u <= ' ' || u >= 0x7f) c = '_';
  }
  return t;
}

std::string EventSubject(uint32_t partition, std::string_view device_token,
                         std::string_view prefix) {
  return std::string(prefix) + std::to_string(partition) + "." + std::string(device_token);
}

JetStreamProducer::JetStreamProducer(JetStreamOptions options)
    : options_(std::move(options)), nats_(std::make_unique<Nats>()) {}

JetStreamProducer::~JetStreamProducer() = default;

Result<std::unique_ptr<JetStreamProducer>> JetStreamProducer::Connect(
    const JetStreamOptions& options) {
  if (options.servers.empty()) return Status::InvalidArgument("bus: no NATS server");
  if (options.partitions < 1 || options.partitions > 1024) {
    return Status::InvalidArgument("bus: partitions must be 1 to 1024");
  }
  std::unique_ptr<JetStreamProducer> p(new JetStreamProducer(options));
  NatsLinkOptions lo;
  lo.name = options.client_name;
  lo.js_wait_ms = options.publish_timeout_ms;
  lo.retry_on_failed_connect = true;
  lo.no_reconnect_buffer = true;
  bool pending = false;
  FG_RETURN_IF_ERROR(p->nats_->Connect(options.servers, lo, &pending));
  if (pending) spdlog::warn("bus: no NATS server answers yet; retrying in the background");
  return p;
}

Status JetStreamProducer::EnsureStream() {
  std::lock_guard lock(nats_->mutex);
  if (nats_->stream_ready) return Status::Ok();
  // Retried within the publish deadline: right after a server restart the
  // JetStream API may not answer until the meta group has a leader.
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.publish_timeout_ms);
  for (;;) {
    Status s = TryEnsureStream();
    if (s.ok() || s.code() != StatusCode::kUnavailable ||
        Clock::now() + std::chrono::milliseconds(100) >= deadline) {
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status JetStreamProducer::TryEnsureStream() {
  jsOptions api;  // one API call's wait: short, the caller retries
  jsOptions_Init(&api);
  api.Wait = std::min(options_.publish_timeout_ms, 2000);
  const std::string want = Description(options_.partitions);
  // Two rounds: when another node creates the stream between our look-up
  // and our create, the second look-up checks what it made.
  for (int round = 0; round < 2; ++round) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, nats_->js, options_.stream.c_str(), &api, &jerr);
    if (s == NATS_OK) {
      const std::string have = si->Config && si->Config->Description ? si->Config->Description : "";
      jsStreamInfo_Destroy(si);
      if (have != want) {
        return Status::FailedPrecondition("bus: stream " + options_.stream + " was made as \"" +
                                          have + "\", this node is configured for \"" + want +
                                          "\" (bus.partitions must be the same on every node)");
      }
      nats_->stream_ready = true;
      return Status::Ok();
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr && !Transient(s, jerr)) {
      return Status::Internal("JetStream: stream info: " + NatsError(s, jerr));
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
      return Status::Unavailable("JetStream unreachable: " + NatsError(s, jerr));
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const std::string subjects = options_.subject_prefix + ">";
    const char* subject_list[] = {subjects.c_str()};
    sc.Name = options_.stream.c_str();
    sc.Description = want.c_str();
    sc.Subjects = subject_list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = options_.replicas;
    sc.Retention = js_LimitsPolicy;
    sc.Discard = js_DiscardOld;
    sc.Duplicates = options_.duplicate_window_ms * 1000000;  // nanoseconds
    jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, nats_->js, &sc, &api, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      spdlog::info("bus: stream {} created (R{}, {} partitions)", options_.stream,
                   options_.replicas, options_.partitions);
      nats_->stream_ready = true;
      return Status::Ok();
    }
    if (jerr != JSStreamNameExistErr) {
      return Status::Unavailable("JetStream: cannot create stream " + options_.stream + ": " +
                                 NatsError(s, jerr));
    }
  }
  return Status::Unavailable("JetStream: stream " + options_.stream + " neither found nor created");
}

Result<bool> JetStreamProducer::Publish(const std::string& subject, std::string_view payload,
                                        const std::string& msg_id) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.publish_timeout_ms);
  for (int attempt = 0;; ++attempt) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id.c_str();
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    // At most 2 s per attempt: a request that went to a leader killed
    // meanwhile is never answered, and the next attempt (same id) reaches
    // the new leader as soon as it is elected.
    po.MaxWait = std::clamp<int64_t>(left, 100, 2000);
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_Publish(&ack, nats_->js, subject.c_str(), payload.data(),
                              static_cast<int>(payload.size()), &po, &jerr);
    if (s == NATS_OK) {
      const bool duplicate = ack->Duplicate;
      jsPubAck_Destroy(ack);
      PublishCounter(duplicate ? "duplicate" : "ok").Inc();
      return duplicate;
    }
    if (!Transient(s, jerr) || Clock::now() + std::chrono::milliseconds(50) >= deadline) {
      PublishCounter("error").Inc();
      return Status::Unavailable("JetStream did not store the batch: " + NatsError(s, jerr));
    }
    // No leader yet, or no server: try again with the same id (JetStream
    // drops it if the first attempt was stored after all).
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 250)));
  }
}

Result<PublishReport> JetStreamProducer::PublishBatch(std::string_view batch,
                                                      std::string_view batch_id) {
  if (!ValidMsgIdBase(batch_id)) return Status::InvalidArgument("bus: bad batch id");
  FG_RETURN_IF_ERROR(EnsureStream());
  const auto partitions = static_cast<uint32_t>(options_.partitions);
  struct Part {
    std::string batch;
    uint32_t count = 0;
    std::string device;  // the one device of the part, or "" once mixed
    bool mixed = false;
  };
  // Two phases, each by partition: the femtocells' events, then the events
  // without a femtocell (payments), stored only once the first phase is.
  std::map<uint32_t, Part> phases[2];
  PublishReport report;
  auto add = [&](Part& p, const detect::Event& e, std::string_view device) {
    if (p.count == 0) {
      BeginBatch(&p.batch);
      p.device = device;
    } else if (!p.mixed && p.device != device) {
      p.mixed = true;
    }
    AppendEvent(e, &p.batch);
    ++p.count;
  };
  Status decoded = ForEachEvent(batch, [&](const detect::Event& e) {
    if (e.type == detect::EventType::kEndpointStatus) {  // every partition's World has the endpoints
      for (uint32_t q = 0; q < partitions; ++q) add(phases[0][q], e, "");
      ++report.events;
      return;
    }
    const bool second = e.device.empty() || e.type == detect::EventType::kPaymentAuth;
    const uint32_t home = EventPartition(e, partitions);
    add(phases[second][home], e, second ? std::string_view() : std::string_view(e.device));
    ++report.events;
    if (!second && SharedAcrossPartitions(e.type)) {
      for (uint32_t q = 0; q < partitions; ++q)
        if (q != home) add(phases[0][q], e, e.device);
    }
  });
  if (!decoded.ok()) return Status::InvalidArgument("bus: " + decoded.message());
  // A phase's parts go out at once, each waiting for its own PubAck: one
  // round trip per phase instead of one per partition (the stream's RAFT
  // group stores them together). Order within a partition is unaffected: a
  // batch has one part per partition and phase, and the next batch of the
  // same client is published only after this one is acknowledged.
  for (int phase = 0; phase < 2; ++phase) {
    auto& parts = phases[phase];
    std::vector<std::future<Result<bool>>> acks;
    acks.reserve(parts.size());
    for (auto& [partition, part] : parts) {
      FinishBatch(&part.batch, part.count);
      const std::string subject = EventSubject(
          partition, part.mixed ? "mixed" : SubjectToken(part.device), options_.subject_prefix);
      const std::string msg_id =
          std::string(batch_id) + (phase == 0 ? ".p" : ".s") + std::to_string(partition);
      const std::string* payload = &part.batch;
      acks.push_back(std::async(parts.size() == 1 ? std::launch::deferred : std::launch::async,
                                [this, subject, payload, msg_id] {
                                  return Publish(subject, *payload, msg_id);
                                }));
    }
    Status first_error;
    for (auto& ack : acks) {
      Result<bool> r = ack.get();  // every part is waited for: `parts` outlives them all
      if (!r.ok()) {
        if (first_error.ok()) first_error = r.status();
        continue;
      }
      ++report.parts;
      if (*r) ++report.duplicates;
    }
    if (!first_error.ok()) return first_error;
  }
  // Phase 3: a batch-end marker in every partition, once the whole batch is
  // stored. A partition's detection progress moves marker by marker, so the
  // keyed stage never judges part of a batch before the rest of it
  // (bus/stream_detection.h).
  FG_RETURN_IF_ERROR(PublishMarkers(std::string(batch_id) + ".e", "Fg-Batch-End", "_be_"));
  return report;
}

Status JetStreamProducer::PublishMarkers(const std::string& id_prefix, const char* header,
                                         const char* token) {
  std::string empty;
  BeginBatch(&empty);
  FinishBatch(&empty, 0);
  std::vector<std::future<Status>> acks;
  for (uint32_t p = 0; p < static_cast<uint32_t>(options_.partitions); ++p) {
    acks.push_back(std::async(std::launch::async, [this, p, &empty, &id_prefix, header, token]() -> Status {
      const std::string subject = options_.subject_prefix + std::to_string(p) + "." + token;
      const std::string id = id_prefix + std::to_string(p);
      const auto deadline = Clock::now() + std::chrono::milliseconds(options_.publish_timeout_ms);
      for (int attempt = 0;; ++attempt) {
        natsMsg* msg = nullptr;
        if (natsMsg_Create(&msg, subject.c_str(), nullptr, empty.data(), static_cast<int>(empty.size())) != NATS_OK)
          return Status::Internal("bus: cannot make a marker");
        natsMsgHeader_Set(msg, header, "1");
        natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        jsPubAck* ack = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s = js_PublishMsg(&ack, nats_->js, msg, &po, &jerr);
        natsMsg_Destroy(msg);
        if (s == NATS_OK) {
          jsPubAck_Destroy(ack);
          return Status::Ok();
        }
        if (!Transient(s, jerr) || Clock::now() + std::chrono::milliseconds(50) >= deadline)
          return Status::Unavailable("JetStream did not store the batch's end: " + NatsError(s, jerr));
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 250)));
      }
    }));
  }
  Status first;
  for (auto& a : acks) {
    Status s = a.get();
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status JetStreamProducer::PublishEnd(std::string_view run_id) {
  FG_RETURN_IF_ERROR(EnsureStream());
  return PublishMarkers(std::string(run_id) + ".end", "Fg-End", "_end_");
}

}  // namespace fg::bus
