// The simulated world, read back as a user of the four files would: it is
// deterministic, every line parses, the benign look-alikes are there, the
// attacks leave the evidence their labels promise, and a benign world holds
// nothing that docs/detection.md says is an attack.

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/net.h"
#include "common/pseudonym.h"
#include "common/registry_file.h"
#include "common/time.h"
#include "sim/sim.h"
#include "testing/harness.h"

namespace fg::sim {
namespace {

using nlohmann::json;

constexpr UnixMillis kMin = 60 * 1000;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

UnixMillis Ts(const json& j, const char* key = "ts") {
  auto t = ParseRfc3339(j.at(key).get<std::string>());
  EXPECT_TRUE(t.ok()) << j.dump();
  return t.ok() ? *t : 0;
}

double DistM(double lat1, double lon1, double lat2, double lon2) {
  double x = (lon2 - lon1) * std::cos((lat1 + lat2) / 2 * M_PI / 180) * 111320.0;
  double y = (lat2 - lat1) * 111132.0;
  return std::hypot(x, y);
}

// One generated world, parsed.
struct World {
  std::unique_ptr<testing::TempDir> dir;
  SimSummary summary;
  std::map<std::string, json> registry;  // by device id
  std::vector<json> events;
  std::vector<json> truth;
  std::vector<std::string> cell_lines;

  bool InCsg(const std::string& device, const std::string& imsi) const {
    auto it = registry.find(device);
    if (it == registry.end()) return false;
    for (const auto& m : it->second["csg"])
      if (m == imsi) return true;
    return false;
  }
  std::vector<json> Labels(const std::string& kind, const std::string& rule = "") const {
    std::vector<json> out;
    for (size_t i = 1; i < truth.size(); ++i) {
      if (truth[i]["kind"] == kind && (rule.empty() || truth[i]["rule"] == rule)) out.push_back(truth[i]);
    }
    return out;
  }
};

SimOptions Options(const std::string& scenario, uint64_t seed, uint32_t devices, const std::string& out) {
  SimOptions o;
  o.scenario = scenario;
  o.seed = seed;
  o.devices = devices;
  o.days = 2;
  o.out_dir = out;
  return o;
}

// Generated once per (scenario, seed, size) for the whole test binary.
const World& Get(const std::string& scenario, uint64_t seed, uint32_t devices) {
  static std::map<std::string, std::unique_ptr<World>> cache;
  std::string key = scenario + "/" + std::to_string(seed) + "/" + std::to_string(devices);
  auto& slot = cache[key];
  if (slot) return *slot;
  slot = std::make_unique<World>();
  World& w = *slot;
  w.dir = std::make_unique<testing::TempDir>();
  auto s = RunSimulation(Options(scenario, seed, devices, w.dir->path().string()));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return w;
  w.summary = *s;
  for (const auto& line : Lines(Slurp(*w.dir / "registry.jsonl"))) {
    json j = json::parse(line);
    w.registry[j["device"].get<std::string>()] = j;
  }
  for (const auto& line : Lines(Slurp(*w.dir / "events.jsonl"))) w.events.push_back(json::parse(line));
  for (const auto& line : Lines(Slurp(*w.dir / "truth.jsonl"))) w.truth.push_back(json::parse(line));
  w.cell_lines = Lines(Slurp(*w.dir / "cells.csv"));
  return w;
}

// ---------------------------------------------------------------------------

TEST(SimDeterminism, SameSeedGivesByteIdenticalFilesAndAnotherSeedDoesNot) {
  testing::TempDir a, b, c;
  ASSERT_TRUE(RunSimulation(Options("all", 42, 200, a.path().string())).ok());
  ASSERT_TRUE(RunSimulation(Options("all", 42, 200, b.path().string())).ok());
  ASSERT_TRUE(RunSimulation(Options("all", 43, 200, c.path().string())).ok());
  for (const char* f : {"registry.jsonl", "cells.csv", "events.jsonl", "truth.jsonl"}) {
    std::string fa = Slurp(a / f), fb = Slurp(b / f);
    ASSERT_FALSE(fa.empty()) << f;
    EXPECT_TRUE(fa == fb) << f << " differs between two runs with the same seed";
  }
  EXPECT_NE(Slurp(a / "events.jsonl"), Slurp(c / "events.jsonl"));
  EXPECT_NE(Slurp(a / "registry.jsonl"), Slurp(c / "registry.jsonl"));
  EXPECT_NE(Slurp(a / "truth.jsonl"), Slurp(c / "truth.jsonl"));
}

TEST(SimDeterminism, TheBenignBackgroundDoesNotDependOnTheScenario) {
  // Attacks draw from their own streams: the registry (apart from the units
  // an attack takes over) and the macro layout are the same.
  const World& benign = Get("benign", 7, 300);
  const World& clone = Get("clone", 7, 300);
  EXPECT_EQ(benign.cell_lines, clone.cell_lines);
  size_t same = 0;
  for (const auto& [id, j] : benign.registry) same += clone.registry.count(id) && clone.registry.at(id) == j;
  EXPECT_GE(same, benign.registry.size() - 2);
}

TEST(SimOptionsTest, RefusesBadOptionsBeforeWritingAnything) {
  testing::TempDir t;
  std::string out = t / "world";
  for (auto o : {Options("nope", 1, 200, out), Options("benign", 1, 50, out), Options("benign", 1, 200, "")}) {
    auto r = RunSimulation(o);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  auto o = Options("benign", 1, 200, out);
  o.days = 0;
  EXPECT_FALSE(RunSimulation(o).ok());
  EXPECT_FALSE(std::filesystem::exists(out));
  auto bad = RunSimulation(Options("kt-2026", 1, 200, out));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kt-2025"), std::string::npos) << "lists the scenarios";
}

// ---------------------------------------------------------------------------

TEST(SimFiles, RegistryLinesParseWithTheImportParser) {
  const World& w = Get("all", 5, 300);
  Pseudonymizer p(std::string(Pseudonymizer::kKeyBytes, 'k'));
  std::set<std::string> fps, statuses, modes;
  size_t n = 0;
  for (const auto& line : Lines(Slurp(*w.dir / "registry.jsonl"))) {
    ++n;
    auto d = ParseRegistryLine(line, p);
    ASSERT_TRUE(d.ok()) << d.status().ToString() << "\n" << line;
    ASSERT_TRUE(d->site.has_value());
    EXPECT_EQ(d->prefixes.size(), 1u);
    EXPECT_GT(d->max_ues, 0);
    ASSERT_EQ(d->cert_fp.size(), 7u + 64u) << d->cert_fp;
    EXPECT_EQ(d->cert_fp.find_first_not_of("0123456789abcdef", 7), std::string::npos);
    EXPECT_TRUE(fps.insert(d->cert_fp).second) << "certificate fingerprint shared: " << d->cert_fp;
    statuses.insert(std::string(DeviceStatusName(d->status)));
    modes.insert(std::string(AccessModeName(d->mode)));
    if (d->mode == AccessMode::kClosed) {
      EXPECT_GE(d->csg.size(), 1u) << line;
    }
    EXPECT_LE(d->csg.size(), 4u);
  }
  EXPECT_EQ(n, 300u);
  EXPECT_EQ(w.summary.devices, 300u);
  EXPECT_EQ(statuses, (std::set<std::string>{"active", "decommissioned", "provisioned", "suspended"}));
  EXPECT_EQ(modes, (std::set<std::string>{"closed", "hybrid", "open"}));
  // The raw CSG IMSIs are synthetic numbers of mcc 450 / mnc 08.
  for (const auto& [id, j] : w.registry)
    for (const auto& m : j["csg"]) EXPECT_EQ(m.get<std::string>().rfind("45008", 0), 0u) << id;
}

TEST(SimFiles, CellsCsvHasTheOpenCellIdLayout) {
  const World& w = Get("all", 5, 300);
  ASSERT_GT(w.cell_lines.size(), 1000u);
  EXPECT_EQ(w.cell_lines[0],
            "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal");
  std::set<std::string> ecis;
  std::set<int> nets;
  for (size_t i = 1; i < w.cell_lines.size(); ++i) {
    std::vector<std::string> f;
    std::stringstream ss(w.cell_lines[i]);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 14u) << w.cell_lines[i];
    EXPECT_EQ(f[0], "LTE");
    EXPECT_EQ(f[1], "450");
    nets.insert(std::stoi(f[2]));
    EXPECT_TRUE(ecis.insert(f[2] + "/" + f[4]).second) << "duplicate cell " << w.cell_lines[i];
    int pci = std::stoi(f[5]);
    EXPECT_GE(pci, 0);
    EXPECT_LT(pci, 480) << "480..503 are kept for small cells";
    double lon = std::stod(f[6]), lat = std::stod(f[7]);
    EXPECT_NEAR(lat, 37.55, 0.2);
    EXPECT_NEAR(lon, 126.98, 0.25);
  }
  EXPECT_EQ(nets, (std::set<int>{5, 6, 8}));
}

TEST(SimFiles, EventsAreOneObjectPerLineSortedByTime) {
  const World& w = Get("all", 5, 300);
  ASSERT_EQ(w.events.size(), w.summary.events);
  ASSERT_GT(w.events.size(), 10000u);
  static const std::set<std::string> kTypes = {
      "session.up", "session.down", "location.report", "rem.scan",    "ue.attach",      "ue.detach",
      "sms.deliver", "payment.auth", "meas.report",   "device.status", "endpoint.status", "s1.setup"};
  std::map<std::string, int> seen;
  UnixMillis prev = 0;
  const UnixMillis from = Ts(w.truth[0], "from"), to = Ts(w.truth[0], "to");
  for (const json& e : w.events) {
    ASSERT_TRUE(e.is_object());
    UnixMillis t = Ts(e);
    ASSERT_GE(t, prev) << "out of order: " << e.dump();
    ASSERT_GE(t, from);
    ASSERT_LT(t, to);
    prev = t;
    std::string type = e["type"];
    ASSERT_TRUE(kTypes.count(type)) << type;
    ++seen[type];
    if (e.contains("imsi")) {
      EXPECT_EQ(e["imsi"].get<std::string>().rfind("45008", 0), 0u);
    }
    if (type == "session.up") {
      for (const char* k : {"device", "session", "cert_fp", "src_ip", "endpoint", "segw"})
        ASSERT_TRUE(e[k].is_string()) << k << " in " << e.dump();
      EXPECT_TRUE(IsValidIp(e["src_ip"].get<std::string>()));
    }
    if (type == "s1.setup") {
      // Right after a session.up (its own, or the rogue's) from that address.
      ASSERT_TRUE(e["src_ip"].is_string()) << e.dump();
      EXPECT_EQ(e["plmn"], "45008");
      if (w.registry.count(e["device"])) {
        EXPECT_EQ(e["enb_id"], w.registry.at(e["device"])["enb_id"]) << "the registry's radio identity";
      }
    }
    if (type == "meas.report") {
      EXPECT_TRUE(e["serving_eci"].is_number_unsigned());
      EXPECT_FALSE(e["neighbors"].empty());
    }
  }
  EXPECT_EQ(seen.size(), kTypes.size()) << "every event type appears in the all scenario";
}

TEST(SimFiles, TruthStartsWithMetaAndLabelsStayInsideTheSpan) {
  const World& w = Get("all", 5, 300);
  ASSERT_GE(w.truth.size(), 2u);
  const json& meta = w.truth[0];
  EXPECT_EQ(meta["kind"], "meta");
  EXPECT_EQ(meta["scenario"], "all");
  EXPECT_EQ(meta["seed"], 5);
  EXPECT_EQ(meta["devices"], 300);
  EXPECT_EQ(meta["subscribers"], 900);
  const UnixMillis from = Ts(meta, "from"), to = Ts(meta, "to");
  EXPECT_EQ(to - from, 2 * 86400 * 1000);
  static const std::set<std::string> kRules = {
      "device.unknown",    "device.inactive", "cert.shared",  "cert.clone",    "cert.legacy",  "endpoint.retired",
      "location.mismatch", "location.moving", "ue.capture",   "sms.intercept", "payment.risk", "cell.unregistered",
      "identity.mismatch"};
  for (size_t i = 1; i < w.truth.size(); ++i) {
    const json& l = w.truth[i];
    EXPECT_TRUE(l["kind"] == "attack" || l["kind"] == "fraud_payment" || l["kind"] == "expected") << l.dump();
    EXPECT_TRUE(kRules.count(l["rule"])) << l.dump();
    EXPECT_LE(Ts(l, "from"), Ts(l, "to"));
    EXPECT_GE(Ts(l, "from"), from);
    EXPECT_LE(Ts(l, "to"), to);
    if (l["kind"] == "fraud_payment") {
      EXPECT_EQ(l["from"], l["to"]);
    }
  }
}

// Cells by PCI (cells.csv has no EARFCN: a PCI is explained by any cell).
struct PciIndex {
  std::map<int, std::vector<std::pair<double, double>>> by_pci;
  bool Explains(int pci, double lat, double lon, double radius_m) const {
    auto it = by_pci.find(pci);
    if (it == by_pci.end()) return false;
    for (const auto& [clat, clon] : it->second)
      if (DistM(lat, lon, clat, clon) <= radius_m) return true;
    return false;
  }
};

const PciIndex& CellsByPci(const World& w) {
  static std::map<const World*, PciIndex> cache;
  PciIndex& idx = cache[&w];
  if (!idx.by_pci.empty()) return idx;
  for (size_t i = 1; i < w.cell_lines.size(); ++i) {
    std::vector<std::string> f;
    std::stringstream ss(w.cell_lines[i]);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    idx.by_pci[std::stoi(f[5])].push_back({std::stod(f[7]), std::stod(f[6])});
  }
  return idx;
}

// ---------------------------------------------------------------------------
// Benign look-alikes

struct Session {
  std::string ip, endpoint;
  UnixMillis up = 0, down = -1;
};

// Sessions by device, in order of session.up.
std::map<std::string, std::vector<Session>> SessionsOf(const World& w) {
  std::map<std::string, std::vector<Session>> out;
  std::map<std::pair<std::string, std::string>, size_t> open;
  for (const json& e : w.events) {
    if (e["type"] == "session.up") {
      auto& v = out[e["device"]];
      open[{e["device"], e["session"]}] = v.size();
      v.push_back({e["src_ip"], e["endpoint"], Ts(e)});
    } else if (e["type"] == "session.down") {
      auto it = open.find({e["device"], e["session"]});
      EXPECT_NE(it, open.end()) << "session.down without session.up: " << e.dump();
      if (it == open.end()) continue;
      out[e["device"]][it->second].down = Ts(e);
      open.erase(it);
    }
  }
  return out;
}

TEST(SimBenign, ReaddressingInsideThePrefixAndRebootsFromTheSameLine) {
  const World& w = Get("benign", 3, 400);
  int readdress = 0, reboot = 0;
  for (const auto& [dev, v] : SessionsOf(w)) {
    const auto& prefixes = w.registry.at(dev)["prefixes"];
    for (size_t i = 1; i < v.size(); ++i) {
      const Session& a = v[i - 1];
      const Session& b = v[i];
      EXPECT_TRUE(IpInPrefix(b.ip, prefixes[0].get<std::string>())) << dev;
      if (a.ip != b.ip && a.down > b.up) {
        ++readdress;
        EXPECT_LE(a.down - b.up, 30 * 1000) << dev << ": the old session must go down within 30 s";
      }
      if (a.ip == b.ip && a.down >= 0 && a.down <= b.up && b.up - a.down <= 5 * kMin) ++reboot;
    }
  }
  EXPECT_GE(readdress, 20);
  EXPECT_GE(reboot, 5);
}

TEST(SimBenign, ACustomerMovesHouseWithTheFemtocellAndStaysThere) {
  const World& w = Get("benign", 3, 400);
  auto moved = w.Labels("expected", "location.mismatch");
  ASSERT_EQ(moved.size(), 1u);
  std::string dev = moved[0]["device"];
  const json& site = w.registry.at(dev)["site"];
  const UnixMillis from = Ts(moved[0], "from");
  std::vector<std::pair<double, double>> after;
  int before = 0;
  for (const json& e : w.events) {
    if (e["type"] != "location.report" || e["device"] != dev) continue;
    double d = DistM(site["lat"], site["lon"], e["lat"], e["lon"]);
    if (Ts(e) < from) {
      ++before;
      EXPECT_LE(d, site["radius_m"].get<double>() + e["acc_m"].get<double>());
    } else {
      EXPECT_GT(d, 2500) << "the new home is kilometres away";
      after.push_back({e["lat"], e["lon"]});
    }
  }
  EXPECT_GE(before, 1);
  ASSERT_GE(after.size(), 2u);
  for (const auto& p : after) EXPECT_LT(DistM(after[0].first, after[0].second, p.first, p.second), 100) << "stationary";
  EXPECT_FALSE(w.Labels("expected", "payment.risk").empty());
}

TEST(SimBenign, OpenFemtocellsHaveVisitorsBelowTheirLimitAndMembersGetTheirOtps) {
  const World& w = Get("benign", 3, 400);
  std::map<std::string, std::set<std::string>> attached;
  int visitors = 0, member_otp = 0;
  for (const json& e : w.events) {
    std::string type = e["type"];
    if (type == "ue.attach" || type == "ue.detach") {
      std::string dev = e["device"];
      const json& r = w.registry.at(dev);
      if (type == "ue.detach") {
        EXPECT_EQ(attached[dev].erase(e["imsi"]), 1u) << "detach without attach " << e.dump();
        continue;
      }
      attached[dev].insert(e["imsi"]);
      EXPECT_LT(attached[dev].size(), static_cast<size_t>(r["max_ues"].get<int>())) << dev;
      if (r["mode"] == "closed") {
        EXPECT_TRUE(w.InCsg(dev, e["imsi"])) << "non-member on a closed femtocell: " << e.dump();
      } else if (!w.InCsg(dev, e["imsi"])) {
        ++visitors;
      }
    }
    if (type == "sms.deliver" && e["class"] == "otp" && e.contains("device")) {
      if (w.InCsg(e["device"], e["imsi"])) ++member_otp;
    }
  }
  EXPECT_GE(visitors, 20);
  EXPECT_GE(member_otp, 5);
}

TEST(SimBenign, AReplacedFemtocellIsDecommissionedAndItsSuccessorConnectsWithItsOwnCertificate) {
  const World& w = Get("benign", 3, 400);
  std::string old_dev, new_dev;
  UnixMillis decommissioned = -1, activated = -1;
  for (const json& e : w.events) {
    if (e["type"] != "device.status") continue;
    if (e["status"] == "decommissioned") old_dev = e["device"], decommissioned = Ts(e);
    if (e["status"] == "active") new_dev = e["device"], activated = Ts(e);
  }
  ASSERT_FALSE(old_dev.empty());
  ASSERT_FALSE(new_dev.empty());
  const json& o = w.registry.at(old_dev);
  const json& n = w.registry.at(new_dev);
  EXPECT_EQ(o["status"], "active");
  EXPECT_EQ(n["status"], "provisioned");
  EXPECT_EQ(o["owner"], n["owner"]);
  EXPECT_EQ(o["csg"], n["csg"]);
  EXPECT_EQ(o["site"], n["site"]);
  EXPECT_NE(o["cert_fp"], n["cert_fp"]);
  int new_sessions = 0;
  for (const json& e : w.events) {
    if (e["type"] != "session.up") continue;
    if (e["device"] == old_dev) {
      EXPECT_LT(Ts(e), decommissioned) << "the old unit stays silent";
    }
    if (e["device"] == new_dev) {
      ++new_sessions;
      EXPECT_GT(Ts(e), activated) << "connects only once active";
      EXPECT_EQ(e["cert_fp"], n["cert_fp"]);
    }
  }
  EXPECT_GE(new_sessions, 1);
}

TEST(SimBenign, NothingInABenignWorldIsAnAttack) {
  const World& w = Get("benign", 3, 400);
  EXPECT_TRUE(w.Labels("attack").empty());
  EXPECT_TRUE(w.Labels("fraud_payment").empty());
  std::map<std::string, std::string> status;
  for (const auto& [id, j] : w.registry) status[id] = j["status"];
  std::map<std::string, std::string> fp_owner;
  for (const auto& [id, j] : w.registry) fp_owner[j["cert_fp"]] = id;
  std::map<std::string, std::string> session_at;  // src_ip -> the device of the last session.up there
  int setups = 0;
  for (const json& e : w.events) {
    if (e["type"] == "s1.setup") {
      ++setups;
      EXPECT_EQ(session_at[e["src_ip"]], e["device"]) << "a benign S1 setup claims its own session's identity: "
                                                      << e.dump();
    }
    if (e.contains("device")) {
      ASSERT_TRUE(w.registry.count(e["device"])) << "unknown identity: " << e.dump();
    }
    if (e["type"] == "device.status") status[e["device"]] = e["status"];
    if (e["type"] == "endpoint.status") {
      EXPECT_NE(e["status"], "retired");
    }
    if (e["type"] != "session.up") continue;
    std::string dev = e["device"];
    session_at[e["src_ip"]] = dev;
    EXPECT_EQ(status[dev], "active") << e.dump();
    EXPECT_EQ(fp_owner[e["cert_fp"]], dev) << "a certificate used by another identity: " << e.dump();
    EXPECT_TRUE(IpInPrefix(e["src_ip"].get<std::string>(), w.registry.at(dev)["prefixes"][0].get<std::string>()));
  }
  EXPECT_GT(setups, 100);
  // No identity holds two sessions from different lines or endpoints for a minute.
  for (const auto& [dev, v] : SessionsOf(w)) {
    for (size_t i = 0; i < v.size(); ++i)
      for (size_t j = i + 1; j < v.size(); ++j) {
        UnixMillis end = v[i].down < 0 ? INT64_MAX : v[i].down;
        if (end > v[j].up && (v[i].ip != v[j].ip || v[i].endpoint != v[j].endpoint)) {
          EXPECT_LT(end, v[j].up + 60 * 1000) << dev << " overlapping sessions";
        }
      }
  }
  // A neighbour no cell within 5 km explains is one subscriber's odd report,
  // never several subscribers' (that would be a rogue radio).
  std::map<std::pair<int, int>, std::set<std::string>> odd;
  int reports = 0;
  for (const json& e : w.events) {
    if (e["type"] != "meas.report") continue;
    ++reports;
    for (const auto& nb : e["neighbors"])
      if (!CellsByPci(w).Explains(nb["pci"], e["lat"], e["lon"], 5000)) odd[{nb["pci"], nb["earfcn"]}].insert(e["imsi"]);
  }
  EXPECT_GT(reports, 10000);
  EXPECT_GE(odd.size(), 3u) << "glitches (single odd reports) are part of the background";
  for (const auto& [cell, who] : odd) EXPECT_EQ(who.size(), 1u) << "pci " << cell.first;
}

// ---------------------------------------------------------------------------
// Attacks: the labels' evidence is in the events.

TEST(SimLabels, EveryAttackLabelHasItsEvidenceInTheEvents) {
  const World& w = Get("all", 5, 300);
  auto sessions = SessionsOf(w);
  std::set<std::string> rules;
  for (const json& l : w.Labels("attack")) {
    std::string rule = l["rule"];
    rules.insert(rule);
    const UnixMillis from = Ts(l, "from"), to = Ts(l, "to");
    if (rule == "cell.unregistered") {
      EXPECT_TRUE(l["device"].is_null());
      int pci = l["cell"]["pci"], earfcn = l["cell"]["earfcn"];
      // Reports of it that no cells.csv cell within 5 km explains (elsewhere
      // in the city a real cell may use the same PCI).
      std::set<std::string> reporters;
      std::vector<std::pair<double, double>> where;
      for (const json& e : w.events) {
        if (e["type"] != "meas.report" || Ts(e) < from || Ts(e) > to) continue;
        for (const auto& nb : e["neighbors"]) {
          if (nb["pci"] != pci || nb["earfcn"] != earfcn) continue;
          if (CellsByPci(w).Explains(pci, e["lat"], e["lon"], 5000)) continue;
          reporters.insert(e["imsi"]);
          where.push_back({e["lat"], e["lon"]});
        }
      }
      for (const auto& a : where)
        for (const auto& b : where) EXPECT_LT(DistM(a.first, a.second, b.first, b.second), 3200) << "one spot";
      EXPECT_GE(reporters.size(), 3u) << "several UEs hear the rogue radio";
      continue;
    }
    std::string dev = l["device"];
    const auto& v = sessions[dev];
    auto up_at_from = std::find_if(v.begin(), v.end(), [&](const Session& s) { return s.up == from; });
    if (rule == "device.unknown") {
      EXPECT_FALSE(w.registry.count(dev)) << dev;
      EXPECT_NE(up_at_from, v.end()) << dev;
    } else if (rule == "device.inactive") {
      std::string st = w.registry.at(dev)["status"];
      EXPECT_TRUE(st == "suspended" || st == "decommissioned") << dev;
      EXPECT_NE(up_at_from, v.end()) << dev;
    } else if (rule == "cert.clone") {
      ASSERT_NE(up_at_from, v.end()) << dev;
      bool overlapped = false;
      for (const Session& s : v) {
        if (&s == &*up_at_from) continue;
        bool live = s.up < from && (s.down < 0 || s.down > from + 60 * 1000);
        if (live && (s.ip != up_at_from->ip || s.endpoint != up_at_from->endpoint)) overlapped = true;
      }
      EXPECT_TRUE(overlapped) << dev << ": the clone's session overlaps a live one from another line";
    } else if (rule == "endpoint.retired") {
      ASSERT_NE(up_at_from, v.end());
      bool retired = false;
      for (const json& e : w.events)
        if (e["type"] == "endpoint.status" && e["status"] == "retired" && e["endpoint"] == up_at_from->endpoint &&
            Ts(e) < from)
          retired = true;
      EXPECT_TRUE(retired);
    } else if (rule == "location.mismatch") {
      bool off_line = false;
      for (const Session& s : v)
        if (s.up >= from && s.up <= to &&
            !IpInPrefix(s.ip, w.registry.at(dev)["prefixes"][0].get<std::string>()))
          off_line = true;
      EXPECT_TRUE(off_line) << dev << ": connects from a line outside its prefix";
    } else if (rule == "ue.capture" || rule == "sms.intercept") {
      std::set<std::string> served;
      for (const json& e : w.events) {
        if (Ts(e) < from || Ts(e) > to || !e.contains("device") || e["device"] != dev) continue;
        bool counts = rule == "ue.capture" ? e["type"] == "ue.attach"
                                           : e["type"] == "sms.deliver" && (e["class"] == "otp" || e["class"] == "ars");
        if (counts) {
          EXPECT_FALSE(w.InCsg(dev, e["imsi"])) << "victims are not members";
          served.insert(e["imsi"]);
        }
      }
      EXPECT_GE(served.size(), 2u) << rule << " " << dev;
    } else if (rule == "location.moving") {
      std::vector<std::pair<double, double>> fixes;
      for (const json& e : w.events)
        if (e["type"] == "location.report" && e["device"] == dev && Ts(e) >= from && Ts(e) <= to)
          fixes.push_back({e["lat"], e["lon"]});
      int rem = 0;
      for (const json& e : w.events)
        if (e["type"] == "rem.scan" && e["device"] == dev && Ts(e) >= from && Ts(e) <= to) ++rem;
      if (fixes.empty()) {
        EXPECT_GE(rem, 10) << dev << ": a REM-only box scans as it drives";
      } else {
        double span = 0;
        for (const auto& a : fixes)
          for (const auto& b : fixes) span = std::max(span, DistM(a.first, a.second, b.first, b.second));
        EXPECT_GT(span, 5000) << dev << " travels";
      }
    } else if (rule == "identity.mismatch") {
      // The rogue's own session, then an S1 setup from its address naming
      // another registered femtocell.
      ASSERT_NE(up_at_from, v.end()) << dev;
      bool claimed_other = false;
      for (const json& e : w.events)
        if (e["type"] == "s1.setup" && e["src_ip"] == up_at_from->ip && Ts(e) >= from && Ts(e) <= to &&
            e["device"] != dev && w.registry.count(e["device"]))
          claimed_other = true;
      EXPECT_TRUE(claimed_other) << dev;
    } else if (rule == "cert.shared") {
      std::set<std::string> fps;
      for (const json& e : w.events)
        if (e["type"] == "session.up" && e["device"] == dev) fps.insert(e["cert_fp"]);
      ASSERT_EQ(fps.size(), 1u);
      std::set<std::string> holders;
      for (const json& e : w.events)
        if (e["type"] == "session.up" && e["cert_fp"] == *fps.begin() && Ts(e) <= from) holders.insert(e["device"]);
      EXPECT_GE(holders.size(), 2u) << "another identity presented it first";
    }
  }
  EXPECT_EQ(rules, (std::set<std::string>{"cell.unregistered", "cert.clone", "cert.shared", "device.inactive",
                                          "device.unknown", "endpoint.retired", "identity.mismatch",
                                          "location.mismatch", "location.moving", "sms.intercept",
                                          "ue.capture"}));
}

TEST(SimLabels, FraudulentPaymentsHappenThroughTheCounterfeitAfterAnInterceptedCode) {
  const World& w = Get("kt-2025", 5, 300);
  auto fraud = w.Labels("fraud_payment");
  ASSERT_GE(fraud.size(), 8u);
  std::set<std::string> counterfeit;
  for (const json& l : w.Labels("attack", "location.moving")) counterfeit.insert(l["device"]);
  EXPECT_GE(counterfeit.size(), 4u);
  for (const json& l : fraud) {
    EXPECT_EQ(l["rule"], "payment.risk");
    EXPECT_TRUE(counterfeit.count(l["device"])) << l.dump();
    const UnixMillis t = Ts(l, "from");
    bool paid = false, code = false, attached = false;
    for (const json& e : w.events) {
      UnixMillis et = Ts(e);
      if (et > t) break;
      if (!e.contains("imsi") || e["imsi"] != l["imsi"]) continue;
      if (e["type"] == "ue.attach" && e["device"] == l["device"]) attached = true;
      if (e["type"] == "sms.deliver" && e.contains("device") && e["device"] == l["device"] && et >= t - 5 * kMin &&
          (e["class"] == "otp" || e["class"] == "ars"))
        code = true;
      if (e["type"] == "payment.auth" && et == t && e["merchant"] == l["merchant"] && e["amount"] == l["amount"]) {
        paid = true;
        EXPECT_TRUE(e["channel"] == "sms_otp" || e["channel"] == "ars");
      }
    }
    EXPECT_TRUE(attached) << l.dump();
    EXPECT_TRUE(code) << l.dump();
    EXPECT_TRUE(paid) << l.dump();
  }
  // Counterfeits from the same extracted credential: made-up identities and lost/dormant ones.
  int unknown = 0, reused = 0;
  for (const auto& d : counterfeit) (w.registry.count(d) ? reused : unknown)++;
  EXPECT_GE(unknown, 2);
  EXPECT_GE(reused, 2);
}

TEST(SimLabels, ExposedSubscribersOwnPaymentsAreExpectedNotFraud) {
  const World& w = Get("kt-2025", 5, 300);
  std::set<std::string> victims;
  for (const json& l : w.Labels("fraud_payment")) victims.insert(l["imsi"]);
  for (const json& l : w.Labels("expected", "payment.risk")) {
    if (l["imsi"].is_null()) continue;
    EXPECT_TRUE(l.contains("merchant"));
    // Every one of these is a real payment of that subscriber.
    bool found = false;
    for (const json& e : w.events)
      if (e["type"] == "payment.auth" && e["imsi"] == l["imsi"] && e["ts"] == l["from"]) found = true;
    EXPECT_TRUE(found) << l.dump();
  }
}

TEST(SimScale, EventCountGrowsWithTheFleet) {
  const World& small = Get("benign", 9, 200);
  const World& large = Get("benign", 9, 800);
  EXPECT_GT(large.summary.events, 3 * small.summary.events);
  EXPECT_LT(large.summary.events, 5 * small.summary.events);
  EXPECT_EQ(large.summary.subscribers, 2400u);
}

}  // namespace
}  // namespace fg::sim
