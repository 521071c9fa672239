#pragma once

// femtoguard tap: S1AP (LTE, HeNB to HeNB-GW/MME) and NGAP (5G) turned into
// events of the documented schema (docs/formats.md, docs/tap.md).
//
// Wireshark's dissectors do the decoding: tshark runs as a child process
// with `-T ek` and a fixed list of `-e` fields, and this module reads its
// one-JSON-object-per-packet output. No ASN.1 PER is decoded here; only
// the few octet strings tshark shows as bytes (PLMN identity in BCD, the
// bit strings of the eNB and CSG ids) are turned into numbers.
//
// Subscriber identities (IMSI, IMEI) are pseudonymized here, in the tap
// process, before any line is written or sent: the raw value never leaves
// EventBuilder. Not thread-safe: one builder per packet stream.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/device.h"
#include "common/pseudonym.h"
#include "common/status.h"

namespace fg::tap {

// The tshark fields the builder reads (in `-e` order).
const std::vector<std::string>& TsharkFields();

// Which eNB/gNB is which femtocell: "<plmn>:<enb id>" (e.g. "50501:3585"),
// or "<plmn>:<enb id>#<csg id>" for a femtocell registered with a CSG id (a
// setup matches it only when its CSG-IdList holds that id) -> device id,
// from the registry's radio fields. Events of an unmapped
// node carry device "enb-<plmn>-<id>" ("gnb-..." for NG; "addr-<ip>" when
// its setup is not in the capture).
using DeviceMap = std::map<std::string, std::string>;

// Adds `d`'s radio identity (registry fields plmn, enb_id/gnb_id, csg_id) to
// `map`; a device without a PLMN and a node id adds nothing.
void AddToDeviceMap(const Device& d, DeviceMap* map);

struct TapStats {
  uint64_t packets = 0;        // S1AP/NGAP packets read from tshark
  uint64_t pdus = 0;           // procedure codes seen (a packet may bundle several)
  uint64_t events = 0;         // lines emitted
  uint64_t attaches_without_imsi = 0;  // attach/registration whose IMSI stayed hidden (GUTI, SUCI)
  uint64_t bad_lines = 0;      // tshark output lines that were not JSON objects
};

class EventBuilder {
 public:
  using Sink = std::function<Status(const std::string& line)>;
  EventBuilder(const Pseudonymizer& pseudonymizer, DeviceMap devices, Sink sink);
  ~EventBuilder();
  EventBuilder(const EventBuilder&) = delete;
  EventBuilder& operator=(const EventBuilder&) = delete;

  // One line of tshark `-T ek` output (index lines are skipped).
  Status OnEkLine(std::string_view line);
  // End of input: attaches still waiting for an identity are counted.
  Status Finish();

  const TapStats& stats() const { return stats_; }

 private:
  struct UeContext;
  struct Packet;
  Status OnPacket(const Packet& p);
  Status Emit(const std::string& line);
  std::string DeviceOf(const std::string& enb_addr) const;
  std::string ImsiPseudonym(std::string_view digits) const;

  const Pseudonymizer& pseudonymizer_;
  DeviceMap devices_;
  Sink sink_;
  TapStats stats_;
  // eNB/gNB transport address -> the device its setup named.
  std::map<std::string, std::string> node_of_addr_;
  // "<enb addr>|<ran ue id>" -> context.
  std::map<std::string, UeContext> contexts_;
};

struct TapOptions {
  std::string pcap;       // a capture file, or
  std::string interface;  // a live interface (needs capture privileges)
  std::string tshark = "tshark";
  std::vector<uint16_t> sctp_ports;  // extra ports to decode as S1AP (-d), beyond 36412/38412
  std::vector<std::string> preferences;  // tshark -o NAME:VALUE
};

// The tshark command line for `o`.
std::vector<std::string> TsharkArgv(const TapOptions& o);

// Runs tshark and feeds every line to `builder`. tshark's failure (a
// missing file, no permission on the interface) is an InvalidArgument or
// Unavailable with tshark's own message.
Status RunTshark(const TapOptions& o, EventBuilder& builder);

// "05:f5:10" or "05f510" (3 octets of TBCD) -> "50501"; empty on error.
std::string PlmnFromHex(std::string_view hex);

}  // namespace fg::tap
