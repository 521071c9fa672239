#include "console/console.h"

#include <memory>
#include <string>
#include <unordered_map>

namespace fg::console {
namespace {

std::string_view ContentType(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

// Every answer of the console: no inline script, no foreign origin, no
// framing (the token lives in this origin's sessionStorage), and revalidated
// on each load so that a new binary's console is never mixed with an old one.
void Harden(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                         "form-action 'none'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-cache");
}

}  // namespace

void RegisterRoutes(HttpServer& server) {
  // name -> body, shared (never copied per request).
  auto files = std::make_shared<std::unordered_map<std::string, std::shared_ptr<const std::string>>>();
  for (const Asset& a : Assets()) {
    files->emplace(std::string(a.name), std::make_shared<const std::string>(a.data, a.size));
  }
  server.Route("GET", "/console", [](const HttpRequest&) {
    HttpResponse r = HttpResponse::Text(301, "/console/\n");
    r.headers.emplace_back("Location", "/console/");
    return r;
  });
  server.Route("GET", "/console/", [files](const HttpRequest& req) {
    std::string name = req.path.substr(std::string_view("/console/").size());
    if (name.empty()) name = "index.html";
    auto it = files->find(name);
    if (it == files->end()) {
      HttpResponse r = HttpResponse::Text(404, "not found\n");
      Harden(r);
      return r;
    }
    HttpResponse r;
    r.status = 200;
    r.content_type = std::string(ContentType(name));
    r.shared_body = it->second;
    Harden(r);
    return r;
  });
}

void RegisterPlainRefusal(HttpServer& server) {
  HttpHandler refuse = [](const HttpRequest&) {
    return HttpResponse::Text(
        403, "the console is served over https only: open https://HOST:PORT/console/ on the TLS listener\n");
  };
  server.Route("GET", "/console", refuse);
  server.Route("GET", "/console/", refuse);
}

}  // namespace fg::console
