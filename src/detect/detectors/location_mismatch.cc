// location.mismatch: where a femtocell is disagrees with where it is
// registered. Three kinds of evidence:
//   gnss - a `location.report` fix farther from the registered site than
//          radius_m + acc_m + `margin_m` (default 250 m), on
//          `min_consecutive` (default 1) fixes in a row;
//   rem  - a `rem.scan` in which nothing heard is a cell within `near_m`
//          (default 5 km) of the site (cells.csv), and either a heard cell is
//          known to stand elsewhere (its ECI, or its PLMN + TAC area, lies
//          farther than near_m + its range) or at least `min_cells` (2) cells
//          were heard while cells are expected within `near_m`;
//   line - a `session.up` from a `src_ip` outside the device's registered
//          prefixes (only for devices that have prefixes).
//
// Does NOT fire for an IP change inside the registered prefixes, a scan
// hearing a subset of the expected cells (or other cells of the local
// area), an empty scan, a fix within accuracy of the site, or a device
// without a registered site. A customer who moved house DOES fire (gnss /
// rem at the new place): the default rules quarantine (notify, suspend
// under approve), never revoke.

#include <algorithm>
#include <vector>

#include "common/celldb.h"
#include "common/net.h"
#include "detect/detectors/cell_index.h"
#include "detect/detectors/common.h"
#include "detect/detectors/geo.h"

namespace fg::detect::detectors {
namespace {

class LocationMismatch final : public Detector {
 public:
  explicit LocationMismatch(const RuleParams& p)
      : margin_m_(p.GetDouble("margin_m", 250)),
        min_consecutive_(static_cast<int>(std::clamp<int64_t>(p.GetInt("min_consecutive", 1), 1, 250))),
        near_m_(p.GetDouble("near_m", 5000)),
        min_cells_(static_cast<int>(p.GetInt("min_cells", 2))),
        max_range_m_(p.GetDouble("max_cell_range_m", 10000)) {}

  void OnEvent(const Event& e, Context& ctx) override {
    switch (e.type) {
      case EventType::kLocationReport:
        OnFix(e, ctx);
        break;
      case EventType::kRemScan:
        OnScan(e, ctx);
        break;
      case EventType::kSessionUp:
        OnSession(e, ctx);
        break;
      default:
        break;
    }
  }

  size_t MemoryBytes() const override { return outside_.capacity() + pci_.MemoryBytes(); }

 private:
  void OnFix(const Event& e, Context& ctx) {
    if (!e.has_fix) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    if (d == kNoDevice) return;
    const DeviceState& s = w.device(d);
    if (!s.site) return;
    double dist = DistanceMeters(s.site->lat, s.site->lon, e.lat, e.lon);
    double allowed = s.site->radius_m + std::max(0.0, e.acc_m) + margin_m_;
    if (min_consecutive_ > 1 && outside_.size() <= d) outside_.resize(d + 1, 0);
    if (dist <= allowed) {
      if (min_consecutive_ > 1) outside_[d] = 0;
      return;
    }
    if (min_consecutive_ > 1) {
      if (outside_[d] < 255) ++outside_[d];
      if (outside_[d] < min_consecutive_) return;
    }
    Evidence ev = MakeEvidence("location.mismatch", "gnss", e.device, e.ts_ms);
    ev.details_json = nlohmann::json{{"lat", e.lat},
                                     {"lon", e.lon},
                                     {"acc_m", e.acc_m},
                                     {"distance_m", std::round(dist)},
                                     {"allowed_m", std::round(allowed)},
                                     {"site", {{"lat", s.site->lat}, {"lon", s.site->lon}, {"radius_m", s.site->radius_m}}}}
                          .dump();
    ctx.Emit(std::move(ev));
  }

  void OnSession(const Event& e, Context& ctx) {
    if (e.src_ip.empty()) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    if (d == kNoDevice) return;
    const DeviceState& s = w.device(d);
    if (s.prefixes.empty() || IpInAnyPrefix(e.src_ip, s.prefixes)) return;
    Evidence ev = MakeEvidence("location.mismatch", "line", e.device, e.ts_ms);
    ev.details_json =
        nlohmann::json{{"src_ip", e.src_ip}, {"prefixes", s.prefixes}, {"session", e.session}}.dump();
    ctx.Emit(std::move(ev));
  }

  void OnScan(const Event& e, Context& ctx) {
    if (e.cells.empty()) return;
    const World& w = ctx.world();
    DeviceIdx d = FindDevice(w, e.device);
    if (d == kNoDevice) return;
    const DeviceState& s = w.device(d);
    if (!s.site) return;
    const CellDb& db = w.cells();
    if (db.size() == 0) return;
    pci_.Sync(db);

    // Common path: some heard cell is a registered cell near the site - one
    // lookup per heard cell, no spatial query.
    const GeoRef site(s.site->lat, s.site->lon);
    const double near2 = near_m_ * near_m_;
    for (const RemCellSeen& c : e.cells) {
      if (c.eci != 0) {
        const Cell* m = db.FindByEci(c.eci);
        if (m && (c.mcc == 0 || (m->mcc == c.mcc && m->mnc == c.mnc)) &&
            site.DistanceSquaredTo(m->lat, m->lon) <= near2)
          return;
      } else if (pci_.AnyWithin(site, c.pci, c.mcc, c.mnc, near_m_)) {
        return;
      }
    }

    // Nothing heard is from around the site: is any of it known to stand
    // elsewhere?
    const std::vector<Cell>& all = db.cells();
    nlohmann::json elsewhere = nlohmann::json::array();
    for (const RemCellSeen& c : e.cells) {
      if (c.eci != 0) {
        if (const Cell* far = db.FindByEci(c.eci)) {
          double dist = site.DistanceTo(far->lat, far->lon);
          if (dist > near_m_ + std::min(far->range_m, max_range_m_)) {
            elsewhere.push_back({{"eci", c.eci}, {"pci", c.pci}, {"distance_m", std::round(dist)}});
          }
          continue;
        }
      }
      if (c.mcc != 0) {
        if (const std::vector<uint32_t>* area = db.CellsInArea(c.mcc, c.mnc, c.tac)) {
          double nearest = -1;
          for (uint32_t i : *area) {
            double dist = site.DistanceTo(all[i].lat, all[i].lon) - std::min(all[i].range_m, max_range_m_);
            if (nearest < 0 || dist < nearest) nearest = dist;
          }
          if (nearest > near_m_) {
            elsewhere.push_back({{"mcc", c.mcc},
                                 {"mnc", c.mnc},
                                 {"tac", c.tac},
                                 {"pci", c.pci},
                                 {"area_distance_m", std::round(nearest)}});
          }
        }
      }
    }
    bool far_cells = !elsewhere.empty();
    size_t expected_near = 0;
    if (!far_cells) {
      if (static_cast<int>(e.cells.size()) < min_cells_) return;
      expected_near = db.Near(s.site->lat, s.site->lon, near_m_).size();  // rare path
      if (expected_near == 0) return;
    }

    Evidence ev = MakeEvidence("location.mismatch", "rem", e.device, e.ts_ms);
    nlohmann::json details = {{"reason", far_cells ? "cells_elsewhere" : "none_expected"},
                              {"heard", e.cells.size()},
                              {"elsewhere", elsewhere},
                              {"site", {{"lat", s.site->lat}, {"lon", s.site->lon}}}};
    if (!far_cells) details["expected_near"] = expected_near;
    ev.details_json = details.dump();
    ctx.Emit(std::move(ev));
  }

  double margin_m_;
  int min_consecutive_;
  double near_m_;
  int min_cells_;
  double max_range_m_;
  PciIndex pci_;
  std::vector<uint8_t> outside_;  // consecutive fixes outside, by device (only if min_consecutive > 1)
};

}  // namespace

std::unique_ptr<Detector> MakeLocationMismatchDetector(const RuleParams& p) {
  return std::make_unique<LocationMismatch>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"margin_m", ValueType::kNumber, "250", 0, 1000000, "gnss: allowed distance = site radius_m + fix acc_m + margin_m"},
    {"min_consecutive", ValueType::kInt, "1", 1, 250, "gnss: fixes in a row outside before it fires"},
    {"near_m", ValueType::kNumber, "5000", 1, 1000000, "rem: cells within this distance of the site explain a scan"},
    {"min_cells", ValueType::kInt, "2", 1, 1000, "rem: cells a scan must hear to say none of the expected is there"},
    {"max_cell_range_m", ValueType::kNumber, "10000", 0, 1000000, "rem: cap on a cell's range when judging it elsewhere"},
};
constexpr ReasonSpec kKinds[] = {
    {"gnss", "a GNSS fix lies outside the registered site (radius, accuracy and margin)",
     "ask the customer; update the site or approve the suspension"},
    {"rem", "a radio scan hears none of the cells expected at the site and cells known to stand elsewhere",
     "as gnss; check cells.csv is current for the area"},
    {"line", "a session from a source address outside the registered prefixes",
     "update the device's prefixes if the customer changed ISP; otherwise investigate the line"},
};
}  // namespace
extern const RuleSpec kLocationMismatchSpec{"location.mismatch",
    "where the femtocell is disagrees with its registered site",
    "ask the customer whether they moved; update the site in the registry, or approve the suspension",
    kParams, kKinds};
}  // namespace fg::detect::detectors
