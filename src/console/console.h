#pragma once

// The web console's static files (console/, embedded at build time by
// embed.cmake) and the routes that serve them at /console/ (issue 18;
// docs/console.md). The files are public: everything the console shows comes
// from the bearer-token API, which checks the token's role on every call.

#include <string_view>
#include <vector>

#include "http/http.h"

namespace fg::console {

struct Asset {
  std::string_view name;  // path under /console/, e.g. "app.js", "vendor/preact.mjs"
  const char* data;
  size_t size;
};
const std::vector<Asset>& Assets();

// GET /console (redirect) and /console/... on `server` (the TLS listener).
void RegisterRoutes(HttpServer& server);

// What the plain listener answers for /console/: 403, use the TLS listener
// (a token typed into a page served over plain HTTP would travel in clear).
void RegisterPlainRefusal(HttpServer& server);

}  // namespace fg::console
