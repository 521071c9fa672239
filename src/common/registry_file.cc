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
  return out;
}

}  // namespace fg
