// cell.unregistered: a rogue radio seen only from the network side (3GPP
// TR 33.809): macro UEs' `meas.report` neighbours with a (pci, earfcn) - or
// an eci - that nothing registered explains where they were heard, reported
// by >= `min_reporters` (2) distinct subscribers within `window_s` (1 h)
// within `cluster_m` (2 km) of one another. A neighbour is explained by
//   - a cells.csv cell within `macro_radius_m` (5 km) of the reporting UE:
//     the same ECI when the report has one, else the same PCI (OpenCellID
//     has no EARFCN);
//   - or a registered femtocell that is active (or provisioned), not
//     blocked and not suspect, whose site is within `femto_radius_m` (300 m)
//     of the UE, when the PCI is inside [femto_pci_min, femto_pci_max]
//     (default: any PCI).
// Evidence: pci, earfcn (eci when reported), lat/lon (centroid of the
// reports), reporters; no device; one alert per (pci, earfcn).
//
// Does NOT fire for a neighbour that is a registered macro cell nearby or a
// registered femtocell at its site, nor for a single odd report (one
// subscriber, however many times), nor for reports far apart.

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "common/celldb.h"
#include "detect/detectors/cell_index.h"
#include "detect/detectors/common.h"
#include "detect/detectors/geo.h"

namespace fg::detect::detectors {
namespace {

// A report with neighbours, a subscriber and a UE position: the only kind
// this detector reads.
bool Explainable(const Event& e) {
  if (e.type != EventType::kMeasReport || e.neighbors.empty() || e.imsi.empty()) return false;
  return e.has_fix || e.lat != 0 || e.lon != 0;  // no UE position: nothing to explain against
}

class CellUnregistered final : public Detector {
 public:
  explicit CellUnregistered(const RuleParams& p)
      : macro_radius_m_(p.GetDouble("macro_radius_m", 5000)),
        femto_radius_m_(p.GetDouble("femto_radius_m", 300)),
        // Squares of half the radius: at fleet density (hundreds of sites
        // per km2) a 1 km square held hundreds of sites to measure per
        // report, and the search now starts at the UE's own square.
        grid_deg_(std::max(0.0005, femto_radius_m_ / kMetresPerDegree / 2)),
        femto_pci_min_(static_cast<int>(p.GetInt("femto_pci_min", -1))),
        femto_pci_max_(static_cast<int>(p.GetInt("femto_pci_max", -1))),
        cluster_m_(p.GetDouble("cluster_m", 2000)),
        min_reporters_(static_cast<size_t>(std::max<int64_t>(1, p.GetInt("min_reporters", 2)))),
        window_ms_(ParamSecondsAsMs(p, "window_s", 3600)),
        max_keys_(static_cast<size_t>(std::max<int64_t>(16, p.GetInt("max_tracked_cells", 65536)))),
        sweep_(300 * kMillisPerSecond) {}

  void OnEvent(const Event& e, Context& ctx) override {
    if (!Explainable(e)) return;
    const World& w = ctx.world();
    macro_.Sync(w.cells());
    GeoRef ue(e.lat, e.lon);
    const MacroCoverage::Square& square = macro_.SquareOf(ue);
    for (const Neighbor& n : e.neighbors) {
      if (n.pci < 0 && n.eci == 0) continue;
      if (ExplainedByMacro(w.cells(), square, ue, n)) continue;
      if (ExplainedByFemto(w, ue, n, e.ts_ms)) continue;
      Report(e, n, ctx);
    }
  }

  // Each report reads its square's bitsets and the cells its ECI
  // neighbours name: random lines of tens of MB at fleet scale.
  bool Prefetches() const override { return true; }
  void Prefetch(const Event& e, const World& w, int stage) const override {
    if (stage > 1 || !Explainable(e)) return;
    macro_.Prefetch(e.lat, e.lon, stage);
    for (const Neighbor& n : e.neighbors)
      if (n.eci != 0) w.cells().PrefetchEci(n.eci, stage);
  }

  void Expire(UnixMillis now_ms) override {
    if (!sweep_.Due(now_ms)) return;
    DropOld(now_ms);
  }

  size_t MemoryBytes() const override {
    size_t n = macro_.MemoryBytes() + femto_grid_.size() * 64 + femtos_indexed_ * sizeof(FemtoSite);
    for (const auto& [k, v] : suspects_) n += 64 + v.reports.capacity() * sizeof(Seen);
    return n;
  }

 private:
  struct Seen {
    SubjectId subject;
    float lat;
    float lon;
    UnixMillis ts_ms;
  };
  struct Suspect {
    std::vector<Seen> reports;  // one per subscriber, latest
    UnixMillis newest_ms = 0;
  };
  static constexpr size_t kMaxReports = 32;

  bool ExplainedByMacro(const CellDb& db, const MacroCoverage::Square& square, const GeoRef& ue,
                        const Neighbor& n) const {
    const double r2 = macro_radius_m_ * macro_radius_m_;
    if (n.eci != 0) {
      const Cell* c = db.FindByEci(n.eci);
      return c != nullptr && ue.DistanceSquaredTo(c->lat, c->lon) <= r2;
    }
    return macro_.ExplainsPci(square, ue, n.pci);
  }

  bool ExplainedByFemto(const World& w, const GeoRef& ue, const Neighbor& n, UnixMillis now) {
    if (femto_pci_min_ >= 0 && n.pci < femto_pci_min_) return false;
    if (femto_pci_max_ >= 0 && n.pci > femto_pci_max_) return false;
    IndexFemtos(w);
    const double r2 = femto_radius_m_ * femto_radius_m_;
    const int64_t span_lat = static_cast<int64_t>(std::ceil(femto_radius_m_ / kMetresPerDegree / grid_deg_));
    const int64_t span_lon = static_cast<int64_t>(
        std::ceil(femto_radius_m_ / (kMetresPerDegree * std::max(0.01, ue.cos_lat)) / grid_deg_));
    const int64_t la = GridIndex(ue.lat), lo = GridIndex(ue.lon);
    // Ring by ring outwards from the UE's square: the nearest sites first,
    // so that the usual case (a femtocell next door) stops early.
    for (int64_t ring = 0; ring <= std::max(span_lat, span_lon); ++ring) {
      for (int64_t i = la - std::min(ring, span_lat); i <= la + std::min(ring, span_lat); ++i) {
        for (int64_t j = lo - std::min(ring, span_lon); j <= lo + std::min(ring, span_lon); ++j) {
          if (std::max(std::abs(i - la), std::abs(j - lo)) != ring) continue;
          auto it = femto_grid_.find(GridKey(i, j));
          if (it == femto_grid_.end()) continue;
          for (const FemtoSite& f : it->second) {
            // f's position is the device's current site: the grid is rebuilt
            // whenever a registered site moves (IndexFemtos).
            if (ue.DistanceSquaredTo(f.lat, f.lon) > r2) continue;
            const DeviceState& s = w.device(f.device);
            if (!s.registered || s.blocked || s.Suspect(now)) continue;
            if (s.status == DeviceStatus::kActive || s.status == DeviceStatus::kProvisioned) return true;
          }
        }
      }
    }
    return false;
  }

  // Devices with a registered site, indexed once (new registrations are
  // added as the World grows). The site's position is kept next to the
  // index so that the distance test reads no device state.
  void IndexFemtos(const World& w) {
    if (w.sites_version() != sites_version_) {  // a site moved: start over (rare: registry updates)
      femto_grid_.clear();
      femtos_indexed_ = 0;
      sites_version_ = w.sites_version();
    }
    for (; femtos_indexed_ < w.device_count(); ++femtos_indexed_) {
      const DeviceState& s = w.device(static_cast<DeviceIdx>(femtos_indexed_));
      if (!s.site) continue;
      femto_grid_[GridKey(GridIndex(s.site->lat), GridIndex(s.site->lon))].push_back(
          FemtoSite{s.site->lat, s.site->lon, static_cast<DeviceIdx>(femtos_indexed_)});
    }
  }

  int64_t GridIndex(double deg) const { return static_cast<int64_t>(std::floor(deg / grid_deg_)); }

  void DropOld(UnixMillis now_ms) {
    for (auto it = suspects_.begin(); it != suspects_.end();) {
      if (it->second.newest_ms + window_ms_ < now_ms) {
        it = suspects_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Report(const Event& e, const Neighbor& n, Context& ctx) {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(n.pci)) << 32) |
                   static_cast<uint32_t>(n.earfcn);
    auto it = suspects_.find(key);
    if (it == suspects_.end()) {
      if (suspects_.size() >= max_keys_) {
        DropOld(e.ts_ms);
        if (suspects_.size() >= max_keys_) return;  // bounded: a flood cannot grow the state
      }
      it = suspects_.emplace(key, Suspect{}).first;
    }
    Suspect& s = it->second;
    s.newest_ms = std::max(s.newest_ms, e.ts_ms);
    UnixMillis horizon = e.ts_ms - window_ms_;
    std::erase_if(s.reports, [&](const Seen& r) { return r.ts_ms < horizon; });
    Seen me{e.imsi, static_cast<float>(e.lat), static_cast<float>(e.lon), e.ts_ms};
    auto mine = std::find_if(s.reports.begin(), s.reports.end(),
                             [&](const Seen& r) { return r.subject == e.imsi; });
    if (mine != s.reports.end()) {
      *mine = me;
    } else {
      if (s.reports.size() >= kMaxReports) s.reports.erase(s.reports.begin());
      s.reports.push_back(me);
    }
    if (s.reports.size() < min_reporters_) return;

    GeoRef here(e.lat, e.lon);
    const double c2 = cluster_m_ * cluster_m_;
    size_t close = 0;
    for (const Seen& r : s.reports)
      if (here.DistanceSquaredTo(r.lat, r.lon) <= c2) ++close;
    if (close < min_reporters_) return;

    Evidence ev = MakeEvidence("cell.unregistered", "", "", e.ts_ms);
    double lat = 0, lon = 0;
    for (const Seen& r : s.reports) {
      if (here.DistanceSquaredTo(r.lat, r.lon) > c2) continue;
      ev.subjects.push_back(r.subject);
      lat += r.lat;
      lon += r.lon;
    }
    lat /= static_cast<double>(close);
    lon /= static_cast<double>(close);
    ev.dedup_extra = std::to_string(n.pci) + ":" + std::to_string(n.earfcn);
    nlohmann::json d = {{"pci", n.pci},
                        {"earfcn", n.earfcn},
                        {"lat", std::round(lat * 1e5) / 1e5},
                        {"lon", std::round(lon * 1e5) / 1e5},
                        {"reporters", close},
                        {"rsrp", n.rsrp},
                        {"window_s", window_ms_ / kMillisPerSecond}};
    if (n.eci != 0) d["eci"] = n.eci;
    if (e.serving_eci != 0) d["serving_eci"] = e.serving_eci;
    ev.details_json = d.dump();
    ctx.Emit(std::move(ev));
  }

  double macro_radius_m_;
  double femto_radius_m_;
  double grid_deg_;  // femtocell site grid square, in degrees (after femto_radius_m_)
  int femto_pci_min_;
  int femto_pci_max_;
  double cluster_m_;
  size_t min_reporters_;
  UnixMillis window_ms_;
  size_t max_keys_;
  SweepGate sweep_;

  MacroCoverage macro_{macro_radius_m_};  // declared after macro_radius_m_
  size_t femtos_indexed_ = 0;
  uint64_t sites_version_ = 0;  // of the World when femto_grid_ was built
  struct FemtoSite {
    double lat;
    double lon;
    DeviceIdx device;
  };
  std::unordered_map<uint64_t, std::vector<FemtoSite>> femto_grid_;  // registered sites by grid square
  std::unordered_map<uint64_t, Suspect> suspects_;                // (pci, earfcn) -> recent reporters
};

}  // namespace

std::unique_ptr<Detector> MakeCellUnregisteredDetector(const RuleParams& p) {
  return std::make_unique<CellUnregistered>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"macro_radius_m", ValueType::kNumber, "5000", 0, 1000000, "a cells.csv cell this close to the reporting UE explains a neighbour"},
    {"femto_radius_m", ValueType::kNumber, "300", 0, 1000000, "a registered active femtocell site this close explains it too"},
    {"femto_pci_min", ValueType::kInt, "-1", -1, 1007, "restrict femtocell explanations to a PCI range (-1: any)"},
    {"femto_pci_max", ValueType::kInt, "-1", -1, 1007, "upper end of that range (-1: any)"},
    {"cluster_m", ValueType::kNumber, "2000", 0, 1000000, "reporters must be this close to one another"},
    {"min_reporters", ValueType::kInt, "2", 1, 1000, "distinct subscribers"},
    {"window_s", ValueType::kInt, "3600", 1, 2592000, "reports considered together"},
    {"max_tracked_cells", ValueType::kInt, "65536", 16, 16777216, "cells tracked at once (memory bound)"},
};
}  // namespace
extern const RuleSpec kCellUnregisteredSpec{"cell.unregistered",
    "macro UEs report a neighbour cell that no cells.csv cell and no registered active femtocell nearby explains: a rogue radio that never connects to the core",
    "update cells.csv if it is a new macro cell; otherwise locate the radio (lat, lon in the evidence)",
    kParams, {}};
}  // namespace fg::detect::detectors
