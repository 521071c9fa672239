#pragma once

// Fleet gauges for /metrics (docs/metrics.md), recomputed from the store by
// serve at start and every minute (one device and one certificate listing):
//
//   femtoguard_devices{status}                 devices by lifecycle status
//   femtoguard_devices_dormant                 active devices not seen for
//                                              half the dormancy limit or more
//                                              (the sweep suspends them at the
//                                              limit: this is the early warning)
//   femtoguard_certificates{expiry}            valid certificates by time left:
//                                              expired, lt_7d, lt_30d, lt_90d, ge_90d
//   femtoguard_fleet_gauges_updated_seconds    unix time of the last update
//
// Thread-safety: call from one thread (serve's follower thread).

#include "common/time.h"
#include "store/store.h"

namespace fg {

struct FleetCounts {
  int64_t by_status[4] = {};  // indexed by DeviceStatus
  int64_t dormant = 0;
  int64_t expired = 0, lt_7d = 0, lt_30d = 0, lt_90d = 0, ge_90d = 0;
};

// Counts what the gauges show. `dormancy_days` <= 0: no device is dormant.
Result<FleetCounts> CountFleet(DeviceRegistry& devices, CertificateLedger& certs, int dormancy_days, UnixMillis now);

// CountFleet, then sets the gauges. An error leaves the gauges as they were.
Status PublishFleetGauges(DeviceRegistry& devices, CertificateLedger& certs, int dormancy_days, UnixMillis now);

}  // namespace fg
