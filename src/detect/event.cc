#include "detect/event.h"

namespace fg::detect {
namespace {

constexpr std::string_view kEventTypeNames[] = {
    "session.up", "session.down", "location.report", "rem.scan",      "ue.attach",       "ue.detach",
    "sms.deliver", "payment.auth", "meas.report",    "device.status", "endpoint.status",
    "s1.setup",   "ng.setup",
};
static_assert(std::size(kEventTypeNames) == static_cast<size_t>(EventType::kLast) + 1);

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view EventTypeName(EventType t) {
  size_t i = static_cast<size_t>(t);
  return i < std::size(kEventTypeNames) ? kEventTypeNames[i] : std::string_view("?");
}

bool ParseEventType(std::string_view s, EventType* out) {
  for (size_t i = 0; i < std::size(kEventTypeNames); ++i) {
    if (kEventTypeNames[i] == s) {
      *out = static_cast<EventType>(i);
      return true;
    }
  }
  return false;
}

std::string SubjectId::ToString(std::string_view kind) const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(kind.size() + 1 + 2 * bytes.size());
  out.append(kind).push_back(':');
  for (uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool SubjectId::FromString(std::string_view text, SubjectId* out) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view hex = text.substr(colon + 1);
  if (hex.size() != 2 * out->bytes.size()) return false;
  SubjectId parsed;
  for (size_t i = 0; i < parsed.bytes.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    parsed.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *out = parsed;
  return true;
}

std::string_view SmsClassName(SmsClass c) {
  switch (c) {
    case SmsClass::kOtp: return "otp";
    case SmsClass::kArs: return "ars";
    case SmsClass::kP2p: return "p2p";
    case SmsClass::kBulk: return "bulk";
    case SmsClass::kOther: return "other";
  }
  return "other";
}

std::string_view PayChannelName(PayChannel c) {
  switch (c) {
    case PayChannel::kSmsOtp: return "sms_otp";
    case PayChannel::kArs: return "ars";
    case PayChannel::kNone: return "none";
    case PayChannel::kOther: return "other";
  }
  return "other";
}

void Event::Clear() {
  type = EventType::kSessionUp;
  ts_ms = 0;
  line = 0;
  device.clear();
  session.clear();
  cert_fp.clear();
  src_ip.clear();
  endpoint.clear();
  segw.clear();
  status.clear();
  has_fix = false;
  lat = lon = acc_m = 0;
  cells.clear();
  imsi = SubjectId{};
  imei = SubjectId{};
  msisdn = SubjectId{};
  sender.clear();
  sender_msisdn = SubjectId{};
  sms_class = SmsClass::kOther;
  merchant.clear();
  currency.clear();
  amount = 0;
  channel = PayChannel::kOther;
  serving_eci = 0;
  neighbors.clear();
}

}  // namespace fg::detect
