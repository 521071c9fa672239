#pragma once

// The operator's side of the HTTP API (issue 14; docs/operations.md "Undo
// and the alert workflow"), role operator (or admin):
//   GET  /v1/alerts?limit=N&since=CURSOR[&rule=&device=&state=&severity=]
//   GET  /v1/devices/{id}/timeline
//   POST /v1/alerts/{id}/approve | /v1/alerts/{id}/dismiss
//   POST /v1/alerts/approve | /v1/alerts/dismiss        (bulk, by filter)
// A dismissal with {"false_positive": true} undoes the alert's actions
// (response::Responder::DismissFalsePositive). After a change, `sync` puts
// it into effect on this node at once (the node's change-feed Sync).

#include <functional>

#include "response/response.h"
#include "node/api_auth.h"
#include "node/api_routes.h"
#include "http/http.h"
#include "store/store.h"

namespace fg {

struct OperatorApiContext {
  // The store roles the operator API reads: alerts, a device's record and
  // certificates, and its audit trail (the timeline).
  ResponseLedger& alerts;
  DeviceRegistry& devices;
  CertificateLedger& certs;
  AuditLog& audit;
  ApiAuth& auth;
  response::Responder& responder;
  std::string decision_log_path;  // admission decisions: the timeline's sessions; may be empty
  std::function<void()> sync;     // may be empty
};

// On `api` (api_routes.h): served on the TLS listener.
void RegisterOperatorRoutes(ApiRoutes& api, OperatorApiContext context);

}  // namespace fg
