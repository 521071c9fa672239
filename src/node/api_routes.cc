#include "node/api_routes.h"

#include <utility>

#include "common/metrics.h"

namespace fg {

ApiRoutes::ApiRoutes(ApiAuth& auth, HttpServer& plain, HttpServer* tls, bool plain_api)
    : auth_(auth), plain_(plain), tls_(tls), plain_api_(plain_api) {
  if (plain_api_) return;
  // Any other /v1/ path on the plain listener (a route added by a module that
  // bypassed this class, a client that guessed) is refused the same way.
  // Exact routes registered on the plain listener (OCSP, CRL, /v1/device/config) win.
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) plain_.Route(method, "/v1/", UseHttps);
}

void ApiRoutes::Route(const std::string& method, const std::string& path, std::vector<ApiRole> roles,
                      HttpHandler handler) {
  routes_.push_back(method + " " + path);
  HttpHandler guarded = RequireRole(auth_, std::move(roles), std::move(handler));
  if (tls_) tls_->Route(method, path, guarded);
  if (plain_api_) {
    plain_.Route(method, path, std::move(guarded));
  } else {
    plain_.Route(method, path, UseHttps);
  }
}

HttpResponse ApiRoutes::UseHttps(const HttpRequest& request) {
  static Counter& refused = Metrics::Global().GetCounter(
      "femtoguard_api_plain_http_refused_total", "",
      "Bearer-token API requests refused on the plain HTTP listener (the API is on the TLS listener)");
  refused.Inc();
  (void)request;  // the Authorization header is deliberately not read
  return HttpResponse::Json(
      403, R"({"error":"this route is served over https only: use the TLS listener (tls_listen), https://HOST:PORT)"
           R"( with the node's CA chain; the token was not read"})");
}

}  // namespace fg
