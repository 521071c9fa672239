#include "common/device.h"

#include <gtest/gtest.h>

#include <string>

namespace fg {
namespace {

using S = DeviceStatus;
constexpr S kAll[] = {S::kProvisioned, S::kActive, S::kSuspended, S::kDecommissioned};

TEST(DeviceLifecycleTest, TransitionTable) {
  // Rows: from; columns: to, in kAll order. The lifecycle of device.h:
  // provisioned -> active -> suspended <-> active -> decommissioned (terminal).
  constexpr bool kAllowed[4][4] = {
      /* provisioned    */ {false, true, false, true},
      /* active         */ {false, false, true, true},
      /* suspended      */ {false, true, false, true},
      /* decommissioned */ {false, false, false, false},
  };
  for (int from = 0; from < 4; ++from) {
    for (int to = 0; to < 4; ++to) {
      EXPECT_EQ(IsAllowedTransition(kAll[from], kAll[to]), kAllowed[from][to])
          << DeviceStatusName(kAll[from]) << " -> " << DeviceStatusName(kAll[to]);
    }
  }
}

TEST(DeviceLifecycleTest, SameStatusIsNotATransition) {
  for (S s : kAll) EXPECT_FALSE(IsAllowedTransition(s, s)) << DeviceStatusName(s);
}

TEST(DeviceLifecycleTest, StatusNamesRoundTrip) {
  for (S s : kAll) {
    auto parsed = ParseDeviceStatus(DeviceStatusName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  auto bad = ParseDeviceStatus("enabled");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("enabled"), std::string::npos);
  EXPECT_FALSE(ParseDeviceStatus("Active").ok());
}

TEST(DeviceLifecycleTest, AccessModeNamesRoundTrip) {
  for (AccessMode m : {AccessMode::kClosed, AccessMode::kHybrid, AccessMode::kOpen}) {
    auto parsed = ParseAccessMode(AccessModeName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_FALSE(ParseAccessMode("csg").ok());
}

TEST(ValidateDeviceIdTest, AcceptsTheConservativeAlphabet) {
  for (const char* id : {"FG-0000001", "a", "fg_1.2-3", "0", "A.b_C-d"}) {
    EXPECT_TRUE(ValidateDeviceId(id).ok()) << id;
  }
  EXPECT_TRUE(ValidateDeviceId(std::string(64, 'x')).ok());
}

TEST(ValidateDeviceIdTest, RefusesEverythingElse) {
  for (const std::string& id : {
           std::string(),
           std::string(65, 'x'),
           std::string(".hidden"),
           std::string("-flag"),
           std::string("FG 1"),
           std::string("FG/1"),
           std::string("../etc"),
           std::string("FG:1"),
           std::string("FG\n1"),
           std::string("FG\0"
                       "1",
                       4),
           std::string("FG-\xC3\xA9"),  // é
           std::string("CN=x,O=y"),
       }) {
    Status s = ValidateDeviceId(id);
    EXPECT_FALSE(s.ok()) << "accepted '" << id << "'";
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace fg
