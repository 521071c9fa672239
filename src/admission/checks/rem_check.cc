// rem: the radio environment scan must fit the macro cells around the
// registered site (cell database, OpenCellID CSV). Quarantine "location.rem"
// only on a clear inconsistency, any of:
//   absent  - the database has >= rem.min_expected_cells cells of the home
//             network within rem.expected_radius_m of the site, and the scan
//             heard fewer than rem.min_matched of them (by ECI, or by PCI
//             when the scan has no ECI);
//   far     - >= rem.far_min_cells heard cells lie farther than rem.far_km
//             from the site (by the cell's own position, or by every cell
//             of its tracking area), and they outnumber the expected cells heard;
//   foreign - >= rem.foreign_min_cells heard cells of a PLMN outside
//             home_plmns (only when home_plmns is set).
// Does not fire for a scan that hears a subset of the expected cells (an
// indoor unit hears few), for cells the database does not know, or for cells
// weaker than rem.min_rsrp (0 = not reported, counted).
// Abstains without a scan, a site, a device, or a cell database.

#include <algorithm>
#include <unordered_set>

#include "admission/check.h"

namespace fg::admission {
namespace {

class RemCheck final : public Check {
 public:
  std::string_view name() const override { return "rem"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    if (ctx.request.rem.empty() || !ctx.cells || !ctx.device || !ctx.device->site) return CheckAnswer::Abstain();
    const RemPolicy& rp = ctx.policy.rem;
    const Site& site = *ctx.device->site;
    const CellDb& db = *ctx.cells;
    auto home = [&](int mcc, int mnc) {
      if (ctx.policy.home_plmns.empty()) return true;
      return std::find(ctx.policy.home_plmns.begin(), ctx.policy.home_plmns.end(), std::pair{mcc, mnc}) !=
             ctx.policy.home_plmns.end();
    };

    std::unordered_set<uint64_t> expected_eci;
    std::unordered_set<int> expected_pci;
    int expected = 0;
    for (uint32_t i : db.Near(site.lat, site.lon, rp.expected_radius_m)) {
      const Cell& c = db.cells()[i];
      if (!home(c.mcc, c.mnc)) continue;
      ++expected;
      expected_eci.insert(c.cell);
      if (c.pci >= 0) expected_pci.insert(c.pci);
    }

    const double far_m = rp.far_km * 1000;
    int matched = 0, far = 0, foreign = 0, considered = 0;
    std::string far_example, foreign_example;
    for (const RemCell& h : ctx.request.rem) {
      if (h.rsrp != 0 && h.rsrp < rp.min_rsrp) continue;
      ++considered;
      if (!home(h.mcc, h.mnc)) {
        if (++foreign == 1) foreign_example = std::to_string(h.mcc) + "-" + std::to_string(h.mnc);
        continue;
      }
      if (h.eci != 0 ? expected_eci.count(h.eci) > 0 : (h.pci >= 0 && expected_pci.count(h.pci) > 0)) {
        ++matched;
        continue;
      }
      if (IsFar(db, h, site, far_m)) {
        if (++far == 1) far_example = h.eci ? "eci " + std::to_string(h.eci) : "tac " + std::to_string(h.tac);
      }
    }

    Evidence ev = {{"rem.heard", std::to_string(considered)},
                   {"rem.expected", std::to_string(expected)},
                   {"rem.matched", std::to_string(matched)}};
    std::string why;
    if (!ctx.policy.home_plmns.empty() && foreign >= rp.foreign_min_cells) {
      why = "foreign";
      ev.emplace_back("rem.foreign", std::to_string(foreign));
      ev.emplace_back("rem.foreign_plmn", foreign_example);
    } else if (far >= rp.far_min_cells && far > matched) {
      why = "far";
      ev.emplace_back("rem.far", std::to_string(far));
      ev.emplace_back("rem.far_example", far_example);
    } else if (considered > 0 && expected >= rp.min_expected_cells && matched < rp.min_matched) {
      why = "absent";
    }
    if (why.empty()) return CheckAnswer::Allow();
    ev.emplace_back("rem.inconsistency", why);
    return CheckAnswer::Quarantine("location.rem", std::move(ev));
  }

 private:
  // A heard cell the database places (by ECI, or by its whole tracking
  // area) farther than far_m from the site. Unknown cells are not far.
  static bool IsFar(const CellDb& db, const RemCell& h, const Site& site, double far_m) {
    if (h.eci != 0) {
      if (const Cell* c = db.FindByEci(h.eci); c && c->mcc == h.mcc && c->mnc == h.mnc) {
        return DistanceMeters(site.lat, site.lon, c->lat, c->lon) > far_m + c->range_m;
      }
    }
    if (h.tac == 0) return false;
    const std::vector<uint32_t>* area = db.CellsInArea(h.mcc, h.mnc, h.tac);
    if (!area) return false;
    for (uint32_t i : *area) {
      const Cell& c = db.cells()[i];
      if (DistanceMeters(site.lat, site.lon, c.lat, c.lon) <= far_m + c.range_m) return false;
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Check> NewRemCheck(const AdmissionPolicy&) { return std::make_unique<RemCheck>(); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr KeySpec kParams[] = {
    {"home_plmns", ValueType::kStringList, "[]", kNoMin, kNoMax, "MCC-MNC of the operator, e.g. \"450-08\"; cells of other PLMNs count as foreign"},
    {"rem.expected_radius_m", ValueType::kNumber, "1000", 1, 1000000, "cells this close to the site are expected"},
    {"rem.min_expected_cells", ValueType::kInt, "3", 1, 10000, "judge absence only with at least this many expected cells"},
    {"rem.min_matched", ValueType::kInt, "1", 1, 10000, "fewer expected cells heard than this = absent"},
    {"rem.far_km", ValueType::kNumber, "30", 0.001, 20000, "a heard cell farther than this is far"},
    {"rem.far_min_cells", ValueType::kInt, "2", 1, 10000, "quarantine from this many far cells (and more far than near)"},
    {"rem.foreign_min_cells", ValueType::kInt, "2", 1, 10000, "quarantine from this many cells of a non-home PLMN"},
    {"rem.min_rsrp", ValueType::kNumber, "-125", -200, 0, "weaker cells are ignored, dBm (0 = not reported, counted)"},
};
constexpr ReasonSpec kReasons[] = {
    {"location.rem", "the scan hears none of the expected cells, far cells or foreign cells",
     "ask the customer; check cells.csv is current for the area"},
};
}  // namespace
extern const CheckSpec kRemCheckSpec{"rem", "the radio neighbourhood (REM scan) fits the registered site (cell database)", kParams, kReasons};
}  // namespace fg::admission
