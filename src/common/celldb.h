#pragma once

// The macro cell database: OpenCellID CSV (DESIGN.md §3.3), loaded as the
// exports are published: the world file with its header line
//   radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
// and the per-country dumps without it, plain or gzip-compressed.
// `unit` carries the PCI for LTE/NR; `cell` is the ECI (LTE) or NCI (NR);
// `area` the TAC. The EARFCN is not in OpenCellID's layout: cells match on
// PCI alone when a report has no ECI.
//
// Spatial queries use a fixed grid of ~1 km squares. Immutable after Load:
// thread-safe for readers.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg {

// 64 bytes: the world file has ~40 M of them (docs/limits.md).
struct Cell {
  std::string_view radio;  // GSM, UMTS, LTE, NR (interned by the database)
  uint64_t cell = 0;   // ECI / NCI / CI
  double lon = 0;
  double lat = 0;
  int16_t mcc = 0;
  int16_t mnc = 0;
  uint32_t area = 0;   // TAC / LAC
  int32_t pci = -1;    // from `unit`; -1 when absent
  double range_m = 0;
};

// Great-circle distance in metres.
double DistanceMeters(double lat1, double lon1, double lat2, double lon2);

class CellDb {
 public:
  CellDb();
  ~CellDb();
  CellDb(CellDb&&) noexcept;
  CellDb& operator=(CellDb&&) noexcept;

  // Parses the CSV text. A malformed line is an error naming its line number
  // (strict: operators load a dump once and must know it loaded whole).
  static Result<CellDb> Parse(std::string_view csv);
  // Streams the file (plain or gzip, told apart by its content) without
  // holding its text. `progress`, when set, is called every kProgressRows
  // rows and at the end with (rows, bytes read, file size); bytes count the
  // compressed input of a gzip file.
  using LoadProgress = std::function<void(uint64_t rows, uint64_t bytes, uint64_t total_bytes)>;
  static constexpr uint64_t kProgressRows = 1'000'000;
  static Result<CellDb> Load(const std::string& path, const LoadProgress& progress = {});

  size_t size() const;
  const std::vector<Cell>& cells() const;

  // Indices into cells() of the cells within `radius_m` of (lat, lon).
  std::vector<uint32_t> Near(double lat, double lon, double radius_m) const;
  // The cell with this ECI/NCI, or nullptr.
  const Cell* FindByEci(uint64_t eci) const;
  // A hint for a caller that knows the ECIs to come (replay decodes a few
  // events ahead): stage 0 brings the ECI's index slot towards the cache,
  // a later stage (a few events on) the cell itself. Changes nothing.
  void PrefetchEci(uint64_t eci, int stage) const;
  // Indices of the cells of one tracking/location area of one PLMN, or
  // nullptr when the database has none.
  const std::vector<uint32_t>* CellsInArea(int mcc, int mnc, uint32_t area) const;

 private:
  struct Index;
  class Builder;
  std::vector<Cell> cells_;
  std::unique_ptr<Index> index_;
};

}  // namespace fg
