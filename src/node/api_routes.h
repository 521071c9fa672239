#pragma once

// The one place where bearer-token routes are registered (issue 14, "bearer
// tokens in clear"). A token route is served on the TLS listener; on the
// plain listener it answers 403 with a JSON error that says to use https,
// without reading the Authorization header, unless the operator kept the API
// on plain HTTP too (`api: {plain_http: true}`, loopback only). Plain HTTP
// keeps only what RFCs expect there: OCSP, CRL, CA certificates, CMP and
// /healthz, which are registered on the HttpServer directly.
//
// Every module that adds token routes (api_operator.cc, ...) takes an
// ApiRoutes&, never an HttpServer&, so that its routes land on the right
// listener.
//
// Thread-safety: Route() is called before the servers start, from one thread.

#include <string>
#include <vector>

#include "node/api_auth.h"
#include "http/http.h"
#include "store/store.h"

namespace fg {

class ApiRoutes {
 public:
  // `tls` is null when the TLS listener is off; `plain_api` is the config's
  // api.plain_http (already checked to be on loopback).
  ApiRoutes(ApiAuth& auth, HttpServer& plain, HttpServer* tls, bool plain_api);

  // Registers `handler`, behind a bearer token with one of `roles`.
  void Route(const std::string& method, const std::string& path, std::vector<ApiRole> roles, HttpHandler handler);

  ApiAuth& auth() { return auth_; }
  // "METHOD /path" of every route registered, in order (a path ending in '/'
  // is a prefix). serve logs them at start; tests/integration/openapi_test.cc
  // checks them against docs/openapi.yaml.
  const std::vector<std::string>& routes() const { return routes_; }

  // The plain listener's answer to a token route: 403, JSON, counted in
  // femtoguard_api_plain_http_refused_total.
  static HttpResponse UseHttps(const HttpRequest& request);

 private:
  ApiAuth& auth_;
  HttpServer& plain_;
  HttpServer* tls_;
  const bool plain_api_;
  std::vector<std::string> routes_;
};

}  // namespace fg
