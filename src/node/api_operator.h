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
//
// For the web console (issue 18; docs/console.md). Reads take a viewer
// token too; changes need operator (endpoints: admin):
//   GET  /v1/whoami                                   (any role) the caller's role
//   GET  /v1/devices?status=&q=&dormant=1&expiring_days=N&limit=N   the fleet
//   POST /v1/devices/status  {"devices":[..],"status":"suspended","reason":".."}
//   GET  /v1/endpoints;  POST /v1/endpoints/rotate {"from","to"} | /retire {"address"} (admin)
//   GET  /v1/enrolment      bootstrap tokens (never a secret) and devices awaiting enrolment
//   POST /v1/enrolment/tokens/{ref}/revoke
//   GET  /v1/audit?subject=&limit=N
//   GET  /v1/cells?lat=&lon=&radius_m=   macro cells near a point (the map)

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
  // The console's reads and changes (issue 18, docs/console.md); null: those
  // routes answer 503.
  EndpointRegistry* endpoints = nullptr;
  EnrolmentCredentials* enrolment = nullptr;
  int dormancy_days = 90;   // devices.dormancy_days: the fleet view's "dormant"
  std::string cells_path;   // the cell database (DIR/cells.csv): the device map's background
  ApiTokenStore* tokens = nullptr;  // GET /v1/whoami
};

// On `api` (api_routes.h): served on the TLS listener.
void RegisterOperatorRoutes(ApiRoutes& api, OperatorApiContext context);

}  // namespace fg
