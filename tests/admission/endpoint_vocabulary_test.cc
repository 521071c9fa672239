// Admission's side of the shared endpoint table (testing/endpoint_cases.h):
// the endpoint check denies endpoint.retired for exactly the cases detection
// raises endpoint.retired for.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "admission_fixture.h"
#include "testing/endpoint_cases.h"

namespace fg::admission {
namespace {

class EndpointVocabularyTest : public AdmissionTest {};

// Each case's host names get a suffix of their own ("segw-old.example-c3"),
// so the endpoints of one case never answer another in the shared store.
std::string Isolated(std::string text, int n) {
  for (const char* dom : {".example", ".Example"}) {
    size_t at = text.find(dom);
    if (at != std::string::npos) text.insert(at + 8, "-c" + std::to_string(n));
  }
  return text;
}

TEST_F(EndpointVocabularyTest, AdmissionAnswersEveryCaseAsTheTableSays) {
  Certificate c = AddActiveDevice("FG-1");
  int n = 0;
  for (const auto& tc : fg::testing::EndpointCases()) {
    SCOPED_TRACE(tc.name);
    ++n;
    for (const auto& k : tc.known) {
      auto status = ParseEndpointStatus(k.status);
      ASSERT_TRUE(status.ok());
      AddEndpoint(Isolated(k.address, n), *status);
    }
    auto engine = MakeEngine();
    ASSERT_NE(engine, nullptr);
    std::string reported = Isolated(tc.reported, n);
    Decision d =
        engine->Admit(Request("FG-1", c, "203.0.113.1", "s" + std::to_string(n), reported));
    bool retired =
        std::find(d.reasons.begin(), d.reasons.end(), "endpoint.retired") != d.reasons.end();
    EXPECT_EQ(retired, tc.retired) << "reported " << reported;
    EXPECT_EQ(d.verdict, tc.retired ? Verdict::kDeny : Verdict::kAllow) << "reported " << reported;
  }
}

}  // namespace
}  // namespace fg::admission
