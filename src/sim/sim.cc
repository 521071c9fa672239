#include "sim/sim.h"

#include <algorithm>

#include "sim/model.h"

namespace fg::sim {

const std::vector<std::string_view>& ScenarioNames() {
  static const std::vector<std::string_view> kNames = {"kt-2025",        "clone",  "decommissioned", "rogue-radio",
                                                       "stale-endpoint", "identity-theft", "benign", "all"};
  return kNames;
}

Result<SimSummary> RunSimulation(const SimOptions& options) {
  const auto& names = ScenarioNames();
  if (std::find(names.begin(), names.end(), options.scenario) == names.end()) {
    std::string list;
    for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    return Status::InvalidArgument("unknown scenario '" + options.scenario + "' (one of: " + list + ")");
  }
  if (options.devices < 100 || options.devices > 5000000) {
    return Status::InvalidArgument("--devices must be between 100 and 5000000");
  }
  if (options.subscribers != 0 && (options.subscribers < 100 || options.subscribers > 50000000)) {
    return Status::InvalidArgument("--subscribers must be between 100 and 50000000");
  }
  if (options.subscribers == 0 && options.devices > 50000000 / 3) {
    return Status::InvalidArgument("--devices too large for the default subscriber count");
  }
  if (options.days < 1 || options.days > 60) return Status::InvalidArgument("--days must be between 1 and 60");
  if (options.out_dir.empty()) return Status::InvalidArgument("--out is required");
  Generator generator(options);
  SimSummary summary;
  FG_RETURN_IF_ERROR(generator.Run(&summary));
  return summary;
}

}  // namespace fg::sim
