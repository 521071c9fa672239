#pragma once

// The bounds of a cell heard by a femtocell's radio environment scan (REM):
// the `cells[]` of a rem.scan event (ingest, detection) and the `rem[]` of
// an admission request. One set of bounds wherever a cell is read, so that
// a scan admission accepts is a scan detection accepts. A field that is
// absent keeps its default (eci 0, pci and earfcn -1, rsrp 0 = not reported).
// (The two structs, admission::RemCell and detect::RemCellSeen, are still
// separate types; see docs/configuration.md.)

#include <cstdint>

namespace fg::rem {

inline constexpr int kMccMax = 999;
inline constexpr int kMncMax = 999;
inline constexpr int kPciMin = -1;  // -1 = absent
inline constexpr int kPciMax = 1007;  // LTE PCI 0..503, NR 0..1007
inline constexpr int kEarfcnMin = -1;  // -1 = absent
inline constexpr int kEarfcnMax = 3279165;  // NR-ARFCN upper bound
inline constexpr uint64_t kEciLimit = uint64_t{1} << 36;  // NR cell identity: 36 bits
inline constexpr double kRsrpMin = -200;  // dBm
inline constexpr double kRsrpMax = 0;     // 0 = not reported

}  // namespace fg::rem
