#include "common/device.h"

#include "common/ids.h"

namespace fg {

std::string_view DeviceStatusName(DeviceStatus s) {
  switch (s) {
    case DeviceStatus::kProvisioned: return "provisioned";
    case DeviceStatus::kActive: return "active";
    case DeviceStatus::kSuspended: return "suspended";
    case DeviceStatus::kDecommissioned: return "decommissioned";
  }
  return "unknown";
}

Result<DeviceStatus> ParseDeviceStatus(std::string_view s) {
  if (s == "provisioned") return DeviceStatus::kProvisioned;
  if (s == "active") return DeviceStatus::kActive;
  if (s == "suspended") return DeviceStatus::kSuspended;
  if (s == "decommissioned") return DeviceStatus::kDecommissioned;
  return Status::InvalidArgument("unknown device status '" + Printable(s, 32) +
                                 "' (provisioned|active|suspended|decommissioned)");
}

bool IsAllowedTransition(DeviceStatus from, DeviceStatus to) {
  using S = DeviceStatus;
  switch (from) {
    case S::kProvisioned: return to == S::kActive || to == S::kDecommissioned;
    case S::kActive: return to == S::kSuspended || to == S::kDecommissioned;
    case S::kSuspended: return to == S::kActive || to == S::kDecommissioned;
    case S::kDecommissioned: return false;
  }
  return false;
}

std::string_view AccessModeName(AccessMode m) {
  switch (m) {
    case AccessMode::kClosed: return "closed";
    case AccessMode::kHybrid: return "hybrid";
    case AccessMode::kOpen: return "open";
  }
  return "unknown";
}

Result<AccessMode> ParseAccessMode(std::string_view s) {
  if (s == "closed") return AccessMode::kClosed;
  if (s == "hybrid") return AccessMode::kHybrid;
  if (s == "open") return AccessMode::kOpen;
  return Status::InvalidArgument("unknown access mode '" + Printable(s, 32) +
                                 "' (closed|hybrid|open)");
}

Status ValidateDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 64) return Status::InvalidArgument("device id must be 1..64 characters");
  if (id[0] == '.' || id[0] == '-') return Status::InvalidArgument("device id must not start with '.' or '-'");
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("device id may only contain A-Z a-z 0-9 . _ -");
  }
  return Status::Ok();
}

std::vector<std::string> ChangedDeviceAttributes(const Device& a, const Device& b) {
  std::vector<std::string> out;
  if (a.owner != b.owner) out.push_back("owner");
  if (a.mode != b.mode) out.push_back("mode");
  bool same_site = a.site.has_value() == b.site.has_value() &&
                   (!a.site || (a.site->lat == b.site->lat && a.site->lon == b.site->lon &&
                                a.site->radius_m == b.site->radius_m));
  if (!same_site) out.push_back("site");
  if (a.prefixes != b.prefixes) out.push_back("prefixes");
  if (a.csg != b.csg) out.push_back("csg");
  if (a.cert_fp != b.cert_fp) out.push_back("cert_fp");
  if (a.max_ues != b.max_ues) out.push_back("max_ues");
  if (!(a.radio == b.radio)) out.push_back("radio");
  return out;
}

}  // namespace fg
