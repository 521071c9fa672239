// A load generator for the node's JSON API: sends every line of a bodies
// file once, as POST PATH with a bearer token, over C keep-alive connections
// (one thread each, blocking I/O), and reports the wall time for the whole
// file, the rate, the HTTP statuses and how many replies contain each
// "decision". Used by bench/api_bench.sh for the reconnect storm (a fleet
// re-admitting itself after an outage). No femtoguard library: the server is
// a black box here.
//
//   http_storm HOST PORT PATH TOKEN BODIES_FILE CONNECTIONS

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

int Connect(const char* host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one response (headers + Content-Length body); returns the status or -1.
int ReadResponse(int fd, std::string& buf, std::string* body) {
  for (;;) {
    size_t hdr_end = buf.find("\r\n\r\n");
    if (hdr_end != std::string::npos) {
      size_t cl = 0;
      size_t p = buf.find("Content-Length:");
      if (p == std::string::npos) p = buf.find("content-length:");
      if (p != std::string::npos && p < hdr_end) cl = std::strtoul(buf.c_str() + p + 15, nullptr, 10);
      if (buf.size() >= hdr_end + 4 + cl) {
        int status = std::atoi(buf.c_str() + 9);
        body->assign(buf, hdr_end + 4, cl);
        buf.erase(0, hdr_end + 4 + cl);
        return status;
      }
    }
    char tmp[16384];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: http_storm HOST PORT PATH TOKEN BODIES_FILE CONNECTIONS\n");
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3], token = argv[4];
  const int conns = std::max(1, std::atoi(argv[6]));
  std::vector<std::string> bodies;
  {
    std::ifstream in(argv[5]);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) bodies.push_back(std::move(line));
    }
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::map<int, size_t> statuses;
  std::map<std::string, size_t> decisions;
  size_t errors = 0;

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&] {
      std::map<int, size_t> my_status;
      std::map<std::string, size_t> my_dec;
      size_t my_err = 0;
      int fd = Connect(host, port);
      std::string buf, body;
      for (size_t i; (i = next.fetch_add(1)) < bodies.size();) {
        if (fd < 0) fd = Connect(host, port);
        std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + token +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(bodies[i].size()) + "\r\n\r\n" + bodies[i];
        int status = (fd >= 0 && WriteAll(fd, req)) ? ReadResponse(fd, buf, &body) : -1;
        if (status < 0) {
          ++my_err;
          if (fd >= 0) ::close(fd);
          fd = -1;
          buf.clear();
          continue;
        }
        ++my_status[status];
        size_t d = body.find("\"decision\":\"");
        if (d != std::string::npos) my_dec[body.substr(d + 12, body.find('"', d + 12) - d - 12)]++;
      }
      if (fd >= 0) ::close(fd);
      std::lock_guard lock(mu);
      for (auto& [k, v] : my_status) statuses[k] += v;
      for (auto& [k, v] : my_dec) decisions[k] += v;
      errors += my_err;
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("requests %zu seconds %.3f rate %.0f errors %zu", bodies.size(), secs, bodies.size() / secs, errors);
  for (auto& [k, v] : statuses) std::printf(" http_%d %zu", k, v);
  for (auto& [k, v] : decisions) std::printf(" %s %zu", k.c_str(), v);
  std::printf("\n");
  return errors == 0 ? 0 : 1;
}
