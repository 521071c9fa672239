// CMP messages (RFC 4210) through CmpServer::Handle, the path
// POST /pkix/ takes: DER decoding, protection (PBM with the env's bootstrap
// token, signatures), and every message type's handler.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_env.h"
#include "pki/cmp_server.h"

namespace {
fg::CmpServer* g_cmp = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fg::fuzz::QuietLogs();
  g_cmp = new fg::CmpServer(*fg::fuzz::GetEnv().enrolment);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > fg::CmpServer::kMaxMessageBytes + 1) return -1;  // the HTTP layer caps bodies
  auto reply = g_cmp->Handle(std::string_view(reinterpret_cast<const char*>(data), size), "192.0.2.1");
  if (reply.http_status == 200 && reply.der.empty()) __builtin_trap();  // 200 always carries a PKIMessage
  return 0;
}
