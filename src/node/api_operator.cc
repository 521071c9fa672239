#include "node/api_operator.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "common/celldb.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"

namespace fg {
namespace {

using nlohmann::json;

HttpResponse JsonError(int status, std::string_view message) {
  return HttpResponse::Json(status, json{{"error", message}}.dump() + "\n");
}

// Bad input on an operator route: a 400, counted by route.
HttpResponse BadRequest(std::string_view route, std::string_view message) {
  Metrics::Global()
      .GetCounter("femtoguard_api_operator_bad_requests_total",
                  "route=\"" + std::string(route) + "\"",
                  "Malformed requests to the operator API, by route")
      .Inc();
  return JsonError(400, message);
}

HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return JsonError(404, s.message());
    case StatusCode::kInvalidArgument:
      return JsonError(400, s.message());
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return JsonError(409, s.message());
    default:
      return JsonError(503, s.message());
  }
}

// "a=1&b=x" -> value of `key`, nullopt when absent (no percent-decoding:
// the values are ids and numbers, checked by the callers).
std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string_view kv =
        query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key)
      return std::string(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

bool ParseCount(const std::string& s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 18 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *out = std::min<int64_t>(std::stoll(s), max);
  return true;
}

std::optional<AlertState> ParseState(std::string_view s) {
  for (AlertState st : {AlertState::kOpen, AlertState::kPendingApproval, AlertState::kActed,
                        AlertState::kDismissed}) {
    if (AlertStateName(st) == s) return st;
  }
  return std::nullopt;
}

// The caller's token id ("fgt_<id>_<secret>" -> "<id>"): public, and what
// the audit log names as the actor.
std::string Actor(const HttpRequest& req) {
  std::string_view h = req.Header("Authorization");
  constexpr std::string_view kBearer = "Bearer fgt_";
  if (h.substr(0, kBearer.size()) != kBearer) return "api";
  h.remove_prefix(kBearer.size());
  std::string_view id = h.substr(0, h.find('_'));
  return IsValidIdentifier(IdKind::kToken, id) ? "api:" + std::string(id) : "api";
}

json AlertJson(const StoredAlert& a) {
  json j = json::parse(a.json, nullptr, false);
  if (!j.is_object()) j = json{{"id", a.id}};
  j["seq"] = a.seq;
  j["state"] = AlertStateName(a.state);
  j["actions_done"] = a.actions_done;
  j["actions_pending"] = a.actions_pending;
  json skipped = json::array();
  for (const auto& k : a.actions_skipped)
    skipped.push_back({{"action", k.action}, {"reason", k.reason}});
  j["actions_skipped"] = skipped;
  j["false_positive"] = a.false_positive;
  return j;
}

// Query or body filter -> AlertFilter; an error message when invalid.
std::optional<std::string> ReadFilter(const json& f, AlertFilter* out) {
  if (!f.is_object()) return "filter must be an object";
  for (const auto& [key, value] : f.items()) {
    if (!value.is_string()) return "filter." + key + " must be a string";
    const std::string v = value.get<std::string>();
    if (key == "rule" || key == "severity") {
      if (!IsValidIdentifier(IdKind::kToken, v)) return "filter." + key + " is not a token";
      (key == "rule" ? out->rule : out->severity) = v;
    } else if (key == "device") {
      if (!IsValidIdentifier(IdKind::kDeviceId, v)) return "filter.device is not a device id";
      out->device = v;
    } else if (key == "state") {
      auto st = ParseState(v);
      if (!st) return "filter.state must be open, pending_approval, acted or dismissed";
      out->state = *st;
    } else {
      return "unknown filter key '" + key + "' (rule, device, severity, state)";
    }
  }
  return std::nullopt;
}

class OperatorApi {
 public:
  explicit OperatorApi(OperatorApiContext c) : c_(std::move(c)) {}

  HttpResponse ListAlerts(const HttpRequest& req) {
    constexpr std::string_view kRoute = "alerts";
    AlertFilter f;
    for (const char* key : {"rule", "device", "severity", "state"}) {
      if (auto v = QueryParam(req.query, key); v && !v->empty()) {
        json one = {{key, *v}};
        if (auto err = ReadFilter(one, &f)) return BadRequest(kRoute, *err);
      }
    }
    int64_t limit = 100;
    if (auto v = QueryParam(req.query, "limit"); v && !ParseCount(*v, 10000, &limit)) {
      return BadRequest(kRoute, "limit must be a number");
    }
    auto since = QueryParam(req.query, "since");
    json out = json::array();
    if (!since) {  // newest first, as before cursors
      f.limit = static_cast<size_t>(limit);
      auto alerts = c_.alerts.ListAlerts(f);
      if (!alerts.ok()) return JsonError(503, alerts.status().message());
      for (const StoredAlert& a : *alerts) out.push_back(AlertJson(a));
      return HttpResponse::Json(200, json{{"alerts", out}}.dump() + "\n");
    }
    int64_t cursor = 0;
    if (!since->empty() && !ParseCount(*since, INT64_MAX / 2, &cursor)) {
      return BadRequest(kRoute, "since must be a cursor from an earlier answer's \"next\" (or 0)");
    }
    if (limit == 0) limit = 1;
    // Cursor order is insertion order (seq); filters thin a page, they never
    // move the cursor past an alert that was not looked at.
    auto alerts = c_.alerts.ListAlertsSince(cursor, static_cast<size_t>(limit));
    if (!alerts.ok()) return JsonError(503, alerts.status().message());
    int64_t next = cursor;
    for (const StoredAlert& a : *alerts) {
      next = std::max(next, a.seq);
      if (!f.rule.empty() && a.rule != f.rule) continue;
      if (!f.device.empty() && a.device != f.device) continue;
      if (!f.severity.empty() && a.severity != f.severity) continue;
      if (f.state && a.state != *f.state) continue;
      out.push_back(AlertJson(a));
    }
    return HttpResponse::Json(200,
                              json{{"alerts", out}, {"next", std::to_string(next)}}.dump() + "\n");
  }

  // POST /v1/alerts/{id}/approve|dismiss and /v1/alerts/approve|dismiss.
  HttpResponse Post(const HttpRequest& req) {
    constexpr std::string_view kRoute = "alerts_post";
    std::string_view rest =
        std::string_view(req.path).substr(std::string_view("/v1/alerts/").size());
    std::string id;
    std::string_view verb = rest;
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      id = std::string(rest.substr(0, slash));
      verb = rest.substr(slash + 1);
      if (!IsValidIdentifier(IdKind::kToken, id)) return BadRequest(kRoute, "not an alert id");
    }
    if (verb != "approve" && verb != "dismiss")
      return JsonError(404, "POST /v1/alerts/{id}/approve|dismiss");
    json body = json::object();
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, false);
      if (!body.is_object()) return BadRequest(kRoute, "body must be a JSON object");
    }
    std::string reason;
    bool false_positive = false;
    AlertFilter f;
    f.limit = 1000;
    bool has_filter = false;
    for (const auto& [key, value] : body.items()) {
      if (key == "reason") {
        if (!value.is_string() ||
            !IsValidIdentifier(IdKind::kText, value.get<std::string>(), 512)) {
          return BadRequest(kRoute, "reason must be text of at most 512 bytes");
        }
        reason = value.get<std::string>();
      } else if (key == "false_positive") {
        if (!value.is_boolean()) return BadRequest(kRoute, "false_positive must be true or false");
        false_positive = value.get<bool>();
      } else if (key == "filter" && id.empty()) {
        if (auto err = ReadFilter(value, &f)) return BadRequest(kRoute, *err);
        has_filter = true;
      } else if (key == "limit" && id.empty()) {
        if (!value.is_number_unsigned()) return BadRequest(kRoute, "limit must be a number");
        f.limit = std::min<size_t>(value.get<size_t>(), 10000);
      } else {
        return BadRequest(kRoute, "unknown key '" + key + "'");
      }
    }
    const bool approve = verb == "approve";
    if (approve && false_positive) return BadRequest(kRoute, "false_positive belongs to dismiss");
    std::vector<std::string> ids;
    if (id.empty()) {
      if (!has_filter || (f.rule.empty() && f.device.empty() && f.severity.empty() && !f.state)) {
        return BadRequest(
            kRoute, "a bulk request needs a non-empty \"filter\" (rule, device, severity, state)");
      }
      if (approve && !f.state) f.state = AlertState::kPendingApproval;
      auto alerts = c_.alerts.ListAlerts(f);
      if (!alerts.ok()) return JsonError(503, alerts.status().message());
      for (const StoredAlert& a : *alerts) ids.push_back(a.id);
    } else {
      ids.push_back(id);
    }
    const std::string verb_text =
        approve ? "api approve" : (false_positive ? "api dismiss false positive" : "api dismiss");
    const AuditContext audit{Actor(req), reason.empty() ? verb_text : reason};
    json results = json::array();
    size_t changed = 0;
    for (const std::string& alert_id : ids) {
      json r = {{"id", alert_id}};
      Status s;
      if (approve) {
        s = c_.responder.Approve(alert_id, audit);
        if (s.ok()) ++changed;
      } else if (false_positive) {
        auto report = c_.responder.DismissFalsePositive(alert_id, audit);
        s = report.status();
        if (report.ok()) {
          json steps = json::array();
          for (const auto& st : report->steps) {
            steps.push_back({{"action", st.action}, {"outcome", st.outcome}, {"note", st.note}});
          }
          r["undo"] = steps;
          r["already_undone"] = report->already_undone;
          if (!report->already_undone) ++changed;
        }
      } else {
        s = c_.responder.Dismiss(alert_id, audit);
        if (s.ok()) ++changed;
      }
      if (!s.ok()) {
        if (!id.empty()) return FromStatus(s);
        r["error"] = s.message();
        results.push_back(std::move(r));
        continue;
      }
      if (auto a = c_.alerts.GetAlert(alert_id); a.ok()) {
        json aj = AlertJson(*a);
        for (const char* k : {"state", "actions_done", "actions_skipped", "false_positive"})
          r[k] = aj[k];
      }
      results.push_back(std::move(r));
    }
    if (changed > 0 && c_.sync) c_.sync();  // this node allows, releases and terminates now
    if (!id.empty()) return HttpResponse::Json(200, results[0].dump() + "\n");
    return HttpResponse::Json(
        200,
        json{{"matched", ids.size()}, {"changed", changed}, {"alerts", results}}.dump() + "\n");
  }

  // GET /v1/devices/{id}/timeline
  HttpResponse Timeline(const HttpRequest& req) {
    constexpr std::string_view kRoute = "timeline";
    std::string_view rest =
        std::string_view(req.path).substr(std::string_view("/v1/devices/").size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || rest.substr(slash + 1) != "timeline") {
      return JsonError(404, "GET /v1/devices/{id}/timeline");
    }
    const std::string device(rest.substr(0, slash));
    if (!IsValidIdentifier(IdKind::kDeviceId, device)) return BadRequest(kRoute, "not a device id");
    auto d = c_.devices.GetDevice(device);
    if (!d.ok()) return FromStatus(d.status());
    std::vector<std::pair<UnixMillis, json>> entries;
    auto add = [&](UnixMillis ts, json e) {
      e["ts"] = FormatRfc3339(ts);
      entries.emplace_back(ts, std::move(e));
    };
    auto certs = c_.certs.ListCertificates(device);
    if (!certs.ok()) return JsonError(503, certs.status().message());
    for (const Certificate& c : *certs) {
      add(c.issued_ms, {{"kind", "certificate"},
                        {"event", "issued"},
                        {"serial", c.serial},
                        {"cert_fp", c.cert_fp}});
      if (c.status != CertStatus::kValid) {
        add(c.revoked_ms, {{"kind", "certificate"},
                           {"event", c.status == CertStatus::kHold ? "held" : "revoked"},
                           {"serial", c.serial},
                           {"reason", RevocationReasonName(c.reason)}});
      }
    }
    AlertFilter af;
    af.device = device;
    af.limit = 1000;
    auto alerts = c_.alerts.ListAlerts(af);
    if (!alerts.ok()) return JsonError(503, alerts.status().message());
    for (const StoredAlert& a : *alerts) {
      json e = AlertJson(a);
      e["kind"] = "alert";
      e["alert_ts"] = e.value("ts", "");
      add(a.ts_ms, std::move(e));
    }
    // Actions and operator changes: the audit log of the device and of its block.
    for (const std::string& subject : {device, "device:" + device}) {
      auto audit = c_.audit.ListAudit(AuditFilter{subject, 1000});
      if (!audit.ok()) return JsonError(503, audit.status().message());
      for (const AuditEntry& e : *audit) {
        json detail = e.detail.empty() ? json::object() : json::parse(e.detail, nullptr, false);
        add(e.ts_ms, {{"kind", "action"},
                      {"action", e.action},
                      {"actor", e.actor},
                      {"reason", e.reason},
                      {"detail", detail.is_discarded() ? json(e.detail) : detail}});
      }
    }
    SessionsFromDecisionLog(device, add);
    if (d->site) {
      add(d->created_ms, {{"kind", "location"},
                          {"source", "registry"},
                          {"lat", d->site->lat},
                          {"lon", d->site->lon},
                          {"radius_m", d->site->radius_m}});
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    json out = json::array();
    for (auto& [ts, e] : entries) out.push_back(std::move(e));
    return HttpResponse::Json(
        200, json{{"device", device}, {"status", DeviceStatusName(d->status)}, {"timeline", out}}
                     .dump() +
                 "\n");
  }

 private:
  // Sessions as admission decided them (DIR/log/admission.jsonl, the current
  // file; the newest 500 decisions of the device).
  template <typename Add>
  void SessionsFromDecisionLog(const std::string& device, Add& add) {
    if (c_.decision_log_path.empty()) return;
    std::ifstream in(c_.decision_log_path);
    std::deque<json> last;
    std::string line;
    const std::string needle = "\"device\":" + json(device).dump();
    while (std::getline(in, line)) {
      if (line.find(needle) == std::string::npos) continue;
      json j = json::parse(line, nullptr, false);
      if (!j.is_object() || j.value("device", "") != device) continue;
      last.push_back(std::move(j));
      if (last.size() > 500) last.pop_front();
    }
    for (json& j : last) {
      auto ts = ParseRfc3339(j.value("ts", ""));
      if (!ts.ok()) continue;
      json e = {{"kind", "session"}};
      for (const char* k : {"session", "decision", "reasons", "src_ip", "endpoint", "segw"}) {
        if (j.contains(k)) e[k] = j[k];
      }
      add(*ts, std::move(e));
    }
  }

  OperatorApiContext c_;
};

// Coordinates as people read them: 6 decimals (~0.1 m), not the float's
// 37.513648986816406.
double Coord(double v) { return std::round(v * 1e6) / 1e6; }

json BodyObject(const HttpRequest& req) {
  if (req.body.empty()) return json::object();
  json body = json::parse(req.body, nullptr, false);
  return body.is_object() ? body : json();
}

// "%41b+c" -> "Ab c"; nullopt on a broken escape.
std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      if (!std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
        return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

bool ParseCoordinate(const std::string& s, double lo, double hi, double* out) {
  if (s.empty() || s.size() > 24) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

// The console's reads and changes (api_operator.h).
class ConsoleApi {
 public:
  explicit ConsoleApi(OperatorApiContext c) : c_(std::move(c)) {}

  HttpResponse WhoAmI(const HttpRequest& req) {
    if (c_.tokens == nullptr) return JsonError(503, "no token store");
    std::string_view h = req.Header("Authorization");
    h.remove_prefix(std::min(h.size(), std::string_view("Bearer ").size()));
    auto found = c_.tokens->FindApiTokenByHash(HashApiToken(h));
    if (!found.ok()) return JsonError(503, found.status().message());
    if (!found->has_value()) return JsonError(401, "unknown token");
    const ApiToken& t = **found;
    return HttpResponse::Json(
        200, json{{"token", t.id}, {"role", ApiRoleName(t.role)}, {"label", t.label}}.dump() + "\n");
  }

  // GET /v1/devices: one row per device with what the fleet view shows.
  HttpResponse Devices(const HttpRequest& req) {
    constexpr std::string_view kRoute = "devices";
    DeviceFilter f;
    if (auto v = QueryParam(req.query, "status"); v && !v->empty()) {
      auto st = ParseDeviceStatus(*v);
      if (!st.ok()) return BadRequest(kRoute, st.status().message());
      f.status = *st;
    }
    std::string q;
    if (auto v = QueryParam(req.query, "q"); v && !v->empty()) {
      auto d = PercentDecode(*v);
      if (!d || d->size() > 64) return BadRequest(kRoute, "q must be part of a device id");
      q = *d;
    }
    const bool dormant_only = QueryParam(req.query, "dormant").value_or("") == "1";
    int64_t expiring_days = -1;
    if (auto v = QueryParam(req.query, "expiring_days");
        v && !v->empty() && !ParseCount(*v, 3650, &expiring_days)) {
      return BadRequest(kRoute, "expiring_days must be a number");
    }
    int64_t limit = 500;
    if (auto v = QueryParam(req.query, "limit"); v && !ParseCount(*v, 5000, &limit)) {
      return BadRequest(kRoute, "limit must be a number");
    }
    auto devices = c_.devices.ListDevices(f);
    if (!devices.ok()) return JsonError(503, devices.status().message());
    auto certs = c_.certs.ListCertificates(std::nullopt);
    if (!certs.ok()) return JsonError(503, certs.status().message());
    // The newest certificate of each device: the one whose expiry matters.
    std::unordered_map<std::string, const Certificate*> newest;
    for (const Certificate& cert : *certs) {
      const Certificate*& n = newest[cert.device];
      if (n == nullptr || cert.issued_ms > n->issued_ms) n = &cert;
    }
    const UnixMillis now = NowMillis();
    const UnixMillis dormant_ms = static_cast<UnixMillis>(c_.dormancy_days) * 86400 * 1000;
    json out = json::array();
    size_t matched = 0;
    for (const Device& d : *devices) {
      if (!q.empty() && d.id.find(q) == std::string::npos) continue;
      // Dormant as the sweep judges it: active, and not seen for dormancy_days
      // (a device never seen counts from its registration).
      const UnixMillis seen = d.last_seen_ms != 0 ? d.last_seen_ms : d.created_ms;
      const bool dormant = c_.dormancy_days > 0 && d.status == DeviceStatus::kActive &&
                           now - seen > dormant_ms;
      if (dormant_only && !dormant) continue;
      const Certificate* cert = newest.count(d.id) ? newest[d.id] : nullptr;
      if (expiring_days >= 0 &&
          (cert == nullptr || cert->status != CertStatus::kValid ||
           cert->not_after_ms - now > expiring_days * 86400 * 1000)) {
        continue;
      }
      if (++matched > static_cast<size_t>(limit)) continue;
      json row = {{"id", d.id},
                  {"status", DeviceStatusName(d.status)},
                  {"mode", AccessModeName(d.mode)},
                  {"owner", d.owner},
                  {"last_seen", d.last_seen_ms ? json(FormatRfc3339(d.last_seen_ms)) : json()},
                  {"dormant", dormant}};
      if (cert != nullptr) {
        row["certificate"] = {{"serial", cert->serial},
                              {"status", CertStatusName(cert->status)},
                              {"not_after", FormatRfc3339(cert->not_after_ms)}};
      } else {
        row["certificate"] = nullptr;
      }
      if (d.site) {
        row["site"] = {
            {"lat", Coord(d.site->lat)}, {"lon", Coord(d.site->lon)}, {"radius_m", d.site->radius_m}};
      }
      out.push_back(std::move(row));
    }
    return HttpResponse::Json(200, json{{"devices", out},
                                        {"matched", matched},
                                        {"dormancy_days", c_.dormancy_days}}
                                           .dump() +
                                       "\n");
  }

  // POST /v1/devices/status: a lifecycle change for many devices; each one
  // succeeds or fails on its own (a refused transition is reported, the
  // others still happen).
  HttpResponse SetStatus(const HttpRequest& req) {
    constexpr std::string_view kRoute = "devices_status";
    if (req.path != "/v1/devices/status") return JsonError(404, "POST /v1/devices/status");
    json body = BodyObject(req);
    if (!body.is_object()) return BadRequest(kRoute, "body must be a JSON object");
    for (const auto& [key, value] : body.items()) {
      (void)value;
      if (key != "devices" && key != "status" && key != "reason") {
        return BadRequest(kRoute, "unknown key '" + key + "' (devices, status, reason)");
      }
    }
    if (!body.contains("devices") || !body["devices"].is_array() || body["devices"].empty() ||
        body["devices"].size() > 1000) {
      return BadRequest(kRoute, "devices must be a list of 1 to 1000 device ids");
    }
    std::vector<std::string> ids;
    for (const json& id : body["devices"]) {
      if (!id.is_string() || !IsValidIdentifier(IdKind::kDeviceId, id.get<std::string>())) {
        return BadRequest(kRoute, "devices must be a list of device ids");
      }
      ids.push_back(id.get<std::string>());
    }
    if (!body.contains("status") || !body["status"].is_string()) {
      return BadRequest(kRoute, "status must be active, suspended or decommissioned");
    }
    auto to = ParseDeviceStatus(body["status"].get<std::string>());
    if (!to.ok() || *to == DeviceStatus::kProvisioned) {
      return BadRequest(kRoute, "status must be active, suspended or decommissioned");
    }
    std::string reason = "console: set status";
    if (body.contains("reason")) {
      if (!body["reason"].is_string() ||
          !IsValidIdentifier(IdKind::kText, body["reason"].get<std::string>(), 512)) {
        return BadRequest(kRoute, "reason must be text of at most 512 bytes");
      }
      reason = body["reason"].get<std::string>();
    }
    const AuditContext audit{Actor(req), reason};
    json results = json::array();
    size_t changed = 0;
    for (const std::string& id : ids) {
      auto t = c_.devices.SetDeviceStatus(id, *to, audit);
      if (t.ok()) {
        ++changed;
        results.push_back({{"id", id}, {"from", DeviceStatusName(t->from)}, {"to", DeviceStatusName(t->to)}});
      } else {
        results.push_back({{"id", id}, {"error", t.status().message()}});
      }
    }
    if (changed > 0 && c_.sync) c_.sync();  // admission and OCSP see it now
    return HttpResponse::Json(
        200, json{{"changed", changed}, {"devices", results}}.dump() + "\n");
  }

  HttpResponse Endpoints(const HttpRequest&) {
    if (c_.endpoints == nullptr) return JsonError(503, "no endpoint registry");
    auto list = c_.endpoints->ListEndpoints();
    if (!list.ok()) return JsonError(503, list.status().message());
    json out = json::array();
    for (const Endpoint& e : *list) {
      out.push_back({{"address", e.address},
                     {"status", EndpointStatusName(e.status)},
                     {"created", FormatRfc3339(e.created_ms)},
                     {"updated", FormatRfc3339(e.updated_ms)}});
    }
    return HttpResponse::Json(200, json{{"endpoints", out}}.dump() + "\n");
  }

  // POST /v1/endpoints/rotate {"from","to"} (as `endpoint rotate`: `to` is
  // added when unknown, `from` drains) and /v1/endpoints/retire {"address"}.
  HttpResponse EndpointChange(const HttpRequest& req) {
    constexpr std::string_view kRoute = "endpoints_post";
    if (c_.endpoints == nullptr) return JsonError(503, "no endpoint registry");
    json body = BodyObject(req);
    if (!body.is_object()) return BadRequest(kRoute, "body must be a JSON object");
    auto field = [&](const char* k) -> std::optional<std::string> {
      if (!body.contains(k) || !body[k].is_string() ||
          !IsValidIdentifier(IdKind::kEndpoint, body[k].get<std::string>())) {
        return std::nullopt;
      }
      return body[k].get<std::string>();
    };
    auto list = c_.endpoints->ListEndpoints();
    if (!list.ok()) return JsonError(503, list.status().message());
    auto known = [&](const std::string& a) {
      return std::any_of(list->begin(), list->end(), [&](const Endpoint& e) { return e.address == a; });
    };
    Status s;
    if (req.path == "/v1/endpoints/rotate") {
      auto from = field("from");
      auto to = field("to");
      if (!from || !to || *from == *to) {
        return BadRequest(kRoute, "from and to must be two different endpoints (host:port)");
      }
      if (!known(*from)) return JsonError(404, "no endpoint " + *from);
      const AuditContext audit{Actor(req), "rotate " + *from + " -> " + *to};
      if (!known(*to)) {
        Endpoint e;
        e.address = *to;
        e.status = EndpointStatus::kActive;
        e.created_ms = e.updated_ms = NowMillis();
        s = c_.endpoints->AddEndpoint(e, audit);
      }
      if (s.ok()) s = c_.endpoints->SetEndpointStatus(*from, EndpointStatus::kDraining, audit);
    } else if (req.path == "/v1/endpoints/retire") {
      auto address = field("address");
      if (!address) return BadRequest(kRoute, "address must be an endpoint (host:port)");
      if (!known(*address)) return JsonError(404, "no endpoint " + *address);
      s = c_.endpoints->SetEndpointStatus(*address, EndpointStatus::kRetired,
                                          AuditContext{Actor(req), "endpoint retire"});
    } else {
      return JsonError(404, "POST /v1/endpoints/rotate | /v1/endpoints/retire");
    }
    if (!s.ok()) return FromStatus(s);
    if (c_.sync) c_.sync();
    return Endpoints(req);
  }

  // GET /v1/enrolment: bootstrap tokens (their state; the secret is never
  // stored, so never shown) and devices registered but not yet enrolled.
  HttpResponse Enrolment(const HttpRequest&) {
    if (c_.enrolment == nullptr) return JsonError(503, "no enrolment store");
    auto tokens = c_.enrolment->ListBootstrapTokens(std::nullopt);
    if (!tokens.ok()) return JsonError(503, tokens.status().message());
    const UnixMillis now = NowMillis();
    json out = json::array();
    for (const BootstrapToken& t : *tokens) {
      const char* state = t.used_ms ? "used"
                          : t.revoked_ms ? "revoked"
                          : t.expires_ms <= now ? "expired"
                                                : "unused";
      out.push_back({{"ref", t.ref},
                     {"device", t.device},
                     {"state", state},
                     {"created", FormatRfc3339(t.created_ms)},
                     {"expires", FormatRfc3339(t.expires_ms)}});
    }
    DeviceFilter f;
    f.status = DeviceStatus::kProvisioned;
    f.limit = 1000;
    auto pending = c_.devices.ListDevices(f);
    if (!pending.ok()) return JsonError(503, pending.status().message());
    json waiting = json::array();
    for (const Device& d : *pending) {
      waiting.push_back({{"id", d.id}, {"registered", FormatRfc3339(d.created_ms)}});
    }
    return HttpResponse::Json(200, json{{"tokens", out}, {"awaiting_enrolment", waiting}}.dump() + "\n");
  }

  HttpResponse RevokeToken(const HttpRequest& req) {
    constexpr std::string_view kRoute = "enrolment_revoke";
    if (c_.enrolment == nullptr) return JsonError(503, "no enrolment store");
    std::string_view rest =
        std::string_view(req.path).substr(std::string_view("/v1/enrolment/tokens/").size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || rest.substr(slash + 1) != "revoke") {
      return JsonError(404, "POST /v1/enrolment/tokens/{ref}/revoke");
    }
    const std::string ref(rest.substr(0, slash));
    if (!IsValidIdentifier(IdKind::kToken, ref)) return BadRequest(kRoute, "not a token reference");
    Status s = c_.enrolment->RevokeBootstrapToken(ref, AuditContext{Actor(req), "console: revoke token"});
    if (!s.ok()) return FromStatus(s);
    return HttpResponse::Json(200, json{{"ref", ref}, {"state", "revoked"}}.dump() + "\n");
  }

  HttpResponse Audit(const HttpRequest& req) {
    constexpr std::string_view kRoute = "audit";
    AuditFilter f;
    f.limit = 200;
    int64_t limit = 200;
    if (auto v = QueryParam(req.query, "limit"); v && !ParseCount(*v, 5000, &limit)) {
      return BadRequest(kRoute, "limit must be a number");
    }
    f.limit = static_cast<size_t>(std::max<int64_t>(limit, 1));
    if (auto v = QueryParam(req.query, "subject"); v && !v->empty()) {
      auto d = PercentDecode(*v);
      if (!d || !IsValidIdentifier(IdKind::kToken, *d)) return BadRequest(kRoute, "subject is not an id");
      f.subject = *d;
    }
    auto entries = c_.audit.ListAudit(f);
    if (!entries.ok()) return JsonError(503, entries.status().message());
    json out = json::array();
    for (const AuditEntry& e : *entries) {
      json detail = e.detail.empty() ? json::object() : json::parse(e.detail, nullptr, false);
      out.push_back({{"seq", e.seq},
                     {"ts", FormatRfc3339(e.ts_ms)},
                     {"actor", e.actor},
                     {"action", e.action},
                     {"subject", e.subject},
                     {"reason", e.reason},
                     {"detail", detail.is_discarded() ? json(e.detail) : detail}});
    }
    return HttpResponse::Json(200, json{{"audit", out}}.dump() + "\n");
  }

  // GET /v1/cells: the macro cells around a point, from the node's cell
  // database (re-read when the file changes): the device map's landmarks.
  HttpResponse Cells(const HttpRequest& req) {
    constexpr std::string_view kRoute = "cells";
    double lat = 0, lon = 0, radius = 3000;
    if (!ParseCoordinate(QueryParam(req.query, "lat").value_or(""), -90, 90, &lat) ||
        !ParseCoordinate(QueryParam(req.query, "lon").value_or(""), -180, 180, &lon)) {
      return BadRequest(kRoute, "lat and lon must be decimal degrees");
    }
    if (auto v = QueryParam(req.query, "radius_m");
        v && !ParseCoordinate(*v, 1, 50000, &radius)) {
      return BadRequest(kRoute, "radius_m must be between 1 and 50000");
    }
    std::shared_ptr<const CellDb> db = LoadCells();
    json out = json::array();
    if (db) {
      // At most 2,000, spread over the whole area (every k-th), not the
      // first 2,000 of the grid's order (which would leave half the map bare).
      const std::vector<uint32_t> near = db->Near(lat, lon, radius);
      const size_t stride = near.size() / 2000 + 1;
      for (size_t k = 0; k < near.size(); k += stride) {
        const Cell& cell = db->cells()[near[k]];
        out.push_back({{"lat", Coord(cell.lat)},
                       {"lon", Coord(cell.lon)},
                       {"radio", cell.radio},
                       {"pci", cell.pci},
                       {"range_m", cell.range_m}});
      }
    }
    return HttpResponse::Json(200, json{{"cells", out}, {"loaded", db != nullptr}}.dump() + "\n");
  }

 private:
  std::shared_ptr<const CellDb> LoadCells() {
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(c_.cells_path, ec);
    std::lock_guard<std::mutex> lock(cells_mutex_);
    if (ec) return cells_;  // no file: whatever was loaded before (maybe nothing)
    if (cells_ && mtime == cells_mtime_) return cells_;
    auto db = CellDb::Load(c_.cells_path);
    if (!db.ok()) return cells_;  // a broken file keeps the old one, as SIGHUP does
    cells_ = std::make_shared<const CellDb>(std::move(db).value());
    cells_mtime_ = mtime;
    return cells_;
  }

  OperatorApiContext c_;
  std::mutex cells_mutex_;
  std::shared_ptr<const CellDb> cells_;  // guarded by cells_mutex_
  std::filesystem::file_time_type cells_mtime_;
};

}  // namespace

void RegisterOperatorRoutes(ApiRoutes& api_routes, OperatorApiContext context) {
  auto api = std::make_shared<OperatorApi>(context);
  // Reads: operator and viewer (the console's read-only users); changes:
  // operator; admin passes everywhere (api_auth.h).
  const std::vector<ApiRole> read = {ApiRole::kOperator, ApiRole::kViewer};
  api_routes.Route("GET", "/v1/alerts", read,
                   [api](const HttpRequest& req) { return api->ListAlerts(req); });
  api_routes.Route("POST", "/v1/alerts/", {ApiRole::kOperator},
                   [api](const HttpRequest& req) { return api->Post(req); });
  api_routes.Route("GET", "/v1/devices/", read,
                   [api](const HttpRequest& req) { return api->Timeline(req); });
  auto con = std::make_shared<ConsoleApi>(context);
  api_routes.Route("GET", "/v1/whoami",
                   {ApiRole::kOperator, ApiRole::kViewer, ApiRole::kSegw, ApiRole::kIngest,
                    ApiRole::kPayments},
                   [con](const HttpRequest& req) { return con->WhoAmI(req); });
  api_routes.Route("GET", "/v1/devices", read,
                   [con](const HttpRequest& req) { return con->Devices(req); });
  api_routes.Route("POST", "/v1/devices/", {ApiRole::kOperator},
                   [con](const HttpRequest& req) { return con->SetStatus(req); });
  api_routes.Route("GET", "/v1/endpoints", read,
                   [con](const HttpRequest& req) { return con->Endpoints(req); });
  api_routes.Route("POST", "/v1/endpoints/", {ApiRole::kAdmin},
                   [con](const HttpRequest& req) { return con->EndpointChange(req); });
  api_routes.Route("GET", "/v1/enrolment", read,
                   [con](const HttpRequest& req) { return con->Enrolment(req); });
  api_routes.Route("POST", "/v1/enrolment/tokens/", {ApiRole::kOperator},
                   [con](const HttpRequest& req) { return con->RevokeToken(req); });
  api_routes.Route("GET", "/v1/audit", read,
                   [con](const HttpRequest& req) { return con->Audit(req); });
  api_routes.Route("GET", "/v1/cells", read,
                   [con](const HttpRequest& req) { return con->Cells(req); });
}

}  // namespace fg
