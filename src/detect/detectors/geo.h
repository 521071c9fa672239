#pragma once

// Cheap planar distance for the detectors' hot paths (meas.report carries
// several neighbours per line): equirectangular projection around the
// first point, within 0.5 % of the great-circle distance below ~100 km,
// which is all the detectors compare (kilometres, not continents). Use
// fg::DistanceMeters (common/celldb.h) where exactness matters more than
// speed.

#include <cmath>

namespace fg::detect::detectors {

inline constexpr double kMetresPerDegree = 6371008.8 * 3.14159265358979323846 / 180.0;

// cos(latitude) precomputed once per reference point.
struct GeoRef {
  double lat = 0;
  double lon = 0;
  double cos_lat = 1;
  GeoRef() = default;
  GeoRef(double la, double lo) : lat(la), lon(lo), cos_lat(std::cos(la * 3.14159265358979323846 / 180.0)) {}
  double DistanceSquaredTo(double la, double lo) const {
    double dy = (la - lat) * kMetresPerDegree;
    double dlon = lo - lon;
    if (dlon > 180) dlon -= 360;
    if (dlon < -180) dlon += 360;
    double dx = dlon * cos_lat * kMetresPerDegree;
    return dx * dx + dy * dy;
  }
  double DistanceTo(double la, double lo) const { return std::sqrt(DistanceSquaredTo(la, lo)); }
};

inline double ApproxDistanceMeters(double lat1, double lon1, double lat2, double lon2) {
  return GeoRef(lat1, lon1).DistanceTo(lat2, lon2);
}

}  // namespace fg::detect::detectors
