#pragma once

// Timings of the PKI's interop duties, read from the data dir's
// config.yaml (all optional; docs/pki.md):
//
//   enrolment:
//     retry_window_s: 600        # a bootstrap token retried with the same
//                                # key this long after its use gets the same
//                                # certificate again (0 = never)
//   crl:
//     root_validity_s: 2592000   # nextUpdate - thisUpdate of the root CRL
//   ocsp:
//     signer_validity_s: 604800  # serve's delegated (nocheck) OCSP signer
//
// Kept apart from Config so that these keys can be added without touching
// the header every module includes; Config::FromYaml ignores them.

#include <string>

#include "common/config.h"
#include "common/status.h"

namespace fg {

struct PkiTuning {
  int enrol_retry_window_s = 600;
  int root_crl_validity_s = 30 * 86400;
  int ocsp_signer_validity_s = 7 * 86400;

  Status Validate() const;
  // Missing keys keep their defaults; a wrong type or range is an error
  // naming the key.
  static Result<PkiTuning> FromYaml(const std::string& text);
};

// From DIR/config.yaml.
Result<PkiTuning> LoadPkiTuning(const DataDir& dir);

}  // namespace fg
