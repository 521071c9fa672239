#pragma once

// The simulated metropolitan area: a 30 x 30 km square around central Seoul
// (37.55 N, 126.98 E) cut into 5 x 5 districts of 6 km. Positions inside the
// simulator are planar metres east/north of the square's south-west corner;
// they become WGS84 degrees only when written (equirectangular projection,
// well under a metre of error at this size).

#include <cmath>
#include <string_view>

namespace fg::sim {

struct Point {
  double x = 0;  // metres east of the south-west corner
  double y = 0;  // metres north of the south-west corner
};

inline double Dist(Point a, Point b) { return std::hypot(a.x - b.x, a.y - b.y); }
inline Point Lerp(Point a, Point b, double f) { return {a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f}; }

class Area {
 public:
  static constexpr double kSizeM = 30000;
  static constexpr double kCenterLat = 37.55;
  static constexpr double kCenterLon = 126.98;
  static constexpr int kDistrictsPerSide = 5;
  static constexpr int kDistricts = kDistrictsPerSide * kDistrictsPerSide;
  static constexpr double kDistrictM = kSizeM / kDistrictsPerSide;

  static double MetersPerDegLat() { return 111132.954; }
  static double MetersPerDegLon() { return 111319.488 * std::cos(kCenterLat * 3.14159265358979323846 / 180.0); }
  static double Lat(Point p) { return kCenterLat + (p.y - kSizeM / 2) / MetersPerDegLat(); }
  static double Lon(Point p) { return kCenterLon + (p.x - kSizeM / 2) / MetersPerDegLon(); }

  static bool Inside(Point p) { return p.x >= 0 && p.y >= 0 && p.x < kSizeM && p.y < kSizeM; }
  static Point Clamp(Point p) {
    auto c = [](double v) { return v < 0 ? 0.0 : (v > kSizeM - 1 ? kSizeM - 1 : v); };
    return {c(p.x), c(p.y)};
  }
  // 0 .. kDistricts-1 (row-major from the south-west); positions outside are clamped.
  static int District(Point p) {
    Point c = Clamp(p);
    return static_cast<int>(c.x / kDistrictM) + kDistrictsPerSide * static_cast<int>(c.y / kDistrictM);
  }
  static Point DistrictCenter(int d) {
    return {(d % kDistrictsPerSide + 0.5) * kDistrictM, (d / kDistrictsPerSide + 0.5) * kDistrictM};
  }
  // Names borrowed from Seoul's 25 gu; the layout is synthetic.
  static std::string_view DistrictName(int d) {
    static constexpr std::string_view kNames[kDistricts] = {
        "Gangseo",   "Yangcheon", "Guro",     "Geumcheon",    "Gwanak",     "Mapo",     "Yeongdeungpo",
        "Dongjak",   "Seocho",    "Gangnam",  "Eunpyeong",    "Seodaemun",  "Jung",     "Yongsan",
        "Songpa",    "Jongno",    "Seongbuk", "Dongdaemun",   "Seongdong",  "Gangdong", "Dobong",
        "Gangbuk",   "Nowon",     "Jungnang", "Gwangjin"};
    return d >= 0 && d < kDistricts ? kNames[d] : std::string_view("?");
  }
};

}  // namespace fg::sim
