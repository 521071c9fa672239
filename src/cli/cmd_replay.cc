// femtoguard replay: offline forensic replay (DESIGN.md §3.1). The registry,
// the cell database and the events come from files; the same detectors as
// serve run over the events in file order, driven by event time; alerts go
// to a JSON Lines file. Every bad line is reported with its number on
// stderr and skipped, never silently; a summary ends the run on stdout.
//
// Exit: 0 when the run completed (bad lines included), 2 for bad arguments
// or an input that cannot be read, 1 when writing the alerts failed.

#include <array>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <cstring>
#include <ctime>
#include <map>

#include "cli/commands.h"
#include "cli/replay_bus.h"
#include "common/celldb.h"
#include "common/pseudonym.h"
#include "detect/default_rules.h"
#include "detect/engine.h"
#include "ingest/decoder.h"
#include "ingest/jsonl_reader.h"
#include "ingest/seed.h"

namespace fg::cli {
namespace {


int BadInput(const std::string& what) {
  std::fprintf(stderr, "femtoguard replay: %s\n", what.c_str());
  return 2;
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of this process (replay is single-threaded): events per
// CPU-second is the per-core rate even on a loaded machine.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int RunReplay(const ReplayOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  for (auto [flag, value] : {std::pair{"--registry", &o.registry}, std::pair{"--cells", &o.cells},
                             std::pair{"--events", &o.events}, std::pair{"--alerts", &o.alerts}}) {
    if (value->empty()) return BadInput(std::string("missing ") + flag + " (see --help)");
  }

  // Pseudonym key: the data dir's, so that pseudonyms match serve's and the
  // store's; else one made for this run (pseudonyms comparable within it).
  std::string data = ResolveDataDirArg(o.data);
  std::unique_ptr<Store> store;
  std::string key;
  if (!data.empty()) {
    auto env = OpenEnv(data);
    if (!env.ok()) return BadInput("data dir " + data + ": " + env.status().message());
    auto k = env->dir.LoadPseudonymKey();
    if (!k.ok()) return BadInput("data dir " + data + ": " + k.status().message());
    key = std::move(k).value();
    store = std::move(env->store);
  } else {
    key = Pseudonymizer::GenerateKey();
  }
  Pseudonymizer pseudonymizer(std::move(key));

  detect::World world;
  uint64_t registry_rejected = 0;
  auto registered = ingest::LoadRegistryFile(o.registry, pseudonymizer, &world, [&](uint64_t line, const Status& s) {
    std::fprintf(stderr, "%s:%" PRIu64 ": %s\n", o.registry.c_str(), line, s.message().c_str());
    ++registry_rejected;
  });
  if (!registered.ok()) return BadInput(registered.status().message());

  // A world export (~40 M rows) takes a while: progress for big files.
  auto cells = CellDb::Load(o.cells, [](uint64_t rows, uint64_t bytes, uint64_t total) {
    if (total >= (64ull << 20))
      std::fprintf(stderr, "cells: %" PRIu64 " rows loaded (%.0f%% of the file)\n", rows, 100.0 * bytes / total);
  });
  if (!cells.ok()) return BadInput(cells.status().message());
  const size_t cell_count = cells->size();
  world.SetCells(std::move(cells).value());

  auto rules = detect::LoadRulesOrDefault(o.rules);
  if (!rules.ok()) return BadInput("rules: " + rules.status().message());

  if (store) {
    ingest::SeedOptions seed;  // registry from the file; endpoints and legacy credentials from the store
    if (Status s = ingest::SeedFromStore(*store, seed, &world, &*rules); !s.ok()) {
      return BadInput("data dir " + data + ": " + s.message());
    }
  }

  auto reader = ingest::JsonLinesReader::Open(o.events);
  if (!reader.ok()) return BadInput(reader.status().message());

  std::FILE* out = std::fopen(o.alerts.c_str(), "w");
  if (!out) return BadInput("cannot write " + o.alerts + ": " + std::strerror(errno));
  static char out_buffer[1 << 20];
  std::setvbuf(out, out_buffer, _IOFBF, sizeof out_buffer);

  std::map<std::string, uint64_t> alerts_per_rule;
  bool write_failed = false;
  detect::Engine engine(std::move(world), std::move(rules).value(), [&](const detect::Alert& alert) {
    std::string line = alert.ToJson();
    line.push_back('\n');
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) write_failed = true;
    ++alerts_per_rule[alert.rule];
  });

  ingest::EventDecoder decoder(pseudonymizer);
  // Identities no detector reads are checked and wiped, not derived.
  decoder.set_secondary_ids(engine.ReadsSecondaryIds());
  ingest::JsonLinesReader::Line line;
  uint64_t per_type[static_cast<size_t>(detect::EventType::kLast) + 1] = {};
  uint64_t events = 0, unknown = 0, malformed = 0, blank = 0;

  // Events are decoded a few lines ahead of the engine, in file order, so
  // that the World records they will touch can be prefetched: at fleet
  // scale the engine waits on memory more than it computes (BENCHMARKS.md).
  constexpr size_t kAhead = 8;
  std::array<detect::Event, kAhead> ring;
  size_t head = 0, pending = 0;
  auto process_next = [&] {
    const detect::Event& e = ring[head];
    engine.Process(e);
    ++events;
    ++per_type[static_cast<size_t>(e.type)];
    head = (head + 1) % kAhead;
    --pending;
  };

  const auto loop_start = std::chrono::steady_clock::now();
  const double cpu_start = CpuSeconds();
  while ((*reader)->Next(&line)) {
    if (line.oversized) {
      std::fprintf(stderr, "%s:%" PRIu64 ": line longer than %zu bytes (oversized)\n", o.events.c_str(),
                   line.number, decoder.limits().max_line_bytes);
      ++malformed;
      continue;
    }
    std::string_view text(line.data, line.size);
    if (text.find_first_not_of(" \t") == std::string_view::npos) {
      ++blank;
      continue;
    }
    detect::Event& next = ring[(head + pending) % kAhead];
    switch (decoder.Decode(line.data, line.size, &next)) {
      case ingest::DecodeResult::kOk:
        next.line = line.number;
        engine.Prefetch(next, 0);
        if (++pending == kAhead) {
          engine.Prefetch(ring[(head + 4) % kAhead], 1);
          engine.Prefetch(ring[(head + 2) % kAhead], 2);
          process_next();
        }
        break;
      case ingest::DecodeResult::kUnknownType:
        ++unknown;
        break;
      case ingest::DecodeResult::kMalformed:
        std::fprintf(stderr, "%s:%" PRIu64 ": %s\n", o.events.c_str(), line.number, decoder.error().c_str());
        ++malformed;
        break;
    }
  }
  while (pending > 0) process_next();
  engine.Flush(std::numeric_limits<UnixMillis>::max());  // timers still pending at the end of the file
  const auto loop_end = std::chrono::steady_clock::now();
  const double loop_cpu = CpuSeconds() - cpu_start;
  if (!(*reader)->status().ok()) {
    std::fclose(out);
    return BadInput(o.events + ": " + (*reader)->status().message());
  }
  if (std::fclose(out) != 0) write_failed = true;
  if (write_failed) {
    std::fprintf(stderr, "femtoguard replay: writing %s failed: %s\n", o.alerts.c_str(), std::strerror(errno));
    return 1;
  }

  detect::EngineStats st = engine.stats();
  double loop_s = Seconds(loop_end - loop_start);
  std::printf("replay: %zu devices registered (%" PRIu64 " registry lines rejected), %zu cells\n", *registered,
              registry_rejected, cell_count);
  std::printf("events: %" PRIu64 " processed in %.3f s (%.0f events/s; %.3f CPU s, %.0f events per CPU-second), %.3f s in all\n",
              events, loop_s, loop_s > 0 ? events / loop_s : 0.0, loop_cpu, loop_cpu > 0 ? events / loop_cpu : 0.0,
              Seconds(loop_end - start));
  for (size_t t = 0; t < std::size(per_type); ++t) {
    if (per_type[t]) {
      std::printf("  %-16s %" PRIu64 "\n", std::string(detect::EventTypeName(static_cast<detect::EventType>(t))).c_str(),
                  per_type[t]);
    }
  }
  std::printf("  unknown types    %" PRIu64 " (skipped)\n", unknown);
  std::printf("  malformed        %" PRIu64 " (reported above, skipped)\n", malformed);
  if (blank) std::printf("  blank lines      %" PRIu64 "\n", blank);
  std::printf("alerts: %" PRIu64 " written to %s (%" PRIu64 " duplicates suppressed)\n", st.alerts, o.alerts.c_str(),
              st.suppressed);
  for (const auto& [rule, n] : alerts_per_rule) std::printf("  %-18s %" PRIu64 "\n", rule.c_str(), n);
  std::printf("state: %zu devices, %zu subscribers; world ~%zu bytes, detectors ~%zu bytes\n", st.devices,
              st.subscribers, st.world_bytes, st.detector_bytes);
  return 0;
}

}  // namespace

void RegisterReplayCommand(CLI::App& app, Program& program) {
  auto* cmd = app.add_subcommand(
      "replay", "offline forensic replay: registry, cells and events from files, alerts as JSON Lines");
  auto o = std::make_shared<ReplayOptions>();
  cmd->add_option("--registry", o->registry, "registry.jsonl (DESIGN.md 3.2)");
  cmd->add_option("--cells", o->cells, "cells.csv, OpenCellID layout (DESIGN.md 3.3)");
  cmd->add_option("--events", o->events, "events.jsonl (DESIGN.md 3.4); - for stdin");
  cmd->add_option("--alerts", o->alerts, "where to write the alerts, JSON Lines (DESIGN.md 3.5)");
  cmd->add_option("--rules", o->rules, "rules file (default: the shipped rules/default.yaml)");
  AddDataOption(cmd, &o->data);
  cmd->add_option("--bus", o->bus,
                  "distributed replay over NATS JetStream: nats://HOST[:PORT][,...] (docs/stream.md); needs --data");
  cmd->add_option("--workers", o->workers, "with --bus: worker processes to start here (0: only publish; join workers elsewhere)");
  cmd->add_option("--partitions", o->partitions, "with --bus: partitions of the run (default 16)")->check(CLI::Range(1, 1024));
  cmd->add_option("--bus-replicas", o->replicas, "with --bus: replicas of the run's streams (default 1)")->check(CLI::Range(1, 5));
  cmd->add_option("--join", o->join, "with --bus: work on the partitions of run RUN (a worker)");
  cmd->add_option("--expect-workers", o->expect_workers, "with --join: how many workers share the run (each takes its share at once)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--run", o->run, "with --bus: the run id (default: random)");
  cmd->add_flag("--keep", o->keep, "with --bus: keep the run's streams afterwards");
  cmd->callback([&program, o] {
    program.action = [o] {
      if (!o->join.empty()) return RunBusWorker(*o);
      if (!o->bus.empty()) return RunBusReplay(*o);
      return RunReplay(*o);
    };
  });
}

}  // namespace fg::cli
