// Detection's side of the shared endpoint table (testing/endpoint_cases.h):
// endpoint.retired fires for exactly the cases admission denies.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "detect/detector.h"
#include "detect/engine.h"
#include "detect/rules.h"
#include "detect/world.h"
#include "testing/endpoint_cases.h"

namespace fg::detect {
namespace {

constexpr UnixMillis T0 = 1767225600000;  // 2026-01-01

std::string ShippedRules() {
  std::ifstream in(std::string(FG_SOURCE_DIR) + "/rules/default.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EndpointVocabulary, DetectionAnswersEveryCaseAsTheTableSays) {
  const std::string rules_text = ShippedRules();
  for (const auto& c : fg::testing::EndpointCases()) {
    SCOPED_TRACE(c.name);
    World world;
    Device d;
    d.id = "FG-1";
    d.status = DeviceStatus::kActive;
    world.Register(d);
    auto rules = RuleSet::Parse(rules_text, AllRuleIds());
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    std::vector<Alert> alerts;
    Engine engine(std::move(world), std::move(*rules),
                  [&](const Alert& a) { alerts.push_back(a); });
    for (const auto& k : c.known) {
      Event e;
      e.type = EventType::kEndpointStatus;
      e.ts_ms = T0;
      e.endpoint = k.address;
      e.status = k.status;
      engine.Process(e);
    }
    Event up;
    up.type = EventType::kSessionUp;
    up.ts_ms = T0 + 60000;
    up.device = "FG-1";
    up.session = "s1";
    up.cert_fp = "sha256:01";
    up.src_ip = "203.0.113.1";
    up.endpoint = c.reported;
    engine.Process(up);
    engine.Flush(T0 + 120000);
    size_t retired = 0;
    for (const Alert& a : alerts) retired += a.rule == "endpoint.retired";
    EXPECT_EQ(retired, c.retired ? 1u : 0u) << "reported " << c.reported;
  }
}

TEST(EndpointVocabulary, WorldKnowsNothingOfAnEndpointNoStatusNamed) {
  World world;
  EXPECT_FALSE(world.EndpointStatus("segw-old.example").has_value());
  world.SetEndpointStatus("segw-old.example:500", "retired");
  EXPECT_EQ(world.EndpointStatus("segw-old.example").value_or(""), "retired");
  // A later status of the same endpoint (another spelling of it) replaces it.
  world.SetEndpointStatus("SEGW-OLD.example:500", "active");
  EXPECT_EQ(world.EndpointStatus("segw-old.example:500").value_or(""), "active");
  EXPECT_FALSE(world.EndpointStatus("segw-new.example").has_value());
  EXPECT_FALSE(world.EndpointStatus("").has_value());
}

// The reconnect-versus-clone rule (common/reconnect.h) as cert.clone applies
// it: the same as admission's clone check (tests/common/vocabulary_test.cc).
size_t Clones(const std::string& rules_text, const std::string& ep1, const std::string& ip1,
              const std::string& ep2, const std::string& ip2) {
  World world;
  Device d;
  d.id = "FG-1";
  d.status = DeviceStatus::kActive;
  d.prefixes = {"203.0.113.0/24"};
  world.Register(d);
  auto rules = RuleSet::Parse(rules_text, AllRuleIds());
  EXPECT_TRUE(rules.ok()) << rules.status().ToString();
  std::vector<Alert> alerts;
  Engine engine(std::move(world), std::move(*rules), [&](const Alert& a) { alerts.push_back(a); });
  auto up = [&](const std::string& s, UnixMillis ts, const std::string& ep, const std::string& ip) {
    Event e;
    e.type = EventType::kSessionUp;
    e.ts_ms = ts;
    e.device = "FG-1";
    e.session = s;
    e.cert_fp = "sha256:01";
    e.src_ip = ip;
    e.endpoint = ep;
    engine.Process(e);
  };
  up("s1", T0, ep1, ip1);
  up("s2", T0 + 1000, ep2, ip2);
  engine.Flush(T0 + 3600 * 1000);
  size_t n = 0;
  for (const Alert& a : alerts) n += a.rule == "cert.clone";
  return n;
}

TEST(ReconnectVocabulary, CertCloneUsesTheSharedReconnectRule) {
  const std::string rules = ShippedRules();
  // Another line: a clone (the first session stays up past grace_s).
  EXPECT_EQ(Clones(rules, "segw:500", "198.51.100.1", "segw:500", "203.0.113.9"), 1u);
  // Regression: the same endpoint written with and without its port, same
  // line, was a clone for detection and a reconnect for admission.
  EXPECT_EQ(Clones(rules, "segw:500", "203.0.113.1", "segw", "203.0.113.1"), 0u);
  EXPECT_EQ(Clones(rules, "segw:500", "203.0.113.1", "SEGW:500", "::ffff:203.0.113.1"), 0u);
  // Another port is another endpoint.
  EXPECT_EQ(Clones(rules, "segw:500", "203.0.113.1", "segw:4500", "203.0.113.1"), 1u);
  // Inside one registered prefix: a clone unless same_prefix_is_reconnect.
  EXPECT_EQ(Clones(rules, "segw:500", "203.0.113.1", "segw:500", "203.0.113.2"), 1u);
  std::string lenient = "rules:\n  cert.clone:\n    params: {same_prefix_is_reconnect: true}\n";
  EXPECT_EQ(Clones(lenient, "segw:500", "203.0.113.1", "segw:500", "203.0.113.2"), 0u);
  EXPECT_EQ(Clones(lenient, "segw:500", "203.0.113.1", "segw:500", "198.51.100.2"), 1u);
}

}  // namespace
}  // namespace fg::detect
