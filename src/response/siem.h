#pragma once

// Alert export to a SIEM (docs/siem.md): every alert serve stores is sent,
// once it is raised, as one RFC 5424 syslog message over TCP (RFC 6587) or
// TCP/TLS (RFC 5425), octet-counting framing ("LEN SP MSG"), to a collector
// such as rsyslog, syslog-ng, Wazuh or Elastic Agent.
//
//   - Body: one ECS (Elastic Common Schema) JSON object. JSON because both
//     Wazuh (its JSON decoder) and Elastic (ECS is its schema) take it
//     without a parser of their own, and because an alert's evidence is a
//     nested object that CEF's flat key=value extensions could only carry as
//     escaped text. The alert's own JSON is kept whole under femtoguard.alert.
//   - Header: <PRI>1 TIMESTAMP HOSTNAME femtoguard - alert - BODY; facility
//     authpriv (10), severity from the alert's (critical 2 .. info 6).
//   - Durable: each message is written to DATA/siem/ (one fsynced file per
//     alert) before it is sent, and removed only once the collector's TCP
//     stack has acknowledged every byte of it (the kernel send queue of the
//     connection drained, SIOCOUTQ) with the connection still up. Anything
//     else - refused, reset, TLS failure, timeout - keeps it queued and it is
//     sent again after a backoff, after a restart too. Delivery is at least
//     once, in queueing order; event.id is the alert's stable id, so a
//     collector de-duplicates a message sent again after a broken connection.
//   - TLS: the collector's certificate must chain to the CA file given (or
//     the system's trust store) and name the host (or IP) of the target;
//     TLS 1.2 or later. Syslog's TLS has no application ack either: the
//     guarantee stops at the collector's TCP stack.
//   - Observable: femtoguard_siem_messages_total{result}, the gauges
//     femtoguard_siem_pending and femtoguard_siem_up; a collector that cannot
//     be reached is a logged warning (once per outage), never an error.
//
//   The queue and the sender with its backoff are outbox.h's.
//
// Thread-safety: thread-safe. One sender thread per SiemExport.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "response/outbox.h"

namespace fg::response {

struct SiemTarget {
  std::string host;
  int port = 0;
  bool tls = false;
};
// "tcp://HOST:PORT" or "tls://HOST:PORT" ("[v6]:PORT" for IPv6). A port is
// required (syslog has two: 601 for TCP, 6514 for TLS). InvalidArgument,
// naming what is wrong, for anything else.
Result<SiemTarget> ParseSiemTarget(const std::string& text);

// The ECS JSON object for one alert (its JSON as the store keeps it).
// InvalidArgument when `alert_json` is not an alert object.
Result<std::string> EcsAlert(std::string_view alert_json, std::string_view observer_host);

// The RFC 5424 message (without the frame's length prefix) for one alert.
Result<std::string> SyslogAlertMessage(std::string_view alert_json, std::string_view hostname);

// "LEN SP MSG" (RFC 6587 §3.4.1, RFC 5425 §4.3).
std::string OctetCountedFrame(std::string_view message);

struct SiemOptions {
  std::string target;                // tcp://host:port or tls://host:port
  std::string ca_file;               // PEM CA(s) for tls; empty = system trust store
  std::string hostname;              // RFC 5424 HOSTNAME; empty = gethostname()
  std::filesystem::path queue_dir;   // durable queue (DATA/siem)
  int timeout_ms = 5000;             // connect, handshake, and the acknowledgement of a batch
  int retry_initial_ms = 500;
  int retry_max_ms = 60000;
  bool remove_queue_dir = false;     // a temp queue (tests): removed with the SiemExport
};

// The target and the CA file, checked before serve starts (InvalidArgument:
// exit 2).
Status ValidateSiem(const std::string& target, const std::string& ca_file);

class SiemExport {
 public:
  // Validates, loads what an earlier run left in the queue and starts the
  // sender (which connects when there is something to send).
  static Result<std::unique_ptr<SiemExport>> Start(SiemOptions options);
  ~SiemExport();
  SiemExport(const SiemExport&) = delete;
  SiemExport& operator=(const SiemExport&) = delete;

  // Queues one alert (written to disk before this returns). The same id
  // queued again while still pending is sent once. An alert whose JSON is
  // not an alert object is logged and dropped.
  void Enqueue(std::string_view alert_id, std::string_view alert_json);
  // Waits until the queue is empty, at most `timeout_ms` (<0: for ever).
  bool Flush(int timeout_ms = -1);
  size_t pending() const;

 private:
  explicit SiemExport(SiemOptions options, SiemTarget target);

  const SiemOptions options_;
  const SiemTarget target_;
  std::string hostname_;  // RFC 5424 HOSTNAME, constant after Start
  // The queue and its sender; last, so that the sender stops first.
  std::unique_ptr<Outbox> outbox_;
};

}  // namespace fg::response
