#include "node/api_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/ossl.h"
#include "common/security_log.h"

namespace fg {
namespace {

Result<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    return Status::Internal("no randomness for a new token");
  }
  std::string out = ossl::HexLower(buf.data(), buf.size());
  OPENSSL_cleanse(buf.data(), buf.size());
  return out;
}

void CountFailure(std::string_view reason) {
  Metrics::Global()
      .GetCounter("femtoguard_api_auth_failures_total", "reason=\"" + std::string(reason) + "\"",
                  "API requests refused for a missing, unknown, revoked or under-privileged bearer token")
      .Inc();
}

HttpResponse Unauthorized(std::string_view why) {
  HttpResponse r = HttpResponse::Json(401, std::string(R"({"error":")") + std::string(why) + "\"}\n");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"femtoguard\"");
  return r;
}

// One auth.failure line per 401/403 (a 503 is the store, not the caller).
void LogAuthFailure(const HttpRequest& req, const std::vector<ApiRole>& roles, const HttpResponse& refused) {
  if (refused.status != 401 && refused.status != 403) return;
  std::string wanted = "admin";
  for (ApiRole r : roles) wanted += "|" + std::string(ApiRoleName(r));
  auto body = nlohmann::json::parse(refused.body, nullptr, /*allow_exceptions=*/false);
  std::string why = body.is_object() && body.contains("error") && body["error"].is_string() ? body["error"].get<std::string>() : "";
  seclog::AuthFailure(refused.status, req.path, wanted, req.remote_addr, why);
}

}  // namespace

std::string HashApiToken(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(token.data(), token.size(), md, &n, EVP_sha256(), nullptr);
  return ossl::HexLower(md, n);
}

Result<std::string> CreateApiToken(ApiTokenStore& store, ApiRole role, std::string_view label,
                                   const AuditContext& audit, std::string* id_out) {
  FG_ASSIGN_OR_RETURN(std::string id_hex, RandomHex(6));
  FG_ASSIGN_OR_RETURN(std::string secret, RandomHex(32));
  ApiToken t;
  t.id = "tk_" + id_hex;
  t.role = role;
  t.label = std::string(label);
  std::string token = "fgt_" + id_hex + "_" + secret;
  OPENSSL_cleanse(secret.data(), secret.size());
  t.hash = HashApiToken(token);
  FG_RETURN_IF_ERROR(store.AddApiToken(t, audit));
  if (id_out) *id_out = t.id;
  return token;
}

std::optional<HttpResponse> ApiAuth::Check(const HttpRequest& request, const std::vector<ApiRole>& roles) {
  std::string_view header = request.Header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    CountFailure("missing");
    return Unauthorized("a bearer token is required");
  }
  std::string_view token = header.substr(kBearer.size());
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (!IsValidIdentifier(IdKind::kToken, token)) {
    // Not even the shape of a token ("fgt_<id>_<secret>"): refused before
    // hashing or lookup, never logged (docs/identifiers.md).
    CountBadIdentifier("api", "bearer");
    CountFailure("malformed");
    return Unauthorized("malformed bearer token");
  }
  const std::string hash = HashApiToken(token);
  const UnixMillis now = NowMillis();

  std::optional<ApiRole> role;
  std::optional<ApiRole> last_known;  // confirmed by the store before, maybe since invalidated
  {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      if (it->second.until_ms > now && it->second.generation == generation_) role = it->second.role;
      last_known = it->second.role;
    }
  }
  if (!role) {
    auto found = store_.FindApiTokenByHash(hash);
    if (!found.ok()) {
      // The store is unreachable (a database failover): a token the store
      // confirmed before keeps working, as admission keeps its last state.
      // That is safe: a revocation is a store write, so none can have
      // happened since the store last answered, and the node re-checked
      // every token after its last sync. A token never confirmed is refused.
      if (found.status().code() == StatusCode::kUnavailable && last_known) {
        Metrics::Global()
            .GetCounter("femtoguard_api_auth_last_known_total", "",
                        "API requests let in on a token the store confirmed before, while the store is unreachable")
            .Inc();
        role = last_known;
      } else {
        // Fail closed: no store, no access.
        CountFailure("store");
        return HttpResponse::Json(503, R"({"error":"cannot check the token now"})" "\n");
      }
    } else if (!found->has_value()) {
      std::lock_guard lock(mutex_);
      cache_.erase(hash);
      CountFailure("unknown");
      return Unauthorized("unknown or revoked token");
    } else {
      role = (*found)->role;
      std::lock_guard lock(mutex_);
      if (cache_.size() > 10000) cache_.clear();
      cache_[hash] = Entry{*role, now + cache_ms_, generation_};
    }
  }
  if (*role == ApiRole::kAdmin) return std::nullopt;
  for (ApiRole r : roles) {
    if (r == *role) return std::nullopt;
  }
  CountFailure("role");
  return HttpResponse::Json(403, std::string(R"({"error":"role )") + std::string(ApiRoleName(*role)) +
                                     " may not use this endpoint\"}\n");
}

void ApiAuth::Invalidate() {
  // Every entry must be re-confirmed by the store before it is trusted
  // again; until then it is only the last known answer (Check).
  std::lock_guard lock(mutex_);
  ++generation_;
}

HttpHandler RequireRole(ApiAuth& auth, std::vector<ApiRole> roles, HttpHandler handler) {
  return [&auth, roles = std::move(roles), handler = std::move(handler)](const HttpRequest& req) {
    if (std::optional<HttpResponse> refused = auth.Check(req, roles)) {
      LogAuthFailure(req, roles, *refused);  // never the token: route, roles, address, the answer's error
      return std::move(*refused);
    }
    return handler(req);
  };
}

}  // namespace fg
