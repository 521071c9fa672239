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
#include <deque>
#include <unordered_map>
#include <vector>

#include "common/celldb.h"
#include "common/u64_index.h"
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

// One key for a square (a, b) of a lat/lon grid, for hash tables of squares.
inline uint64_t GridKey(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) ^ static_cast<uint64_t>(static_cast<uint32_t>(b));
}

// "Is there a registered cell with this PCI within radius_m of this UE?"
// answered from per-grid-square bitsets, computed lazily the first time a
// report comes from a square: PCIs of cells within radius_m of every point
// of the square (surely) and of some point (possibly). Only PCIs in between
// fall back to the exact per-cell check. Memory: 256 B per square that
// reports come from (~1 km squares: a metropolitan area is a few thousand),
// at most kMaxSquares; past that a square is computed per report, uncached.
//
// At fleet scale reports come from tens of thousands of squares, so both
// the lookup and the first computation of a square are on the hot path:
// squares sit in an open-addressed table (one probe, no node per square)
// and a square is computed from the cells of a few coarse buckets with
// planar distances in the square's own frame (geo.h), not through
// CellDb::Near (a ~1 km grid probe per km2 of reach and a great-circle
// distance per cell).
class MacroCoverage {
 public:
  explicit MacroCoverage(double radius_m) : radius_m_(radius_m) {}
  static constexpr int kBits = 1024;  // LTE PCIs < 504, NR < 1008

  void Sync(const CellDb& db) {
    if (db_ != &db || size_ != db.size()) {
      db_ = &db;
      size_ = db.size();
      index_.Clear();
      squares_.clear();
      BuildBuckets();
    }
    pci_.Sync(db);
  }

  struct Square {
    uint64_t surely[kBits / 64] = {};
    uint64_t possibly[kBits / 64] = {};
  };

  // The square holding `ue`; look it up once per report, then ask
  // ExplainsPci for each neighbour. The reference is valid until the next
  // SquareOf.
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

  // A hint (see Detector::Prefetch): stage 0 the square's table slot, a
  // later stage the square's bitsets. Only once Sync has run.
  void Prefetch(double lat, double lon, int stage) const {
    const uint64_t key = GridKey(Index(lat, kSquareDeg), Index(lon, kSquareDeg));
    if (stage == 0) {
      index_.Prefetch(key);
    } else if (const Square* sq = Cached(key)) {
      const char* p = reinterpret_cast<const char*>(sq);
      for (size_t off = 0; off < sizeof(Square); off += 64) __builtin_prefetch(p + off);
    }
  }

  size_t MemoryBytes() const {
    size_t n = pci_.MemoryBytes() + index_.MemoryBytes() + squares_.size() * sizeof(Square);
    for (const auto& [k, v] : buckets_) n += 48 + v.capacity() * sizeof(uint32_t);
    return n;
  }

 private:
  static constexpr double kSquareDeg = 0.01;
  static constexpr double kBucketDeg = 0.05;  // cells for Fill: ~5 km buckets, a few per square
  // Borderline cells take the exact path. The planar distances here and in
  // the exact check (from the UE) differ by well under a metre at 5 km.
  static constexpr double kGuardM = 2;
  static constexpr size_t kMaxSquares = 1 << 18;  // 64 MB: ~260,000 km2 of reporting area

  static int64_t Index(double deg, double step) { return static_cast<int64_t>(std::floor(deg / step)); }

  const Square& SquareOf(double lat, double lon) {
    const int64_t a = Index(lat, kSquareDeg), b = Index(lon, kSquareDeg);
    const uint64_t key = GridKey(a, b);
    if (const Square* sq = Cached(key)) return *sq;
    if (squares_.size() >= kMaxSquares) {  // reports from all over the map: stay bounded, stay exact
      scratch_ = Square{};
      Fill(a, b, &scratch_);
      return scratch_;
    }
    index_.Insert(key, static_cast<uint32_t>(squares_.size()));
    squares_.emplace_back();
    Fill(a, b, &squares_.back());
    return squares_.back();
  }

  const Square* Cached(uint64_t key) const {
    const uint32_t i = index_.Find(key);
    return i == U64Index::kAbsent ? nullptr : &squares_[i];
  }

  void BuildBuckets() {
    buckets_.clear();
    const std::vector<Cell>& cells = db_->cells();
    for (uint32_t i = 0; i < cells.size(); ++i) {
      const Cell& c = cells[i];
      if (c.pci < 0 || c.pci >= kBits) continue;
      buckets_[GridKey(Index(c.lat, kBucketDeg), Index(c.lon, kBucketDeg))].push_back(i);
    }
  }

  void Fill(int64_t a, int64_t b, Square* sq) const {
    const double lat0 = a * kSquareDeg, lat1 = (a + 1) * kSquareDeg;
    const double lon0 = b * kSquareDeg, lon1 = (b + 1) * kSquareDeg;
    const GeoRef centre((lat0 + lat1) / 2, (lon0 + lon1) / 2);
    // The square is [-hx, hx] x [-hy, hy] metres in its centre's frame.
    const double hy = (lat1 - lat0) / 2 * kMetresPerDegree;
    const double hx = (lon1 - lon0) / 2 * centre.cos_lat * kMetresPerDegree;
    const double outer = radius_m_ + kGuardM, inner = radius_m_ - kGuardM;
    const double reach = outer + std::hypot(hx, hy);
    const double dlat = reach / kMetresPerDegree;
    const double dlon = reach / (kMetresPerDegree * std::max(0.01, centre.cos_lat));
    const int64_t a_lo = Index(centre.lat - dlat, kBucketDeg), a_hi = Index(centre.lat + dlat, kBucketDeg);
    const int64_t b_lo = Index(centre.lon - dlon, kBucketDeg), b_hi = Index(centre.lon + dlon, kBucketDeg);
    const std::vector<Cell>& cells = db_->cells();
    auto visit = [&](uint32_t i) {
      const Cell& c = cells[i];
      double dl = c.lon - centre.lon;
      if (dl > 180) dl -= 360;
      if (dl < -180) dl += 360;
      const double x = std::abs(dl * centre.cos_lat * kMetresPerDegree);
      const double y = std::abs((c.lat - centre.lat) * kMetresPerDegree);
      const double ex = std::max(0.0, x - hx), ey = std::max(0.0, y - hy);  // nearest point
      const double fx = x + hx, fy = y + hy;                                // farthest corner
      const uint64_t bit = uint64_t{1} << (c.pci & 63);
      if (ex * ex + ey * ey <= outer * outer) sq->possibly[c.pci >> 6] |= bit;
      if (inner > 0 && fx * fx + fy * fy <= inner * inner) sq->surely[c.pci >> 6] |= bit;
    };
    if ((a_hi - a_lo + 1) * (b_hi - b_lo + 1) > static_cast<int64_t>(buckets_.size())) {
      for (const auto& [key, members] : buckets_)  // reach wider than the map (poles, huge radius)
        for (uint32_t i : members) visit(i);
      return;
    }
    for (int64_t i = a_lo; i <= a_hi; ++i) {
      for (int64_t j = b_lo; j <= b_hi; ++j) {
        auto it = buckets_.find(GridKey(i, j));
        if (it == buckets_.end()) continue;
        for (uint32_t c : it->second) visit(c);
      }
    }
  }

  double radius_m_;
  const CellDb* db_ = nullptr;
  size_t size_ = 0;
  PciIndex pci_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> buckets_;  // cells with a PCI, by kBucketDeg square
  U64Index index_;              // square key -> squares_ index
  std::deque<Square> squares_;  // stable: SquareOf hands out references
  Square scratch_;              // past kMaxSquares
};

}  // namespace fg::detect::detectors
