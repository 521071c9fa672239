#pragma once

// Network events (DESIGN.md §3.4) as the detectors see them: decoded once,
// subscriber identities already pseudonymized. An Event is reused from line
// to line by the decoder (Clear() keeps string capacity), so the hot path
// does not allocate.

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"

namespace fg::detect {

enum class EventType : uint8_t {
  kSessionUp,
  kSessionDown,
  kLocationReport,
  kRemScan,
  kUeAttach,
  kUeDetach,
  kSmsDeliver,
  kPaymentAuth,
  kMeasReport,
  kDeviceStatus,
  kEndpointStatus,
  // femtoguard tap (docs/tap.md): an eNB/gNB named itself over S1/NG.
  // `device` is the femtocell whose registered radio identity it claimed
  // (or "enb-<plmn>-<id>" when none matches), `src_ip` the SCTP source.
  kS1Setup,
  kNgSetup,
  kLast = kNgSetup,
};
std::string_view EventTypeName(EventType t);  // "session.up", ...
bool ParseEventType(std::string_view s, EventType* out);

// A pseudonymized subscriber identity: the 12 bytes of HMAC that the text
// form "<kind>:<24 hex>" (common/pseudonym.h) carries. All-zero = absent.
struct SubjectId {
  std::array<uint8_t, 12> bytes{};

  // Compared as two words (8 + 4 bytes), inline: the engine compares ids
  // in every probe and list scan, and std::array's operators call memcmp.
  // operator< is the bytes' lexicographic order (big-endian words), as
  // std::array's was, so sorted lists keep their order.
  bool empty() const { return (Head() | Tail()) == 0; }
  bool operator==(const SubjectId& o) const { return Head() == o.Head() && Tail() == o.Tail(); }
  bool operator<(const SubjectId& o) const {
    static_assert(std::endian::native == std::endian::little, "byte order: SubjectId::operator<");
    uint64_t a = __builtin_bswap64(Head()), b = __builtin_bswap64(o.Head());
    if (a != b) return a < b;
    return __builtin_bswap32(Tail()) < __builtin_bswap32(o.Tail());
  }
  // "imsi:<24 hex>" etc.; identical to Pseudonymizer::Pseudonymize's output.
  std::string ToString(std::string_view kind) const;
  // Parses "<kind>:<24 hex>"; false when malformed.
  static bool FromString(std::string_view text, SubjectId* out);

 private:
  uint64_t Head() const {
    uint64_t v;
    std::memcpy(&v, bytes.data(), 8);
    return v;
  }
  uint32_t Tail() const {
    uint32_t v;
    std::memcpy(&v, bytes.data() + 8, 4);
    return v;
  }
};
struct SubjectIdHash {
  size_t operator()(const SubjectId& s) const {
    uint64_t a;
    std::memcpy(&a, s.bytes.data(), 8);
    return static_cast<size_t>(a);
  }
};

enum class SmsClass : uint8_t { kOtp, kArs, kP2p, kBulk, kOther };
enum class PayChannel : uint8_t { kSmsOtp, kArs, kNone, kOther };
std::string_view SmsClassName(SmsClass c);
std::string_view PayChannelName(PayChannel c);

struct RemCellSeen {  // rem.scan cells[]
  int mcc = 0;
  int mnc = 0;
  uint32_t tac = 0;
  uint64_t eci = 0;  // 0 = absent
  int pci = -1;
  int earfcn = -1;
  float rsrp = 0;
};

struct Neighbor {  // meas.report neighbors[]
  int pci = -1;
  int earfcn = -1;
  uint64_t eci = 0;  // 0 = absent
  float rsrp = 0;
};

struct Event {
  EventType type = EventType::kSessionUp;
  UnixMillis ts_ms = 0;
  uint64_t line = 0;  // 1-based source line (replay) or sequence number (live)

  // Femtocell side.
  std::string device;
  std::string session;
  std::string cert_fp;
  std::string src_ip;
  std::string endpoint;
  std::string segw;
  std::string status;  // device.status / endpoint.status

  // location.report (has_fix) and meas.report (lat/lon of the UE).
  bool has_fix = false;
  double lat = 0;
  double lon = 0;
  double acc_m = 0;

  std::vector<RemCellSeen> cells;  // rem.scan

  // Subscriber side, pseudonymized at decode time.
  SubjectId imsi;
  SubjectId imei;
  SubjectId msisdn;

  // sms.deliver. `sender` is a provider name or short code; a p2p sender
  // that is a subscriber number is pseudonymized into sender_msisdn and
  // `sender` is left empty.
  std::string sender;
  SubjectId sender_msisdn;
  SmsClass sms_class = SmsClass::kOther;

  // payment.auth
  std::string merchant;
  std::string currency;
  double amount = 0;
  PayChannel channel = PayChannel::kOther;

  // meas.report
  uint64_t serving_eci = 0;
  std::vector<Neighbor> neighbors;

  // Resets every field, keeping capacity.
  void Clear();
};

}  // namespace fg::detect
