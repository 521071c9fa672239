// The shared vocabulary of src/common/: endpoints, IP prefixes and the
// reconnect-versus-clone rule, with the bounds admission and detection now
// both use.

#include <gtest/gtest.h>

#include "common/endpoint.h"
#include "common/ip.h"
#include "common/net.h"
#include "common/reconnect.h"

namespace fg {
namespace {

TEST(EndpointKey, NormalFormAndMatching) {
  EXPECT_EQ(ParseEndpointKey("SEGW-Old.example:500"), (EndpointKey{"segw-old.example", 500}));
  EXPECT_EQ(ParseEndpointKey("ikev2://user@segw.example:4500/path?x"),
            (EndpointKey{"segw.example", 4500}));
  EXPECT_EQ(ParseEndpointKey("[2001:db8::1]:500"), (EndpointKey{"2001:db8::1", 500}));
  EXPECT_EQ(ParseEndpointKey("2001:db8::1"), (EndpointKey{"2001:db8::1", 0}));
  EXPECT_EQ(ParseEndpointKey(" segw.example "), (EndpointKey{"segw.example", 0}));
  EXPECT_EQ(ParseEndpointKey("segw.example:99999").port, 0);
  EXPECT_EQ(ParseEndpointKey("").host, "");
  EXPECT_TRUE(
      SameEndpoint(ParseEndpointKey("segw-old.example"), ParseEndpointKey("segw-old.example:500")));
  EXPECT_TRUE(
      SameEndpoint(ParseEndpointKey("segw-old.example:500"), ParseEndpointKey("segw-old.example")));
  EXPECT_FALSE(SameEndpoint(ParseEndpointKey("segw-old.example:4500"),
                            ParseEndpointKey("segw-old.example:500")));
  EXPECT_FALSE(SameEndpoint(ParseEndpointKey("old.example"), ParseEndpointKey("segw-old.example")));
  EXPECT_EQ(EndpointText(ParseEndpointKey("[2001:db8::1]:500")), "[2001:db8::1]:500");
}

TEST(EndpointKey, DecidingEndpointPrefersActiveThenDrainingThenRetired) {
  struct K {
    EndpointKey key;
    EndpointUse use;
  };
  std::vector<K> known = {{ParseEndpointKey("h.example:500"), EndpointUse::kRetired},
                          {ParseEndpointKey("h.example:4500"), EndpointUse::kDraining}};
  auto key = [](const K& k) -> const EndpointKey& { return k.key; };
  auto use = [](const K& k) { return k.use; };
  auto it = DecidingEndpoint(known.begin(), known.end(), ParseEndpointKey("h.example"), key, use);
  ASSERT_NE(it, known.end());
  EXPECT_EQ(it->use, EndpointUse::kDraining);
  it = DecidingEndpoint(known.begin(), known.end(), ParseEndpointKey("h.example:500"), key, use);
  EXPECT_EQ(it->use, EndpointUse::kRetired);
  EXPECT_EQ(DecidingEndpoint(known.begin(), known.end(), ParseEndpointKey(""), key, use),
            known.end());
  EXPECT_EQ(DecidingEndpoint(known.begin(), known.end(), ParseEndpointKey("h.example:1"), key, use),
            known.end());
}

TEST(IpPrefix, OneParserWithStrictBounds) {
  EXPECT_TRUE(ParseIpPrefix("10.0.0.0/8"));
  EXPECT_TRUE(ParseIpPrefix("2001:db8::/32"));
  EXPECT_TRUE(ParseIpPrefix("10.0.0.1"));  // a host prefix
  EXPECT_FALSE(ParseIpPrefix("10.0.0.0/33"));
  EXPECT_FALSE(ParseIpPrefix("10.0.0.0/8x"));
  EXPECT_FALSE(ParseIpPrefix("10.0.0.0/"));
  EXPECT_FALSE(ParseIpPrefix("2001:db8::/129"));
  // The text helpers detection uses give the same answers (they used to
  // accept "/8x" and refuse a bare address).
  EXPECT_TRUE(IpInPrefix("10.1.2.3", "10.0.0.0/8"));
  EXPECT_FALSE(IpInPrefix("10.1.2.3", "10.0.0.0/8x"));
  EXPECT_TRUE(IpInPrefix("10.0.0.1", "10.0.0.1"));
  EXPECT_TRUE(IpInPrefix("::ffff:10.0.0.1", "10.0.0.0/8"));
  EXPECT_FALSE(IpInPrefix("10.0.0.1", "2001:db8::/32"));
}

TEST(Reconnect, SameEndpointAndLineIsAReconnectAnythingElseIsNot) {
  auto line = [](const char* ep, const char* ip) {
    return SessionLine{ParseEndpointKey(ep), ip, nullptr};
  };
  std::vector<IpPrefix> prefixes = {*ParseIpPrefix("203.0.113.0/24")};
  EXPECT_TRUE(
      IsReconnect(line("segw:500", "203.0.113.1"), line("segw:500", "203.0.113.1"), {}, false));
  EXPECT_TRUE(IsReconnect(line("segw:500", "203.0.113.1"), line("segw", "203.0.113.1"), {}, false));
  EXPECT_TRUE(IsReconnect(line("segw:500", "203.0.113.1"), line("SEGW:500", "::ffff:203.0.113.1"),
                          {}, false));
  EXPECT_FALSE(
      IsReconnect(line("segw:500", "203.0.113.1"), line("segw:4500", "203.0.113.1"), {}, false));
  EXPECT_FALSE(IsReconnect(line("segw:500", "203.0.113.1"), line("segw:500", "203.0.113.2"),
                           prefixes, false));
  EXPECT_TRUE(IsReconnect(line("segw:500", "203.0.113.1"), line("segw:500", "203.0.113.2"),
                          prefixes, true));
  EXPECT_FALSE(IsReconnect(line("segw:500", "203.0.113.1"), line("segw:500", "198.51.100.2"),
                           prefixes, true));
  EXPECT_FALSE(
      IsReconnect(line("segw:500", "203.0.113.1"), line("segw:500", "garbage"), prefixes, true));
}

}  // namespace
}  // namespace fg
