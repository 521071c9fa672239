#include "node/node_gate.h"

#include <openssl/evp.h>

#include <mutex>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/ossl.h"
#include "common/time.h"

namespace fg {
namespace {

using nlohmann::json;

// Admission reason -> (detection rule, evidence kind).
bool RuleForReason(std::string_view reason, std::string* rule, std::string* kind) {
  kind->clear();
  if (reason == "cert.clone" || reason == "device.unknown" || reason == "device.inactive" ||
      reason == "cert.shared" || reason == "endpoint.retired") {
    *rule = std::string(reason);
    return true;
  }
  if (reason == "location.line") {
    *rule = "location.mismatch";
    *kind = "line";
    return true;
  }
  return false;
}

std::string AlertId(std::string_view rule, std::string_view device, std::string_view session) {
  std::string input = "admission|" + std::string(rule) + "|" + std::string(device) + "|" + std::string(session);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(input.data(), input.size(), md, &n, EVP_sha256(), nullptr);
  return ossl::HexLower(md, 8);
}

class NodeGate final : public admission::Gate {
 public:
  NodeGate(admission::Engine& engine, LiveDetection& detection) : engine_(engine), detection_(detection) {}

  admission::Decision Admit(const admission::AdmissionRequest& request) override {
    admission::Decision d = engine_.Admit(request);
    const UnixMillis now = request.now_ms ? request.now_ms : NowMillis();
    if (d.verdict == admission::Verdict::kAllow || d.verdict == admission::Verdict::kQuarantine) {
      {
        std::lock_guard lock(mutex_);
        admitted_.insert(request.session);
      }
      detect::Event e;
      e.type = detect::EventType::kSessionUp;
      e.ts_ms = now;
      e.device = request.device;
      e.session = request.session;
      e.cert_fp = request.cert_fp;
      e.src_ip = request.src_ip;
      e.endpoint = request.endpoint;
      e.segw = request.segw;
      if (Status s = detection_.Publish(e); !s.ok()) spdlog::warn("detection feed: {}", s.ToString());
      return d;
    }
    for (const std::string& reason : d.reasons) {
      std::string rule, kind;
      if (RuleForReason(reason, &rule, &kind)) Flag(request, d, rule, kind, now);
    }
    return d;
  }

  void SessionDown(std::string_view device, std::string_view session) override {
    engine_.SessionDown(device, session);
    {
      std::lock_guard lock(mutex_);
      if (admitted_.erase(std::string(session)) == 0) return;
    }
    detect::Event e;
    e.type = detect::EventType::kSessionDown;
    e.ts_ms = NowMillis();
    e.device = std::string(device);
    e.session = std::string(session);
    if (Status s = detection_.Publish(e); !s.ok()) spdlog::warn("detection feed: {}", s.ToString());
  }

 private:
  void Flag(const admission::AdmissionRequest& r, const admission::Decision& d, const std::string& rule,
            const std::string& kind, UnixMillis now) {
    detect::Alert a;
    a.id = AlertId(rule, r.device, r.session);
    a.ts_ms = now;
    a.rule = rule;
    a.kind = kind;
    a.device = r.device;
    a.severity = detect::Severity::kHigh;
    a.actions = {"notify"};
    if (const std::optional<detect::RuleConfig> cfg = detection_.FindRule(rule)) {  // a copy: rules reload on SIGHUP
      const detect::RuleOutcome& o = cfg->For(kind);
      a.severity = o.severity;
      for (const auto* list : {&o.actions, &o.approve}) {
        for (const std::string& action : *list) {
          if (action == "revoke" || action == "suspend" || action == "block") {
            if (std::find(a.approve.begin(), a.approve.end(), action) == a.approve.end()) a.approve.push_back(action);
          }
        }
      }
    }
    json ev = {{"source", "admission"}, {"decision", admission::VerdictName(d.verdict)}, {"reasons", d.reasons},
               {"session", r.session}, {"src_ip", r.src_ip}, {"endpoint", r.endpoint}, {"segw", r.segw}};
    for (const auto& [k, v] : d.evidence) ev["admission"][k] = v;
    a.evidence_json = ev.dump();
    // The responder's own thread stores and notifies it (retried while the
    // store refuses): never the SeGW's request path.
    detection_.responder().Submit(std::move(a), /*seq=*/0);
  }

  admission::Engine& engine_;
  LiveDetection& detection_;
  std::mutex mutex_;
  std::unordered_set<std::string> admitted_;  // sessions fed to detection; guarded by mutex_

};

}  // namespace

std::unique_ptr<admission::Gate> MakeNodeGate(admission::Engine& engine, LiveDetection& detection) {
  return std::make_unique<NodeGate>(engine, detection);
}

}  // namespace fg
