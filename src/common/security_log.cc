#include "common/security_log.h"

#include <string>

#include "common/log.h"

namespace fg::seclog {
namespace {

// Free text from a refusal or a store error: bounded, so that a client
// cannot make one line arbitrarily long.
std::string Bounded(std::string_view s, size_t max_bytes = 256) {
  return std::string(s.substr(0, max_bytes));
}

}  // namespace

void AlertRaised(std::string_view id, std::string_view rule, std::string_view severity, std::string_view device) {
  LogEvent(spdlog::level::warn, "alert.raised",
           {{"id", std::string(id)},
            {"rule", std::string(rule)},
            {"severity", std::string(severity)},
            {"device", std::string(device)}});
}

void AlertAction(std::string_view alert_id, std::string_view action, std::string_view device,
                 std::string_view result, std::string_view detail) {
  LogFields fields{{"alert", std::string(alert_id)},
                   {"action", std::string(action)},
                   {"device", std::string(device)},
                   {"result", std::string(result)}};
  if (!detail.empty()) fields.emplace_back("detail", Bounded(detail));
  LogEvent(result == "failed" ? spdlog::level::err : spdlog::level::info, "alert.action", fields);
}

void EnrolmentIssued(std::string_view protocol, std::string_view device, std::string_view serial,
                     std::string_view remote) {
  LogEvent(spdlog::level::info, "enrolment.issued",
           {{"protocol", std::string(protocol)},
            {"device", Bounded(device, 128)},
            {"serial", std::string(serial)},
            {"remote", Bounded(remote, 64)}});
}

void EnrolmentRefused(std::string_view protocol, std::string_view device, std::string_view reason,
                      std::string_view detail, std::string_view remote) {
  LogEvent(spdlog::level::warn, "enrolment.refused",
           {{"protocol", std::string(protocol)},
            {"device", Bounded(device, 128)},
            {"reason", std::string(reason)},
            {"detail", Bounded(detail)},
            {"remote", Bounded(remote, 64)}});
}

void CertificateRevoked(std::string_view serial, std::string_view device, std::string_view reason,
                        std::string_view actor) {
  LogEvent(spdlog::level::warn, "certificate.revoked",
           {{"serial", std::string(serial)},
            {"device", std::string(device)},
            {"reason", std::string(reason)},
            {"actor", Bounded(actor, 128)}});
}

void AuthFailure(int status, std::string_view route, std::string_view role_wanted, std::string_view remote,
                 std::string_view reason) {
  LogEvent(spdlog::level::warn, "auth.failure",
           {{"status", std::to_string(status)},
            {"route", Bounded(route, 128)},
            {"role_wanted", std::string(role_wanted)},
            {"remote", Bounded(remote, 64)},
            {"reason", Bounded(reason, 128)}});
}

}  // namespace fg::seclog
