#pragma once

// The registered femtocell and its lifecycle (DESIGN.md §3.2). These are
// plain values shared by the store, the registry import, admission and
// detection; lifecycle rules live here, in one place.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace fg {

// provisioned -> active -> suspended <-> active -> decommissioned (terminal).
enum class DeviceStatus : uint8_t { kProvisioned, kActive, kSuspended, kDecommissioned };

std::string_view DeviceStatusName(DeviceStatus s);
Result<DeviceStatus> ParseDeviceStatus(std::string_view s);

// True when the lifecycle allows `from` -> `to`. A transition to the same
// state is not a transition (false). Decommissioned is terminal.
bool IsAllowedTransition(DeviceStatus from, DeviceStatus to);

// 3GPP CSG access modes.
enum class AccessMode : uint8_t { kClosed, kHybrid, kOpen };
std::string_view AccessModeName(AccessMode m);
Result<AccessMode> ParseAccessMode(std::string_view s);

struct Site {
  double lat = 0;
  double lon = 0;
  double radius_m = 0;
};

// The femtocell's radio identity (TS 33.320: what the SeGW-authenticated
// unit may claim over S1/NG): registry fields plmn, enb_id or gnb_id,
// csg_id, cells. identity.mismatch and `femtoguard tap` bind S1/NG setups
// to the device through it.
struct RadioIdentity {
  std::string plmn;                // MCC+MNC digits, e.g. "50501"
  std::optional<uint32_t> enb_id;  // home (28 bits) or macro (20 bits) eNB id
  std::string gnb_id;              // gNB id bit string, hex as tshark shows it
  std::optional<uint32_t> csg_id;  // 27 bits
  std::vector<uint64_t> cells;     // ECI (28 bits) or NCI (36 bits)
  bool empty() const { return plmn.empty() && !enb_id && gnb_id.empty() && !csg_id && cells.empty(); }
  bool operator==(const RadioIdentity&) const = default;
};

struct Device {
  std::string id;
  DeviceStatus status = DeviceStatus::kProvisioned;
  std::string owner;
  AccessMode mode = AccessMode::kClosed;
  std::optional<Site> site;
  std::vector<std::string> prefixes;  // CIDR strings, validated on import
  std::vector<std::string> csg;       // member IMSI pseudonyms, never raw IMSIs
  std::string cert_fp;                // "sha256:<hex>" of an expected certificate, optional
  int max_ues = 0;                    // 0 = not set
  UnixMillis created_ms = 0;
  UnixMillis updated_ms = 0;
  UnixMillis last_seen_ms = 0;  // last enrolment, renewal or session; 0 = never
  RadioIdentity radio;
};

// Names of the registry attributes (owner, mode, site, prefixes, csg,
// cert_fp, max_ues, radio) that differ between `a` and `b`, in that order.
std::vector<std::string> ChangedDeviceAttributes(const Device& a, const Device& b);

// Device ids become certificate subjects, URIs and file names: keep them to
// a conservative alphabet. 1..64 chars of [A-Za-z0-9._-], not starting with '.' or '-'.
Status ValidateDeviceId(std::string_view id);

}  // namespace fg
