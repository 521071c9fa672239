#include "admission/engine.h"

#include "common/reconnect.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>

#include <spdlog/spdlog.h>

namespace fg::admission {
namespace {

const std::vector<LiveSession> kNoSessions;

enum InternalCause { kStoreCause = 0, kCheckCause, kExceptionCause, kBudgetCause };
constexpr const char* kInternalCauseNames[] = {"store", "check", "exception", "budget"};

}  // namespace

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAllow:
      return "allow";
    case Verdict::kDeny:
      return "deny";
    case Verdict::kQuarantine:
      return "quarantine";
    case Verdict::kAbstain:
      return "abstain";
  }
  return "deny";
}

bool IsSameOrReconnect(const LiveSession& s, const AdmissionRequest& r, const EndpointKey& endpoint,
                       const IpAddr* src, const DeviceView* device, const AdmissionPolicy& policy) {
  if (!r.session.empty() && s.session == r.session && s.segw == r.segw) return true;
  // The rule itself is common/reconnect.h, shared with detection's cert.clone.
  std::span<const IpPrefix> prefixes;
  if (device) prefixes = device->prefixes;
  return IsReconnect(SessionLine{s.endpoint_key, s.src_ip, nullptr}, SessionLine{endpoint, r.src_ip, src}, prefixes,
                     policy.clone_same_prefix_is_reconnect);
}

Result<std::vector<Engine::NamedCheck>> Engine::BuildChain(const AdmissionPolicy& policy,
                                                           const std::vector<CheckRegistration>& extra_checks) {
  std::vector<NamedCheck> chain;
  for (const std::string& name : policy.chain) {
    const CheckRegistration* reg = nullptr;
    for (const auto& r : extra_checks) {
      if (r.name == name) reg = &r;
    }
    for (const auto& r : BuiltinChecks()) {
      if (!reg && r.name == name) reg = &r;
    }
    if (!reg) return Status::InvalidArgument("admission: chain names an unknown check \"" + name + "\"");
    std::unique_ptr<Check> check = reg->factory(policy);
    if (!check) return Status::Internal("admission: check \"" + name + "\" could not be built");
    chain.push_back({name, std::move(check)});
  }
  return chain;
}

Status Engine::ReplacePolicy(AdmissionPolicy policy, std::shared_ptr<const CellDb> cells) {
  FG_ASSIGN_OR_RETURN(std::vector<NamedCheck> chain, BuildChain(policy, extra_checks_));
  std::unique_lock lock(policy_mu_);  // waits for decisions in flight
  policy_ = std::move(policy);
  cells_ = std::move(cells);
  chain_ = std::move(chain);
  return Status::Ok();
}

Result<std::string> Engine::ReloadForDataDir(const DataDir& dir, const Config& config) {
  FG_ASSIGN_OR_RETURN(AdmissionPolicy policy, AdmissionPolicy::LoadForDataDir(dir, config));
  std::shared_ptr<const CellDb> cells;
  std::string summary = std::to_string(policy.chain.size()) + " checks";
  if (!policy.cells_csv.empty()) {
    FG_ASSIGN_OR_RETURN(CellDb loaded, CellDb::Load(policy.cells_csv));
    summary += ", " + std::to_string(loaded.size()) + " cells from " + policy.cells_csv;
    cells = std::make_shared<const CellDb>(std::move(loaded));
  }
  FG_RETURN_IF_ERROR(ReplacePolicy(std::move(policy), std::move(cells)));
  return summary;
}

Result<std::unique_ptr<Engine>> Engine::Create(SnapshotSources store, AdmissionPolicy policy, EngineOptions options) {
  FG_ASSIGN_OR_RETURN(std::vector<NamedCheck> chain, BuildChain(policy, options.extra_checks));
  std::vector<CheckRegistration> extra_checks = options.extra_checks;  // options is moved below
  std::unique_ptr<DecisionLog> log;
  if (!options.decision_log_path.empty()) {
    FG_ASSIGN_OR_RETURN(log, DecisionLog::Open(options.decision_log_path, options.decision_log_rotation));
  }
  std::unique_ptr<Engine> engine(new Engine(store, std::move(policy), std::move(options)));
  engine->chain_ = std::move(chain);
  engine->extra_checks_ = std::move(extra_checks);
  engine->log_ = std::move(log);
  if (Status s = engine->TryLoad(); !s.ok()) {
    spdlog::error("admission: cannot load the registry snapshot, denying every admission until it loads: {}",
                  s.ToString());
  }
  return engine;
}

Result<std::unique_ptr<Engine>> Engine::CreateForDataDir(SnapshotSources store, const DataDir& dir, const Config& config) {
  FG_ASSIGN_OR_RETURN(AdmissionPolicy policy, AdmissionPolicy::LoadForDataDir(dir, config));
  EngineOptions options;
  if (!policy.cells_csv.empty()) {
    FG_ASSIGN_OR_RETURN(CellDb cells, CellDb::Load(policy.cells_csv));
    spdlog::info("admission: {} cells from {}", cells.size(), policy.cells_csv);
    options.cells = std::make_shared<const CellDb>(std::move(cells));
  }
  options.decision_log_path = (dir.root() / "log" / "admission.jsonl").string();
  options.decision_log_rotation.max_bytes = static_cast<uint64_t>(config.log_admission_max_mb) << 20;
  options.decision_log_rotation.keep = config.log_admission_keep;
  return Create(store, std::move(policy), std::move(options));
}

Engine::Engine(SnapshotSources store, AdmissionPolicy policy, EngineOptions options)
    : store_(store), policy_(std::move(policy)), cells_(std::move(options.cells)) {
  Metrics& m = Metrics::Global();
  const char* help = "Admission decisions by outcome";
  decisions_[0] = &m.GetCounter("femtoguard_admission_decisions_total", "decision=\"allow\"", help);
  decisions_[1] = &m.GetCounter("femtoguard_admission_decisions_total", "decision=\"deny\"", help);
  decisions_[2] = &m.GetCounter("femtoguard_admission_decisions_total", "decision=\"quarantine\"", help);
  for (int i = 0; i < 4; ++i) {
    internal_[i] = &m.GetCounter("femtoguard_admission_internal_total",
                                 std::string("cause=\"") + kInternalCauseNames[i] + "\"",
                                 "Admissions denied because the engine could not decide (fail closed)");
  }
}

Engine::~Engine() = default;

Engine::SessionStripe& Engine::StripeFor(std::string_view device) const {
  return sessions_[std::hash<std::string_view>{}(device) % kStripes];
}

Status Engine::TryLoad() {
  auto snap = Snapshot::Load(store_);
  std::unique_lock lock(snapshot_mu_);
  if (!snap.ok()) {
    snapshot_.reset();  // fail closed: an outdated snapshot must not decide
    load_status_ = snap.status();
    return load_status_;
  }
  if (snapshot_) {
    // Keep what admitted sessions taught us about last-seen times.
    snapshot_->ForEachDevice([&](const DeviceView& old) {
      if (const DeviceView* d = (*snap)->FindDevice(old.id)) {
        UnixMillis seen = old.seen_ms.load(std::memory_order_relaxed);
        if (seen > d->seen_ms.load(std::memory_order_relaxed)) d->seen_ms.store(seen, std::memory_order_relaxed);
      }
    });
  }
  snapshot_ = std::move(snap).value();
  PublishPendingBlocks();
  load_status_ = Status::Ok();
  return load_status_;
}

void Engine::PublishPendingBlocks() {
  static Gauge& gauge = Metrics::Global().GetGauge(
      "femtoguard_admission_pending_blocks", {}, "Devices denied from memory while their block or revocation is stored");
  gauge.Set(static_cast<int64_t>(pending_blocks_.size()));
  if (!snapshot_) return;
  StringMap<BlockView> views;
  for (const auto& [device, p] : pending_blocks_) views.emplace(device, p.view);
  snapshot_->SetPendingBlocks(std::move(views));
}

void Engine::EnforceBlock(std::string_view device, std::string_view alert_id, std::string_view rule) {
  if (device.empty()) return;
  std::unique_lock lock(snapshot_mu_);
  PendingBlock& p = pending_blocks_[std::string(device)];
  p.view.kind = "device";
  p.view.value = std::string(device);
  p.view.alert_id = std::string(alert_id);
  p.landed_ms = 0;
  PublishPendingBlocks();
  spdlog::info("admission: {} denied from now on (alert {} {})", device, alert_id, rule);
}

void Engine::BlockLanded(std::string_view device, std::string_view alert_id) {
  std::unique_lock lock(snapshot_mu_);
  auto it = pending_blocks_.find(device);
  if (it != pending_blocks_.end() && it->second.view.alert_id == alert_id) it->second.landed_ms = NowMillis();
}

void Engine::PruneLandedBlocks(UnixMillis landed_before_ms) {
  std::unique_lock lock(snapshot_mu_);
  size_t before = pending_blocks_.size();
  std::erase_if(pending_blocks_, [&](const auto& kv) {
    return kv.second.landed_ms != 0 && kv.second.landed_ms < landed_before_ms;
  });
  if (pending_blocks_.size() != before) PublishPendingBlocks();
}

size_t Engine::pending_blocks() const {
  std::shared_lock lock(snapshot_mu_);
  return pending_blocks_.size();
}

Status Engine::Reload() { return TryLoad(); }

Status Engine::LoadStatus() const {
  std::shared_lock lock(snapshot_mu_);
  return load_status_;
}

Status Engine::Apply(const Change& change) {
  {
    std::shared_lock lock(snapshot_mu_);
    if (!snapshot_) {
      lock.unlock();
      return TryLoad();
    }
  }
  std::unique_lock lock(snapshot_mu_);
  if (!snapshot_) return load_status_;
  switch (change.kind) {
    case ChangeKind::kDevice:
      return snapshot_->ApplyDevice(store_.devices, store_.certs, change.key);
    case ChangeKind::kCertificate:
      return snapshot_->ApplyCertificate(store_.certs, change.key);
    case ChangeKind::kEndpoint:
      return snapshot_->ReloadEndpoints(store_.endpoints);
    case ChangeKind::kBlock:
      return snapshot_->ReloadBlocks(store_.blocks);
    case ChangeKind::kAlert:
    case ChangeKind::kNode:
      return Status::Ok();
  }
  return Status::Ok();
}

Status Engine::OnChanges(std::span<const Change> changes) {
  Status first = Status::Ok();
  const Change* block_change = nullptr;
  for (const Change& c : changes) {
    if (c.kind == ChangeKind::kBlock) {
      block_change = &c;
      continue;
    }
    if (Status s = Apply(c); !s.ok() && first.ok()) first = s;
  }
  if (block_change) {
    if (Status s = Apply(*block_change); !s.ok() && first.ok()) first = s;
  }
  return first;
}

Decision Engine::Internal(std::string_view cause, std::string_view where, std::string_view message) {
  for (int i = 0; i < 4; ++i) {
    if (cause == kInternalCauseNames[i]) internal_[i]->Inc();
  }
  // Logged at most once a second: a store outage must not flood the log.
  UnixMillis now = NowMillis();
  UnixMillis last = last_error_log_ms_.load(std::memory_order_relaxed);
  if (now - last >= 1000 && last_error_log_ms_.compare_exchange_strong(last, now)) {
    spdlog::error("admission: deny (internal, {}) at {}: {}", cause, where, message);
  }
  Decision d;
  d.verdict = Verdict::kDeny;
  d.reasons = {"internal"};
  d.evidence = {{"internal.cause", std::string(cause)},
                {"internal.where", std::string(where)},
                {"internal.error", std::string(message)}};
  return d;
}

Decision Engine::Admit(const AdmissionRequest& request) {
  static Histogram& latency = Metrics::Global().GetHistogram(
      "femtoguard_admission_seconds", {}, "Admission decision latency, decision log write included");
  ScopedTimer timer(latency);
  const UnixMillis now = request.now_ms ? request.now_ms : NowMillis();
  SessionStripe& stripe = StripeFor(request.device);
  Decision d;
  try {
    std::lock_guard device_lock(stripe.mu);
    d = Decide(request, now, stripe);
  } catch (const std::exception& e) {
    d = Internal("exception", "engine", e.what());
  } catch (...) {
    d = Internal("exception", "engine", "unknown exception");
  }
  Count(d);
  if (log_) log_->Append(request, now, d);
  return d;
}

Decision Engine::Decide(const AdmissionRequest& r, UnixMillis now, SessionStripe& stripe) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  std::shared_lock policy_lock(policy_mu_);  // policy_, cells_, chain_ (ReplacePolicy)
  const auto budget = std::chrono::milliseconds(policy_.time_budget_ms);

  std::shared_lock snap_lock(snapshot_mu_);
  if (!snapshot_) {
    snap_lock.unlock();
    UnixMillis next = next_load_attempt_ms_.load(std::memory_order_relaxed);
    UnixMillis wall = NowMillis();
    if (wall >= next && next_load_attempt_ms_.compare_exchange_strong(next, wall + 1000)) (void)TryLoad();
    snap_lock.lock();
    if (!snapshot_) return Internal("store", "snapshot", load_status_.message());
  }
  const Snapshot& snap = *snapshot_;
  if (snap.DeviceStale(r.device)) return Internal("store", "device", "device state could not be re-read");

  IpAddr src_addr;
  const IpAddr* src = ParseIpAddr(r.src_ip, &src_addr) ? &src_addr : nullptr;
  const EndpointKey endpoint = ParseEndpointKey(r.endpoint);
  const DeviceView* device = r.device.empty() ? nullptr : snap.FindDevice(r.device);
  auto live_it = stripe.by_device.find(r.device);
  const std::vector<LiveSession>& live = live_it == stripe.by_device.end() ? kNoSessions : live_it->second;
  const CheckContext ctx{r, now, src, endpoint, device, snap, policy_, cells_.get(), live};

  Decision d;
  bool any_deny = false, any_quarantine = false;
  std::vector<std::string> waived;
  for (NamedCheck& c : chain_) {
    Result<CheckAnswer> answer = Status::Internal("not run");
    try {
      answer = c.check->Evaluate(ctx);
    } catch (const std::exception& e) {
      return Internal("exception", c.name, e.what());
    } catch (...) {
      return Internal("exception", c.name, "unknown exception");
    }
    if (!answer.ok()) {
      return Internal(answer.status().code() == StatusCode::kUnavailable ? "store" : "check", c.name,
                      answer.status().ToString());
    }
    CheckAnswer& a = *answer;
    Verdict v = a.verdict;
    if (!a.reason.empty()) {
      if (auto o = policy_.verdicts.find(a.reason); o != policy_.verdicts.end()) {
        if (o->second == Verdict::kAllow && v != Verdict::kAllow && v != Verdict::kAbstain) waived.push_back(a.reason);
        v = o->second;
      }
    }
    if (v == Verdict::kDeny || v == Verdict::kQuarantine) {
      (v == Verdict::kDeny ? any_deny : any_quarantine) = true;
      d.reasons.push_back(a.reason.empty() ? c.name : a.reason);
    }
    for (auto& e : a.evidence) d.evidence.push_back(std::move(e));
    if (budget.count() > 0 && Clock::now() - start > budget) {
      return Internal("budget", c.name,
                      "decision took longer than time_budget_ms=" + std::to_string(policy_.time_budget_ms));
    }
  }
  if (!waived.empty()) {
    std::string list;
    for (const auto& w : waived) list += (list.empty() ? "" : ",") + w;
    d.evidence.emplace_back("waived", list);
  }
  d.verdict = any_deny ? Verdict::kDeny : any_quarantine ? Verdict::kQuarantine : Verdict::kAllow;
  if (d.verdict != Verdict::kDeny) {
    if (device) {
      UnixMillis seen = device->seen_ms.load(std::memory_order_relaxed);
      while (seen < now && !device->seen_ms.compare_exchange_weak(seen, now)) {
      }
    }
    if (live_it == stripe.by_device.end()) live_it = stripe.by_device.emplace(r.device, std::vector<LiveSession>{}).first;
    std::vector<LiveSession>& sessions = live_it->second;
    // The new session replaces the ones it reconnects; the first one is
    // overwritten in place (no allocation when the strings fit).
    LiveSession* slot = nullptr;
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (!IsSameOrReconnect(*it, r, endpoint, src, device, policy_)) {
        ++it;
        continue;
      }
      if (it->session != r.session) d.evidence.emplace_back("replaced_session", it->session);
      if (!slot) {
        slot = &*it;
        ++it;
      } else {
        it = sessions.erase(it);
      }
    }
    if (!slot) slot = &sessions.emplace_back();
    slot->session.assign(r.session);
    slot->src_ip.assign(r.src_ip);
    slot->endpoint.assign(r.endpoint);
    slot->endpoint_key.host.assign(endpoint.host);
    slot->endpoint_key.port = endpoint.port;
    slot->segw.assign(r.segw);
    slot->since_ms = now;
  }
  return d;
}

void Engine::Count(const Decision& d) {
  decisions_[d.verdict == Verdict::kAllow ? 0 : d.verdict == Verdict::kQuarantine ? 2 : 1]->Inc();
  for (const std::string& reason : d.reasons) {
    Counter* c = nullptr;
    {
      std::lock_guard lock(reason_counters_mu_);
      auto it = reason_counters_.find(reason);
      if (it == reason_counters_.end()) {
        c = &Metrics::Global().GetCounter("femtoguard_admission_reasons_total", "reason=\"" + reason + "\"",
                                          "Admission reasons given (deny or quarantine)");
        reason_counters_.emplace(reason, c);
      } else {
        c = it->second;
      }
    }
    c->Inc();
  }
}

void Engine::SessionDown(std::string_view device, std::string_view session) {
  SessionStripe& stripe = StripeFor(device);
  std::lock_guard lock(stripe.mu);
  auto it = stripe.by_device.find(device);
  if (it == stripe.by_device.end()) return;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [&](const LiveSession& s) { return s.session == session; }), v.end());
  if (v.empty()) stripe.by_device.erase(it);
}

std::vector<LiveSession> Engine::LiveSessions(std::string_view device) const {
  SessionStripe& stripe = StripeFor(device);
  std::lock_guard lock(stripe.mu);
  auto it = stripe.by_device.find(device);
  return it == stripe.by_device.end() ? std::vector<LiveSession>{} : it->second;
}

Result<size_t> Engine::FlushLastSeen(UnixMillis min_advance_ms) {
  std::vector<std::pair<std::string, UnixMillis>> due;
  {
    std::shared_lock lock(snapshot_mu_);
    if (!snapshot_) return load_status_;
    snapshot_->ForEachDevice([&](const DeviceView& d) {
      UnixMillis seen = d.seen_ms.load(std::memory_order_relaxed);
      if (seen > d.store_seen_ms.load(std::memory_order_relaxed) + min_advance_ms && seen > d.created_ms) {
        due.emplace_back(d.id, seen);
      }
    });
  }
  // In chunks, one transaction each: after a reconnect storm 189,000 devices
  // are due, and one transaction per device kept serve's shutdown busy for
  // minutes; a chunk keeps the store's write lock short for enrolment.
  constexpr size_t kChunk = 4096;
  size_t touched = 0;
  for (size_t begin = 0; begin < due.size(); begin += kChunk) {
    std::vector<std::pair<std::string, UnixMillis>> chunk(due.begin() + begin,
                                                          due.begin() + std::min(due.size(), begin + kChunk));
    FG_ASSIGN_OR_RETURN(size_t found, store_.devices.TouchDevices(chunk));
    touched += found;
    std::shared_lock lock(snapshot_mu_);
    if (!snapshot_) continue;
    for (const auto& [id, seen] : chunk) {
      if (const DeviceView* d = snapshot_->FindDevice(id)) d->store_seen_ms.store(seen, std::memory_order_relaxed);
    }
  }
  return touched;
}

Status Engine::FlushLog() { return log_ ? log_->Flush() : Status::Ok(); }

}  // namespace fg::admission
