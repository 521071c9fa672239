// Admission's side of the shared REM cell table (testing/rem_cases.h).

#include <gtest/gtest.h>

#include <string>

#include "admission/api.h"
#include "testing/rem_cases.h"

namespace fg::admission {
namespace {

TEST(RemBounds, AdmissionAcceptsAndRefusesAsTheTableSays) {
  for (const auto& c : fg::testing::RemCellCases()) {
    auto r = ParseAdmissionRequest(std::string(R"({"device":"FG-1","rem":[)") + c.cell + "]}");
    EXPECT_EQ(r.ok(), c.ok) << c.cell << ": " << r.status().ToString();
  }
}

}  // namespace
}  // namespace fg::admission
