#include "sim/cells.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace fg::sim {

namespace {

constexpr double kIsd = 1500;  // inter-site distance
constexpr double kPi = 3.14159265358979323846;
constexpr double kHearRadius = 1800;

// 1 - cos(65 degrees): the sector pattern is 12 dB down there.
constexpr double kOneMinusCos65 = 1 - 0.42261826174069944;

}  // namespace

double CellLayout::PathRsrp(double d_m, double eirp_dbm) {
  double d = std::max(d_m, 20.0);
  return eirp_dbm - (128.1 + 37.6 * std::log10(d / 1000.0));
}

int CellLayout::BucketOf(double v) const {
  int b = static_cast<int>(std::floor((v - kOrigin) / kBucketM));
  return std::clamp(b, 0, kBuckets - 1);
}

void CellLayout::Build(uint64_t seed, int64_t updated_before_s) {
  cells_.clear();
  for (auto& b : buckets_) b.assign(kBuckets * kBuckets, {});
  geo_.assign(kBuckets * kBuckets, {});
  const double row_h = kIsd * std::sqrt(3.0) / 2;
  for (int op = 0; op < 3; ++op) {
    Rng rng(seed, Stream::kCells, static_cast<uint64_t>(op));
    const Operator& o = kOperators[op];
    // Each operator's grid is shifted: co-siting is the exception.
    const double sx = op * 500.0, sy = op * 433.0;
    const int pci_offset = op * 53;
    uint32_t site_index = 0;
    for (int j = 0;; ++j) {
      double y = -2000 + sy + j * row_h;
      if (y > 32000) break;
      for (int i = 0;; ++i) {
        double x = -2000 + sx + i * kIsd + ((j & 1) ? kIsd / 2 : 0);
        if (x > 32000) break;
        Point site{x + rng.Uniform(-120, 120), y + rng.Uniform(-120, 120)};
        uint32_t enb = o.enb_base + site_index++;
        int group = (i + 13 * j + pci_offset) % (kMacroPciLimit / 3);
        int district = Area::District(site);
        double az0 = rng.Uniform(0, 120);
        int64_t created = 1300000000 + static_cast<int64_t>(rng.Below(300000000));
        for (int carrier = 0; carrier < 2; ++carrier) {
          for (int sector = 0; sector < 3; ++sector) {
            MacroCell c;
            c.site = site;
            c.azimuth_deg = static_cast<float>(std::fmod(az0 + 120.0 * sector, 360.0));
            c.op = static_cast<uint8_t>(op);
            c.sector = static_cast<uint8_t>(sector);
            c.carrier = static_cast<uint8_t>(carrier);
            c.pci = group * 3 + sector;
            c.earfcn = o.earfcn[carrier];
            c.tac = o.tac_base + static_cast<uint32_t>(district);
            c.eci = static_cast<uint64_t>(enb) * 256 + static_cast<uint64_t>(carrier * 16 + sector + 1);
            // OpenCellID positions are estimates: pulled toward the sector's azimuth.
            double az = c.azimuth_deg * kPi / 180.0;
            double off = rng.Uniform(40, 160);
            Point est{site.x + off * std::sin(az), site.y + off * std::cos(az)};
            c.lat = Area::Lat(est);
            c.lon = Area::Lon(est);
            c.range_m = static_cast<int>(rng.Range(600, 2600));
            c.samples = static_cast<int>(rng.Range(3, 900));
            c.created_s = created;
            c.updated_s = std::min<int64_t>(updated_before_s - 86400,
                                            created + static_cast<int64_t>(rng.Below(200000000)));
            if (c.updated_s < c.created_s) c.updated_s = c.created_s;
            uint32_t idx = static_cast<uint32_t>(cells_.size());
            cells_.push_back(c);
            buckets_[op][BucketOf(site.x) + kBuckets * BucketOf(site.y)].push_back(idx);
            if (op == kHomeOperator) {
              double az_rad = c.azimuth_deg * kPi / 180.0;
              geo_[BucketOf(site.x) + kBuckets * BucketOf(site.y)].push_back(
                  {static_cast<float>(site.x), static_cast<float>(site.y), static_cast<float>(std::sin(az_rad)),
                   static_cast<float>(std::cos(az_rad)), carrier == 1 ? 7.0f : 0.0f, idx});
            }
          }
        }
      }
    }
  }
  BuildFine();
}

namespace {

// RSRP (dBm, before fading) at offset (dx, dy) from a sector; NaN-free.
inline double SectorRsrp(double dx, double dy, double ux, double uy, double bonus) {
  double d2 = dx * dx + dy * dy;
  // Path loss from d^2 (one log, no sqrt): 37.6 log10(d/1000) = 18.8 log10(d^2) - 112.8.
  double pl = 128.1 + 18.8 * std::log10(std::max(d2, 400.0)) - 112.8;
  double penalty = 0;
  if (d2 > 3600) {  // under the mast every sector is loud
    double cos_off = (dx * ux + dy * uy) / std::sqrt(d2);
    penalty = std::min(12.0 * (1 - cos_off) / kOneMinusCos65, 20.0);
  }
  return 30.0 - pl - penalty + bonus;
}

}  // namespace

void CellLayout::BuildFine() {
  home_geo_.clear();
  for (const auto& bucket : geo_) home_geo_.insert(home_geo_.end(), bucket.begin(), bucket.end());
  std::sort(home_geo_.begin(), home_geo_.end(), [](const Geo& a, const Geo& b) { return a.cell < b.cell; });
  assert(home_geo_.size() < kNoCandidate);
  std::vector<uint16_t> local(cells_.size(), kNoCandidate);
  for (size_t i = 0; i < home_geo_.size(); ++i) local[home_geo_[i].cell] = static_cast<uint16_t>(i);
  fine_.assign(static_cast<size_t>(kFine) * kFine * kCandidates, kNoCandidate);
  std::vector<std::pair<double, const Geo*>> all;
  for (int fy = 0; fy < kFine; ++fy) {
    for (int fx = 0; fx < kFine; ++fx) {
      const double px = kOrigin + (fx + 0.5) * kFineM, py = kOrigin + (fy + 0.5) * kFineM;
      all.clear();
      const int bx0 = BucketOf(px - kHearRadius), bx1 = BucketOf(px + kHearRadius);
      const int by0 = BucketOf(py - kHearRadius), by1 = BucketOf(py + kHearRadius);
      for (int by = by0; by <= by1; ++by) {
        for (int bx = bx0; bx <= bx1; ++bx) {
          for (const Geo& g : geo_[bx + kBuckets * by]) {
            double dx = px - g.x, dy = py - g.y;
            if (dx * dx + dy * dy > kHearRadius * kHearRadius) continue;
            all.push_back({SectorRsrp(dx, dy, g.ux, g.uy, g.bonus), &g});
          }
        }
      }
      size_t n = std::min<size_t>(all.size(), kCandidates);
      std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                        [](const auto& a, const auto& b) {
                          return a.first != b.first ? a.first > b.first : a.second->cell < b.second->cell;
                        });
      uint16_t* slot = &fine_[(static_cast<size_t>(fy) * kFine + static_cast<size_t>(fx)) * kCandidates];
      for (size_t i = 0; i < n; ++i) slot[i] = local[all[i].second->cell];
    }
  }
}

void CellLayout::Hear(Point p, int op, uint64_t noise_key, int max_n, std::vector<HeardCell>* out) const {
  out->clear();
  auto consider = [&](uint32_t idx, double dx, double dy, double ux, double uy, double bonus) {
    double rsrp = SectorRsrp(dx, dy, ux, uy, bonus);
    uint64_t h = noise_key ^ (static_cast<uint64_t>(idx) * 0x9E3779B97F4A7C15ull);
    h = SplitMix64(h);
    rsrp += static_cast<double>(h % 81) / 10.0 - 4.0;
    if (rsrp < -118) return;
    out->push_back({idx, static_cast<int>(std::floor(std::min(rsrp, -44.0) + 0.5))});
  };
  if (op == kHomeOperator) {
    int fx = std::clamp(static_cast<int>(std::floor((p.x - kOrigin) / kFineM)), 0, kFine - 1);
    int fy = std::clamp(static_cast<int>(std::floor((p.y - kOrigin) / kFineM)), 0, kFine - 1);
    const uint16_t* slot = &fine_[(static_cast<size_t>(fy) * kFine + static_cast<size_t>(fx)) * kCandidates];
    for (int i = 0; i < kCandidates && slot[i] != kNoCandidate; ++i) {
      const Geo& g = home_geo_[slot[i]];
      consider(g.cell, p.x - g.x, p.y - g.y, g.ux, g.uy, g.bonus);
    }
  } else {
    const int bx0 = BucketOf(p.x - kHearRadius), bx1 = BucketOf(p.x + kHearRadius);
    const int by0 = BucketOf(p.y - kHearRadius), by1 = BucketOf(p.y + kHearRadius);
    for (int by = by0; by <= by1; ++by) {
      for (int bx = bx0; bx <= bx1; ++bx) {
        for (uint32_t idx : buckets_[op][bx + kBuckets * by]) {
          const MacroCell& c = cells_[idx];
          double dx = p.x - c.site.x, dy = p.y - c.site.y;
          if (dx * dx + dy * dy > kHearRadius * kHearRadius) continue;
          double az = c.azimuth_deg * kPi / 180.0;
          consider(idx, dx, dy, std::sin(az), std::cos(az), c.carrier == 1 ? 7.0 : 0.0);
        }
      }
    }
  }
  auto stronger = [](const HeardCell& a, const HeardCell& b) {
    return a.rsrp != b.rsrp ? a.rsrp > b.rsrp : a.cell < b.cell;
  };
  if (static_cast<int>(out->size()) > max_n) {
    std::partial_sort(out->begin(), out->begin() + max_n, out->end(), stronger);
    out->resize(max_n);
  } else {
    std::sort(out->begin(), out->end(), stronger);
  }
}

bool CellLayout::PciUsedNear(Point p, double radius_m, int pci) const {
  // cells.csv positions lie up to 160 m from the site: widen the bucket scan.
  const double r = radius_m + 200;
  const int bx0 = BucketOf(p.x - r), bx1 = BucketOf(p.x + r);
  const int by0 = BucketOf(p.y - r), by1 = BucketOf(p.y + r);
  for (int op = 0; op < 3; ++op) {
    for (int by = by0; by <= by1; ++by) {
      for (int bx = bx0; bx <= bx1; ++bx) {
        for (uint32_t idx : buckets_[op][bx + kBuckets * by]) {
          const MacroCell& c = cells_[idx];
          if (c.pci != pci) continue;
          // cells.csv positions are what a detector sees: check those too.
          Point est{(c.lon - Area::kCenterLon) * Area::MetersPerDegLon() + Area::kSizeM / 2,
                    (c.lat - Area::kCenterLat) * Area::MetersPerDegLat() + Area::kSizeM / 2};
          if (Dist(c.site, p) <= radius_m || Dist(est, p) <= radius_m) return true;
        }
      }
    }
  }
  return false;
}

int CellLayout::FreePci(Point p, double radius_m, Rng& rng, int avoid) const {
  // Every macro-range PCI in a random order, then the reserved range.
  int order[kMacroPciLimit];
  for (int i = 0; i < kMacroPciLimit; ++i) order[i] = i;
  for (int i = 0; i < kMacroPciLimit; ++i) {
    int j = i + static_cast<int>(rng.Below(static_cast<uint64_t>(kMacroPciLimit - i)));
    std::swap(order[i], order[j]);
    if (order[i] != avoid && !PciUsedNear(p, radius_m, order[i])) return order[i];
  }
  for (;;) {
    int pci = kMacroPciLimit + static_cast<int>(rng.Below(504 - kMacroPciLimit));
    if (pci != avoid) return pci;
  }
}

}  // namespace fg::sim
