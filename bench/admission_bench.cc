// In-process admission decisions per second with a registry of 189,000
// devices (the seed operator's fleet), against same-run baselines:
//   BM_Baseline_LookupAndPrefix - one std::unordered_map<std::string, Device>
//                                 lookup + fg::IpInAnyPrefix on the text prefixes
//   BM_Engine_EmptyChain        - the engine with no checks (locks, parsing,
//                                 live-session bookkeeping, counters)
//   BM_Engine_FullChain         - the default chain of nine checks (allow)
//   BM_Engine_FullChain_Log     - the same, with the decision log on
//   BM_Engine_Clone             - a clone newcomer (deny with evidence)
// Each engine first admits every device once (untimed): the timed loop is a
// fleet reconnecting, not first contact.
// The registry is served to the engine by an in-memory Store double: the
// decision path never touches the store (it reads the engine's snapshot), so
// this measures the decision itself. See BENCHMARKS.md.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <unistd.h>
#include <unordered_map>

#include "admission/engine.h"
#include "common/net.h"
#include "store/store.h"

namespace fg::admission {
namespace {

constexpr int kDevices = 189'000;
constexpr UnixMillis kT0 = 1'760'000'000'000;

// Serves a generated registry through the four List* calls the engine's
// snapshot load makes; everything else is refused.
class RegistryStore final : public Store {
 public:
  std::vector<Device> devices;
  std::vector<Certificate> certs;
  std::vector<Endpoint> endpoints;

  Result<std::vector<Device>> ListDevices(const DeviceFilter&) override { return devices; }
  Result<std::vector<Certificate>> ListCertificates(std::optional<std::string_view>) override { return certs; }
  Result<std::vector<Endpoint>> ListEndpoints() override { return endpoints; }
  Result<std::vector<Block>> ListBlocks() override { return std::vector<Block>{}; }
  using CertificateLedger::RecordIssuedCertificate;
  Status AddDevice(const Device& device, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status UpdateDeviceAttributes(const Device& device, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<Device> GetDevice(std::string_view id) override { return Status::Internal("not in the benchmark's store"); }
  Result<DeviceTransition> SetDeviceStatus(std::string_view id, DeviceStatus to, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status TouchDevice(std::string_view id, UnixMillis when) override { return Status::Internal("not in the benchmark's store"); }
  Result<size_t> TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::optional<std::string>> FindKeyOwner(std::string_view key_fp) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<std::string>> RecordIssuedCertificate( const Certificate& cert, const AuditContext& audit, const EnrolmentAuthorization& auth) override { return Status::Internal("not in the benchmark's store"); }
  Result<Certificate> GetCertificate(std::string_view serial) override { return Status::Internal("not in the benchmark's store"); }
  Status RevokeCertificate(std::string_view serial, RevocationReason reason, UnixMillis when, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<Certificate>> ListRevokedCertificates(UnixMillis now) override { return Status::Internal("not in the benchmark's store"); }
  Status AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<BootstrapToken> GetBootstrapToken(std::string_view ref) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::optional<std::string>> FindVendorCertificateUse(std::string_view vendor_cert_fp) override { return Status::Internal("not in the benchmark's store"); }
  Status AddVendorCa(const VendorCa& ca, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status RemoveVendorCa(std::string_view fp, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<VendorCa>> ListVendorCas() override { return Status::Internal("not in the benchmark's store"); }
  Status AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<LegacyCredential>> ListLegacyCredentials() override { return Status::Internal("not in the benchmark's store"); }
  Result<bool> LegacyCredentialUsed(std::string_view fp, std::string_view device) override { return Status::Internal("not in the benchmark's store"); }
  Status AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status SetEndpointStatus(std::string_view address, EndpointStatus status, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status AddApiToken(const ApiToken& token, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::optional<ApiToken>> FindApiTokenByHash(std::string_view hash) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<ApiToken>> ListApiTokens() override { return Status::Internal("not in the benchmark's store"); }
  Status RevokeApiToken(std::string_view id, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status AddBlock(const Block& block, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status RemoveBlock(std::string_view kind, std::string_view value, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<bool> AddAlert(const StoredAlert& alert, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Result<StoredAlert> GetAlert(std::string_view id) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<StoredAlert>> ListAlerts(const AlertFilter& filter) override { return Status::Internal("not in the benchmark's store"); }
  Status UpdateAlert(const StoredAlert& alert, const AuditContext& audit) override { return Status::Internal("not in the benchmark's store"); }
  Status AppendAudit(const AuditEntry& entry) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) override { return Status::Internal("not in the benchmark's store"); }
  Result<int64_t> LatestChangeSeq() override { return Status::Internal("not in the benchmark's store"); }
  Result<int64_t> NextCounter(std::string_view name) override { return Status::Internal("not in the benchmark's store"); }
  Status UpsertNode(const NodeInfo&, const AuditContext&) override { return Status::Internal("not in the benchmark's store"); }
  Status HeartbeatNode(std::string_view, UnixMillis, std::string_view) override { return Status::Internal("not in the benchmark's store"); }
  Result<std::vector<NodeInfo>> ListNodes() override { return std::vector<NodeInfo>{}; }
  Status RemoveNode(std::string_view, const AuditContext&) override { return Status::Internal("not in the benchmark's store"); }
  std::string_view backend() const override { return "bench"; }
};

std::string Ip(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
  return buf;
}

struct Fleet {
  RegistryStore store;
  std::vector<AdmissionRequest> requests;
  std::vector<AdmissionRequest> clones;

  Fleet() {
    store.devices.reserve(kDevices);
    store.certs.reserve(kDevices);
    for (int i = 0; i < kDevices; ++i) {
      char id[16], serial[16], fp[80];
      std::snprintf(id, sizeof(id), "FG-%07d", i);
      std::snprintf(serial, sizeof(serial), "%X", 0x100000 + i);
      std::snprintf(fp, sizeof(fp), "sha256:%064x", i);
      const uint32_t base = 0x64400000u + static_cast<uint32_t>(i) * 8;  // a /29 each in 100.64.0.0/10
      Device d;
      d.id = id;
      d.status = DeviceStatus::kActive;
      d.owner = "acct";
      d.site = Site{37.0 + (i % 1000) * 0.001, 127.0 + (i / 1000) * 0.001, 150};
      d.prefixes = {Ip(base) + "/29"};
      d.created_ms = kT0 - 10 * kMillisPerDay;
      d.last_seen_ms = kT0 - kMillisPerDay;
      store.devices.push_back(d);
      Certificate c;
      c.serial = serial;
      c.device = id;
      c.cert_fp = fp;
      c.key_fp = fp;
      c.not_before_ms = kT0 - kMillisPerDay;
      c.not_after_ms = kT0 + 30 * kMillisPerDay;
      store.certs.push_back(c);
      AdmissionRequest r;
      r.device = id;
      r.session = std::to_string(i);
      r.serial = serial;
      r.cert_fp = fp;
      r.src_ip = Ip(base + 1);
      r.endpoint = "segw1.example.net:4500";
      r.segw = "segw-a";
      requests.push_back(r);
      r.src_ip = Ip(0xC6336400u + static_cast<uint32_t>(i % 200));  // 198.51.100.x: another line
      r.session = "clone-" + r.session;
      clones.push_back(r);
    }
    store.endpoints = {{"segw1.example.net:4500", EndpointStatus::kActive, kT0, kT0},
                       {"segw-old.example.net:4500", EndpointStatus::kRetired, kT0, kT0}};
  }
};

Fleet& TheFleet() {
  static Fleet* fleet = new Fleet();
  return *fleet;
}

std::unique_ptr<Engine> MakeEngine(std::vector<std::string> chain, bool log) {
  AdmissionPolicy policy;
  if (!chain.empty() && chain[0] == "-") chain.clear();
  policy.chain = std::move(chain);
  policy.dormancy_days = 90;
  policy.access_networks = {"10.0.0.0/8"};
  EngineOptions options;
  if (log) {
    options.decision_log_path =
        (std::filesystem::temp_directory_path() / ("fg-admission-bench-" + std::to_string(getpid()) + ".jsonl")).string();
  }
  auto engine = Engine::Create(TheFleet().store, policy, options);
  if (!engine.ok() || !(*engine)->LoadStatus().ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.ok() ? (*engine)->LoadStatus().ToString().c_str()
                                                     : engine.status().ToString().c_str());
    std::abort();
  }
  return std::move(engine).value();
}

// One engine per configuration, shared by the threads of a run.
Engine& Shared(int which) {
  static std::unique_ptr<Engine> engines[4];
  static std::once_flag once[4];
  std::call_once(once[which], [which] {
    switch (which) {
      case 0: engines[0] = MakeEngine({"-"}, false); break;
      case 1: engines[1] = MakeEngine(BuiltinCheckNames(), false); break;
      case 2: engines[2] = MakeEngine(BuiltinCheckNames(), true); break;
      case 3: engines[3] = MakeEngine(BuiltinCheckNames(), false); break;
    }
    // Steady state, not first contact: every device already connected once
    // two rate windows ago (live session, rate and last-seen entries exist).
    for (const AdmissionRequest& r : TheFleet().requests) {
      AdmissionRequest first = r;
      first.now_ms = kT0 - 130'000;
      engines[which]->Admit(first);
    }
  });
  return *engines[which];
}

void RunAdmissions(benchmark::State& state, Engine& engine, std::vector<AdmissionRequest>& requests,
                   Verdict expect) {
  const size_t n = requests.size();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919 % n;
  const size_t step = static_cast<size_t>(state.threads());
  uint64_t tick = 0;
  for (auto _ : state) {
    AdmissionRequest& base = requests[i];  // threads touch disjoint indices
    // Event time moves 1 ms every 4 decisions: each device comes back every
    // ~47 s of simulated time, under the default rate limits.
    base.now_ms = kT0 + static_cast<UnixMillis>(tick++ / 4);
    Decision d = engine.Admit(base);
    if (d.verdict != expect) {
      state.SkipWithError(("unexpected decision: " + (d.reasons.empty() ? std::string("-") : d.reasons[0])).c_str());
      break;
    }
    benchmark::DoNotOptimize(d);
    i += step;
    if (i >= n) i -= n;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Baseline_LookupAndPrefix(benchmark::State& state) {
  static std::unordered_map<std::string, Device>* registry = [] {
    auto* m = new std::unordered_map<std::string, Device>();
    m->reserve(kDevices);
    for (const Device& d : TheFleet().store.devices) m->emplace(d.id, d);
    return m;
  }();
  const auto& requests = TheFleet().requests;
  size_t i = 0;
  for (auto _ : state) {
    const AdmissionRequest& r = requests[i];
    auto it = registry->find(r.device);
    bool ok = it != registry->end() && IpInAnyPrefix(r.src_ip, it->second.prefixes);
    benchmark::DoNotOptimize(ok);
    if (++i == requests.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Engine_EmptyChain(benchmark::State& state) {
  RunAdmissions(state, Shared(0), TheFleet().requests, Verdict::kAllow);
}
void BM_Engine_FullChain(benchmark::State& state) {
  RunAdmissions(state, Shared(1), TheFleet().requests, Verdict::kAllow);
}
void BM_Engine_FullChain_Log(benchmark::State& state) {
  RunAdmissions(state, Shared(2), TheFleet().requests, Verdict::kAllow);
}
void BM_Engine_Clone(benchmark::State& state) {
  Engine& engine = Shared(3);
  // Shared() admitted every device's original session first (not timed).
  RunAdmissions(state, engine, TheFleet().clones, Verdict::kDeny);
}

void BM_SnapshotLoad189k(benchmark::State& state) {
  for (auto _ : state) {
    auto snap = Snapshot::Load(TheFleet().store);
    benchmark::DoNotOptimize(snap);
  }
}

BENCHMARK(BM_Baseline_LookupAndPrefix);
BENCHMARK(BM_Engine_EmptyChain);
BENCHMARK(BM_Engine_FullChain);
BENCHMARK(BM_Engine_FullChain)->Threads(2)->UseRealTime();
BENCHMARK(BM_Engine_FullChain_Log);
BENCHMARK(BM_Engine_Clone);
BENCHMARK(BM_SnapshotLoad189k)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace fg::admission

BENCHMARK_MAIN();
