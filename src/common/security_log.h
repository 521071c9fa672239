#pragma once

// Security events in serve's log (docs/operations.md "Security events"):
// one function per event kind, called once where the event happens, so that
// every event is one line with stable field names. The names are a contract
// for SIEM parsers; add fields, never rename them.
//
//   event                 level        fields
//   alert.raised          warn         id, rule, severity, device
//   alert.action          info/error   alert, action, device, result (done|skipped|failed), detail
//   enrolment.issued      info         protocol (cmp|est), device, serial, remote
//   enrolment.refused     warn         protocol, device, reason, detail, remote
//   certificate.revoked   warn         serial, device, reason, actor
//   auth.failure          warn         status (401|403), route, role_wanted, remote, reason
//
// Callers pass device ids, serials, alert ids and pseudonyms; never a raw
// IMSI/IMEI/MSISDN, a bearer token, a bootstrap secret or a key.
// Thread-safe (spdlog's default logger).

#include <string_view>

namespace fg::seclog {

void AlertRaised(std::string_view id, std::string_view rule, std::string_view severity, std::string_view device);
// result: "done", "skipped" (nothing to act on; detail says why) or "failed".
void AlertAction(std::string_view alert_id, std::string_view action, std::string_view device,
                 std::string_view result, std::string_view detail = {});
void EnrolmentIssued(std::string_view protocol, std::string_view device, std::string_view serial,
                     std::string_view remote);
void EnrolmentRefused(std::string_view protocol, std::string_view device, std::string_view reason,
                      std::string_view detail, std::string_view remote);
void CertificateRevoked(std::string_view serial, std::string_view device, std::string_view reason,
                        std::string_view actor);
void AuthFailure(int status, std::string_view route, std::string_view role_wanted, std::string_view remote,
                 std::string_view reason);

}  // namespace fg::seclog
