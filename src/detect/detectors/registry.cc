// Every detector of the build: one line per detector (detector.h).
// Adding a detector = one new file in this folder + one line here.

#include "detect/detector.h"

namespace fg::detect {

const std::vector<DetectorInfo>& AllDetectors() {
  static const std::vector<DetectorInfo> kAll = {
  };
  return kAll;
}

std::vector<std::string> AllRuleIds() {
  std::vector<std::string> ids;
  for (const DetectorInfo& d : AllDetectors()) ids.emplace_back(d.rule);
  return ids;
}

}  // namespace fg::detect
