#pragma once

// The gate the node hands to SeGW adapters and to POST /v1/admission: the
// admission engine's decision, plus the detection feed.
//   - An admitted (allowed or quarantined) session becomes a session.up
//     event for detection; its end a session.down.
//   - A session denied for a reason that is also a detection rule (a clone,
//     an unknown or inactive identity, a shared certificate, a retired
//     endpoint, a foreign line) is flagged as an alert of that rule. The door
//     already refused it, so the alert only notifies; the rule's disruptive
//     actions (revoke, suspend, block) wait for an operator's approval:
//     a clone attempt must not take down the legitimate unit's session.
//     The alert is stored and notified by the responder's thread, not on the
//     request path: a burst of returning decommissioned units (4% of a
//     reconnect storm) made every SeGW request wait for alert writes.

#include <memory>

#include "admission/admission.h"
#include "admission/engine.h"
#include "node/live_detection.h"

namespace fg {

std::unique_ptr<admission::Gate> MakeNodeGate(admission::Engine& engine, LiveDetection& detection);

}  // namespace fg
