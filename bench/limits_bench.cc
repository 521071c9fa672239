// Load generator for bench/limits_bench.sh (docs/limits.md), loopback only.
//
//   limits_bench admission PORT TOKEN BODIES REQUESTS IDLE SLOW
//     Admission latency as a SeGW sees it (a new connection per request, the
//     worst case under a flood: it must get through accept and the caps),
//     after a warm-up, one request every 5 ms, first with no load, then while IDLE connections that
//     say nothing and SLOW connections that trickle a header (one byte a second) are held against
//     the same listener; a held connection the server closes is opened again at once, as an
//     attacker would. Prints one line per phase:
//       <phase> n=<N> p50_us=<> p99_us=<> max_us=<> held=<min held during the phase> reopened=<>
//
//   limits_bench tls-idle PORT N
//     N TLS connections that complete a handshake, ask GET /healthz once and
//     then stay idle (keep-alive), held until stdin closes; prints "held N"
//     once all are up.
//
//   limits_bench tcp-idle PORT N
//     N TCP connections that say nothing, held until stdin closes (the
//     server's header timeout closes them; they are not reopened).
//
// The client raises its own open-files limit to the hard limit; sources are
// spread over 127.0.x.y (100 connections per address) so that the
// per-source cap is not what is measured.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string SourceFor(int i, int base) {
  return "127." + std::to_string(base + i / 25500) + "." + std::to_string((i / 100) % 255 + 1) +
         "." + std::to_string(1 + (i % 100) % 250);
}

// A socket from `source` to 127.0.0.1:port; non-blocking connect when
// `nonblocking`. -1 on failure.
int Connect(const std::string& source, uint16_t port, bool nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one Content-Length framed response; its status, 0 on failure.
int ReadResponse(int fd) {
  std::string in;
  size_t end;
  while ((end = in.find("\r\n\r\n")) == std::string::npos) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
  }
  size_t length = 0;
  size_t at = in.find("Content-Length: ");
  if (at != std::string::npos && at < end) length = std::stoul(in.substr(at + 16));
  while (in.size() < end + 4 + length) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
  }
  return in.size() > 12 ? std::stoi(in.substr(9, 3)) : 0;
}

// The attacker: IDLE silent and SLOW trickling connections, reopened when
// the server closes them, until stop.
class Flood {
 public:
  Flood(uint16_t port, int idle, int slow) : port_(port), idle_(idle), slow_(slow) {}
  void Run(std::atomic<bool>& stop) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    const int total = idle_ + slow_;
    fds_.assign(static_cast<size_t>(total), -1);
    for (int i = 0; i < total; ++i) Open(i);
    ready_.store(true);
    auto next_trickle = Clock::now();
    std::vector<epoll_event> events(1024);
    while (!stop.load()) {
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int k = 0; k < n; ++k) {
        const int i = static_cast<int>(events[k].data.u32);
        if (events[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLIN)) {
          char buf[256];
          ssize_t got = recv(fds_[static_cast<size_t>(i)], buf, sizeof buf, MSG_DONTWAIT);
          if (got == 0 || (got < 0 && errno != EAGAIN)) {
            close(fds_[static_cast<size_t>(i)]);
            fds_[static_cast<size_t>(i)] = -1;
            --held_;
            reopened_.fetch_add(1);
            Open(i);
          }
        }
      }
      if (Clock::now() >= next_trickle) {
        next_trickle += std::chrono::seconds(1);
        for (int i = idle_; i < total; ++i) {
          int fd = fds_[static_cast<size_t>(i)];
          if (fd >= 0) (void)!send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
    }
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
    close(epoll_);
  }
  bool ready() const { return ready_.load(); }
  int held() const { return held_.load(); }
  long reopened() const { return reopened_.load(); }

 private:
  void Open(int i) {
    int fd = Connect(SourceFor(i, 10), port_, true);
    if (fd < 0) return;
    fds_[static_cast<size_t>(i)] = fd;
    if (i >= idle_) {
      // Slow: the start of a request; the rest comes a byte a second.
      static const std::string head = "POST /v1/admission HTTP/1.1\r\nHost: x\r\nX-Pad: ";
      (void)!send(fd, head.data(), head.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    ++held_;
  }

  uint16_t port_;
  int idle_;
  int slow_;
  int epoll_ = -1;
  std::vector<int> fds_;
  std::atomic<bool> ready_{false};
  std::atomic<int> held_{0};
  std::atomic<long> reopened_{0};
};

struct PhaseResult {
  std::vector<double> us;
  int failures = 0;
};

// One phase: `requests` admissions, alternately on a new connection (from
// 127.0.0.77) and on a keep-alive one (from 127.0.0.78, reopened if the
// server closed it; after its first answer serve keeps it in the SeGW's
// pool).
struct Phase {
  PhaseResult fresh;
  PhaseResult keepalive;
};

std::string AdmissionRequest(const std::string& token, const std::string& body, bool close) {
  return "POST /v1/admission HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\n" + (close ? "Connection: close\r\n" : "") +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

Phase AskAdmission(uint16_t port, const std::string& token, const std::vector<std::string>& bodies,
                   size_t& next_body, int requests, int& keepalive_fd) {
  Phase p;
  auto next = Clock::now();
  for (int i = 0; i < requests; ++i) {
    // Paced (a SeGW's rate, not a storm): a phase outlasts the server's
    // header timeout, so the flood's churn happens during it.
    std::this_thread::sleep_until(next);
    next += std::chrono::milliseconds(5);
    const std::string& body = bodies[next_body++ % bodies.size()];
    const bool fresh = i % 2 == 0;
    const auto t0 = Clock::now();
    int status = 0;
    if (fresh) {
      int fd = Connect("127.0.0.77", port, false);
      if (fd >= 0 && SendAll(fd, AdmissionRequest(token, body, true))) status = ReadResponse(fd);
      if (fd >= 0) close(fd);
    } else {
      for (int attempt = 0; attempt < 2 && status == 0; ++attempt) {
        if (keepalive_fd < 0) keepalive_fd = Connect("127.0.0.78", port, false);
        if (keepalive_fd >= 0 && SendAll(keepalive_fd, AdmissionRequest(token, body, false))) {
          status = ReadResponse(keepalive_fd);
        }
        if (status == 0 && keepalive_fd >= 0) {
          close(keepalive_fd);
          keepalive_fd = -1;
        }
      }
    }
    const auto t1 = Clock::now();
    PhaseResult& r = fresh ? p.fresh : p.keepalive;
    if (status != 200) {
      ++r.failures;
      continue;
    }
    r.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return p;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Report(const std::string& phase, const PhaseResult& r, int min_held, long reopened) {
  std::printf("%s n=%zu failures=%d p50_us=%.0f p99_us=%.0f max_us=%.0f held=%d reopened=%ld\n",
              phase.c_str(), r.us.size(), r.failures, Percentile(r.us, 0.50),
              Percentile(r.us, 0.99),
              r.us.empty() ? 0.0 : *std::max_element(r.us.begin(), r.us.end()), min_held, reopened);
  std::fflush(stdout);
}

void Report(const std::string& phase, const Phase& p, int min_held, long reopened) {
  Report(phase + "-fresh", p.fresh, min_held, reopened);
  Report(phase + "-keepalive", p.keepalive, min_held, reopened);
}

int Admission(int argc, char** argv) {
  if (argc != 8) return 2;
  const auto port = static_cast<uint16_t>(std::stoi(argv[2]));
  const std::string token = argv[3];
  std::vector<std::string> bodies;
  {
    std::ifstream in(argv[4]);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) bodies.push_back(line);
    }
  }
  if (bodies.empty()) return 2;
  const int requests = std::stoi(argv[5]);
  const int idle = std::stoi(argv[6]);
  const int slow = std::stoi(argv[7]);
  size_t next_body = 0;
  int keepalive_fd = -1;

  (void)AskAdmission(port, token, bodies, next_body, std::min(requests, 200), keepalive_fd);
  Report("baseline", AskAdmission(port, token, bodies, next_body, requests, keepalive_fd), 0, 0);

  std::atomic<bool> stop{false};
  Flood flood(port, idle, slow);
  std::thread attacker([&] { flood.Run(stop); });
  while (!flood.ready()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the server has taken them in
  std::fprintf(stderr, "limits_bench: flood up: %d held\n", flood.held());
  // Ask in slices, noting the fewest connections held meanwhile.
  Phase loaded;
  int min_held = flood.held();
  const long reopened_before = flood.reopened();
  for (int done = 0; done < requests; done += 50) {
    Phase part =
        AskAdmission(port, token, bodies, next_body, std::min(50, requests - done), keepalive_fd);
    for (auto [to, from] :
         {std::pair{&loaded.fresh, &part.fresh}, {&loaded.keepalive, &part.keepalive}}) {
      to->us.insert(to->us.end(), from->us.begin(), from->us.end());
      to->failures += from->failures;
    }
    min_held = std::min(min_held, flood.held());
  }
  const long reopened = flood.reopened() - reopened_before;
  stop.store(true);
  attacker.join();
  Report("flooded", loaded, min_held, reopened);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  Report("after", AskAdmission(port, token, bodies, next_body, requests, keepalive_fd), 0, 0);
  if (keepalive_fd >= 0) close(keepalive_fd);
  return 0;
}

int TlsIdle(int argc, char** argv) {
  if (argc != 4) return 2;
  const auto port = static_cast<uint16_t>(std::stoi(argv[2]));
  const int n = std::stoi(argv[3]);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE,
                     nullptr);  // loopback, our own server: memory is measured
  std::vector<int> fds(static_cast<size_t>(n), -1);
  std::vector<SSL*> ssls(static_cast<size_t>(n), nullptr);
  std::atomic<int> up{0};
  auto worker = [&](int from, int step) {
    for (int i = from; i < n; i += step) {
      int fd = Connect(SourceFor(i, 30), port, false);
      if (fd < 0) continue;
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        continue;
      }
      const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      char buf[512];
      SSL_read(ssl, buf, sizeof buf);
      fds[static_cast<size_t>(i)] = fd;
      ssls[static_cast<size_t>(i)] = ssl;
      up.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t, 4);
  for (auto& t : threads) t.join();
  std::printf("held %d\n", up.load());
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);  // until told to let go
  for (int i = 0; i < n; ++i) {
    if (ssls[static_cast<size_t>(i)] != nullptr) SSL_free(ssls[static_cast<size_t>(i)]);
    if (fds[static_cast<size_t>(i)] >= 0) close(fds[static_cast<size_t>(i)]);
  }
  SSL_CTX_free(ctx);
  return 0;
}

int TcpIdle(int argc, char** argv) {
  if (argc != 4) return 2;
  const auto port = static_cast<uint16_t>(std::stoi(argv[2]));
  const int n = std::stoi(argv[3]);
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) fds.push_back(Connect(SourceFor(i, 40), port, false));
  std::printf("held %zu\n", static_cast<size_t>(std::count_if(fds.begin(), fds.end(),
                                                              [](int fd) { return fd >= 0; })));
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  RaiseFileLimit();
  const std::string mode = argc > 1 ? argv[1] : "";
  int rc = 2;
  if (mode == "admission") rc = Admission(argc, argv);
  if (mode == "tls-idle") rc = TlsIdle(argc, argv);
  if (mode == "tcp-idle") rc = TcpIdle(argc, argv);
  if (rc == 2) std::fprintf(stderr, "usage: see the comment at the top of bench/limits_bench.cc\n");
  return rc;
}
