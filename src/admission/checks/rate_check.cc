// rate: too many admission attempts per identity (device id) or per source
// line (src_ip) within a sliding window (policy rate.identity / rate.line)
// -> deny "rate". Every attempt counts, allowed or not, so a device that
// hammers the gate stays refused until it calms down. max 0 = no limit.
//
// The window is the usual two-bucket approximation (previous bucket weighted
// by how much of it still overlaps the window, plus the current bucket): O(1)
// memory per key, so that a fleet of 189,000 devices costs a few MB.
// State is striped by key hash; idle keys are swept as the maps grow.

#include <array>
#include <mutex>

#include "admission/check.h"

namespace fg::admission {
namespace {

class Limiter {
 public:
  explicit Limiter(RateLimit limit) : limit_(limit), window_ms_(static_cast<UnixMillis>(limit.window_s) * 1000) {}

  bool enabled() const { return limit_.max > 0; }

  // Records one attempt for `key`; returns the estimated attempts in the
  // window including this one.
  double Record(std::string_view key, UnixMillis now) {
    Stripe& s = stripes_[std::hash<std::string_view>{}(key) % stripes_.size()];
    std::lock_guard lock(s.mu);
    const int64_t bucket = now / window_ms_;
    auto it = s.buckets.find(key);
    if (it == s.buckets.end()) {
      if (s.buckets.size() >= s.sweep_at) Sweep(s, bucket);
      it = s.buckets.emplace(std::string(key), Buckets{bucket, 0, 0}).first;
    }
    Buckets& b = it->second;
    if (bucket > b.index) {
      b.previous = bucket == b.index + 1 ? b.current : 0;
      b.current = 0;
      b.index = bucket;
    }
    ++b.current;
    double elapsed = static_cast<double>(now - bucket * window_ms_) / static_cast<double>(window_ms_);
    return b.previous * (1.0 - elapsed) + b.current;
  }

  int max() const { return limit_.max; }
  int window_s() const { return limit_.window_s; }

 private:
  struct Buckets {
    int64_t index = 0;
    uint32_t current = 0;
    uint32_t previous = 0;
  };
  struct Stripe {
    std::mutex mu;
    StringMap<Buckets> buckets;  // guarded by mu
    size_t sweep_at = 4096;      // guarded by mu
  };

  static void Sweep(Stripe& s, int64_t bucket) {
    for (auto it = s.buckets.begin(); it != s.buckets.end();) {
      it = it->second.index < bucket - 1 ? s.buckets.erase(it) : std::next(it);
    }
    s.sweep_at = std::max<size_t>(4096, s.buckets.size() * 2);
  }

  const RateLimit limit_;
  const UnixMillis window_ms_;
  std::array<Stripe, 16> stripes_;
};

class RateCheck final : public Check {
 public:
  explicit RateCheck(const AdmissionPolicy& policy) : identity_(policy.rate_identity), line_(policy.rate_line) {}

  std::string_view name() const override { return "rate"; }

  Result<CheckAnswer> Evaluate(const CheckContext& ctx) override {
    const AdmissionRequest& r = ctx.request;
    double by_identity = identity_.enabled() ? identity_.Record(r.device, ctx.now_ms) : 0;
    double by_line = line_.enabled() && !r.src_ip.empty() ? line_.Record(r.src_ip, ctx.now_ms) : 0;
    if (identity_.enabled() && by_identity > identity_.max()) return Deny("identity", by_identity, identity_);
    if (line_.enabled() && by_line > line_.max()) return Deny("line", by_line, line_);
    return CheckAnswer::Allow();
  }

 private:
  static CheckAnswer Deny(const char* scope, double count, const Limiter& l) {
    return CheckAnswer::Deny("rate", {{"rate.scope", scope},
                                      {"rate.attempts", std::to_string(static_cast<long>(count))},
                                      {"rate.max", std::to_string(l.max())},
                                      {"rate.window_s", std::to_string(l.window_s())}});
  }

  Limiter identity_;
  Limiter line_;
};

}  // namespace

std::unique_ptr<Check> NewRateCheck(const AdmissionPolicy& policy) { return std::make_unique<RateCheck>(policy); }

}  // namespace fg::admission

// ---- declaration (check.h CheckSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::admission {
namespace {
constexpr KeySpec kParams[] = {
    {"rate.identity.max", ValueType::kInt, "20", 0, 1000000, "attempts one device identity may make per window (0 = no limit)"},
    {"rate.identity.window_s", ValueType::kInt, "60", 1, 86400, "that window, in seconds"},
    {"rate.line.max", ValueType::kInt, "200", 0, 1000000, "attempts from one source address per window (0 = no limit)"},
    {"rate.line.window_s", ValueType::kInt, "60", 1, 86400, "that window, in seconds"},
};
constexpr ReasonSpec kReasons[] = {
    {"rate", "too many attempts from one identity or one line within the window (evidence: rate.scope, rate.attempts)",
     "a device in a reconnect loop or a brute force: look at the device's decisions in the admission log; raise the limit only for a known large NAT"},
};
}  // namespace
extern const CheckSpec kRateCheckSpec{"rate", "limits connection attempts per identity and per line", kParams, kReasons};
}  // namespace fg::admission
