// One registry.jsonl line (femtoguard device import) through
// ParseRegistryLine, and CIDR canonicalisation.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/pseudonym.h"
#include "common/registry_file.h"

namespace {
fg::Pseudonymizer* g_pseudo = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_pseudo = new fg::Pseudonymizer(std::string(32, 'k'));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto device = fg::ParseRegistryLine(line, *g_pseudo);
  (void)device;
  auto cidr = fg::CanonicalCidr(line);
  if (cidr.ok()) {
    // Canonical text is a fixed point.
    auto again = fg::CanonicalCidr(*cidr);
    if (!again.ok() || *again != *cidr) __builtin_trap();
  }
  return 0;
}
