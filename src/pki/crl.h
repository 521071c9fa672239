#pragma once

// The CRL, regenerated from the store on every revocation and before its
// nextUpdate. Served as DER at a stable URL.
//
// Thread-safety: thread-safe; readers get an immutable snapshot.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/time.h"
#include "pki/ca.h"
#include "store/store.h"

namespace fg {

class CrlPublisher {
 public:
  CrlPublisher(Store& store, const CertificateAuthority& ca, int validity_s)
      : store_(store), ca_(ca), validity_s_(validity_s) {}

  // Builds and signs a new CRL with the next CRL number.
  Status Regenerate();
  // Regenerates when past half of the current CRL's validity (or none yet).
  Status RegenerateIfAging();

  std::shared_ptr<const std::string> Der() const;
  // Whether the current CRL lists `serial` (so releasing a hold changes it).
  bool Lists(const std::string& serial) const;
  UnixMillis this_update() const;

 private:
  Store& store_;
  const CertificateAuthority& ca_;
  const int validity_s_;

  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> der_;  // guarded by mutex_
  UnixMillis this_update_ = 0;              // guarded by mutex_
  std::unordered_set<std::string> listed_;  // guarded by mutex_
};

}  // namespace fg
