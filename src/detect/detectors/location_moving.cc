// location.moving: successive positions of one femtocell show travel - the
// counterfeit in a van. Positions come from GNSS fixes (`location.report`)
// and, as a separate, coarser track, from REM scans (the centroid of the
// heard cells whose ECI cells.csv knows, accuracy `rem_acc_m`, default 750 m).
// Two kinds of evidence:
//   track - >= `min_positions` (3) positions pairwise more than `min_step_m`
//           (1 km, plus both accuracies) apart within `window_s` (6 h);
//   speed - two jumps within `window_s` each implying more than
//           `max_speed_kmh` (150) over more than `min_step_m`: a box that
//           teleports there and back (two boxes with one identity).
//
// Does NOT fire for a single jump followed by a stationary device (a
// customer who moved house: location.mismatch's case), nor for jitter within
// the fixes' accuracy. Per device: two tracks of 3 positions (~200 B).

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "common/celldb.h"
#include "detect/detectors/common.h"
#include "detect/detectors/geo.h"

namespace fg::detect::detectors {
namespace {

constexpr int kMaxAnchors = 3;

struct Anchor {
  float lat = 0;
  float lon = 0;
  float acc = 0;
  UnixMillis first_ms = 0;
  UnixMillis last_ms = 0;
};

struct Track {
  std::array<Anchor, kMaxAnchors> a;  // oldest first
  uint8_t n = 0;
  UnixMillis last_violation_ms = -1;
  void Push(const Anchor& x) {
    if (n == kMaxAnchors) {
      for (int i = 1; i < kMaxAnchors; ++i) a[i - 1] = a[i];
      --n;
    }
    a[n++] = x;
  }
};

class LocationMoving final : public Detector {
 public:
  explicit LocationMoving(const RuleParams& p)
      : min_step_m_(p.GetDouble("min_step_m", 1000)),
        window_ms_(ParamSecondsAsMs(p, "window_s", 6 * 3600)),
        min_positions_(static_cast<int>(std::clamp<int64_t>(p.GetInt("min_positions", 3), 2, kMaxAnchors))),
        max_speed_mps_(p.GetDouble("max_speed_kmh", 150) / 3.6),
        rem_acc_m_(p.GetDouble("rem_acc_m", 750)) {}

  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type == EventType::kLocationReport) {
      if (!e.has_fix) return;
      Observe(e, ctx, 0, e.lat, e.lon, std::max(0.0, e.acc_m));
    } else if (e.type == EventType::kRemScan) {
      const CellDb& db = ctx.world().cells();
      double lat = 0, lon = 0;
      int n = 0;
      for (const RemCellSeen& c : e.cells) {
        if (c.eci == 0) continue;
        if (const Cell* cell = db.FindByEci(c.eci)) {
          lat += cell->lat;
          lon += cell->lon;
          ++n;
        }
      }
      if (n == 0) return;
      Observe(e, ctx, 1, lat / n, lon / n, rem_acc_m_);
    }
  }

  size_t MemoryBytes() const override { return tracks_.capacity() * sizeof(Tracks); }

 private:
  using Tracks = std::array<Track, 2>;  // [0] GNSS, [1] REM

  void Observe(const Event& e, Context& ctx, int source, double lat, double lon, double acc) {
    DeviceIdx d = FindDevice(ctx.world(), e.device);
    if (d == kNoDevice) return;
    if (tracks_.size() <= d) tracks_.resize(d + 1);
    Track& t = tracks_[d][source];
    Anchor x{static_cast<float>(lat), static_cast<float>(lon), static_cast<float>(acc), e.ts_ms, e.ts_ms};
    if (t.n == 0) {
      t.Push(x);
      return;
    }
    Anchor& last = t.a[t.n - 1];
    double dist = ApproxDistanceMeters(last.lat, last.lon, lat, lon);
    if (dist <= min_step_m_ + acc + last.acc) {  // same place
      last.last_ms = std::max(last.last_ms, e.ts_ms);
      return;
    }

    // A jump. Too fast to be driven?
    double moved = dist - acc - last.acc;
    UnixMillis dt = e.ts_ms - last.last_ms;
    bool too_fast = moved > min_step_m_ && (dt <= 0 || moved / (dt / 1000.0) > max_speed_mps_);
    bool speed_fire = false;
    if (too_fast) {
      speed_fire = t.last_violation_ms >= 0 && e.ts_ms - t.last_violation_ms <= window_ms_;
      t.last_violation_ms = e.ts_ms;
    }
    t.Push(x);

    if (speed_fire) {
      Fire(e, ctx, t, source, "speed", moved, dt);
      return;
    }
    if (t.n < min_positions_) return;
    // The last min_positions anchors, all seen within the window, pairwise apart.
    int first = t.n - min_positions_;
    if (t.a[first].last_ms < e.ts_ms - window_ms_) return;
    for (int i = first; i < t.n; ++i)
      for (int j = i + 1; j < t.n; ++j) {
        double dij = ApproxDistanceMeters(t.a[i].lat, t.a[i].lon, t.a[j].lat, t.a[j].lon);
        if (dij <= min_step_m_ + t.a[i].acc + t.a[j].acc) return;
      }
    Fire(e, ctx, t, source, "track", moved, dt);
  }

  void Fire(const Event& e, Context& ctx, const Track& t, int source, std::string_view kind,
            double moved, UnixMillis dt) {
    Evidence ev = MakeEvidence("location.moving", kind, e.device, e.ts_ms);
    nlohmann::json positions = nlohmann::json::array();
    for (int i = 0; i < t.n; ++i)
      positions.push_back({{"lat", t.a[i].lat},
                           {"lon", t.a[i].lon},
                           {"acc_m", t.a[i].acc},
                           {"from", Ts(t.a[i].first_ms)},
                           {"to", Ts(t.a[i].last_ms)}});
    nlohmann::json d = {{"source", source == 0 ? "gnss" : "rem"},
                        {"positions", positions},
                        {"last_jump_m", std::round(moved)}};
    if (dt > 0) d["last_jump_kmh"] = std::round(moved / (dt / 1000.0) * 3.6);
    ev.details_json = d.dump();
    ctx.Emit(std::move(ev));
  }

  double min_step_m_;
  UnixMillis window_ms_;
  int min_positions_;
  double max_speed_mps_;
  double rem_acc_m_;
  std::vector<Tracks> tracks_;  // by DeviceIdx
};

}  // namespace

std::unique_ptr<Detector> MakeLocationMovingDetector(const RuleParams& p) {
  return std::make_unique<LocationMoving>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"min_step_m", ValueType::kNumber, "1000", 1, 1000000, "positions closer than this (plus accuracies) are the same place"},
    {"window_s", ValueType::kInt, "21600", 60, 2592000, "positions considered together"},
    {"min_positions", ValueType::kInt, "3", 2, 3, "track: pairwise-distinct positions within window_s"},
    {"max_speed_kmh", ValueType::kNumber, "150", 1, 100000, "speed: a jump faster than this is implausible"},
    {"rem_acc_m", ValueType::kNumber, "750", 0, 1000000, "accuracy given to a position estimated from a REM scan"},
};
constexpr ReasonSpec kKinds[] = {
    {"track", "min_positions pairwise-distinct positions within window_s",
     "treat as a moving counterfeit: approve block and revoke"},
    {"speed", "two jumps faster than max_speed_kmh within window_s",
     "two boxes share one identity: approve block and revoke, re-enrol the genuine one"},
};
}  // namespace
extern const RuleSpec kLocationMovingSpec{"location.moving",
    "successive positions of one femtocell show travel",
    "a counterfeit in a vehicle or two boxes with one identity: approve the block and the revoke",
    kParams, kKinds};
}  // namespace fg::detect::detectors
