#include "common/pki_tuning.h"

#include <yaml-cpp/yaml.h>

namespace fg {
namespace {

Status CheckRange(const char* key, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return Status::InvalidArgument("config: " + std::string(key) + " must be in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   std::to_string(value));
  }
  return Status::Ok();
}

Status Read(const YAML::Node& root, const char* section, const char* key, int* out) {
  const YAML::Node s = root[section];
  if (!s) return Status::Ok();
  if (!s.IsMap()) return Status::InvalidArgument(std::string("config: ") + section + ": not a mapping");
  const YAML::Node v = s[key];
  if (!v) return Status::Ok();
  try {
    *out = v.as<int>();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument(std::string("config: ") + section + "." + key +
                                   ": wrong type (an integer)");
  }
  return Status::Ok();
}

}  // namespace

Status PkiTuning::Validate() const {
  FG_RETURN_IF_ERROR(CheckRange("enrolment.retry_window_s", enrol_retry_window_s, 0, 86400));
  FG_RETURN_IF_ERROR(CheckRange("crl.root_validity_s", root_crl_validity_s, 3600, 365 * 86400));
  FG_RETURN_IF_ERROR(
      CheckRange("ocsp.signer_validity_s", ocsp_signer_validity_s, 60, 90 * 86400));
  return Status::Ok();
}

Result<PkiTuning> PkiTuning::FromYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("config: not valid YAML: ") + e.what());
  }
  PkiTuning t;
  if (!root || root.IsNull()) return t;
  if (!root.IsMap()) return Status::InvalidArgument("config: top level must be a mapping");
  FG_RETURN_IF_ERROR(Read(root, "enrolment", "retry_window_s", &t.enrol_retry_window_s));
  FG_RETURN_IF_ERROR(Read(root, "crl", "root_validity_s", &t.root_crl_validity_s));
  FG_RETURN_IF_ERROR(Read(root, "ocsp", "signer_validity_s", &t.ocsp_signer_validity_s));
  FG_RETURN_IF_ERROR(t.Validate());
  return t;
}

Result<PkiTuning> LoadPkiTuning(const DataDir& dir) {
  FG_ASSIGN_OR_RETURN(std::string text, ReadFile(dir.ConfigPath()));
  return PkiTuning::FromYaml(text);
}

}  // namespace fg
