#include "admission/http_client.h"

#include <curl/curl.h>

#include <charconv>
#include <memory>
#include <mutex>

namespace fg::admission {
namespace {

constexpr size_t kMaxResponse = 1 << 20;

struct Sink {
  std::string body;
  bool overflow = false;
};

size_t Collect(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t bytes = size * n;
  if (sink->body.size() + bytes > kMaxResponse) {
    sink->overflow = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->body.append(data, bytes);
  return bytes;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using EasyPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using ListPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

}  // namespace

Result<HostPort> ParseHostPort(const std::string& input) {
  HostPort hp;
  std::string text = input;
  if (text.rfind("https://", 0) == 0) {
    hp.https = true;
    text = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    text = text.substr(7);
  } else if (text.find("://") != std::string::npos) {
    return Status::InvalidArgument("server must be HOST:PORT, http://HOST:PORT or https://HOST:PORT, got \"" +
                                   input + "\"");
  }
  if (!text.empty() && text.back() == '/') text.pop_back();
  if (text.find('/') != std::string::npos) {
    return Status::InvalidArgument("server must not carry a path, got \"" + input + "\"");
  }
  std::string port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("server must be HOST:PORT, got \"" + input + "\"");
    }
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("server must be HOST:PORT, got \"" + input + "\"");
    }
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  for (char c : hp.host) {
    if (c == '@' || c == ' ' || c == '?' || c == '#' || static_cast<unsigned char>(c) < 0x21) {
      return Status::InvalidArgument("server host is malformed in \"" + input + "\"");
    }
  }
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), hp.port);
  if (ec != std::errc() || p != port.data() + port.size() || hp.port < 1 || hp.port > 65535) {
    return Status::InvalidArgument("server port must be 1..65535, got \"" + port + "\"");
  }
  return hp;
}

std::string BaseUrl(const HostPort& server) {
  std::string host = server.host.find(':') != std::string::npos ? "[" + server.host + "]" : server.host;
  return std::string(server.https ? "https://" : "http://") + host + ":" + std::to_string(server.port);
}

namespace {

void SetTls(CURL* h, const HostPort& server, const ClientTls& tls) {
  if (!server.https) return;
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!tls.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, tls.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);  // this CA only
  }
}

Status CurlError(CURLcode rc, const char* error, const std::string& where, const ClientTls& tls) {
  std::string why = error[0] ? std::string(error) : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PARTIAL_FILE:
      return Status::InvalidArgument("malformed response from " + where + ": " + why);
    case CURLE_PEER_FAILED_VERIFICATION:
      return Status::PermissionDenied(where + ": server certificate not trusted or not for this host: " + why);
    case CURLE_SSL_CACERT_BADFILE:
      return Status::InvalidArgument("CA file " + tls.ca_file + ": " + why);
    default:
      return Status::Unavailable(where + ": " + why);
  }
}

}  // namespace

Status Connect(const HostPort& server, int timeout_ms, const ClientTls& tls) {
  GlobalInit();
  EasyPtr curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status::Internal("libcurl: cannot create a handle");
  CURL* h = curl.get();
  const std::string url = BaseUrl(server) + "/";
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  SetTls(h, server, tls);
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) return CurlError(rc, error, BaseUrl(server), tls);
  return Status::Ok();
}

Result<HttpResponse> HttpPost(const HostPort& server, const std::string& path, const std::string& content_type,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, int timeout_ms,
                              const ClientTls& tls) {
  GlobalInit();
  EasyPtr curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status::Internal("libcurl: cannot create a handle");
  CURL* h = curl.get();
  const std::string url = BaseUrl(server) + path;
  const std::string where = BaseUrl(server);

  ListPtr list(nullptr, curl_slist_free_all);
  auto add = [&list](const std::string& line) {
    curl_slist* next = curl_slist_append(list.get(), line.c_str());
    if (next) {
      (void)list.release();
      list.reset(next);
    }
  };
  add("Content-Type: " + content_type);
  add("Expect:");  // no 100-continue round trip
  for (const auto& [k, v] : headers) add(k + ": " + v);

  Sink sink;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "femtoguard");
  SetTls(h, server, tls);

  CURLcode rc = curl_easy_perform(h);
  if (sink.overflow) return Status::InvalidArgument("response from " + where + " too large");
  if (rc != CURLE_OK) return CurlError(rc, error, where, tls);
  HttpResponse out;
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status < 100 || status > 599) return Status::InvalidArgument("bad status line from " + where);
  out.status = static_cast<int>(status);
  out.body = std::move(sink.body);
  return out;
}

}  // namespace fg::admission
