#include "node/api_operator.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <deque>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

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

}  // namespace

void RegisterOperatorRoutes(ApiRoutes& api_routes, OperatorApiContext context) {
  auto api = std::make_shared<OperatorApi>(context);
  api_routes.Route("GET", "/v1/alerts", {ApiRole::kOperator},
                   [api](const HttpRequest& req) { return api->ListAlerts(req); });
  api_routes.Route("POST", "/v1/alerts/", {ApiRole::kOperator},
                   [api](const HttpRequest& req) { return api->Post(req); });
  api_routes.Route("GET", "/v1/devices/", {ApiRole::kOperator},
                   [api](const HttpRequest& req) { return api->Timeline(req); });
}

}  // namespace fg
