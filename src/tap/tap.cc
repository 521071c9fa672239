#include "tap/tap.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/time.h"

extern char** environ;

namespace fg::tap {
namespace {

using nlohmann::json;

// S1AP procedure codes (TS 36.413 §9.3.7) and NGAP ones (TS 38.413 §9.4.7)
// that make events.
constexpr int kS1HandoverPreparation = 0;
constexpr int kS1InitialUeMessage = 12;
constexpr int kS1UeContextReleaseRequest = 18;
constexpr int kS1S1Setup = 17;
constexpr int kS1UeContextRelease = 23;
constexpr int kNgHandoverPreparation = 12;
constexpr int kNgInitialUeMessage = 15;
constexpr int kNgNgSetup = 21;
constexpr int kNgUeContextRelease = 41;
constexpr int kNgUeContextReleaseRequest = 42;

// NAS message types: EMM (TS 24.301 §9.8) and 5GMM (TS 24.501 §9.7).
constexpr int kEmmAttachRequest = 0x41;
constexpr int kEmmDetachRequest = 0x45;
constexpr int kMmRegistrationRequest = 0x41;
constexpr int kMmDeregistrationUeOrig = 0x45;
constexpr int kMmDeregistrationNwOrig = 0x47;

const char* const kFields[] = {
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    // S1AP
    "s1ap.procedureCode",
    "s1ap.initiatingMessage_element",
    "s1ap.ENB_UE_S1AP_ID",
    "s1ap.macroENB_ID",
    "s1ap.homeENB_ID",
    "s1ap.pLMNidentity",
    "s1ap.PLMNidentity",
    "s1ap.ENBname",
    "s1ap.tAC",
    "s1ap.cSG_Id",
    "s1ap.CSG_Id",
    "s1ap.CellAccessMode",
    "s1ap.CellIdentity",
    "s1ap.pCI",
    "s1ap.eARFCN",
    "nas_eps.nas_msg_emm_type",
    // NGAP
    "ngap.procedureCode",
    "ngap.initiatingMessage_element",
    "ngap.RAN_UE_NGAP_ID",
    "ngap.gNB_ID",
    "ngap.pLMNIdentity",
    "ngap.RANNodeName",
    "ngap.tAC",
    "ngap.NRCellIdentity",
    "nas_5gs.mm.message_type",
    "nas_5gs.mm.suci.scheme_id",
    "nas_5gs.mm.suci.msin",
    "e212.mcc",
    "e212.mnc",
    // Identities (both)
    "e212.imsi",
    "gsm_a.imei",
    "nas_5gs.mm.imeisv",
    "gsm_a.imeisv",
};

// tshark -T ek field keys: dots become underscores.
std::string EkKey(std::string_view field) {
  std::string k(field);
  for (char& c : k)
    if (c == '.') c = '_';
  return k;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Hex text ("00e010", "00:e0:10", "0x000e0000") -> bytes; false on junk.
bool HexBytes(std::string_view hex, std::vector<uint8_t>* out) {
  out->clear();
  if (hex.substr(0, 2) == "0x") hex.remove_prefix(2);
  int hi = -1;
  for (char c : hex) {
    if (c == ':') continue;
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return false;
    if (hi < 0) {
      hi = v;
    } else {
      out->push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return hi < 0 && !out->empty();
}

// A bit string of `bits` bits that tshark shows as whole octets (left
// aligned, padded at the right): its value.
bool BitString(std::string_view hex, int bits, uint64_t* out) {
  std::vector<uint8_t> b;
  if (!HexBytes(hex, &b) || b.size() * 8 < static_cast<size_t>(bits) || b.size() > 8) return false;
  uint64_t v = 0;
  for (uint8_t x : b) v = v << 8 | x;
  *out = v >> (b.size() * 8 - static_cast<size_t>(bits));
  return true;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::string t(s);
  errno = 0;
  unsigned long long v = std::strtoull(t.c_str(), &end, 0);  // 0x... as tshark prints masks
  if (errno != 0 || end != t.c_str() + t.size()) return false;
  *out = v;
  return true;
}

}  // namespace

const std::vector<std::string>& TsharkFields() {
  static const std::vector<std::string> fields(std::begin(kFields), std::end(kFields));
  return fields;
}

void AddToDeviceMap(const Device& d, DeviceMap* map) {
  const RadioIdentity& r = d.radio;
  if (r.plmn.empty()) return;
  const std::string csg = r.csg_id ? "#" + std::to_string(*r.csg_id) : "";
  if (r.enb_id) (*map)[r.plmn + ":" + std::to_string(*r.enb_id) + csg] = d.id;
  if (!r.gnb_id.empty()) (*map)[r.plmn + ":" + r.gnb_id + csg] = d.id;
}

std::string PlmnFromHex(std::string_view hex) {
  std::vector<uint8_t> b;
  if (!HexBytes(hex, &b) || b.size() != 3) return {};
  // TBCD: MCC2 MCC1 | MNC3 MCC3 | MNC2 MNC1; MNC3 = 0xF for a two-digit MNC.
  int d[6] = {b[0] & 0xF, b[0] >> 4, b[1] & 0xF, b[2] & 0xF, b[2] >> 4, b[1] >> 4};
  std::string s;
  for (int i = 0; i < 6; ++i) {
    if (i == 5 && d[i] == 0xF) break;
    if (d[i] > 9) return {};
    s.push_back(static_cast<char>('0' + d[i]));
  }
  return s;
}

// What one packet of tshark output says, by field key.
struct EventBuilder::Packet {
  const json* layers = nullptr;
  std::vector<std::string> Values(std::string_view field) const {
    std::vector<std::string> out;
    auto it = layers->find(EkKey(field));
    if (it == layers->end()) return out;
    if (it->is_array()) {
      for (const json& v : *it)
        if (v.is_string()) out.push_back(v.get<std::string>());
    } else if (it->is_string()) {
      out.push_back(it->get<std::string>());
    }
    return out;
  }
  std::string First(std::string_view field) const {
    auto v = Values(field);
    return v.empty() ? std::string() : v.front();
  }
  bool Has(std::string_view field) const { return layers->contains(EkKey(field)); }
  std::vector<int> Ints(std::string_view field) const {
    std::vector<int> out;
    for (const auto& s : Values(field)) {
      uint64_t v;
      if (ParseU64(s, &v) && v <= 0xFFFF) out.push_back(static_cast<int>(v));
    }
    return out;
  }
};

struct EventBuilder::UeContext {
  std::string enb_addr;
  std::string ran;        // "s1ap" | "ngap"
  uint64_t ran_ue_id = 0;
  UnixMillis first_ts = 0;
  bool attach = false;    // an Attach / Registration request opened it
  bool attach_emitted = false;
  bool detach_emitted = false;
  std::string imsi;       // pseudonym, once an identity revealed it
  std::string imei;       // pseudonym
  uint64_t cell = 0;
  int64_t tac = -1;
  std::string plmn;
};

EventBuilder::EventBuilder(const Pseudonymizer& pseudonymizer, DeviceMap devices, Sink sink)
    : pseudonymizer_(pseudonymizer), devices_(std::move(devices)), sink_(std::move(sink)) {}

EventBuilder::~EventBuilder() = default;

std::string EventBuilder::ImsiPseudonym(std::string_view digits) const {
  return pseudonymizer_.Pseudonymize("imsi", digits);
}

std::string EventBuilder::DeviceOf(const std::string& enb_addr) const {
  auto n = node_of_addr_.find(enb_addr);
  if (n != node_of_addr_.end()) return n->second;
  std::string a = enb_addr;
  for (char& c : a)
    if (c == ':') c = '-';
  return "addr-" + a;
}

Status EventBuilder::Emit(const std::string& line) {
  ++stats_.events;
  return sink_(line);
}

Status EventBuilder::OnEkLine(std::string_view line) {
  if (line.empty() || line.substr(0, 9) == "{\"index\":") return Status::Ok();
  json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("layers") || !doc["layers"].is_object()) {
    ++stats_.bad_lines;
    return Status::Ok();
  }
  json& layers = doc["layers"];
  Packet p;
  p.layers = &layers;
  Status st = OnPacket(p);
  // The raw identities tshark printed are wiped from the parsed document
  // (the line buffer is the caller's, wiped there).
  for (const char* f : {"e212.imsi", "gsm_a.imei", "gsm_a.imeisv", "nas_5gs.mm.imeisv", "nas_5gs.mm.suci.msin"}) {
    auto it = layers.find(EkKey(f));
    if (it == layers.end() || !it->is_array()) continue;
    for (json& v : *it) {
      if (!v.is_string()) continue;
      std::string& s = v.get_ref<std::string&>();
      OPENSSL_cleanse(s.data(), s.size());
    }
  }
  return st;
}

Status EventBuilder::OnPacket(const Packet& p) {
  ++stats_.packets;
  std::string src = p.First("ip.src"), dst = p.First("ip.dst");
  if (src.empty()) src = p.First("ipv6.src");
  if (dst.empty()) dst = p.First("ipv6.dst");
  double epoch = std::strtod(p.First("frame.time_epoch").c_str(), nullptr);
  const UnixMillis ts = static_cast<UnixMillis>(std::llround(epoch * 1000));
  const std::string ts_text = FormatRfc3339(ts);

  const bool s1 = p.Has("s1ap.procedureCode");
  const std::string ran = s1 ? "s1ap" : "ngap";
  const std::vector<int> procs = p.Ints(s1 ? "s1ap.procedureCode" : "ngap.procedureCode");
  if (procs.empty()) return Status::Ok();
  stats_.pdus += procs.size();
  // A packet may bundle several PDUs (SCTP chunks); -e flattens their
  // fields. "initiatingMessage" is present when any of them is one.
  const bool initiating = p.Has(s1 ? "s1ap.initiatingMessage_element" : "ngap.initiatingMessage_element");
  auto has_proc = [&procs](int code) { return std::find(procs.begin(), procs.end(), code) != procs.end(); };

  // Setup: the node names itself.
  if (initiating && has_proc(s1 ? kS1S1Setup : kNgNgSetup)) {
    json e;
    e["ts"] = ts_text;
    e["type"] = s1 ? "s1.setup" : "ng.setup";
    e["src_ip"] = src;
    e["dst_ip"] = dst;
    const std::string plmn = PlmnFromHex(p.First(s1 ? "s1ap.pLMNidentity" : "ngap.pLMNIdentity"));
    e["plmn"] = plmn;
    std::string node_key;
    if (s1) {
      uint64_t id = 0;
      if (BitString(p.First("s1ap.homeENB_ID"), 28, &id)) {
        e["enb_id"] = id;
        e["enb_kind"] = "home";
      } else if (BitString(p.First("s1ap.macroENB_ID"), 20, &id)) {
        e["enb_id"] = id;
        e["enb_kind"] = "macro";
      } else {
        return Status::Ok();  // no Global eNB ID: not a setup we can bind
      }
      node_key = plmn + ":" + std::to_string(id);
      std::string name = p.First("s1ap.ENBname");
      if (!name.empty()) e["enb_name"] = name;
      json csgs = json::array();
      for (const auto& v : p.Values("s1ap.cSG_Id")) {
        uint64_t c;
        if (BitString(v, 27, &c)) csgs.push_back(c);
      }
      if (!csgs.empty()) e["csg_ids"] = csgs;
      // CSG-IdList without a hybrid indication: a closed cell (TS 36.300 §4.6.2).
      e["access_mode"] = csgs.empty() ? "open" : p.Has("s1ap.CellAccessMode") ? "hybrid" : "closed";
    } else {
      std::string g = p.First("ngap.gNB_ID");
      if (g.empty()) return Status::Ok();
      e["gnb_id"] = g;
      node_key = plmn + ":" + g;
      std::string name = p.First("ngap.RANNodeName");
      if (!name.empty()) e["ran_node_name"] = name;
      e["access_mode"] = "open";
    }
    json tacs = json::array();
    for (const auto& v : p.Values(s1 ? "s1ap.tAC" : "ngap.tAC")) {
      uint64_t t;
      if (ParseU64(v, &t)) tacs.push_back(t);
    }
    e["tacs"] = tacs;
    json plmns = json::array();
    std::set<std::string> seen;
    auto pl = p.Values(s1 ? "s1ap.PLMNidentity" : "ngap.pLMNIdentity");
    for (size_t i = s1 ? 0 : 1; i < pl.size(); ++i) {  // NGAP: the first is the gNB's own
      std::string x = PlmnFromHex(pl[i]);
      if (!x.empty() && seen.insert(x).second) plmns.push_back(x);
    }
    e["plmns"] = plmns;
    // The femtocell whose registered identity this is: PLMN and node id,
    // and, when the registry gives it one, a CSG id the setup lists.
    std::string device;
    if (auto d = devices_.find(node_key); d != devices_.end()) {
      device = d->second;
    } else if (e.contains("csg_ids")) {
      for (const json& c : e["csg_ids"]) {
        if (auto d2 = devices_.find(node_key + "#" + std::to_string(c.get<uint64_t>())); d2 != devices_.end()) {
          device = d2->second;
          break;
        }
      }
    }
    if (device.empty()) {
      std::string id = node_key;
      for (char& c : id)
        if (c == ':') c = '-';
      device = (s1 ? "enb-" : "gnb-") + id;
    }
    node_of_addr_[src] = device;
    e["device"] = DeviceOf(src);
    FG_RETURN_IF_ERROR(Emit(e.dump()));
  }

  // UE-associated PDUs: key on the RAN's UE id and the eNB/gNB address.
  uint64_t ue_id = 0;
  const std::string ue_field = s1 ? "s1ap.ENB_UE_S1AP_ID" : "ngap.RAN_UE_NGAP_ID";
  std::set<uint64_t> ue_ids;
  for (const auto& v : p.Values(ue_field)) {
    uint64_t x;
    if (ParseU64(v, &x)) ue_ids.insert(x);
  }
  if (ue_ids.size() != 1) return Status::Ok();  // non-UE PDU, or two UEs bundled: ambiguous
  ue_id = *ue_ids.begin();

  const bool initial_ue = initiating && has_proc(s1 ? kS1InitialUeMessage : kNgInitialUeMessage);
  // The eNB is the sender of uplink PDUs; downlink ones are keyed by
  // either end, whichever already holds the context.
  std::string key_src = src + "|" + ran + "|" + std::to_string(ue_id);
  std::string key_dst = dst + "|" + ran + "|" + std::to_string(ue_id);
  if (initial_ue) {
    UeContext c;
    c.enb_addr = src;
    c.ran = ran;
    c.ran_ue_id = ue_id;
    c.first_ts = ts;
    std::vector<int> nas = p.Ints(s1 ? "nas_eps.nas_msg_emm_type" : "nas_5gs.mm.message_type");
    c.attach = std::find(nas.begin(), nas.end(), s1 ? kEmmAttachRequest : kMmRegistrationRequest) != nas.end();
    uint64_t cell;
    if (ParseU64(p.First(s1 ? "s1ap.CellIdentity" : "ngap.NRCellIdentity"), &cell)) c.cell = cell;
    uint64_t tac;
    if (ParseU64(p.First(s1 ? "s1ap.tAC" : "ngap.tAC"), &tac)) c.tac = static_cast<int64_t>(tac);
    contexts_[key_src] = c;
  }
  auto it = contexts_.find(key_src);
  if (it == contexts_.end()) it = contexts_.find(key_dst);
  if (it == contexts_.end()) return Status::Ok();
  UeContext& c = it->second;

  // Identities, pseudonymized at once.
  std::string imsi = p.First("e212.imsi");
  if (imsi.empty() && !s1 && p.First("nas_5gs.mm.suci.scheme_id") == "0") {
    // SUCI under the null scheme carries the MSIN in clear: MCC+MNC+MSIN is
    // the IMSI. tshark shows the MNC as a number; a two-digit one is assumed
    // below 100 (docs/tap.md).
    std::string mcc = p.First("e212.mcc"), mnc = p.First("e212.mnc"), msin = p.First("nas_5gs.mm.suci.msin");
    if (AllDigits(mcc) && AllDigits(mnc) && AllDigits(msin)) {
      if (mnc.size() == 1) mnc = "0" + mnc;
      imsi = mcc + mnc + msin;
    }
  }
  if (AllDigits(imsi) && imsi.size() >= 6 && imsi.size() <= 15) c.imsi = ImsiPseudonym(imsi);
  OPENSSL_cleanse(imsi.data(), imsi.size());
  std::string imei = p.First("gsm_a.imei");
  if (AllDigits(imei) && imei.size() >= 14 && imei.size() <= 16) c.imei = pseudonymizer_.Pseudonymize("imei", imei);
  OPENSSL_cleanse(imei.data(), imei.size());

  auto base = [&](std::string_view type) {
    json e;
    e["ts"] = ts_text;
    e["type"] = type;
    e["device"] = DeviceOf(c.enb_addr);
    e["src_ip"] = c.enb_addr;
    e["imsi"] = c.imsi;
    if (!c.imei.empty()) e["imei"] = c.imei;
    e["ran"] = c.ran;
    e["ran_ue_id"] = c.ran_ue_id;
    return e;
  };

  if (c.attach && !c.attach_emitted && !c.imsi.empty()) {
    json e = base("ue.attach");
    if (c.cell) e[c.ran == "s1ap" ? "eci" : "nci"] = c.cell;
    if (c.tac >= 0) e["tac"] = c.tac;
    c.attach_emitted = true;
    FG_RETURN_IF_ERROR(Emit(e.dump()));
  }

  // Handover and paging: only for a UE whose identity is known.
  if (!c.imsi.empty() && initiating && has_proc(s1 ? kS1HandoverPreparation : kNgHandoverPreparation)) {
    FG_RETURN_IF_ERROR(Emit(base("ue.handover").dump()));
  }

  std::vector<int> nas = p.Ints(s1 ? "nas_eps.nas_msg_emm_type" : "nas_5gs.mm.message_type");
  auto has_nas = [&nas](int t) { return std::find(nas.begin(), nas.end(), t) != nas.end(); };
  const bool nas_detach = s1 ? has_nas(kEmmDetachRequest) : (has_nas(kMmDeregistrationUeOrig) || has_nas(kMmDeregistrationNwOrig));
  const bool release = has_proc(s1 ? kS1UeContextRelease : kNgUeContextRelease) ||
                       has_proc(s1 ? kS1UeContextReleaseRequest : kNgUeContextReleaseRequest);
  if ((nas_detach || release) && !c.detach_emitted && !c.imsi.empty()) {
    json e = base("ue.detach");
    e["cause"] = nas_detach ? "detach" : "release";
    c.detach_emitted = true;
    FG_RETURN_IF_ERROR(Emit(e.dump()));
  }
  // The context ends with the release (complete, or the command when the
  // complete is not captured: a later InitialUEMessage reopens it).
  if (release) {
    if (c.attach && c.imsi.empty()) ++stats_.attaches_without_imsi;
    contexts_.erase(it);
  }
  return Status::Ok();
}

Status EventBuilder::Finish() {
  for (const auto& kv : contexts_)
    if (kv.second.attach && kv.second.imsi.empty()) ++stats_.attaches_without_imsi;
  contexts_.clear();
  return Status::Ok();
}

std::vector<std::string> TsharkArgv(const TapOptions& o) {
  std::vector<std::string> a = {o.tshark};
  if (!o.pcap.empty()) {
    a.insert(a.end(), {"-r", o.pcap});
  } else {
    a.insert(a.end(), {"-i", o.interface, "-l", "-f", "sctp"});
  }
  for (const auto& pref : o.preferences) a.insert(a.end(), {"-o", pref});
  for (uint16_t port : o.sctp_ports) a.insert(a.end(), {"-d", "sctp.port==" + std::to_string(port) + ",s1ap"});
  // Over SCTP only: NGAP also rides inside HTTP/2 multipart bodies between
  // 5G core functions, which are not the radio side.
  a.insert(a.end(), {"-n", "-Y", "sctp && (s1ap || ngap)", "-T", "ek"});
  for (const auto& f : TsharkFields()) a.insert(a.end(), {"-e", f});
  return a;
}

Status RunTshark(const TapOptions& o, EventBuilder& builder) {
  if (o.pcap.empty() == o.interface.empty()) return Status::InvalidArgument("one of --pcap or --interface is needed");
  if (!o.pcap.empty()) {
    std::ifstream probe(o.pcap, std::ios::binary);
    if (!probe) return Status::InvalidArgument("cannot read " + o.pcap);
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Internal("pipe: " + std::string(std::strerror(errno)));
  // tshark's stderr goes to a file: read after it ends, for its message.
  char err_path[] = "/tmp/fg-tap-XXXXXX";
  int err_fd = mkstemp(err_path);
  if (err_fd < 0) {
    close(out[0]);
    close(out[1]);
    return Status::Internal("mkstemp: " + std::string(std::strerror(errno)));
  }
  unlink(err_path);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  std::vector<std::string> argv_s = TsharkArgv(o);
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    close(err_fd);
    return Status::Unavailable("cannot run " + o.tshark + ": " + std::strerror(rc) +
                               " (install Debian's tshark package)");
  }
  Status st = Status::Ok();
  std::string buf;
  char chunk[1 << 16];
  for (;;) {
    ssize_t n = read(out[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    OPENSSL_cleanse(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (st.ok()) st = builder.OnEkLine(std::string_view(buf).substr(start, nl - start));
    }
    OPENSSL_cleanse(buf.data(), start);
    buf.erase(0, start);
    if (!st.ok()) {
      kill(pid, SIGTERM);  // the sink failed: stop the capture
      break;
    }
  }
  close(out[0]);
  OPENSSL_cleanse(buf.data(), buf.size());
  int wst = 0;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  std::string err;
  lseek(err_fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(err_fd, chunk, sizeof chunk)) > 0;) err.append(chunk, static_cast<size_t>(n));
  close(err_fd);
  if (!st.ok()) return st;
  if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
    // Drop tshark's "Running as user root" warning; keep its error.
    std::string msg;
    size_t start = 0;
    while (start < err.size()) {
      size_t nl = err.find('\n', start);
      std::string l = err.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!l.empty() && l.find("Running as user") == std::string::npos && l.find("could be dangerous") == std::string::npos)
        msg += (msg.empty() ? "" : "; ") + l;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    if (msg.empty()) msg = "exit status " + std::to_string(WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst));
    return Status::InvalidArgument("tshark: " + msg);
  }
  return builder.Finish();
}

}  // namespace fg::tap
