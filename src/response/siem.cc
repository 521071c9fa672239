#include "response/siem.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/config.h"
#include "common/metrics.h"

namespace fg::response {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

Counter& Messages(bool ok) {
  return Metrics::Global().GetCounter("femtoguard_siem_messages_total", ok ? "result=\"sent\"" : "result=\"failed\"",
                                      "Alert syslog messages to the SIEM, by result (failed ones are sent again)");
}
Gauge& PendingGauge() {
  return Metrics::Global().GetGauge("femtoguard_siem_pending", {},
                                    "Alerts queued for the SIEM and not yet acknowledged by its collector");
}
Gauge& UpGauge() {
  return Metrics::Global().GetGauge("femtoguard_siem_up", {},
                                    "1 when the last contact with the SIEM's syslog collector succeeded, else 0");
}

// RFC 5424 facility authpriv: where syslog daemons keep what only
// administrators may read.
constexpr int kFacility = 10;

int SyslogSeverity(std::string_view s) {
  if (s == "critical") return 2;
  if (s == "high") return 3;
  if (s == "medium") return 4;
  if (s == "low") return 5;
  return 6;  // info, and anything unknown
}
// ECS event.severity: Elastic's detection-rule risk scores for the same
// names, so that Kibana's severity ranges read them right.
int EcsSeverity(std::string_view s) {
  if (s == "critical") return 99;
  if (s == "high") return 73;
  if (s == "medium") return 47;
  if (s == "low") return 21;
  return 0;
}

// RFC 5424 HOSTNAME: 1..255 PRINTUSASCII, else the NILVALUE.
std::string SyslogHostname(std::string_view name) {
  if (name.empty() || name.size() > 255) return "-";
  for (char c : name) {
    if (c < 33 || c > 126) return "-";
  }
  return std::string(name);
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// One connection to the collector: TCP, and TLS over it when asked.
class Connection {
 public:
  ~Connection() { Close(); }

  Status Open(const SiemTarget& target, const std::string& ca_file, int timeout_ms) {
    Close();
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(target.port);
    if (int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return Status::Unavailable("cannot resolve " + target.host + ": " + ::gai_strerror(rc));
    }
    std::string last_error = "no address";
    for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last_error = std::strerror(errno);
        ::close(fd);
        continue;
      }
      if (Status s = WaitFor(fd, POLLOUT, deadline); !s.ok()) {
        last_error = s.message();
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = std::strerror(err);
        ::close(fd);
        continue;
      }
      fd_ = fd;
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return Status::Unavailable("connect: " + last_error);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!target.tls) return Status::Ok();
    return Handshake(target, ca_file, deadline);
  }

  void Close() {
    if (ssl_) SSL_free(ssl_);
    ssl_ = nullptr;
    if (ctx_) SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool open() const { return fd_ >= 0; }

  Status Write(std::string_view data, Clock::time_point deadline) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n;
      int want = POLLOUT;
      if (ssl_) {
        ERR_clear_error();
        int r = SSL_write(ssl_, data.data() + done, static_cast<int>(std::min<size_t>(data.size() - done, 1 << 20)));
        if (r > 0) {
          done += static_cast<size_t>(r);
          continue;
        }
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ) {
          want = POLLIN;
        } else if (e != SSL_ERROR_WANT_WRITE) {
          return Status::Unavailable("TLS write: " + OpenSslError());
        }
      } else {
        n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
          done += static_cast<size_t>(n);
          continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return Status::Unavailable(std::string("send: ") + std::strerror(errno));
        }
      }
      FG_RETURN_IF_ERROR(WaitFor(fd_, want, deadline));
    }
    return Status::Ok();
  }

  // Every byte written so far has been acknowledged by the peer's TCP (the
  // send queue is empty) and the connection is neither reset nor closed by
  // the peer. Syslog has no application-level ack; this is the most a sender
  // can know.
  Status WaitAcknowledged(Clock::time_point deadline) {
    for (;;) {
      // The order matters: a reset empties the send queue and closes the
      // socket together, so a zero queue read *before* a not-closed state
      // means the bytes were acknowledged, not thrown away by a reset.
      int outq = 0;
      if (::ioctl(fd_, SIOCOUTQ, &outq) != 0) return Status::Internal(std::string("SIOCOUTQ: ") + std::strerror(errno));
      tcp_info info{};
      socklen_t info_len = sizeof info;
      if (::getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &info_len) != 0) {
        return Status::Internal(std::string("TCP_INFO: ") + std::strerror(errno));
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Status::Unavailable(std::string("connection: ") + std::strerror(err));
      if (info.tcpi_state == TCP_CLOSE) return Status::Unavailable("the collector reset the connection");
      // A collector that closed its end may not have read what we sent
      // before it did: sent again (at least once), on a new connection.
      char c;
      ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0) return Status::Unavailable("the collector closed the connection");
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return Status::Unavailable(std::string("connection: ") + std::strerror(errno));
      }
      if (outq == 0) return Status::Ok();
      if (Clock::now() >= deadline) {
        return Status::Unavailable("the collector has not acknowledged " + std::to_string(outq) + " bytes");
      }
      // The kernel has no event for "send queue drained"; on loopback or a
      // LAN the acknowledgement takes well under a millisecond.
      ::usleep(500);
    }
  }

 private:
  static Status WaitFor(int fd, int events, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Status::Unavailable("timed out");
      pollfd p{fd, static_cast<short>(events), 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return Status::Ok();
      if (r < 0 && errno != EINTR) return Status::Unavailable(std::string("poll: ") + std::strerror(errno));
    }
  }

  Status Handshake(const SiemTarget& target, const std::string& ca_file, Clock::time_point deadline) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) return Status::Internal("SSL_CTX_new: " + OpenSslError());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    const int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_)
                                       : SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    if (loaded != 1) return Status::InvalidArgument("SIEM CA file " + ca_file + ": " + OpenSslError());
    ssl_ = SSL_new(ctx_);
    if (!ssl_) return Status::Internal("SSL_new: " + OpenSslError());
    // The certificate must name what we connected to: an IP address as an
    // iPAddress SAN, a host name as a DNS name (and SNI).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    in6_addr probe{};
    const bool is_ip = ::inet_pton(AF_INET, target.host.c_str(), &probe) == 1 ||
                       ::inet_pton(AF_INET6, target.host.c_str(), &probe) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl_, target.host.c_str());
    }
    SSL_set_fd(ssl_, fd_);
    for (;;) {
      ERR_clear_error();
      int r = SSL_connect(ssl_);
      if (r == 1) return Status::Ok();
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        FG_RETURN_IF_ERROR(WaitFor(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
        continue;
      }
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        return Status::PermissionDenied(std::string("the collector's certificate is not trusted: ") +
                                        X509_verify_cert_error_string(verify));
      }
      return Status::Unavailable("TLS handshake: " + OpenSslError());
    }
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

std::string Where(const SiemTarget& t) {
  return (t.tls ? "tls://" : "tcp://") + t.host + ":" + std::to_string(t.port);
}

// Sends a batch of messages, one frame each, on `conn` (opened when it is
// not) and waits for the collector's TCP to acknowledge all of it.
Status SendBatch(Connection& conn, const SiemTarget& target, const SiemOptions& options,
                 const std::vector<Outbox::Message>& batch) {
  std::string frames;
  for (const Outbox::Message& m : batch) frames += OctetCountedFrame(m.payload);
  const auto deadline = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  Status sent = Status::Ok();
  if (!conn.open()) sent = conn.Open(target, options.ca_file, options.timeout_ms);
  if (sent.ok()) sent = conn.Write(frames, deadline);
  if (sent.ok()) sent = conn.WaitAcknowledged(deadline);
  Messages(sent.ok()).Inc(batch.size());
  UpGauge().Set(sent.ok() ? 1 : 0);
  if (sent.ok()) return sent;
  // Whatever was written on a broken connection is sent again on the
  // next one: at least once, never silently lost.
  conn.Close();
  return Status::Unavailable(Where(target) + ": " + sent.message());
}

}  // namespace

Result<SiemTarget> ParseSiemTarget(const std::string& text) {
  const std::string what = "SIEM syslog target '" + text + "'";
  SiemTarget t;
  std::string rest;
  if (text.rfind("tls://", 0) == 0) {
    t.tls = true;
    rest = text.substr(6);
  } else if (text.rfind("tcp://", 0) == 0) {
    rest = text.substr(6);
  } else {
    return Status::InvalidArgument(what + ": must be tcp://HOST:PORT or tls://HOST:PORT");
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return Status::InvalidArgument(what + ": want [IPv6]:PORT");
    }
    t.host = rest.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon == std::string::npos) return Status::InvalidArgument(what + ": no port (TCP 601, TLS 6514 are usual)");
    t.host = rest.substr(0, colon);
  }
  if (t.host.empty()) return Status::InvalidArgument(what + ": no host");
  for (char c : t.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_')) {
      return Status::InvalidArgument(what + ": bad character in the host");
    }
  }
  const std::string port = rest.substr(colon + 1);
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
    return Status::InvalidArgument(what + ": port must be 1..65535");
  }
  t.port = p;
  return t;
}

Result<std::string> EcsAlert(std::string_view alert_json, std::string_view observer_host) {
  json a = json::parse(alert_json, nullptr, /*allow_exceptions=*/false);
  if (!a.is_object() || !a.contains("id") || !a["id"].is_string() || !a.contains("rule") || !a["rule"].is_string()) {
    return Status::InvalidArgument("not an alert object");
  }
  const std::string severity = a.value("severity", std::string("info"));
  const std::string rule = a["rule"].get<std::string>();
  json ecs;
  ecs["@timestamp"] = a.value("ts", std::string());
  ecs["ecs"] = {{"version", "8.11.0"}};
  ecs["event"] = {{"kind", "alert"},
                  {"category", json::array({"intrusion_detection", "network"})},
                  {"type", json::array({"indicator", "denied"})},
                  {"id", a["id"]},
                  {"code", rule},
                  {"severity", EcsSeverity(severity)},
                  {"module", "femtoguard"},
                  {"dataset", "femtoguard.alert"},
                  {"provider", "femtoguard"}};
  if (a.contains("kind") && a["kind"].is_string() && !a["kind"].get<std::string>().empty()) {
    ecs["event"]["action"] = a["kind"];
  }
  ecs["rule"] = {{"id", rule}, {"name", rule}, {"ruleset", "femtoguard"}};
  ecs["log"] = {{"level", severity}};
  ecs["observer"] = {{"vendor", "femtoguard"}, {"product", "femtoguard"}, {"type", "ids"}};
  if (!observer_host.empty() && observer_host != "-") ecs["observer"]["hostname"] = std::string(observer_host);
  std::string message = "femtoguard " + severity + " alert " + rule;
  if (a.contains("device") && a["device"].is_string()) {
    ecs["device"] = {{"id", a["device"]}};
    message += " on device " + a["device"].get<std::string>();
  }
  ecs["message"] = message;
  // Subscribers are pseudonyms ("imsi:<hex>"), never raw identities.
  if (a.contains("subjects") && a["subjects"].is_array() && !a["subjects"].empty()) {
    ecs["related"] = {{"user", a["subjects"]}};
  }
  ecs["femtoguard"] = {{"alert", a}};
  return ecs.dump();
}

Result<std::string> SyslogAlertMessage(std::string_view alert_json, std::string_view hostname) {
  const std::string host = SyslogHostname(hostname);
  FG_ASSIGN_OR_RETURN(std::string body, EcsAlert(alert_json, host));
  json a = json::parse(alert_json, nullptr, false);
  const int pri = kFacility * 8 + SyslogSeverity(a.value("severity", std::string("info")));
  // The alert's time (RFC 3339, UTC, milliseconds: a valid RFC 5424
  // TIMESTAMP), else the NILVALUE.
  std::string ts = a.value("ts", std::string());
  if (ts.empty() || !ParseRfc3339(ts).ok() || ts.find(' ') != std::string::npos) ts = "-";
  return "<" + std::to_string(pri) + ">1 " + ts + " " + host + " femtoguard - alert - " + body;
}

std::string OctetCountedFrame(std::string_view message) {
  std::string out = std::to_string(message.size());
  out.push_back(' ');
  out.append(message);
  return out;
}

Status ValidateSiem(const std::string& target, const std::string& ca_file) {
  FG_ASSIGN_OR_RETURN(SiemTarget t, ParseSiemTarget(target));
  if (!ca_file.empty() && !t.tls) {
    return Status::InvalidArgument("a SIEM CA file is only for a tls:// target");
  }
  if (!ca_file.empty() && !ReadFile(ca_file).ok()) {
    return Status::InvalidArgument("SIEM CA file " + ca_file + " cannot be read");
  }
  return Status::Ok();
}

SiemExport::SiemExport(SiemOptions options, SiemTarget target)
    : options_(std::move(options)), target_(std::move(target)) {}

Result<std::unique_ptr<SiemExport>> SiemExport::Start(SiemOptions options) {
  FG_RETURN_IF_ERROR(ValidateSiem(options.target, options.ca_file));
  FG_ASSIGN_OR_RETURN(SiemTarget target, ParseSiemTarget(options.target));
  if (options.queue_dir.empty()) return Status::InvalidArgument("SIEM export: no queue directory");
  OutboxOptions q;
  q.dir = options.queue_dir;
  q.suffix = ".msg";
  q.log_prefix = "SIEM export";
  q.queue_name = "SIEM queue";
  // Up to this many messages go out before their acknowledgement is
  // awaited: one round trip per batch, not per alert, during an attack.
  q.max_batch = 256;
  q.retry_initial_ms = options.retry_initial_ms;
  q.retry_max_ms = options.retry_max_ms;
  q.pending_gauge = &PendingGauge();
  q.remove_dir = options.remove_queue_dir;
  FG_ASSIGN_OR_RETURN(std::unique_ptr<Outbox> outbox, Outbox::Open(std::move(q)));
  std::unique_ptr<SiemExport> s(new SiemExport(std::move(options), std::move(target)));
  s->outbox_ = std::move(outbox);
  s->hostname_ = s->options_.hostname;
  if (s->hostname_.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) s->hostname_ = buf;
  }
  s->hostname_ = SyslogHostname(s->hostname_);
  UpGauge().Set(0);  // until the first message is acknowledged
  if (size_t left = s->outbox_->pending(); left > 0) {
    spdlog::info("SIEM export: {} alert(s) left unsent by an earlier run, sending again", left);
  }
  spdlog::info("SIEM export: alerts go to {}:{} as RFC 5424 syslog over {}", s->target_.host, s->target_.port,
               s->target_.tls ? "TLS" : "TCP");
  // The connection is the sender thread's alone, kept open between batches.
  s->outbox_->StartSending(
      [raw = s.get(), conn = std::make_shared<Connection>()](const std::vector<Outbox::Message>& batch) {
        return SendBatch(*conn, raw->target_, raw->options_, batch);
      },
      Where(s->target_) + " takes alerts again");
  return s;
}

SiemExport::~SiemExport() = default;

void SiemExport::Enqueue(std::string_view alert_id, std::string_view alert_json) {
  auto message = SyslogAlertMessage(alert_json, hostname_);
  if (!message.ok()) {
    spdlog::error("SIEM export: alert {} not sent: {}", alert_id, message.status().ToString());
    return;
  }
  outbox_->Enqueue(alert_id, std::move(*message));
}

bool SiemExport::Flush(int timeout_ms) { return outbox_->Flush(timeout_ms); }

size_t SiemExport::pending() const { return outbox_->pending(); }

}  // namespace fg::response
