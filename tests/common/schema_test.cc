// common/schema.h: declared keys refuse unknown keys, wrong types and values
// out of range, naming the key's path and line; config.yaml uses it.

#include "common/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/config.h"
#include "common/config_keys.h"

namespace fg {
namespace {

using ::testing::HasSubstr;

constexpr KeySpec kSpecs[] = {
    {"grace_s", ValueType::kInt, "60", 0, 86400, "grace"},
    {"ratio", ValueType::kNumber, "0.5", 0, 1, "ratio"},
    {"on", ValueType::kBool, "false", kNoMin, kNoMax, "switch"},
    {"mode", ValueType::kString, "a", kNoMin, kNoMax, "mode", "a|b"},
    {"list", ValueType::kStringList, "[]", kNoMin, kNoMax, "list"},
    {"creds", ValueType::kMapList, "[]", kNoMin, kNoMax, "creds", "fp,cutoff"},
    {"rate.line.max", ValueType::kInt, "200", 0, 1000, "nested"},
    {"verdicts", ValueType::kMap, "{}", kNoMin, kNoMax, "map", "allow|deny"},
};

Status V(const std::string& yaml) { return ValidateKeys(YAML::Load(yaml), kSpecs, "p"); }

TEST(Schema, AcceptsWellTypedValuesAndEmptyInput) {
  EXPECT_TRUE(V("").ok());
  EXPECT_TRUE(V("{}").ok());
  Status s =
      V("grace_s: 0\nratio: 1\non: true\nmode: b\nlist: [x, y]\ncreds: [{fp: a, cutoff: b}]\n"
        "rate: {line: {max: 1000}}\nverdicts: {x: allow}\n");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(Schema, RefusesAnUnknownKeyNamingItsPathAndLine) {
  Status s = V("grace_s: 5\ngrace_seconds: 5\n");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("line 2: p.grace_seconds: unknown key"));
  EXPECT_THAT(s.message(), HasSubstr("grace_s"));  // lists the known keys
  EXPECT_THAT(V("rate: {line: {maxx: 1}}").message(),
              HasSubstr("p.rate.line.maxx: unknown key (known here: max)"));
  EXPECT_THAT(V("rate: {lines: {max: 1}}").message(), HasSubstr("p.rate.lines: unknown key"));
  EXPECT_THAT(V("creds: [{fp: a, cutof: b}]").message(),
              HasSubstr("p.creds[0].cutof: unknown key"));
}

TEST(Schema, RefusesAWrongType) {
  EXPECT_THAT(V("grace_s: sixty").message(),
              HasSubstr("p.grace_s: expected an integer, got 'sixty'"));
  EXPECT_THAT(V("grace_s: 6.5").message(), HasSubstr("expected an integer"));
  EXPECT_THAT(V("grace_s: [1]").message(), HasSubstr("p.grace_s: expected an integer"));
  EXPECT_THAT(V("ratio: half").message(), HasSubstr("p.ratio: expected a number"));
  EXPECT_THAT(V("ratio: .nan").message(), HasSubstr("expected a number"));
  EXPECT_THAT(V("on: maybe").message(), HasSubstr("p.on: expected true or false"));
  EXPECT_THAT(V("mode: c").message(), HasSubstr("p.mode: must be one of a|b"));
  EXPECT_THAT(V("list: x").message(), HasSubstr("p.list: expected a list"));
  EXPECT_THAT(V("list: [[x]]").message(), HasSubstr("p.list[0]: expected a single value"));
  EXPECT_THAT(V("creds: [a]").message(), HasSubstr("p.creds[0]: expected a map"));
  EXPECT_THAT(V("rate: 5").message(), HasSubstr("p.rate: expected a map"));
  EXPECT_THAT(V("verdicts: {x: maybe}").message(),
              HasSubstr("p.verdicts.x: must be one of allow|deny"));
}

TEST(Schema, RefusesOutOfRange) {
  EXPECT_THAT(V("grace_s: -1").message(), HasSubstr("p.grace_s: must be in [0, 86400], got -1"));
  EXPECT_THAT(V("grace_s: 86401").message(), HasSubstr("must be in [0, 86400]"));
  EXPECT_THAT(V("grace_s: 99999999999999999999").message(), HasSubstr("expected an integer"));
  EXPECT_THAT(V("ratio: 1.5").message(), HasSubstr("p.ratio: must be in [0, 1], got 1.5"));
  EXPECT_TRUE(V("grace_s: 86400").ok());
}

TEST(Schema, RenderedTableNamesEveryKeyWithTypeDefaultAndRange) {
  std::string t = RenderKeyTable(kSpecs, "x");
  EXPECT_THAT(t, HasSubstr("| `x.grace_s` | integer | `60` | [0, 86400] | grace |"));
  EXPECT_THAT(t, HasSubstr("| `x.mode` | string | `a` | a,b | mode |"));
  EXPECT_THAT(t, HasSubstr("| `x.creds` | list of maps | `[]` | fields: fp,cutoff | creds |"));
}

// ---- config.yaml ----

TEST(ConfigKeys, UnknownKeyWrongTypeAndRangeAreRefusedNamingTheKey) {
  auto typo = Config::FromYaml("lisen: 127.0.0.1:1\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("line 1: lisen: unknown key"));
  auto nested = Config::FromYaml("ca:\n  name: x\n  root_validity: 5\n");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("line 3: ca.root_validity: unknown key"));
  auto type = Config::FromYaml("certificates: {renew_at_percent: most}\n");
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(type.status().message(),
              HasSubstr("certificates.renew_at_percent: expected an integer, got 'most'"));
  auto range = Config::FromYaml("certificates: {renew_at_percent: 99}\n");
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.status().message(),
              HasSubstr("certificates.renew_at_percent: must be in [10, 95], got 99"));
  auto cidr = Config::FromYaml("http: {segw_sources: [10.0.0.0/33]}\n");
  ASSERT_FALSE(cidr.ok());
  EXPECT_THAT(cidr.status().message(), HasSubstr("http.segw_sources[0]"));
}

TEST(ConfigKeys, WhatInitWritesLoadsBackAndEveryKeyIsDeclared) {
  Config c;
  std::string yaml = c.ToYaml();
  auto back = Config::FromYaml(yaml);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  // Every key ToYaml writes is declared, and every declared key is written
  // (so a new key cannot be forgotten on either side).
  YAML::Node root = YAML::Load(yaml);
  std::vector<std::string> written;
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string k = it->first.Scalar();
    if (it->second.IsMap()) {
      for (auto jt = it->second.begin(); jt != it->second.end(); ++jt)
        written.push_back(k + "." + jt->first.Scalar());
    } else {
      written.push_back(k);
    }
  }
  for (const std::string& w : written) EXPECT_NE(FindKey(ConfigKeys(), w), nullptr) << w;
  for (const KeySpec& k : ConfigKeys()) {
    if (k.default_text == "(none)") continue;  // optional (ca.hsm.*, ca.passphrase_file): written only when set
    EXPECT_NE(std::find(written.begin(), written.end(), std::string(k.path)), written.end())
        << k.path;
  }
}

TEST(ConfigKeys, DeclaredDefaultsAreTheStructsDefaultsAndInRange) {
  Config c;
  YAML::Node root = YAML::Load(c.ToYaml());
  for (const KeySpec& k : ConfigKeys()) {
    if (k.type != ValueType::kInt) continue;
    std::string path(k.path);
    YAML::Node n = root;
    size_t dot = path.find('.');
    std::string v = dot == std::string::npos
                        ? root[path].Scalar()
                        : root[path.substr(0, dot)][path.substr(dot + 1)].Scalar();
    EXPECT_EQ(v, std::string(k.default_text)) << path;
    double d = std::stod(v);
    EXPECT_GE(d, k.min) << path;
    EXPECT_LE(d, k.max) << path;
  }
}

}  // namespace
}  // namespace fg
