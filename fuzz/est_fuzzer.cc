// EST (RFC 7030) through EstServer::Handle: the Basic-auth header, the base64
// PKCS#10 body, the operation path and Content-Type. Input layout, readable
// so that seeds can be written by hand:
//   METHOD OPERATION\n CONTENT-TYPE\n AUTHORIZATION\n "tls" or ""\n BODY

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_env.h"
#include "pki/est_server.h"

namespace {
fg::EstServer* g_est = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fg::fuzz::QuietLogs();
  g_est = new fg::EstServer(*fg::fuzz::GetEnv().enrolment);
  return 0;
}

namespace {
// The next line of `rest` (without "\n"); `rest` moves past it.
std::string_view Line(std::string_view& rest) {
  size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4 * fg::EstServer::kMaxCsrBytes) return -1;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string_view request_line = Line(rest);
  size_t sp = request_line.find(' ');
  fg::EstRequest req;
  req.method = request_line.substr(0, sp);
  req.operation = sp == std::string_view::npos ? std::string_view() : request_line.substr(sp + 1);
  req.content_type = Line(rest);
  req.authorization = Line(rest);
  req.tls = Line(rest) == "tls";
  req.body = rest;
  req.source_ip = "192.0.2.1";
  fg::EstReply reply = g_est->Handle(req);
  if (reply.status < 100 || reply.status > 599) __builtin_trap();

  // The decoder on its own, as the body's first step.
  auto decoded = fg::DecodeBase64(rest);
  if (decoded.ok()) {
    auto again = fg::DecodeBase64(fg::EncodeBase64(*decoded));
    if (!again.ok() || *again != *decoded) __builtin_trap();  // round trip
  }
  return 0;
}
