#pragma once

// The macro cell database: OpenCellID CSV (DESIGN.md §3.3), header included,
// so that real dumps load as they are:
//   radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
// `unit` carries the PCI for LTE/NR; `cell` is the ECI (LTE) or NCI (NR);
// `area` the TAC. The EARFCN is not in OpenCellID's layout: cells match on
// PCI alone when a report has no ECI.
//
// Spatial queries use a fixed grid of ~1 km squares. Immutable after Load:
// thread-safe for readers.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg {

struct Cell {
  std::string radio;  // GSM, UMTS, LTE, NR
  int mcc = 0;
  int mnc = 0;
  uint32_t area = 0;   // TAC / LAC
  uint64_t cell = 0;   // ECI / NCI / CI
  int pci = -1;        // from `unit`; -1 when absent
  double lon = 0;
  double lat = 0;
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
  static Result<CellDb> Load(const std::string& path);

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
  std::vector<Cell> cells_;
  std::unique_ptr<Index> index_;
};

}  // namespace fg
