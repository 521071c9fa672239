#include "node/fleet_metrics.h"

#include <algorithm>

#include "common/metrics.h"

namespace fg {

Result<FleetCounts> CountFleet(DeviceRegistry& devices, CertificateLedger& certs, int dormancy_days, UnixMillis now) {
  FleetCounts c;
  FG_ASSIGN_OR_RETURN(auto list, devices.ListDevices(DeviceFilter{}));
  // Half the limit: a device there still has time to check in before the
  // sweep suspends it, which is what an operator wants to hear about.
  const UnixMillis dormant_after = static_cast<UnixMillis>(dormancy_days) * kMillisPerDay / 2;
  for (const Device& d : list) {
    c.by_status[static_cast<size_t>(d.status)] += 1;
    if (dormancy_days > 0 && d.status == DeviceStatus::kActive &&
        now - std::max(d.last_seen_ms, d.created_ms) >= dormant_after) {
      ++c.dormant;
    }
  }
  FG_ASSIGN_OR_RETURN(auto all, certs.ListCertificates(std::nullopt));
  for (const Certificate& cert : all) {
    if (cert.status != CertStatus::kValid) continue;  // held and revoked ones do not expire into trouble
    const UnixMillis left = cert.not_after_ms - now;
    if (left <= 0) {
      ++c.expired;
    } else if (left < 7 * kMillisPerDay) {
      ++c.lt_7d;
    } else if (left < 30 * kMillisPerDay) {
      ++c.lt_30d;
    } else if (left < 90 * kMillisPerDay) {
      ++c.lt_90d;
    } else {
      ++c.ge_90d;
    }
  }
  return c;
}

Status PublishFleetGauges(DeviceRegistry& devices, CertificateLedger& certs, int dormancy_days, UnixMillis now) {
  FG_ASSIGN_OR_RETURN(FleetCounts c, CountFleet(devices, certs, dormancy_days, now));
  Metrics& m = Metrics::Global();
  for (DeviceStatus s : {DeviceStatus::kProvisioned, DeviceStatus::kActive, DeviceStatus::kSuspended,
                         DeviceStatus::kDecommissioned}) {
    m.GetGauge("femtoguard_devices", "status=\"" + std::string(DeviceStatusName(s)) + "\"",
               "Registered devices by lifecycle status")
        .Set(c.by_status[static_cast<size_t>(s)]);
  }
  m.GetGauge("femtoguard_devices_dormant", {},
             "Active devices not seen for at least half the dormancy limit (suspended at the limit)")
      .Set(c.dormant);
  const char* help = "Valid certificates by time left before notAfter";
  m.GetGauge("femtoguard_certificates", "expiry=\"expired\"", help).Set(c.expired);
  m.GetGauge("femtoguard_certificates", "expiry=\"lt_7d\"", help).Set(c.lt_7d);
  m.GetGauge("femtoguard_certificates", "expiry=\"lt_30d\"", help).Set(c.lt_30d);
  m.GetGauge("femtoguard_certificates", "expiry=\"lt_90d\"", help).Set(c.lt_90d);
  m.GetGauge("femtoguard_certificates", "expiry=\"ge_90d\"", help).Set(c.ge_90d);
  m.GetGauge("femtoguard_fleet_gauges_updated_seconds", {}, "Unix time the fleet gauges were last recomputed")
      .Set(now / kMillisPerSecond);
  return Status::Ok();
}

}  // namespace fg
