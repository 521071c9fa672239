#pragma once

// strongSwan SeGW adapter over vici (strongSwan's versioned interface),
// spoken directly on its unix socket (no libvici is packaged in Debian).
// It follows ike-updown / child-updown, turns them into session up/down,
// asks the admission Gate on each new IKE_SA and terminates a denied one; it
// also terminates live sessions on demand (revocation, suspension, block).
// It reconnects when charon restarts.
//
// Thread-safety: Start/Stop from one thread; Terminate* from any thread.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "admission/admission.h"
#include "common/status.h"
#include "common/time.h"

namespace fg::segw {

// What the adapter saw, for the detection bus (session.up / session.down).
struct SessionEvent {
  bool up = false;
  std::string device;    // from the peer's IKE identity (CN of its certificate)
  std::string session;   // IKE_SA unique id, as "<segw>/<uniqueid>"
  std::string src_ip;    // remote-host
  std::string endpoint;  // local-host (the SeGW address the device connected to)
  std::string segw;
  std::string cert_fp;   // empty when charon does not tell
  UnixMillis ts_ms = 0;
};

struct ViciOptions {
  std::string socket_path;    // charon's vici socket
  std::string segw_id = "segw";
  int reconnect_ms = 500;     // retry period while charon is away
};

// "vici:///run/charon.vici" -> {socket_path = "/run/charon.vici"}.
Result<ViciOptions> ParseSegwUri(std::string_view uri);

class ViciSegw : public admission::SessionTerminator {
 public:
  using EventSink = std::function<void(const SessionEvent&)>;

  // `gate` outlives the adapter. `sink` may be empty.
  ViciSegw(ViciOptions options, admission::Gate& gate, EventSink sink);
  ~ViciSegw() override;

  void Start();  // connects (and keeps reconnecting) on a thread of its own
  void Stop();
  bool connected() const;

  int TerminateDevice(std::string_view device, std::string_view reason) override;
  bool TerminateSession(std::string_view session, std::string_view reason) override;

  // Drops charon's cached OCSP responses (vici flush-certs), so the next
  // authentication of any device asks femtoguard's responder again. charon
  // otherwise reuses a cached answer until its nextUpdate: a reactivated
  // device stays refused ("certificateHold"), a freshly suspended one is
  // let in ("good"). Call after every change of a device's or certificate's
  // status (with TerminateDevice when the device may no longer be in).
  // Unavailable when charon is not connected. Any thread.
  Status FlushOcspCache();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fg::segw
