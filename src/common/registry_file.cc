#include "common/registry_file.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/ids.h"

namespace fg {

Result<std::string> CanonicalCidr(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return Status::InvalidArgument("prefix '" + std::string(cidr) + "' lacks /len");
  std::string addr(cidr.substr(0, slash));
  std::string_view len_text = cidr.substr(slash + 1);
  int len = -1;
  auto [p, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || p != len_text.data() + len_text.size()) {
    return Status::InvalidArgument("prefix '" + std::string(cidr) + "' has a bad length");
  }
  unsigned char buf[16];
  int family = addr.find(':') == std::string::npos ? AF_INET : AF_INET6;
  int bits = family == AF_INET ? 32 : 128;
  if (inet_pton(family, addr.c_str(), buf) != 1 || len < 0 || len > bits) {
    return Status::InvalidArgument("prefix '" + std::string(cidr) + "' is not a valid CIDR");
  }
  // Clear host bits so that equal networks compare equal.
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(len - i * 8, 0, 8);
    buf[i] &= static_cast<unsigned char>(0xFF00 >> keep);
  }
  char out[INET6_ADDRSTRLEN];
  inet_ntop(family, buf, out, sizeof out);
  return std::string(out) + "/" + std::to_string(len);
}

namespace {

Status Bad(const std::string& field, const std::string& why);
bool AllDigits(const std::string& s);

// The radio fields of a registry line (or of devices.radio). JSON null is
// an absent field. An eNB or gNB id needs the PLMN that qualifies it.
Result<RadioIdentity> RadioFromJson(const nlohmann::json& j) {
  RadioIdentity r;
  auto given = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
  if (given("plmn")) {
    if (!j["plmn"].is_string()) return Bad("plmn", "not a string");
    r.plmn = j["plmn"].get<std::string>();
    if (r.plmn.size() < 5 || r.plmn.size() > 6 || !AllDigits(r.plmn)) return Bad("plmn", "not MCC+MNC (5 or 6 digits)");
  }
  if (given("enb_id")) {
    if (!j["enb_id"].is_number_unsigned() || j["enb_id"].get<uint64_t>() >= (1ull << 28))
      return Bad("enb_id", "not an eNB id (an integer below 2^28)");
    r.enb_id = j["enb_id"].get<uint32_t>();
  }
  if (given("gnb_id")) {
    if (!j["gnb_id"].is_string()) return Bad("gnb_id", "not a string");
    r.gnb_id = j["gnb_id"].get<std::string>();
    const bool hex = !r.gnb_id.empty() && r.gnb_id.size() <= 16 &&
                     r.gnb_id.find_first_not_of("0123456789abcdefABCDEF:") == std::string::npos;
    if (!hex) return Bad("gnb_id", "not a gNB id (hex, as tshark shows it)");
  }
  if ((r.enb_id || !r.gnb_id.empty()) && r.plmn.empty()) return Bad("plmn", "enb_id and gnb_id need plmn");
  if (given("csg_id")) {
    if (!j["csg_id"].is_number_unsigned() || j["csg_id"].get<uint64_t>() >= (1ull << 27))
      return Bad("csg_id", "not a CSG id (27 bits)");
    r.csg_id = j["csg_id"].get<uint32_t>();
  }
  if (given("cells")) {
    if (!j["cells"].is_array()) return Bad("cells", "not an array");
    for (const auto& c : j["cells"]) {
      if (!c.is_number_unsigned() || c.get<uint64_t>() >= (1ull << 36)) return Bad("cells", "element is not an ECI/NCI");
      r.cells.push_back(c.get<uint64_t>());
    }
  }
  return r;
}

}  // namespace

std::string RadioIdentityJson(const RadioIdentity& r) {
  if (r.empty()) return "";
  nlohmann::json j = nlohmann::json::object();
  if (!r.plmn.empty()) j["plmn"] = r.plmn;
  if (r.enb_id) j["enb_id"] = *r.enb_id;
  if (!r.gnb_id.empty()) j["gnb_id"] = r.gnb_id;
  if (r.csg_id) j["csg_id"] = *r.csg_id;
  if (!r.cells.empty()) j["cells"] = r.cells;
  return j.dump();
}

Result<RadioIdentity> ParseRadioIdentity(std::string_view text) {
  if (text.empty()) return RadioIdentity();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("radio identity: not a JSON object");
  return RadioFromJson(j);
}

namespace {

Status Bad(const std::string& field, const std::string& why) {
  return Status::InvalidArgument("field '" + field + "': " + why);
}

// An identifier field of a registry line (docs/identifiers.md): refused
// without echoing the value, and counted.
Status CheckField(IdKind kind, const char* field, std::string_view value, size_t max = 0) {
  Status s = CheckIdentifier(kind, field, value, max);
  if (!s.ok()) CountBadIdentifier("registry", field);
  return s;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

Result<RegistryEntry> ParseRegistryEntry(std::string_view line, const Pseudonymizer& pseudonymizer) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");

  RegistryEntry entry;
  Device& d = entry.device;
  auto mark = [&entry](RegistryField f) { entry.present |= static_cast<uint32_t>(f); };
  auto dev = j.find("device");
  if (dev == j.end() || !dev->is_string()) return Bad("device", "missing or not a string");
  d.id = dev->get<std::string>();
  if (auto s = ValidateDeviceId(d.id); !s.ok()) {
    CountBadIdentifier("registry", "device");
    return Bad("device", s.message());
  }

  if (auto it = j.find("status"); it != j.end()) {
    mark(RegistryField::kStatus);
    if (!it->is_string()) return Bad("status", "not a string");
    FG_RETURN_IF_ERROR(CheckField(IdKind::kToken, "status", it->get_ref<const std::string&>(), 32));
    auto st = ParseDeviceStatus(it->get<std::string>());
    if (!st.ok()) return Bad("status", st.status().message());
    d.status = *st;
  }
  if (auto it = j.find("owner"); it != j.end()) {
    mark(RegistryField::kOwner);
    if (!it->is_string()) return Bad("owner", "not a string");
    d.owner = it->get<std::string>();
    if (!d.owner.empty()) FG_RETURN_IF_ERROR(CheckField(IdKind::kText, "owner", d.owner, 256));
  }
  if (auto it = j.find("mode"); it != j.end()) {
    mark(RegistryField::kMode);
    if (!it->is_string()) return Bad("mode", "not a string");
    FG_RETURN_IF_ERROR(CheckField(IdKind::kToken, "mode", it->get_ref<const std::string&>(), 32));
    auto m = ParseAccessMode(it->get<std::string>());
    if (!m.ok()) return Bad("mode", m.status().message());
    d.mode = *m;
  }
  if (j.contains("site")) mark(RegistryField::kSite);
  if (auto it = j.find("site"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("site", "not an object");
    Site s;
    auto num = [&](const char* k, double* out) -> Status {
      auto f = it->find(k);
      if (f == it->end() || !f->is_number()) return Bad(std::string("site.") + k, "missing or not a number");
      *out = f->get<double>();
      if (!std::isfinite(*out)) return Bad(std::string("site.") + k, "not finite");
      return Status::Ok();
    };
    FG_RETURN_IF_ERROR(num("lat", &s.lat));
    FG_RETURN_IF_ERROR(num("lon", &s.lon));
    if (s.lat < -90 || s.lat > 90) return Bad("site.lat", "out of range");
    if (s.lon < -180 || s.lon > 180) return Bad("site.lon", "out of range");
    if (it->contains("radius_m")) {
      FG_RETURN_IF_ERROR(num("radius_m", &s.radius_m));
      if (s.radius_m < 0 || s.radius_m > 100000) return Bad("site.radius_m", "out of range");
    }
    d.site = s;
  }
  if (j.contains("prefixes")) mark(RegistryField::kPrefixes);
  if (auto it = j.find("prefixes"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Bad("prefixes", "not an array");
    for (const auto& p : *it) {
      if (!p.is_string()) return Bad("prefixes", "element not a string");
      FG_RETURN_IF_ERROR(
          CheckField(IdKind::kToken, "prefixes", p.get_ref<const std::string&>(), 64));
      auto c = CanonicalCidr(p.get<std::string>());
      if (!c.ok()) return Bad("prefixes", c.status().message());
      d.prefixes.push_back(*c);
    }
  }
  if (j.contains("csg")) mark(RegistryField::kCsg);
  if (auto it = j.find("csg"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Bad("csg", "not an array");
    for (const auto& m : *it) {
      if (!m.is_string()) return Bad("csg", "element not a string");
      std::string imsi = m.get<std::string>();
      // An IMSI is at most 15 digits (3GPP TS 23.003). The value itself is
      // never echoed in an error: it is a subscriber identifier.
      if (!AllDigits(imsi) || imsi.size() < 6 || imsi.size() > 15) {
        return Bad("csg", "element is not an IMSI (6..15 digits)");
      }
      d.csg.push_back(pseudonymizer.Pseudonymize("imsi", imsi));
      std::memset(imsi.data(), 0, imsi.size());
    }
  }
  if (j.contains("cert_fp")) mark(RegistryField::kCertFp);
  if (auto it = j.find("cert_fp"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("cert_fp", "not a string");
    d.cert_fp = it->get<std::string>();
    FG_RETURN_IF_ERROR(CheckField(IdKind::kToken, "cert_fp", d.cert_fp));
    if (d.cert_fp.rfind("sha256:", 0) != 0) return Bad("cert_fp", "must start with 'sha256:'");
  }
  for (const char* k : {"plmn", "enb_id", "gnb_id", "csg_id", "cells"}) {
    if (j.contains(k)) mark(RegistryField::kRadio);
  }
  if (entry.Has(RegistryField::kRadio)) {
    FG_ASSIGN_OR_RETURN(d.radio, RadioFromJson(j));
  }
  if (j.contains("max_ues")) mark(RegistryField::kMaxUes);
  if (auto it = j.find("max_ues"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Bad("max_ues", "not an integer");
    long long v = it->get<long long>();
    if (v < 0 || v > 100000) return Bad("max_ues", "out of range");
    d.max_ues = static_cast<int>(v);
  }
  return entry;
}

Result<Device> ParseRegistryLine(std::string_view line, const Pseudonymizer& pseudonymizer) {
  FG_ASSIGN_OR_RETURN(RegistryEntry entry, ParseRegistryEntry(line, pseudonymizer));
  return std::move(entry.device);
}

Device MergeRegistryEntry(const Device& existing, const RegistryEntry& entry) {
  Device out = existing;
  const Device& in = entry.device;
  if (entry.Has(RegistryField::kOwner)) out.owner = in.owner;
  if (entry.Has(RegistryField::kMode)) out.mode = in.mode;
  if (entry.Has(RegistryField::kSite)) out.site = in.site;
  if (entry.Has(RegistryField::kPrefixes)) out.prefixes = in.prefixes;
  if (entry.Has(RegistryField::kCsg)) out.csg = in.csg;
  if (entry.Has(RegistryField::kCertFp)) out.cert_fp = in.cert_fp;
  if (entry.Has(RegistryField::kMaxUes)) out.max_ues = in.max_ues;
  if (entry.Has(RegistryField::kRadio)) out.radio = in.radio;
  return out;
}

}  // namespace fg
