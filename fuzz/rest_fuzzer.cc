// REST bodies of the node: POST /v1/admission (admission/api.h: parsing, and
// the decision's JSON with evidence that echoes request fields, as the real
// checks do) and POST /v1/payment/check (LiveDetection::PaymentCheck over the
// env's store). The first byte picks the endpoint; the rest is the body.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "admission/api.h"
#include "fuzz_env.h"
#include "node/live_detection.h"

namespace {

// Echoes untrusted fields into the evidence, as the checks do (device,
// addresses), so DecisionToJson meets every byte the parser lets through.
class EchoGate : public fg::admission::Gate {
 public:
  fg::admission::Decision Admit(const fg::admission::AdmissionRequest& r) override {
    fg::admission::Decision d;
    d.verdict = r.rem.empty() ? fg::admission::Verdict::kAllow : fg::admission::Verdict::kQuarantine;
    d.reasons = {"fuzz"};
    d.evidence = {{"device", r.device}, {"session", r.session}, {"src_ip", r.src_ip},
                  {"endpoint", r.endpoint}, {"segw", r.segw}, {"serial", r.serial}, {"cert_fp", r.cert_fp}};
    return d;
  }
  void SessionDown(std::string_view, std::string_view) override {}
};

EchoGate* g_gate = nullptr;
fg::LiveDetection* g_live = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fg::fuzz::QuietLogs();
  auto& env = fg::fuzz::GetEnv();
  g_gate = new EchoGate;
  std::filesystem::create_directories(env.dir->SecretsDir());
  std::ofstream(env.dir->PseudonymKeyPath()) << std::string(32, 'p');
  auto live = fg::LiveDetection::Start(*env.store, *env.dir, {});
  if (!live.ok()) {
    std::fprintf(stderr, "LiveDetection::Start: %s\n", live.status().ToString().c_str());
    std::abort();
  }
  g_live = std::move(live).value().release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fg::admission::kMaxAdmissionBody) return -1;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    fg::HttpRequest req;
    req.method = "POST";
    req.target = req.path = "/v1/payment/check";
    req.body = std::move(body);
    req.remote_addr = "192.0.2.1";
    fg::HttpResponse resp = g_live->PaymentCheck(req);
    if (resp.status != 200 && resp.status != 400) __builtin_trap();
  } else {
    int status = 0;
    std::string out = fg::admission::HandleAdmissionJson(*g_gate, body, &status);
    if ((status != 200 && status != 400) || out.empty()) __builtin_trap();
  }
  return 0;
}
