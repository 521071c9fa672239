#pragma once

// The node's change-feed subscribers for a SeGW attached over vici
// (node/change_follower.h). Small adapters: the state they act on is
// charon's, not ours.

#include <memory>

#include "admission/admission.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg {

namespace segw {
class ViciSegw;
}

// A device revoked, suspended, decommissioned or blocked loses its live SeGW
// sessions at once; so does the device of an alert whose actions include
// terminate (approved from the CLI, which has no SeGW).
std::unique_ptr<ChangeSubscriber> MakeSegwCutOff(DeviceRegistry& devices, CertificateLedger& certs,
                                                 ResponseLedger& responses, admission::SessionTerminator& segw);

// charon caches OCSP answers until nextUpdate: a reactivated device would
// stay refused, a suspended one admitted on a cached "good". A page with a
// device or certificate change flushes that cache.
std::unique_ptr<ChangeSubscriber> MakeSegwOcspFlush(segw::ViciSegw& vici);

}  // namespace fg
