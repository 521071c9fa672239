// registry.jsonl lines carrying injection strings: refused with the field
// named, the value never echoed, counted per field.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/registry_file.h"

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RegistryInjectionTest, BadIdentifiersAreRefusedCountedAndNeverEchoed) {
  Pseudonymizer p(std::string(Pseudonymizer::kKeyBytes, 'k'));
  const std::string forged = "FORGED-LINE";
  const std::vector<std::string> bad = {"\n" + forged, "\r" + forged, "\x1b[2J" + forged,
                                        std::string("\0", 1) + forged, "\xe2\x80\xae" + forged};
  for (const char* field : {"device", "owner", "cert_fp", "status", "mode"}) {
    const std::string series = std::string(R"(door="registry",field=")") + field + "\"";
    for (const std::string& b : bad) {
      nlohmann::json line = {{"device", "FG-1"}};
      line[field] = std::string(field == std::string("device") ? "FG-1" : "x") + b;
      const uint64_t before = Metrics::Global().Value("femtoguard_bad_identifier_total", series);
      auto d = ParseRegistryLine(line.dump(), p);
      ASSERT_FALSE(d.ok()) << field << ": " << Printable(b);
      EXPECT_THAT(d.status().message(), HasSubstr(std::string("field '") + field + "'"));
      EXPECT_THAT(d.status().message(), Not(HasSubstr(forged)));
      EXPECT_EQ(Metrics::Global().Value("femtoguard_bad_identifier_total", series), before + 1)
          << field;
    }
  }
  auto pfx = ParseRegistryLine(R"({"device":"FG-1","prefixes":["10.0.0.0/8\nFORGED-LINE"]})", p);
  ASSERT_FALSE(pfx.ok());
  EXPECT_THAT(pfx.status().message(), Not(HasSubstr(forged)));
  // Not UTF-8 at all: not JSON.
  EXPECT_FALSE(ParseRegistryLine(std::string(R"({"device":"FG-)") + "\xff\xfe\"}", p).ok());
}

TEST(RegistryInjectionTest, TheDesignExampleAndSimulatorLinesStillParse) {
  Pseudonymizer p(std::string(Pseudonymizer::kKeyBytes, 'k'));
  for (
      const char* line :
      {R"({"device":"FG-0000001","status":"active","owner":"acct-81723","mode":"closed","site":{"lat":37.4786,"lon":126.8647,"radius_m":150},"prefixes":["211.36.128.0/20"],"csg":["450081234567890"],"cert_fp":"sha256:9f86d0...","max_ues":8})",
       R"({"device":"FG-0001234","status":"active","owner":"acct-0001234","mode":"hybrid","prefixes":["2001:db8::/48"]})",
       R"({"device":"FG-1","owner":"Café Wien — 2F"})"}) {
    auto d = ParseRegistryLine(line, p);
    EXPECT_TRUE(d.ok()) << line << ": " << d.status().ToString();
  }
}

}  // namespace
}  // namespace fg
