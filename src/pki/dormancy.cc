#include "pki/dormancy.h"

#include <algorithm>

#include "common/metrics.h"

namespace fg {

Result<DormancySweep> SuspendDormant(DeviceRegistry& store, int days, UnixMillis now, bool dry_run,
                                     const std::string& actor) {
  DormancySweep out;
  if (days <= 0) return out;
  DeviceFilter filter;
  filter.status = DeviceStatus::kActive;
  FG_ASSIGN_OR_RETURN(auto devices, store.ListDevices(filter));
  UnixMillis cutoff = now - static_cast<UnixMillis>(days) * kMillisPerDay;
  for (const Device& d : devices) {
    ++out.examined;
    UnixMillis seen = std::max(d.last_seen_ms, d.created_ms);
    if (seen >= cutoff) continue;
    if (!dry_run) {
      std::string why = "dormant: not seen for " + std::to_string((now - seen) / kMillisPerDay) + " days (limit " +
                        std::to_string(days) + ")";
      auto t = store.SetDeviceStatus(d.id, DeviceStatus::kSuspended, {actor, why});
      // Someone else may have moved it meanwhile; that is not an error of the sweep.
      if (!t.ok() && t.status().code() != StatusCode::kFailedPrecondition) return t.status();
      if (!t.ok()) continue;
      Metrics::Global().GetCounter("femtoguard_dormant_suspended_total", {}, "Devices suspended as dormant").Inc();
    }
    out.suspended.push_back(d.id);
  }
  return out;
}

}  // namespace fg
