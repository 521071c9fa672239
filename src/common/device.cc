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

}  // namespace fg
