#pragma once

// Building the detection engine's starting state from outside data: the
// registry file (replay) or the store (serve, and replay --data).
//
//   detect::World world;
//   LoadRegistryFile("registry.jsonl", pseudonymizer, &world, report_bad_line);
//   world.SetCells(std::move(cells));
//   auto rules = detect::LoadRulesOrDefault(rules_path);   // detect/default_rules.h
//   SeedFromStore(store, {.devices = true, .blocks = true}, &world, &*rules);
//   detect::Engine engine(std::move(world), std::move(*rules), sink);
//
// Functions, no state: thread-safety is that of the arguments.

#include <cstdint>
#include <functional>
#include <string>

#include "common/pseudonym.h"
#include "common/status.h"
#include "detect/rules.h"
#include "detect/world.h"
#include "store/store.h"

namespace fg::ingest {

// Registers every valid line of a registry.jsonl (DESIGN.md §3.2) in
// `world`; CSG IMSIs are pseudonymized by ParseRegistryLine. A bad line is
// handed to `on_bad_line` (1-based number, why) and skipped. Returns the
// number of devices registered; an error only when the file cannot be read.
Result<size_t> LoadRegistryFile(const std::string& path, const Pseudonymizer& pseudonymizer, detect::World* world,
                                const std::function<void(uint64_t line, const Status& why)>& on_bad_line);

struct SeedOptions {
  bool devices = false;  // register every device of the store (serve)
  bool blocks = false;   // device blocks -> blocked, payment blocks -> payments_held (serve)
  // Only the blocks placed by hand (no alert id): a partition rebuilt from
  // the stream's start raises its alerts, and their blocks, again in event
  // time; seeding them would apply them before their time.
  bool manual_blocks_only = false;
  // Always: endpoint statuses, and the store's legacy credentials merged
  // into the `legacy_credentials` params of cert.legacy and cert.shared
  // ({fp, cutoff (RFC 3339)}).
};

// The store roles the seed reads. A node passes its Store.
struct SeedSources {
  DeviceRegistry& devices;
  EndpointRegistry& endpoints;
  EnrolmentCredentials& credentials;
  ResponseLedger& blocks;

  SeedSources(DeviceRegistry& d, EndpointRegistry& e, EnrolmentCredentials& c, ResponseLedger& b)
      : devices(d), endpoints(e), credentials(c), blocks(b) {}
  SeedSources(Store& store)  // NOLINT(google-explicit-constructor): every role of one store
      : SeedSources(store, store, store, store) {}
};

Status SeedFromStore(SeedSources store, const SeedOptions& options, detect::World* world, detect::RuleSet* rules);

}  // namespace fg::ingest
