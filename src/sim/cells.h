#pragma once

// The simulated macro network: three LTE operators (mcc 450; mnc 5, 8, 6)
// each with a hexagonal site grid (1.5 km between sites), three sectors and
// two carriers per site. PCIs follow a reuse plan (same PCI no closer than
// ~16 km for one operator) over 0..479; 480..503 are reserved for small
// cells, as operators do, and never appear in cells.csv. The TAC is the
// operator's base plus the district of the site.
//
// Radio model (enough for plausible reports, not for RF planning): 3GPP
// urban macro path loss 128.1 + 37.6 log10(d_km), 30 dBm EIRP per resource
// element, a sector pattern of 12 dB at 65 degrees off boresight (parabolic
// in 1 - cos, capped at 20 dB), +7 dB on the low-band carrier and a +-4 dB
// deterministic per-(cell, report) variation.
//
// Immutable after Build: thread-safe for readers.

#include <cstdint>
#include <string>
#include <vector>

#include "sim/geo.h"
#include "sim/rng.h"

namespace fg::sim {

struct Operator {
  int mnc;
  const char* name;
  int earfcn[2];  // high band, low band
  uint32_t tac_base;
  uint32_t enb_base;
};

// The operator whose femtocells, subscribers and events are simulated (KT,
// mnc 8 - the operator of the seed incident); the others only appear in
// cells.csv.
inline constexpr int kHomeOperator = 1;
inline constexpr Operator kOperators[3] = {
    {5, "SKT", {1550, 2600}, 4608, 110000},
    {8, "KT", {1350, 3650}, 8960, 310000},
    {6, "LGU+", {100, 2500}, 13312, 510000},
};
inline constexpr int kMacroPciLimit = 480;  // 480..503 reserved for small cells

struct MacroCell {
  Point site;
  double lat = 0, lon = 0;  // as written to cells.csv (an estimate near the site)
  float azimuth_deg = 0;
  uint8_t op = 0, sector = 0, carrier = 0;
  int pci = 0;
  int earfcn = 0;
  uint32_t tac = 0;
  uint64_t eci = 0;
  int range_m = 0;
  int samples = 0;
  int64_t created_s = 0, updated_s = 0;
};

struct HeardCell {
  uint32_t cell = 0;  // index into CellLayout::cells()
  int rsrp = 0;       // dBm
};

class CellLayout {
 public:
  // `updated_before_s`: cells.csv `updated` values stay before this time.
  void Build(uint64_t seed, int64_t updated_before_s);

  const std::vector<MacroCell>& cells() const { return cells_; }

  // Cells of operator `op` audible at p (within ~1.8 km), strongest first,
  // at most max_n with RSRP >= -118 dBm. `noise_key` varies the fading per
  // report deterministically.
  void Hear(Point p, int op, uint64_t noise_key, int max_n, std::vector<HeardCell>* out) const;

  // True when any operator's cell within radius_m of p uses `pci`.
  bool PciUsedNear(Point p, double radius_m, int pci) const;
  // A PCI that no cell within radius_m uses, preferring the macro range; never `avoid`.
  int FreePci(Point p, double radius_m, Rng& rng, int avoid = -1) const;

  // RSRP (dBm) at distance d_m from a transmitter of the given EIRP per RE.
  static double PathRsrp(double d_m, double eirp_dbm);

 private:
  static constexpr double kOrigin = -3000;  // grid covers [-3 km, 33 km)
  static constexpr double kBucketM = 1000;
  static constexpr int kBuckets = 36;

  int BucketOf(double v) const;

  // What Hear needs, packed (it runs once per report).
  struct Geo {
    float x, y;    // site
    float ux, uy;  // boresight unit vector
    float bonus;   // carrier gain
    uint32_t cell;
  };

  std::vector<MacroCell> cells_;
  // buckets_[op][bx + by*kBuckets] -> cell indices
  std::vector<std::vector<uint32_t>> buckets_[3];
  std::vector<std::vector<Geo>> geo_;  // home operator's cells by bucket
  // The home operator's few strongest cells around each 200 m square (without
  // fading): a report only weighs these.
  static constexpr double kFineM = 200;
  static constexpr int kFine = 180;
  static constexpr int kCandidates = 12;
  // kCandidates per square: indices into home_geo_, kNoCandidate when unused.
  // 16-bit so that the whole grid (~0.8 MB) stays in cache.
  static constexpr uint16_t kNoCandidate = 0xffff;
  std::vector<uint16_t> fine_;
  std::vector<Geo> home_geo_;  // the home operator's cells
  void BuildFine();
};

}  // namespace fg::sim
