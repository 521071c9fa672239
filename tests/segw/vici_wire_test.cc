// vici's wire format: the README's own example byte for byte, round trips,
// and a strict decoder that refuses every malformed shape without crashing.

#include "segw/vici_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace fg::segw::vici {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// The encoding example of src/libcharon/plugins/vici/README.md.
const std::string kReadmeExample =
    Bytes({3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',                  // key1 = value1
           1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',                                  // section1 {
           1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',                  //   sub-section {
           3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',                  //     key2 = value2
           2,                                                                             //   }
           4, 5, 'l', 'i', 's', 't', '1',                                                 //   list1 = [
           5, 0, 5, 'i', 't', 'e', 'm', '1', 5, 0, 5, 'i', 't', 'e', 'm', '2',            //     item1, item2
           6,                                                                             //   ]
           2});                                                                           // }

Section ReadmeTree() {
  Section root;
  root.Set("key1", "value1");
  Section& s1 = root.AddSection("section1");
  s1.AddSection("sub-section").Set("key2", "value2");
  s1.SetList("list1", {"item1", "item2"});
  return root;
}

TEST(ViciWire, EncodesTheReadmeExampleByteForByte) {
  auto bytes = EncodeMessage(ReadmeTree());
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, kReadmeExample);
}

TEST(ViciWire, DecodesTheReadmeExample) {
  auto msg = DecodeMessage(kReadmeExample);
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  EXPECT_EQ(msg->Get("key1"), "value1");
  const Section* s1 = msg->Child("section1");
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s1->Child("sub-section"), nullptr);
  EXPECT_EQ(s1->Child("sub-section")->Get("key2"), "value2");
  ASSERT_NE(s1->List("list1"), nullptr);
  EXPECT_EQ(*s1->List("list1"), (std::vector<std::string>{"item1", "item2"}));
  // Lookups are by kind: a section is not a value, a value is not a list.
  EXPECT_EQ(msg->Value("section1"), nullptr);
  EXPECT_EQ(msg->List("key1"), nullptr);
  EXPECT_EQ(s1->Get("missing", "fallback"), "fallback");
}

TEST(ViciWire, PacketsCarryTypeNameAndLengthPrefix) {
  Packet p{PacketType::kCmdRequest, "version", {}};
  auto bytes = EncodePacket(p);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, Bytes({0, 0, 0, 9, 0, 7, 'v', 'e', 'r', 's', 'i', 'o', 'n'}));

  Packet ev{PacketType::kEvent, "ike-updown", ReadmeTree()};
  auto ev_bytes = EncodePacket(ev);
  ASSERT_TRUE(ev_bytes.ok());
  auto len = DecodeLength(reinterpret_cast<const unsigned char*>(ev_bytes->data()));
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, ev_bytes->size() - 4);
  auto back = DecodePacket(std::string_view(*ev_bytes).substr(4));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->type, PacketType::kEvent);
  EXPECT_EQ(back->name, "ike-updown");
  EXPECT_EQ(*EncodeMessage(back->message), kReadmeExample);

  // Unnamed types have no name byte.
  auto confirm = EncodePacket({PacketType::kEventConfirm, "", {}});
  ASSERT_TRUE(confirm.ok());
  EXPECT_EQ(*confirm, Bytes({0, 0, 0, 1, 5}));
  auto decoded = DecodePacket(std::string_view(*confirm).substr(4));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->type, PacketType::kEventConfirm);
  EXPECT_TRUE(decoded->name.empty());
  EXPECT_TRUE(decoded->message.empty());
}

TEST(ViciWire, ValuesAreBlobs) {
  Section s;
  std::string blob("\0\x01\xff\x02", 4);
  s.Set("data", blob).Set("empty", "");
  auto bytes = EncodeMessage(s);
  ASSERT_TRUE(bytes.ok());
  auto back = DecodeMessage(*bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Get("data"), blob);
  EXPECT_EQ(back->Get("empty", "x"), "");
  EXPECT_NE(back->Value("empty"), nullptr);
}

TEST(ViciWire, EncoderRefusesWhatTheFormatCannotCarry) {
  Section long_name;
  long_name.Set(std::string(256, 'k'), "v");
  EXPECT_FALSE(EncodeMessage(long_name).ok());
  Section empty_name;
  empty_name.Set("", "v");
  EXPECT_FALSE(EncodeMessage(empty_name).ok());
  Section long_value;
  long_value.Set("k", std::string(65536, 'v'));
  EXPECT_FALSE(EncodeMessage(long_value).ok());
  Section max_value;
  max_value.Set("k", std::string(65535, 'v'));
  EXPECT_TRUE(EncodeMessage(max_value).ok());
  EXPECT_FALSE(EncodePacket({PacketType::kCmdRequest, "", {}}).ok());            // named type without name
  EXPECT_FALSE(EncodePacket({PacketType::kCmdResponse, "oops", {}}).ok());       // unnamed type with a name
  Limits small;
  small.max_packet = 16;
  EXPECT_FALSE(EncodePacket({PacketType::kCmdRequest, "list-sas", max_value}, small).ok());
}

struct BadCase {
  const char* what;
  std::string bytes;
  const char* error;
};

TEST(ViciWire, DecoderRefusesMalformedMessages) {
  const std::vector<BadCase> cases = {
      {"unknown element type", Bytes({9}), "unknown element type 9"},
      {"element type zero", Bytes({0}), "unknown element type 0"},
      {"truncated key name", Bytes({3, 4, 'k', 'e'}), "truncated key"},
      {"missing value length", Bytes({3, 1, 'k', 0}), "truncated value length"},
      {"value longer than the rest", Bytes({3, 1, 'k', 0, 9, 'v'}), "truncated value"},
      {"empty key", Bytes({3, 0, 0, 0}), "empty key"},
      {"section end at the root", Bytes({2}), "section end without a section"},
      {"unterminated section", Bytes({1, 1, 's'}), "unterminated section"},
      {"empty section name", Bytes({1, 0, 2}), "empty section name"},
      {"list item outside a list", Bytes({5, 0, 1, 'x'}), "list item outside a list"},
      {"list end without a list", Bytes({6}), "list end without a list"},
      {"unterminated list", Bytes({4, 1, 'l', 5, 0, 1, 'x'}), "unterminated list"},
      {"list in a list", Bytes({4, 1, 'l', 4, 1, 'm', 6, 6}), "list inside a list"},
      {"key/value in a list", Bytes({4, 1, 'l', 3, 1, 'k', 0, 0, 6}), "key/value inside a list"},
      {"section in a list", Bytes({4, 1, 'l', 1, 1, 's', 2, 6}), "section inside a list"},
      {"section end in a list", Bytes({1, 1, 's', 4, 1, 'l', 2}), "section end inside a list"},
      {"duplicate key", Bytes({3, 1, 'k', 0, 0, 3, 1, 'k', 0, 0}), "duplicate key 'k'"},
      {"list named like a key", Bytes({3, 1, 'k', 0, 0, 4, 1, 'k', 6}), "duplicate key 'k'"},
  };
  for (const auto& c : cases) {
    auto r = DecodeMessage(c.bytes);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(r.status().message(), HasSubstr(c.error)) << c.what;
  }
  // The same key in two different sections is fine.
  EXPECT_TRUE(DecodeMessage(Bytes({3, 1, 'k', 0, 0, 1, 1, 's', 3, 1, 'k', 0, 0, 2})).ok());
}

TEST(ViciWire, DecoderRefusesMalformedPackets) {
  EXPECT_FALSE(DecodePacket("").ok());
  EXPECT_THAT(DecodePacket(Bytes({8})).status().message(), HasSubstr("unknown packet type 8"));
  EXPECT_THAT(DecodePacket(Bytes({7})).status().message(), HasSubstr("truncated packet name"));
  EXPECT_THAT(DecodePacket(Bytes({7, 0})).status().message(), HasSubstr("empty packet name"));
  EXPECT_THAT(DecodePacket(Bytes({7, 5, 'a', 'b'})).status().message(), HasSubstr("truncated packet name"));
  EXPECT_THAT(DecodePacket(Bytes({1, 2})).status().message(), HasSubstr("section end"));
  unsigned char zero[4] = {0, 0, 0, 0};
  EXPECT_FALSE(DecodeLength(zero).ok());
  unsigned char huge[4] = {0, 8, 0, 1};  // 512 KiB + 1
  EXPECT_THAT(DecodeLength(huge).status().message(), HasSubstr("exceeds the limit"));
  unsigned char max[4] = {0, 8, 0, 0};
  EXPECT_TRUE(DecodeLength(max).ok());
}

TEST(ViciWire, DecoderEnforcesDepthAndElementLimits) {
  Limits limits;
  limits.max_depth = 4;
  limits.max_elements = 100;
  auto nested = [](int depth) {
    std::string b;
    for (int i = 0; i < depth; ++i) b += Bytes({1, 1, 's'});
    for (int i = 0; i < depth; ++i) b += Bytes({2});
    return b;
  };
  EXPECT_TRUE(DecodeMessage(nested(4), limits).ok());
  EXPECT_THAT(DecodeMessage(nested(5), limits).status().message(), HasSubstr("nested too deep"));
  // Deep nesting with the default limits is refused too, not a stack overflow.
  EXPECT_FALSE(DecodeMessage(nested(100000)).ok());

  std::string many = Bytes({4, 1, 'l'});
  for (int i = 0; i < 100; ++i) many += Bytes({5, 0, 0});
  many += Bytes({6});
  EXPECT_THAT(DecodeMessage(many, limits).status().message(), HasSubstr("too many elements"));
}

// Every prefix of a valid message that cuts it short is an error or a
// smaller valid message, never a crash; random bytes likewise.
TEST(ViciWire, TruncatedAndRandomBytesNeverCrash) {
  auto full = EncodePacket({PacketType::kEvent, "ike-updown", ReadmeTree()});
  ASSERT_TRUE(full.ok());
  std::string payload = full->substr(4);
  for (size_t n = 0; n < payload.size(); ++n) {
    auto r = DecodePacket(std::string_view(payload).substr(0, n));
    if (r.ok()) {
      // Only cuts at an element boundary at the root can be valid.
      EXPECT_TRUE(r->message.Child("section1") == nullptr) << n;
    }
  }
  std::mt19937 rng(20240611);
  size_t ok = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() % 9);  // mostly plausible type bytes
    auto r = DecodePacket(bytes);
    if (r.ok()) {
      ++ok;
      // Whatever decodes re-encodes to a packet that decodes the same way.
      auto again = EncodePacket(*r);
      ASSERT_TRUE(again.ok());
      auto twice = DecodePacket(std::string_view(*again).substr(4));
      ASSERT_TRUE(twice.ok());
      EXPECT_EQ(twice->message.DebugString(), r->message.DebugString());
    }
  }
  // Mutations of a valid packet: flip one byte at a time.
  for (size_t i = 0; i < payload.size(); ++i) {
    for (int v : {0, 1, 2, 3, 4, 5, 6, 7, 0x7f, 0xff}) {
      std::string m = payload;
      m[i] = static_cast<char>(v);
      (void)DecodePacket(m);
    }
  }
  SUCCEED() << ok << " random inputs happened to be valid";
}

TEST(ViciWire, SectionsCopyDeeply) {
  Section a = ReadmeTree();
  Section b = a;
  const_cast<Section*>(a.Child("section1"))->Set("added", "only in a");
  EXPECT_EQ(b.Child("section1")->Value("added"), nullptr);
  EXPECT_EQ(*EncodeMessage(b), kReadmeExample);
}

}  // namespace
}  // namespace fg::segw::vici
