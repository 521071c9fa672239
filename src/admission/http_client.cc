#include "admission/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <memory>

namespace fg::admission {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxResponse = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd; Unavailable on timeout.
Status Wait(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    int left = RemainingMs(deadline);
    if (left == 0) return Status::Unavailable(std::string("timed out ") + what);
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, left);
    if (n > 0) return Status::Ok();
    if (n == 0) return Status::Unavailable(std::string("timed out ") + what);
    if (errno != EINTR) return Status::Unavailable(std::string("poll: ") + std::strerror(errno));
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<std::string> Dechunk(std::string_view body) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return Status::InvalidArgument("truncated chunked body");
    std::string_view size_text = body.substr(pos, eol - pos);
    size_text = size_text.substr(0, size_text.find(';'));
    size_t size = 0;
    auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || size_text.empty()) return Status::InvalidArgument("bad chunk size");
    pos = eol + 2;
    if (size == 0) return out;
    if (pos + size > body.size()) return Status::InvalidArgument("truncated chunk");
    out.append(body.substr(pos, size));
    pos += size + 2;
  }
}

}  // namespace

Result<HostPort> ParseHostPort(const std::string& text) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("server must be HOST:PORT, got \"" + text + "\"");
    }
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return Status::InvalidArgument("server must be HOST:PORT, got \"" + text + "\"");
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), hp.port);
  if (ec != std::errc() || p != port.data() + port.size() || hp.port < 1 || hp.port > 65535) {
    return Status::InvalidArgument("server port must be 1..65535, got \"" + port + "\"");
  }
  return hp;
}

Result<HttpResponse> HttpPost(const HostPort& server, const std::string& path, const std::string& content_type,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers, int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(server.port);
  if (int rc = ::getaddrinfo(server.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status::Unavailable("cannot resolve " + server.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addrs(res, freeaddrinfo);
  const std::string where = server.host + ":" + port;

  Status last = Status::Unavailable("no address for " + where);
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last = Status::Unavailable(std::string("socket: ") + std::strerror(errno));
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = Status::Unavailable("connect " + where + ": " + std::strerror(errno));
        continue;
      }
      if (Status s = Wait(fd.get(), POLLOUT, deadline, ("connecting to " + where).c_str()); !s.ok()) return s;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = Status::Unavailable("connect " + where + ": " + std::strerror(err));
        continue;
      }
    }

    std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\nContent-Type: " +
                      content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    req += body;
    size_t sent = 0;
    while (sent < req.size()) {
      ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        FG_RETURN_IF_ERROR(Wait(fd.get(), POLLOUT, deadline, ("sending to " + where).c_str()));
        continue;
      }
      return Status::Unavailable("send to " + where + ": " + std::strerror(errno));
    }

    std::string in;
    size_t header_end = std::string::npos;
    size_t content_length = std::string::npos;
    bool chunked = false;
    char buf[8192];
    for (;;) {
      if (header_end != std::string::npos && content_length != std::string::npos &&
          in.size() >= header_end + 4 + content_length) {
        break;
      }
      ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        if (in.size() > kMaxResponse) return Status::InvalidArgument("response from " + where + " too large");
        if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != std::string::npos) {
          std::string head = Lower(in.substr(0, header_end));
          size_t cl = head.find("\r\ncontent-length:");
          if (cl != std::string::npos) {
            size_t v = cl + 17;
            while (v < head.size() && head[v] == ' ') ++v;
            size_t len = 0;
            auto [p, ec] = std::from_chars(head.data() + v, head.data() + head.size(), len);
            if (ec != std::errc()) return Status::InvalidArgument("bad Content-Length from " + where);
            content_length = len;
          }
          chunked = head.find("\r\ntransfer-encoding: chunked") != std::string::npos;
        }
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        FG_RETURN_IF_ERROR(Wait(fd.get(), POLLIN, deadline, ("waiting for " + where).c_str()));
        continue;
      }
      return Status::Unavailable("recv from " + where + ": " + std::strerror(errno));
    }
    if (header_end == std::string::npos) return Status::InvalidArgument("incomplete response from " + where);
    HttpResponse out;
    if (in.compare(0, 9, "HTTP/1.1 ") != 0 && in.compare(0, 9, "HTTP/1.0 ") != 0) {
      return Status::InvalidArgument("not an HTTP response from " + where);
    }
    auto [p, ec] = std::from_chars(in.data() + 9, in.data() + std::min<size_t>(in.size(), 12), out.status);
    if (ec != std::errc() || out.status < 100 || out.status > 599) {
      return Status::InvalidArgument("bad status line from " + where);
    }
    std::string payload = in.substr(header_end + 4);
    if (chunked) {
      FG_ASSIGN_OR_RETURN(out.body, Dechunk(payload));
    } else if (content_length != std::string::npos) {
      if (payload.size() < content_length) return Status::InvalidArgument("truncated response from " + where);
      out.body = payload.substr(0, content_length);
    } else {
      out.body = std::move(payload);
    }
    return out;
  }
  return last;
}

}  // namespace fg::admission
