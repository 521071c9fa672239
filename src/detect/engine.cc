#include "detect/engine.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <limits>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/metrics.h"
#include "common/ossl.h"

namespace fg::detect {
namespace {

// Detectors' Expire and the dedup table's purge run when event time has
// moved on by this much since the last run (not per event: they scan).
constexpr UnixMillis kExpireEveryMs = 60 * kMillisPerSecond;

void AppendJsonStrings(std::string* out, const std::vector<std::string>& v) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonString(out, v[i]);
  }
  out->push_back(']');
}

// "2025-09-01T12:00:00.000Z": alerts always carry milliseconds.
std::string FormatTs(UnixMillis t) {
  std::string s = FormatRfc3339(t);
  if (s.size() == 20 && s.back() == 'Z') s.insert(19, ".000");
  return s;
}

std::string StableId(const Evidence& ev) {
  std::string material;
  material.reserve(ev.rule.size() + ev.kind.size() + ev.device.size() + ev.dedup_extra.size() + 24);
  material.append(ev.rule).push_back('|');
  material.append(ev.kind).push_back('|');
  material.append(ev.device).push_back('|');
  material.append(ev.dedup_extra).push_back('|');
  material.append(std::to_string(ev.ts_ms));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(material.data(), material.size(), md, &len, EVP_sha256(), nullptr);
  return ossl::HexLower(md, 8);
}

}  // namespace

std::string Alert::ToJson() const {
  std::string out;
  out.reserve(256 + evidence_json.size());
  out.append("{\"id\":");
  AppendJsonString(&out, id);
  out.append(",\"ts\":");
  AppendJsonString(&out, FormatTs(ts_ms));
  out.append(",\"rule\":");
  AppendJsonString(&out, rule);
  out.append(",\"kind\":");
  AppendJsonString(&out, kind);
  out.append(",\"severity\":");
  AppendJsonString(&out, SeverityName(severity));
  out.append(",\"device\":");
  if (device.empty()) {
    out.append("null");
  } else {
    AppendJsonString(&out, device);
  }
  out.append(",\"subjects\":");
  AppendJsonStrings(&out, subjects);
  out.append(",\"actions\":");
  AppendJsonStrings(&out, actions);
  out.append(",\"approve\":");
  AppendJsonStrings(&out, approve);
  out.append(",\"evidence\":");
  out.append(evidence_json.empty() ? std::string_view("{}") : std::string_view(evidence_json));
  out.push_back('}');
  return out;
}

std::string_view PaymentVerdictName(PaymentVerdict v) {
  switch (v) {
    case PaymentVerdict::kAllow: return "allow";
    case PaymentVerdict::kStepUp: return "step_up";
    case PaymentVerdict::kDeny: return "deny";
  }
  return "deny";
}

class Engine::Impl {
 public:
  Impl(World world, RuleSet rules, AlertSink sink, const std::vector<DetectorInfo>& detectors)
      : world_(std::move(world)),
        rules_(std::move(rules)),
        sink_(std::move(sink)),
        invalid_evidence_(Metrics::Global().GetCounter(
            "femtoguard_detect_invalid_evidence_total", {}, "Evidence whose details were not a JSON object (detector bug)")),
        detectors_(detectors) {
    for (const DetectorInfo& info : detectors_) {
      if (auto slot = MakeSlot(info)) slots_.push_back(std::move(slot));
    }
    IndexPrefetchers();
  }

  // A detector whose rule keeps its params (and stays enabled) keeps its
  // state; one whose params changed starts afresh with the new ones (its
  // pending timers are dropped); one switched off stops. Dedup windows and
  // the World are kept.
  size_t ReplaceRules(RuleSet rules) {
    // The running slots point into the old rules' params: keep them alive
    // (a moved std::map keeps its nodes) until every slot is compared.
    RuleSet previous = std::move(rules_);
    rules_ = std::move(rules);
    std::vector<std::unique_ptr<Slot>> old = std::move(slots_);
    slots_.clear();
    size_t restarted = 0;
    for (const DetectorInfo& info : detectors_) {
      const RuleConfig* config = rules_.Find(info.rule);
      const bool enabled = !(config && !config->outcome.enabled);
      const RuleParams& params = ParamsFor(info, config);
      auto it = std::find_if(old.begin(), old.end(), [&](const auto& s) { return s && s->rule == info.rule; });
      if (it != old.end() && enabled && SameParams(*(*it)->params_, params)) {
        (*it)->params_ = &params;  // the old RuleSet is gone: point at the new copy
        slots_.push_back(std::move(*it));
        continue;
      }
      if (auto slot = enabled ? MakeSlot(info) : nullptr) {
        slots_.push_back(std::move(slot));
        ++restarted;
      } else if (it != old.end()) {
        ++restarted;  // switched off
      }
    }
    // Timers of detectors that were replaced point at slots about to go.
    std::vector<Timer> kept;
    while (!timers_.empty()) {
      const Timer& t = timers_.top();
      for (const auto& s : slots_) {
        if (s.get() == t.slot) {
          kept.push_back(t);
          break;
        }
      }
      timers_.pop();
    }
    for (Timer& t : kept) timers_.push(t);
    IndexPrefetchers();
    return restarted;
  }

  void Process(const Event& e) {
    ++stats_.events;
    if (e.ts_ms > clock_) clock_ = e.ts_ms;  // timers never run backwards
    RunTimers(clock_);
    MaybeExpire(clock_);
    for (auto& slot : slots_) slot->detector->OnEvent(e, *slot);
    DrainEvidence();
    world_.Apply(e);
  }

  void ProcessForeign(const Event& e) {
    foreign_ = true;
    for (auto& slot : slots_)
      if (slot->cross) slot->detector->OnEvent(e, *slot);
    foreign_ = false;
    DrainEvidence();
  }

  void SetLocality(std::function<bool(std::string_view)> is_local) { is_local_ = std::move(is_local); }

  bool ReadsSecondaryIds() const {
    for (const auto& slot : slots_) {
      if (slot->detector->ReadsSecondaryIds()) return true;
    }
    return false;
  }

  void Prefetch(const Event& e, int stage) const {
    world_.Prefetch(e, stage);
    for (const Detector* d : prefetchers_) d->Prefetch(e, world_, stage);
  }

  void Flush(UnixMillis now) {
    RunTimers(now);
    if (now != std::numeric_limits<UnixMillis>::max()) MaybeExpire(now);
  }

  World& world() { return world_; }
  const RuleSet& rules() const { return rules_; }

  EngineStats stats() const {
    EngineStats s = stats_;
    s.devices = world_.device_count();
    s.subscribers = world_.subscriber_count();
    s.world_bytes = world_.MemoryBytes();
    for (const auto& slot : slots_) s.detector_bytes += slot->detector->MemoryBytes();
    return s;
  }

 private:
  // One per running detector: its Context.
  struct Slot final : Context {
    Slot(Impl* impl, std::string_view rule, const RuleParams& params) : impl(impl), rule(rule), params_(&params) {}
    const World& world() const override { return impl->world_; }
    const RuleParams& params() const override { return *params_; }
    void Emit(Evidence evidence) override {
      if (cross && impl->is_local_) {
        const bool local = !evidence.device.empty() && impl->is_local_(evidence.device);
        // Foreign event: only what names one of our devices. Own event:
        // not what names another partition's device (it raises that).
        if (impl->foreign_ ? !local : (!evidence.device.empty() && !local)) return;
      }
      if (evidence.rule.empty()) evidence.rule = rule;
      impl->pending_.push_back(std::move(evidence));
    }
    void ScheduleAt(UnixMillis when_ms, uint64_t key) override {
      impl->timers_.push(Timer{when_ms, impl->timer_seq_++, this, key});
    }

    Impl* impl;
    std::string rule;
    const RuleParams* params_;  // into impl->rules_ (re-pointed by ReplaceRules)
    std::unique_ptr<Detector> detector;
    bool cross = false;  // detector->CrossDevice()
  };

  // The rule's params from the file, or, for a rule the file does not name,
  // its declared defaults (kept in default_params_, whose addresses are stable).
  const RuleParams& ParamsFor(const DetectorInfo& info, const RuleConfig* config) {
    return config ? config->params : default_params_.emplace_back(DeclaredDefaults(info.rule));
  }

  std::unique_ptr<Slot> MakeSlot(const DetectorInfo& info) {
    const RuleConfig* config = rules_.Find(info.rule);
    if (config && !config->outcome.enabled) return nullptr;  // `enabled: false`: not run at all
    const RuleParams& params = ParamsFor(info, config);
    auto slot = std::make_unique<Slot>(this, info.rule, params);
    slot->detector = info.make(params);
    if (!slot->detector) return nullptr;
    slot->cross = slot->detector->CrossDevice();
    return slot;
  }

  void IndexPrefetchers() {
    prefetchers_.clear();
    for (const auto& slot : slots_) {
      if (slot->detector->Prefetches()) prefetchers_.push_back(slot->detector.get());
    }
  }

  static bool SameParams(const RuleParams& a, const RuleParams& b) {
    return a.scalars == b.scalars && a.lists == b.lists && a.maps == b.maps;
  }

  struct Timer {
    UnixMillis when;
    uint64_t seq;  // FIFO among equal times: deterministic
    Slot* slot;
    uint64_t key;
    bool operator>(const Timer& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };

  struct DedupEntry {
    UnixMillis last_alert_ms;
    int64_t dedup_ms;
  };

  void RunTimers(UnixMillis now) {
    while (!timers_.empty() && timers_.top().when <= now) {
      Timer t = timers_.top();
      timers_.pop();
      // The detector sees the timer's own time, so that live (timers run by
      // a later event or a wall-clock Flush) and replay agree.
      t.slot->detector->OnTimer(t.key, t.when, *t.slot);
      DrainEvidence();
    }
  }

  void MaybeExpire(UnixMillis now) {
    if (now - last_expire_ < kExpireEveryMs) return;
    last_expire_ = now;
    for (auto& slot : slots_) slot->detector->Expire(now);
    std::erase_if(dedup_, [now](const auto& kv) { return now - kv.second.last_alert_ms >= kv.second.dedup_ms; });
  }

  void DrainEvidence() {
    // Handling evidence may not emit more, but keep the loop robust.
    for (size_t i = 0; i < pending_.size(); ++i) Handle(pending_[i]);
    pending_.clear();
  }

  void Handle(const Evidence& ev) {
    const RuleOutcome& outcome = rules_.OutcomeFor(ev.rule, ev.kind);
    if (!outcome.enabled) return;  // this kind is switched off in the rules file

    std::string key;
    key.reserve(ev.rule.size() + ev.kind.size() + ev.device.size() + ev.dedup_extra.size() + 3);
    key.append(ev.rule).push_back('\x1f');
    key.append(ev.kind).push_back('\x1f');
    key.append(ev.device).push_back('\x1f');
    key.append(ev.dedup_extra);
    auto [it, inserted] = dedup_.try_emplace(std::move(key), DedupEntry{ev.ts_ms, outcome.dedup_ms});
    if (!inserted) {
      if (ev.ts_ms - it->second.last_alert_ms < it->second.dedup_ms) {
        ++stats_.suppressed;
        return;
      }
      it->second = DedupEntry{ev.ts_ms, outcome.dedup_ms};
    }

    Alert alert;
    alert.id = StableId(ev);
    alert.ts_ms = ev.ts_ms;
    alert.rule = ev.rule;
    alert.kind = ev.kind;
    alert.severity = outcome.severity;
    alert.device = ev.device;
    alert.subjects.reserve(ev.subjects.size());
    for (const SubjectId& s : ev.subjects) alert.subjects.push_back(s.ToString("imsi"));
    alert.actions = outcome.actions;
    alert.approve = outcome.approve;
    if (ev.details_json.empty()) {
      alert.evidence_json = "{}";
    } else {
      nlohmann::json details = nlohmann::json::parse(ev.details_json, nullptr, /*allow_exceptions=*/false);
      if (!details.is_discarded() && details.is_object()) {
        alert.evidence_json = details.dump();  // one line, keys sorted
      } else {
        invalid_evidence_.Inc();
        alert.evidence_json = R"({"error":"detector produced evidence that is not a JSON object"})";
      }
    }

    ApplyLocalEffects(alert, ev);
    ++stats_.alerts;
    if (sink_) sink_(alert);
  }

  // What the actions do inside the engine, so that replay behaves as serve.
  void ApplyLocalEffects(const Alert& alert, const Evidence& ev) {
    DeviceIdx d = kNoDevice;
    if (!ev.device.empty() && ev.accuses_device) d = world_.Intern(ev.device);
    if (d != kNoDevice && alert.severity >= Severity::kHigh) {
      world_.MarkSuspect(d, ev.ts_ms + rules_.suspect_ttl_ms(), ev.rule);
    }
    for (const std::string& action : alert.actions) {
      if (action == "block") {
        if (d != kNoDevice) world_.device(d).blocked = true;
      } else if (action == "revoke") {
        if (d != kNoDevice) world_.device(d).status = DeviceStatus::kDecommissioned;
      } else if (action == "suspend") {
        if (d != kNoDevice && world_.device(d).status != DeviceStatus::kDecommissioned) {
          world_.device(d).status = DeviceStatus::kSuspended;
        }
      } else if (action == "hold_payments") {
        for (const SubjectId& s : ev.subjects) world_.MutableSubscriber(s).payments_held = true;
      }
      // terminate: the SeGW ends the session and says so with session.down;
      // notify: no local state.
    }
  }

  World world_;
  RuleSet rules_;
  AlertSink sink_;
  Counter& invalid_evidence_;
  std::vector<DetectorInfo> detectors_;  // what the engine may run (ReplaceRules)
  std::deque<RuleParams> default_params_;  // declared defaults of rules the file does not name (stable addresses)
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<const Detector*> prefetchers_;  // of slots_, those with Prefetches()
  std::vector<Evidence> pending_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  uint64_t timer_seq_ = 0;
  std::unordered_map<std::string, DedupEntry> dedup_;
  UnixMillis clock_ = std::numeric_limits<UnixMillis>::min();
  UnixMillis last_expire_ = std::numeric_limits<UnixMillis>::min() / 2;
  EngineStats stats_;
  std::function<bool(std::string_view)> is_local_;  // cluster mode; null: every device
  bool foreign_ = false;                              // inside ProcessForeign
};

Engine::Engine(World world, RuleSet rules, AlertSink sink)
    : Engine(std::move(world), std::move(rules), std::move(sink), AllDetectors()) {}
Engine::Engine(World world, RuleSet rules, AlertSink sink, const std::vector<DetectorInfo>& detectors)
    : impl_(std::make_unique<Impl>(std::move(world), std::move(rules), std::move(sink), detectors)) {}
Engine::~Engine() = default;

void Engine::Process(const Event& event) { impl_->Process(event); }
void Engine::ProcessForeign(const Event& event) { impl_->ProcessForeign(event); }
void Engine::SetLocality(std::function<bool(std::string_view)> is_local) {
  impl_->SetLocality(std::move(is_local));
}
void Engine::Prefetch(const Event& event, int stage) const { impl_->Prefetch(event, stage); }
bool Engine::ReadsSecondaryIds() const { return impl_->ReadsSecondaryIds(); }
void Engine::Flush(UnixMillis now_ms) { impl_->Flush(now_ms); }
World& Engine::world() { return impl_->world(); }
const RuleSet& Engine::rules() const { return impl_->rules(); }
size_t Engine::ReplaceRules(RuleSet rules) { return impl_->ReplaceRules(std::move(rules)); }
EngineStats Engine::stats() const { return impl_->stats(); }

}  // namespace fg::detect
