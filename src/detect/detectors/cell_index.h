#pragma once

// Cells of the cell database by PCI, for the detectors that must say, per
// heard or reported cell, "is there a registered cell with this PCI near
// here" without a spatial query per cell (CellDb::Near computes a
// great-circle distance for every cell of every grid square in range and
// sorts: too slow per meas.report or rem.scan). Built once, lazily, from the
// World's CellDb; rebuilt if the World is handed another database.
// Not thread-safe: one per detector instance.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/celldb.h"
#include "detect/detectors/geo.h"

namespace fg::detect::detectors {

class PciIndex {
 public:
  void Sync(const CellDb& db) {
    if (db_ == &db && size_ == db.size()) return;
    db_ = &db;
    size_ = db.size();
    by_pci_.clear();
    const std::vector<Cell>& cells = db.cells();
    for (uint32_t i = 0; i < cells.size(); ++i) {
      int pci = cells[i].pci;
      if (pci < 0 || pci > kMaxPci) continue;
      if (by_pci_.size() <= static_cast<size_t>(pci)) by_pci_.resize(pci + 1);
      by_pci_[pci].push_back(i);
    }
  }

  // A cell with this PCI (and this PLMN, unless mcc is 0) within radius_m
  // of `ref`.
  bool AnyWithin(const GeoRef& ref, int pci, int mcc, int mnc, double radius_m) const {
    if (pci < 0 || static_cast<size_t>(pci) >= by_pci_.size()) return false;
    const double r2 = radius_m * radius_m;
    const std::vector<Cell>& cells = db_->cells();
    for (uint32_t i : by_pci_[pci]) {
      const Cell& c = cells[i];
      if (mcc != 0 && (c.mcc != mcc || c.mnc != mnc)) continue;
      if (ref.DistanceSquaredTo(c.lat, c.lon) <= r2) return true;
    }
    return false;
  }

  size_t MemoryBytes() const {
    size_t n = by_pci_.capacity() * sizeof(std::vector<uint32_t>);
    for (const auto& v : by_pci_) n += v.capacity() * sizeof(uint32_t);
    return n;
  }

 private:
  static constexpr int kMaxPci = 4095;
  const CellDb* db_ = nullptr;
  size_t size_ = 0;
  std::vector<std::vector<uint32_t>> by_pci_;
};

}  // namespace fg::detect::detectors

namespace fg::detect::detectors {

// "Is there a registered cell with this PCI within radius_m of this UE?"
// answered from per-grid-square bitsets, computed lazily the first time a
// report comes from a square: PCIs of cells within radius_m of every point
// of the square (surely) and of some point (possibly). Only PCIs in between
// fall back to the exact per-cell check. Memory: 256 B per square that
// reports come from (~1 km squares: a metropolitan area is a few thousand),
// at most kMaxSquares; past that a square is computed per report, uncached.
class MacroCoverage {
 public:
  explicit MacroCoverage(double radius_m) : radius_m_(radius_m) {}
  static constexpr int kBits = 1024;  // LTE PCIs < 504, NR < 1008

  void Sync(const CellDb& db) {
    if (db_ != &db || size_ != db.size()) {
      db_ = &db;
      size_ = db.size();
      squares_.clear();
    }
    pci_.Sync(db);
  }

  // The square holding `ue`; look it up once per report, then ask
  // ExplainsPci for each neighbour.
  struct Square;
  const Square& SquareOf(const GeoRef& ue) { return SquareOf(ue.lat, ue.lon); }

  bool ExplainsPci(const Square& sq, const GeoRef& ue, int pci) const {
    if (pci < 0) return false;
    if (pci < kBits) {
      uint64_t bit = uint64_t{1} << (pci & 63);
      if (sq.surely[pci >> 6] & bit) return true;
      if (!(sq.possibly[pci >> 6] & bit)) return false;
    }
    return pci_.AnyWithin(ue, pci, 0, 0, radius_m_);
  }

  size_t MemoryBytes() const { return pci_.MemoryBytes() + squares_.size() * (sizeof(Square) + 32); }

 private:
  static constexpr double kSquareDeg = 0.01;
  static constexpr double kGuardM = 2;  // borderline cells take the exact path
  static constexpr size_t kMaxSquares = 1 << 18;  // 64 MB: ~260,000 km2 of reporting area

 public:
  struct Square {
    uint64_t surely[kBits / 64] = {};
    uint64_t possibly[kBits / 64] = {};
  };

 private:

  static int64_t Index(double deg) { return static_cast<int64_t>(std::floor(deg / kSquareDeg)); }

  const Square& SquareOf(double lat, double lon) {
    int64_t a = Index(lat), b = Index(lon);
    uint64_t key = (static_cast<uint64_t>(a) << 32) ^ static_cast<uint64_t>(static_cast<uint32_t>(b));
    if (auto it = squares_.find(key); it != squares_.end()) return it->second;
    if (squares_.size() >= kMaxSquares) {  // reports from all over the map: stay bounded, stay exact
      scratch_ = Square{};
      Fill(a, b, &scratch_);
      return scratch_;
    }
    auto it = squares_.try_emplace(key).first;
    Fill(a, b, &it->second);
    return it->second;
  }

  void Fill(int64_t a, int64_t b, Square* sq) const {
    const double lat0 = a * kSquareDeg, lat1 = (a + 1) * kSquareDeg;
    const double lon0 = b * kSquareDeg, lon1 = (b + 1) * kSquareDeg;
    const GeoRef centre((lat0 + lat1) / 2, (lon0 + lon1) / 2);
    const double half_diag = centre.DistanceTo(lat1, lon1);
    const std::vector<Cell>& cells = db_->cells();
    for (uint32_t i : db_->Near(centre.lat, centre.lon, radius_m_ + half_diag + kGuardM + 10)) {
      const Cell& c = cells[i];
      if (c.pci < 0 || c.pci >= kBits) continue;
      const GeoRef at(c.lat, c.lon);
      double dmin = at.DistanceTo(std::clamp(c.lat, lat0, lat1), std::clamp(c.lon, lon0, lon1));
      double dmax = std::max({at.DistanceTo(lat0, lon0), at.DistanceTo(lat0, lon1), at.DistanceTo(lat1, lon0),
                              at.DistanceTo(lat1, lon1)});
      uint64_t bit = uint64_t{1} << (c.pci & 63);
      if (dmin <= radius_m_ + kGuardM) sq->possibly[c.pci >> 6] |= bit;
      if (dmax <= radius_m_ - kGuardM) sq->surely[c.pci >> 6] |= bit;
    }
  }

  double radius_m_;
  const CellDb* db_ = nullptr;
  size_t size_ = 0;
  PciIndex pci_;
  std::unordered_map<uint64_t, Square> squares_;
  Square scratch_;  // past kMaxSquares
};

}  // namespace fg::detect::detectors
