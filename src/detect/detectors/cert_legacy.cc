// cert.legacy: a `session.up` presenting a legacy shared credential (params
// `legacy_credentials: [{fp, cutoff}]`, cutoff in RFC 3339; the engine adds
// the store's legacy credentials when it has a data dir) at an event time
// after that credential's cutoff. A cutoff that does not parse counts as
// already past (fail closed) and the evidence says so.
//
// Does NOT fire for the same credential before its cutoff (the fleet is
// still migrating), nor for any other certificate.

#include <unordered_map>

#include "detect/detectors/common.h"

namespace fg::detect::detectors {
namespace {

class CertLegacy final : public Detector {
 public:
  explicit CertLegacy(const RuleParams& p) {
    for (const auto& m : p.GetMaps("legacy_credentials")) {
      auto fp = m.find("fp");
      if (fp == m.end() || fp->second.empty()) continue;
      Credential c;
      c.fp = fp->second;
      if (auto cut = m.find("cutoff"); cut != m.end()) {
        c.cutoff_text = cut->second;
        auto t = ParseRfc3339(cut->second);
        if (t.ok()) {
          c.cutoff_ms = *t;
          c.valid = true;
        }
      }
      creds_.emplace(HashText(c.fp), std::move(c));
    }
  }

  void OnEvent(const Event& e, Context& ctx) override {
    if (e.type != EventType::kSessionUp || creds_.empty() || e.cert_fp.empty()) return;
    auto it = creds_.find(HashText(e.cert_fp));
    if (it == creds_.end()) return;
    const Credential& c = it->second;
    if (c.fp != e.cert_fp) return;
    if (c.valid && e.ts_ms <= c.cutoff_ms) return;

    Evidence ev = MakeEvidence("cert.legacy", "", e.device, e.ts_ms);
    ev.details_json = nlohmann::json{{"cert_fp", e.cert_fp},
                                     {"cutoff", c.valid ? Ts(c.cutoff_ms) : "invalid: " + c.cutoff_text},
                                     {"session", e.session},
                                     {"src_ip", e.src_ip},
                                     {"endpoint", e.endpoint}}
                          .dump();
    ctx.Emit(std::move(ev));
  }

 private:
  struct Credential {
    std::string fp;
    std::string cutoff_text;
    UnixMillis cutoff_ms = 0;
    bool valid = false;
  };
  std::unordered_map<uint64_t, Credential> creds_;
};

}  // namespace

std::unique_ptr<Detector> MakeCertLegacyDetector(const RuleParams& p) {
  return std::make_unique<CertLegacy>(p);
}

}  // namespace fg::detect::detectors

// ---- declaration (detector.h RuleSpec; docs/configuration.md, docs/reasons.md) ----

namespace fg::detect::detectors {
namespace {
constexpr KeySpec kParams[] = {
    {"legacy_credentials", ValueType::kMapList, "[]", kNoMin, kNoMax, "retired shared credentials with their cutoff (RFC 3339); the store's are added", "fp,cutoff"},
};
}  // namespace
extern const RuleSpec kCertLegacySpec{"cert.legacy",
    "session.up presents a legacy shared credential after its cutoff",
    "the device has not migrated to its own certificate: enrol it (EST or CMP), then approve the block",
    kParams, {}};
}  // namespace fg::detect::detectors
