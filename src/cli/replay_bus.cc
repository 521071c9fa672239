#include "cli/replay_bus.h"

#include <nats/nats.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "bus/event_codec.h"
#include "bus/jetstream.h"
#include "bus/nats_link.h"
#include "bus/stream_detection.h"
#include "cli/commands.h"
#include "common/celldb.h"
#include "common/pseudonym.h"
#include "detect/default_rules.h"
#include "ingest/decoder.h"
#include "ingest/jsonl_reader.h"
#include "ingest/seed.h"

extern char** environ;

namespace fg::cli {
namespace {

int Bad(const std::string& what) {
  std::fprintf(stderr, "femtoguard replay: %s\n", what.c_str());
  return 2;
}

double CpuOf(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

bool ValidRun(const std::string& r) {
  return !r.empty() && r.size() <= 32 &&
         std::all_of(r.begin(), r.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

std::string NewRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

struct RunNames {
  std::string prefix, events, derived, leases, progress;
};
RunNames NamesOf(const std::string& run) {
  return {"fgrp." + run, "FG_RP_" + run, "FG_RPD_" + run, "FG_RPL_" + run, "FG_RPP_" + run};
}

// The data dir's pseudonym key (workers and leader must pseudonymize alike)
// and its store (endpoints and legacy credentials, as replay).
struct Inputs {
  std::unique_ptr<Store> store;
  std::unique_ptr<Pseudonymizer> pseudonymizer;
};
Result<Inputs> OpenInputs(const ReplayOptions& o) {
  std::string data = ResolveDataDirArg(o.data);
  if (data.empty())
    return Status::InvalidArgument(
        "--bus needs --data (or FEMTOGUARD_DATA): every worker pseudonymizes with the data dir's key");
  auto env = OpenEnv(data);
  if (!env.ok()) return Status::InvalidArgument("data dir " + data + ": " + env.status().message());
  auto key = env->dir.LoadPseudonymKey();
  if (!key.ok()) return Status::InvalidArgument("data dir " + data + ": " + key.status().message());
  Inputs in;
  in.store = std::move(env->store);
  in.pseudonymizer = std::make_unique<Pseudonymizer>(std::move(key).value());
  return in;
}

void DeleteRun(const std::vector<std::string>& servers, const RunNames& n) {
  bus::NatsLink link;
  bus::NatsLinkOptions lo;
  lo.name = "femtoguard-replay";
  if (!link.Connect(servers, lo).ok()) return;
  for (const std::string& s : {n.events, n.derived, "KV_" + n.leases, "KV_" + n.progress})
    js_DeleteStream(link.js, s.c_str(), nullptr, nullptr);
}

}  // namespace

int RunBusWorker(const ReplayOptions& o) {
  if (!ValidRun(o.join)) return Bad("--join: a run id (letters and digits) is required");
  for (auto [flag, value] : {std::pair{"--registry", &o.registry}, std::pair{"--cells", &o.cells},
                             std::pair{"--alerts", &o.alerts}}) {
    if (value->empty()) return Bad(std::string("missing ") + flag + " (see --help)");
  }
  auto servers = bus::ParseBusUrl(o.bus);
  if (!servers.ok()) return Bad(servers.status().message());
  auto inputs = OpenInputs(o);
  if (!inputs.ok()) return Bad(inputs.status().message());
  auto rules_check = detect::LoadRulesOrDefault(o.rules);
  if (!rules_check.ok()) return Bad("rules: " + rules_check.status().message());
  // Loaded once, copied into each partition's device stage.
  auto loaded = CellDb::Load(o.cells);
  if (!loaded.ok()) return Bad(loaded.status().message());
  auto cells = std::make_shared<const CellDb>(std::move(loaded).value());

  std::FILE* out = std::fopen(o.alerts.c_str(), "w");
  if (!out) return Bad("cannot write " + o.alerts + ": " + std::strerror(errno));
  std::mutex out_mutex;

  const RunNames n = NamesOf(o.join);
  bus::StreamDetectionOptions so;
  so.servers = *servers;
  so.node_id = "w" + std::to_string(getpid());
  so.prefix = n.prefix;
  so.event_stream = n.events;
  so.derived_stream = n.derived;
  so.lease_bucket = n.leases;
  so.progress_bucket = n.progress;
  so.partitions = o.partitions;
  so.replicas = o.replicas;
  so.finite = true;
  so.min_nodes = o.expect_workers;
  Inputs& in = *inputs;
  so.seed = [&](bus::Stage stage) -> Result<std::pair<detect::World, detect::RuleSet>> {
    detect::World world;
    FG_RETURN_IF_ERROR(ingest::LoadRegistryFile(o.registry, *in.pseudonymizer, &world, nullptr).status());
    world.SetCells(cells);
    FG_ASSIGN_OR_RETURN(detect::RuleSet rules, detect::LoadRulesOrDefault(o.rules));
    ingest::SeedOptions seed;
    FG_RETURN_IF_ERROR(ingest::SeedFromStore(*in.store, seed, &world, &rules));
    return std::make_pair(std::move(world), std::move(rules));
  };
  so.on_alert = [&](const detect::Alert& a, uint32_t) -> Status {
    std::string line = a.ToJson();
    line.push_back('\n');
    std::lock_guard lock(out_mutex);
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0)
      return Status::Internal(std::string("writing alerts: ") + std::strerror(errno));
    return Status::Ok();
  };
  auto sd = bus::StreamDetection::Start(std::move(so));
  if (!sd.ok()) {
    std::fclose(out);
    return Bad(sd.status().message());
  }
  while (!(*sd)->Wait(1000)) {
  }
  bus::StreamDetectionStats st = (*sd)->stats();
  (*sd)->Stop();
  std::fclose(out);
  std::printf("worker %d: %" PRIu64 " events, %" PRIu64 " keyed, %" PRIu64 " alerts (%" PRIu64
              " re-raised in rebuilds, not written)\n",
              static_cast<int>(getpid()), st.events, st.keyed, st.alerts, st.suppressed);
  return 0;
}

int RunBusReplay(const ReplayOptions& o) {
  for (auto [flag, value] : {std::pair{"--registry", &o.registry}, std::pair{"--cells", &o.cells},
                             std::pair{"--events", &o.events}, std::pair{"--alerts", &o.alerts}}) {
    if (value->empty()) return Bad(std::string("missing ") + flag + " (see --help)");
  }
  if (o.workers < 0 || o.workers > 64) return Bad("--workers must be 0 to 64");
  auto servers = bus::ParseBusUrl(o.bus);
  if (!servers.ok()) return Bad(servers.status().message());
  const std::string run = o.run.empty() ? NewRunId() : o.run;
  if (!ValidRun(run)) return Bad("--run: letters and digits, at most 32");
  auto inputs = OpenInputs(o);
  if (!inputs.ok()) return Bad(inputs.status().message());
  const auto start = std::chrono::steady_clock::now();
  const RunNames n = NamesOf(run);

  // Workers first: they take their leases while the log is published.
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return Bad("cannot find the femtoguard executable");
  self[len] = 0;
  std::vector<pid_t> pids;
  std::vector<std::string> outs;
  for (int i = 0; i < o.workers; ++i) {
    outs.push_back(o.alerts + ".worker" + std::to_string(i));
    std::vector<std::string> args = {self, "replay", "--join", run, "--bus", o.bus, "--partitions",
                                     std::to_string(o.partitions), "--bus-replicas", std::to_string(o.replicas),
                                     "--registry", o.registry, "--cells", o.cells, "--alerts", outs.back(),
                                     "--expect-workers", std::to_string(o.workers),
                                     "--data", ResolveDataDirArg(o.data)};
    if (!o.rules.empty()) args.insert(args.end(), {"--rules", o.rules});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, self, nullptr, nullptr, argv.data(), environ) != 0) return Bad("cannot start a worker");
    pids.push_back(pid);
  }

  bus::JetStreamOptions jo;
  jo.servers = *servers;
  jo.stream = n.events;
  jo.subject_prefix = n.prefix + ".ev.";
  jo.partitions = o.partitions;
  jo.replicas = o.replicas;
  jo.client_name = "femtoguard-replay";
  auto producer = bus::JetStreamProducer::Connect(jo);
  if (!producer.ok()) return Bad(producer.status().message());
  auto reader = ingest::JsonLinesReader::Open(o.events);
  if (!reader.ok()) return Bad(reader.status().message());
  ingest::EventDecoder decoder(*inputs->pseudonymizer);
  decoder.set_secondary_ids(true);
  ingest::JsonLinesReader::Line line;
  detect::Event e;
  std::string batch;
  uint32_t in_batch = 0;
  uint64_t events = 0, malformed = 0, batches = 0;
  int rc = 0;
  auto flush = [&]() -> bool {
    if (in_batch == 0) return true;
    bus::FinishBatch(&batch, in_batch);
    // The id is the batch's place in the log: a re-run of the same run id
    // publishes nothing twice.
    auto r = (*producer)->PublishBatch(batch, run + ".b" + std::to_string(batches));
    if (!r.ok()) {
      std::fprintf(stderr, "femtoguard replay: publishing: %s\n", r.status().message().c_str());
      return false;
    }
    ++batches;
    in_batch = 0;
    return true;
  };
  while (rc == 0 && (*reader)->Next(&line)) {
    if (line.oversized) {
      ++malformed;
      continue;
    }
    std::string_view text(line.data, line.size);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    switch (decoder.Decode(line.data, line.size, &e)) {
      case ingest::DecodeResult::kOk:
        e.line = line.number;
        if (in_batch == 0) bus::BeginBatch(&batch);
        bus::AppendEvent(e, &batch);
        ++events;
        if (++in_batch == 2000 && !flush()) rc = 1;
        break;
      case ingest::DecodeResult::kUnknownType:
        break;
      case ingest::DecodeResult::kMalformed:
        std::fprintf(stderr, "%s:%" PRIu64 ": %s\n", o.events.c_str(), line.number, decoder.error().c_str());
        ++malformed;
        break;
    }
  }
  if (rc == 0 && !flush()) rc = 1;
  if (rc == 0) {
    if (Status s = (*producer)->PublishEnd(run); !s.ok()) {
      std::fprintf(stderr, "femtoguard replay: %s\n", s.message().c_str());
      rc = 1;
    }
  }
  const auto published = std::chrono::steady_clock::now();
  if (o.workers == 0) {
    std::printf("run %s: %" PRIu64 " events published in %" PRIu64 " batches; start workers with\n"
                "  femtoguard replay --join %s --bus %s --partitions %d --registry ... --cells ... --alerts FILE\n",
                run.c_str(), events, batches, run.c_str(), o.bus.c_str(), o.partitions);
    return rc;
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "femtoguard replay: worker %d failed\n", static_cast<int>(pid));
      rc = 1;
    }
  }
  const auto end = std::chrono::steady_clock::now();
  // Union of the workers' alerts, one line per id (a partition taken over
  // from a dead worker may have re-raised some), in event-time order.
  std::map<std::pair<std::string, std::string>, std::string> merged;  // (ts, id) -> line
  std::set<std::string> ids;
  std::map<std::string, uint64_t> per_rule;
  for (const std::string& f : outs) {
    std::ifstream in(f);
    std::string l;
    while (std::getline(in, l)) {
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (j.is_discarded() || !j.contains("id")) continue;
      const std::string id = j["id"].get<std::string>();
      if (!ids.insert(id).second) continue;
      ++per_rule[j.value("rule", "")];
      merged[{j.value("ts", ""), id}] = l;
    }
    std::remove(f.c_str());
  }
  std::FILE* out = std::fopen(o.alerts.c_str(), "w");
  if (!out) return Bad("cannot write " + o.alerts);
  for (const auto& [k, l] : merged) std::fprintf(out, "%s\n", l.c_str());
  if (std::fclose(out) != 0) rc = 1;
  if (!o.keep) DeleteRun(*servers, n);
  const double wall = std::chrono::duration<double>(end - start).count();
  const double cpu_workers = CpuOf(RUSAGE_CHILDREN);
  const double cpu_self = CpuOf(RUSAGE_SELF);
  std::printf("run %s: %" PRIu64 " events (%" PRIu64 " malformed) published in %.3f s, all %d workers done in %.3f s\n",
              run.c_str(), events, malformed, std::chrono::duration<double>(published - start).count(), o.workers, wall);
  std::printf("cpu: workers %.3f s, publisher %.3f s (the NATS servers' not counted); %.0f events per worker CPU-second\n",
              cpu_workers, cpu_self, cpu_workers > 0 ? events / cpu_workers : 0.0);
  std::printf("alerts: %zu written to %s\n", ids.size(), o.alerts.c_str());
  for (const auto& [rule, count] : per_rule) std::printf("  %-18s %" PRIu64 "\n", rule.c_str(), count);
  return rc;
}

}  // namespace fg::cli
