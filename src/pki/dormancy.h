#pragma once

// Dormant devices (the seed's operator left tens of thousands enabled): a
// device that has not been seen - no enrolment, renewal or session - for
// `days` is suspended, which puts its certificates on hold, and the reason
// is audited. A device never seen counts from its registration.

#include <string>
#include <vector>

#include "store/store.h"

namespace fg {

struct DormancySweep {
  std::vector<std::string> suspended;  // or, in a dry run, would be suspended
  size_t examined = 0;
};

// Active devices only: provisioned ones have not been deployed yet and
// suspended/decommissioned ones are already out.
Result<DormancySweep> SuspendDormant(DeviceRegistry& devices, int days, UnixMillis now, bool dry_run,
                                     const std::string& actor);

}  // namespace fg
