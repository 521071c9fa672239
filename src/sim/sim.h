#pragma once

// The fleet simulator (`femtoguard sim`): writes a synthetic operator's
// world - registry.jsonl, cells.csv, events.jsonl (sorted by ts) and the
// ground truth truth.jsonl - for one scenario of the femtocell incident
// class. docs/simulator.md describes the world; docs/detection.md fixes what
// each label means. Deterministic: the same options give byte-identical
// files on every run and platform. Each call keeps its own state (calls on
// different threads with different out_dir are independent); one call uses
// two threads (formatting, and a writer).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace fg::sim {

struct SimOptions {
  std::string scenario = "benign";  // see ScenarioNames()
  uint32_t devices = 1000;          // registered femtocells (>= 100)
  uint32_t subscribers = 0;         // 0: three per device
  uint32_t days = 2;                // simulated days (1..60)
  uint64_t seed = 1;
  // Start of the simulated time; rounded down to the local (KST, UTC+9)
  // midnight so that days follow people's routines.
  UnixMillis start_ms = 1740927600000;  // 2025-03-03T00:00:00+09:00, a Monday
  std::string out_dir;
};

struct SimSummary {
  uint64_t devices = 0;  // registry lines
  uint64_t subscribers = 0;
  uint64_t cells = 0;
  uint64_t events = 0;
  uint64_t labels = 0;  // truth lines after the meta line
  uint64_t event_bytes = 0;
  UnixMillis from_ms = 0, to_ms = 0;
};

// kt-2025, clone, decommissioned, rogue-radio, stale-endpoint, benign, all.
const std::vector<std::string_view>& ScenarioNames();

// Checks the options, creates out_dir if needed and writes the four files.
Result<SimSummary> RunSimulation(const SimOptions& options);

}  // namespace fg::sim
