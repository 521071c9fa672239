#include "pki/crl.h"

#include "common/metrics.h"

namespace fg {

Status CrlPublisher::Regenerate() {
  UnixMillis now = NowMillis();
  FG_ASSIGN_OR_RETURN(auto revoked, store_.ListRevokedCertificates(now));
  FG_ASSIGN_OR_RETURN(int64_t number, store_.NextCounter("crl_number"));
  UnixMillis next = now + static_cast<UnixMillis>(validity_s_) * kMillisPerSecond;
  FG_ASSIGN_OR_RETURN(auto crl, ca_.SignCrl(revoked, number, now, next));
  auto der = std::make_shared<const std::string>(ossl::CrlToDer(crl.get()));
  std::unordered_set<std::string> listed;
  for (const Certificate& c : revoked) listed.insert(c.serial);
  {
    std::lock_guard lock(mutex_);
    der_ = std::move(der);
    this_update_ = now;
    listed_ = std::move(listed);
  }
  Metrics::Global().GetCounter("femtoguard_crl_generated_total", {}, "CRLs signed").Inc();
  return Status::Ok();
}

Status CrlPublisher::RegenerateIfAging() {
  UnixMillis last;
  {
    std::lock_guard lock(mutex_);
    last = der_ ? this_update_ : 0;
  }
  if (last != 0 && NowMillis() < last + static_cast<UnixMillis>(validity_s_) * kMillisPerSecond / 2) {
    return Status::Ok();
  }
  return Regenerate();
}

std::shared_ptr<const std::string> CrlPublisher::Der() const {
  std::lock_guard lock(mutex_);
  return der_;
}

bool CrlPublisher::Lists(const std::string& serial) const {
  std::lock_guard lock(mutex_);
  return listed_.count(serial) > 0;
}

UnixMillis CrlPublisher::this_update() const {
  std::lock_guard lock(mutex_);
  return this_update_;
}

}  // namespace fg
