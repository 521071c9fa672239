#include "store/sql_driver.h"

namespace fg::sql {
Result<std::unique_ptr<Pool>> OpenPgPool(const std::string& url) {
  (void)url;
  return Status::Internal("postgresql: not yet");
}
}  // namespace fg::sql
