#pragma once

// Bearer tokens for the HTTP API (DESIGN.md §5). A token is
// "fgt_<id>_<secret>"; the store keeps only the SHA-256 of the whole string,
// so a copy of the database authenticates no one. Every endpoint except
// OCSP, CRL, CA certificates, enrolment and /healthz needs one, with a role
// the endpoint accepts (admin is accepted everywhere).
//
// Thread-safety: ApiAuth is thread-safe. Positive lookups are cached for a
// few seconds to keep the store off the hot path; Invalidate() (called by the
// node's change sync, which `token revoke` pokes) makes every entry need the
// store's confirmation again, so a revoked token stops working at once. While
// the store is unreachable, a token it confirmed before still works (the
// last known answer); one it never confirmed does not.

#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "http/http.h"
#include "store/store.h"

namespace fg {

// A new token: stores its hash and returns the token string (shown once).
Result<std::string> CreateApiToken(ApiTokenStore& store, ApiRole role, std::string_view label,
                                   const AuditContext& audit, std::string* id_out);
// Hex SHA-256 of a token string, as stored.
std::string HashApiToken(std::string_view token);

class ApiAuth {
 public:
  explicit ApiAuth(ApiTokenStore& store, int cache_ms = 5000) : store_(store), cache_ms_(cache_ms) {}

  // nullopt when the request may proceed; otherwise the response to send:
  // 401 (no/unknown/revoked token, with WWW-Authenticate) or 403 (a live
  // token whose role this endpoint does not accept). Counted in
  // api_auth_failures_total{reason=...}.
  std::optional<HttpResponse> Check(const HttpRequest& request, const std::vector<ApiRole>& roles);
  void Invalidate();

 private:
  struct Entry {
    ApiRole role;
    UnixMillis until_ms;
    uint64_t generation = 0;  // Invalidate() count when the store confirmed it
  };
  ApiTokenStore& store_;
  const int cache_ms_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> cache_;  // hash -> role; guarded by mutex_
  uint64_t generation_ = 0;                       // guarded by mutex_
};

// Wraps a handler with ApiAuth::Check.
HttpHandler RequireRole(ApiAuth& auth, std::vector<ApiRole> roles, HttpHandler handler);

}  // namespace fg
