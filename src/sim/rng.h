#pragma once

// Deterministic pseudo-random numbers for the simulator: splitmix64 to derive
// seeds, xoshiro256** to draw. Everything the simulator writes comes from
// these, never from std:: distributions (whose output differs between
// standard libraries), so one seed gives byte-identical files everywhere.
//
// Each entity (device, subscriber, attack) draws from its own stream keyed by
// (seed, stream, index, day): a stream's numbers do not depend on how many
// numbers other entities drew, so adding an attack does not reshuffle the
// benign background. Not thread-safe (value type; one per user).

#include <cmath>
#include <cstdint>

namespace fg::sim {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A well-mixed 64-bit key from up to four values.
inline uint64_t MixKey(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  uint64_t s = a;
  uint64_t h = SplitMix64(s);
  s = h ^ b;
  h = SplitMix64(s);
  s = h ^ c;
  h = SplitMix64(s);
  s = h ^ d;
  return SplitMix64(s);
}

// Independent streams of one simulation.
enum class Stream : uint64_t {
  kWorld = 1,
  kCells,
  kDevice,
  kDeviceDay,
  kSubscriber,
  kPlan,  // a subscriber's daily plan (read by several passes)
  kSubscriberDay,
  kVisit,
  kAttack,
  kFormat,
  kCert,
};

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& w : s_) w = SplitMix64(sm);
  }
  Rng(uint64_t seed, Stream stream, uint64_t index, uint64_t day = 0)
      : Rng(MixKey(seed, static_cast<uint64_t>(stream), index, day)) {}

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // [0, n); n > 0 (multiply-shift, bias below 2^-32 for the n used here).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // [lo, hi] inclusive.
  int64_t Range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo + 1))); }
  bool Chance(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller, one value per call).
  double Normal() {
    double u1 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double Exponential(double mean) {
    double u = Uniform();
    return -mean * std::log(1.0 - u);
  }
  // Poisson for small means (Knuth).
  int Poisson(double mean) {
    if (mean <= 0) return 0;
    const double limit = std::exp(-mean);
    double p = 1.0;
    int k = 0;
    do {
      ++k;
      p *= Uniform();
    } while (p > limit && k < 1000);
    return k - 1;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace fg::sim
