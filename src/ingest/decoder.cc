#include "ingest/decoder.h"

#include <openssl/crypto.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/device.h"
#include "common/rem_cell.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"

namespace fg::ingest {
namespace {

using detect::Event;
using detect::EventType;
using detect::SubjectId;
namespace dom = simdjson::dom;

static_assert(EventDecoder::kPadding >= simdjson::SIMDJSON_PADDING);

// The top-level fields of DESIGN.md §3.4 (one bit each in a presence mask).
enum Field : uint32_t {
  kTs,
  kType,
  kDevice,
  kSession,
  kCertFp,
  kSrcIp,
  kEndpoint,
  kSegw,
  kStatus,
  kLat,
  kLon,
  kAccM,
  kCells,
  kImsi,
  kImei,
  kMsisdn,
  kSender,
  kClass,
  kMerchant,
  kCurrency,
  kAmount,
  kChannel,
  kServingEci,
  kNeighbors,
  kFieldCount,
  kUnknownField = kFieldCount,
};

constexpr std::string_view kFieldNames[] = {
    "ts",       "type",     "device", "session", "cert_fp", "src_ip",  "endpoint", "segw",
    "status",   "lat",      "lon",    "acc_m",   "cells",   "imsi",    "imei",     "msisdn",
    "sender",   "class",    "merchant", "currency", "amount", "channel", "serving_eci", "neighbors",
};
static_assert(std::size(kFieldNames) == kFieldCount);

constexpr uint32_t Bit(Field f) { return 1u << f; }

Field Lookup(std::string_view k) {
  switch (k.size()) {
    case 2: if (k == "ts") return kTs; break;
    case 3:
      if (k == "lat") return kLat;
      if (k == "lon") return kLon;
      break;
    case 4:
      if (k == "type") return kType;
      if (k == "imsi") return kImsi;
      if (k == "imei") return kImei;
      if (k == "segw") return kSegw;
      break;
    case 5:
      if (k == "acc_m") return kAccM;
      if (k == "cells") return kCells;
      if (k == "class") return kClass;
      break;
    case 6:
      if (k == "device") return kDevice;
      if (k == "src_ip") return kSrcIp;
      if (k == "status") return kStatus;
      if (k == "sender") return kSender;
      if (k == "amount") return kAmount;
      if (k == "msisdn") return kMsisdn;
      break;
    case 7:
      if (k == "session") return kSession;
      if (k == "cert_fp") return kCertFp;
      if (k == "channel") return kChannel;
      break;
    case 8:
      if (k == "endpoint") return kEndpoint;
      if (k == "merchant") return kMerchant;
      if (k == "currency") return kCurrency;
      break;
    case 9: if (k == "neighbors") return kNeighbors; break;
    case 11: if (k == "serving_eci") return kServingEci; break;
    default: break;
  }
  return kUnknownField;
}

// Fields each type needs (besides ts and type).
uint32_t Required(EventType t) {
  switch (t) {
    case EventType::kSessionUp: return Bit(kDevice) | Bit(kSession);
    case EventType::kSessionDown: return Bit(kDevice);
    case EventType::kLocationReport: return Bit(kDevice) | Bit(kLat) | Bit(kLon);
    case EventType::kRemScan: return Bit(kDevice) | Bit(kCells);
    case EventType::kUeAttach:
    case EventType::kUeDetach:
    case EventType::kSmsDeliver: return Bit(kDevice) | Bit(kImsi);
    case EventType::kPaymentAuth: return Bit(kImsi);
    case EventType::kMeasReport: return Bit(kImsi) | Bit(kNeighbors);
    case EventType::kDeviceStatus: return Bit(kDevice) | Bit(kStatus);
    case EventType::kEndpointStatus: return Bit(kEndpoint) | Bit(kStatus);
    case EventType::kS1Setup:
    case EventType::kNgSetup: return Bit(kDevice) | Bit(kSrcIp);
  }
  return 0;
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

void Wipe(std::string_view s) {
  if (!s.empty()) OPENSSL_cleanse(const_cast<char*>(s.data()), s.size());
}

int TwoDigits(const char* p) {
  if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
  return (p[0] - '0') * 10 + (p[1] - '0');
}

}  // namespace

struct EventDecoder::Impl {
  explicit Impl(const Pseudonymizer& p)
      : pseudonymizer(p),
        decoded(Metrics::Global().GetCounter("femtoguard_events_decoded_total", {}, "Events decoded")),
        malformed(Metrics::Global().GetCounter("femtoguard_events_malformed_total", {},
                                               "Event lines rejected as malformed or oversized")),
        unknown(Metrics::Global().GetCounter("femtoguard_events_unknown_type_total", {},
                                             "Event lines of an unknown type, skipped")) {}

  // "YYYY-MM-DDTHH:MM:SSZ" / "...:SS.fffZ": the form producers use. Anything
  // else goes to ParseRfc3339 (offsets, other fractions, leap seconds).
  bool FastTimestamp(std::string_view s, UnixMillis* out) {
    if (s.size() != 20 && s.size() != 24) return false;
    const char* p = s.data();
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || s.back() != 'Z') return false;
    int64_t days;
    if (have_date && std::memcmp(p, last_date, 10) == 0) {
      days = last_days;
    } else {
      int y1 = TwoDigits(p), y2 = TwoDigits(p + 2), mon = TwoDigits(p + 5), day = TwoDigits(p + 8);
      if (y1 < 0 || y2 < 0 || mon < 1 || mon > 12 || day < 1) return false;
      int year = y1 * 100 + y2;
      static const int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
      if (day > kDaysInMonth[mon - 1] + (mon == 2 && leap ? 1 : 0)) return false;
      days = DaysFromCivil(year, static_cast<unsigned>(mon), static_cast<unsigned>(day));
      std::memcpy(last_date, p, 10);
      last_days = days;
      have_date = true;
    }
    int hour = TwoDigits(p + 11), min = TwoDigits(p + 14), sec = TwoDigits(p + 17);
    if (hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59) return false;
    int64_t millis = 0;
    if (s.size() == 24) {
      if (p[19] != '.') return false;
      for (int i = 20; i < 23; ++i) {
        if (p[i] < '0' || p[i] > '9') return false;
        millis = millis * 10 + (p[i] - '0');
      }
    } else if (p[19] != 'Z') {
      return false;
    }
    *out = ((days * 24 + hour) * 60 + min) * 60000 + sec * 1000 + millis;
    return true;
  }

  const Pseudonymizer& pseudonymizer;
  dom::parser parser;
  std::string scratch;  // DecodeCopy's padded copy
  char last_date[10] = {};
  int64_t last_days = 0;
  bool have_date = false;
  Counter& decoded;
  Counter& malformed;
  Counter& unknown;
};

namespace {

// One line's decoding; `error` gets the first problem found.
class LineDecoder {
 public:
  LineDecoder(EventDecoder::Impl& impl, const DecodeLimits& limits, bool secondary_ids, std::string* error,
              Event* out)
      : impl_(impl), limits_(limits), secondary_ids_(secondary_ids), error_(*error), out_(*out) {}

  DecodeResult Run(const char* data, size_t size) {
    if (size > limits_.max_line_bytes) {
      return Malformed("line longer than " + std::to_string(limits_.max_line_bytes) + " bytes (oversized)");
    }
    dom::element doc;
    if (auto err = impl_.parser.parse(data, size, /*realloc_if_needed=*/false).get(doc); err) {
      return Malformed(std::string("not valid JSON (") + simdjson::error_message(err) + ")");
    }
    dom::object obj;
    if (doc.get_object().get(obj)) return Malformed("not a JSON object");

    uint32_t seen = 0;
    for (dom::key_value_pair kv : obj) {
      Field f = Lookup(kv.key);
      if (f == kUnknownField) continue;  // unknown fields are ignored
      seen |= Bit(f);
      DecodeField(f, kv.value);
    }
    // An unknown type is skipped whatever its fields look like: they may
    // mean something else there.
    if (type_ == TypeState::kUnknown) return DecodeResult::kUnknownType;
    if (!error_.empty()) return DecodeResult::kMalformed;
    if (!(seen & Bit(kType))) return Malformed("missing field 'type'");
    if (!(seen & Bit(kTs))) return Malformed("missing field 'ts'");
    uint32_t missing = Required(out_.type) & ~seen;
    if (missing) {
      for (uint32_t f = 0; f < kFieldCount; ++f) {
        if (missing & (1u << f)) {
          return Malformed(std::string(detect::EventTypeName(out_.type)) + ": missing field '" +
                           std::string(kFieldNames[f]) + "'");
        }
      }
    }
    return Finish(seen);
  }

 private:
  DecodeResult Malformed(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return DecodeResult::kMalformed;
  }

  void Fail(Field f, std::string_view why) {
    if (!error_.empty()) return;
    error_ = "field '" + std::string(kFieldNames[f]) + "': " + std::string(why);
  }
  void FailAt(Field f, size_t index, std::string_view sub, std::string_view why) {
    if (!error_.empty()) return;
    error_ = "field '" + std::string(kFieldNames[f]) + "[" + std::to_string(index) + "]" +
             (sub.empty() ? "" : "." + std::string(sub)) + "': " + std::string(why);
  }

  bool String(dom::element v, Field f, size_t max, std::string_view* out) {
    if (v.get_string().get(*out)) {
      Fail(f, "not a string");
      return false;
    }
    if (out->size() > max) {
      Fail(f, "oversized (more than " + std::to_string(max) + " bytes)");
      return false;
    }
    return true;
  }
  // A string field of an identifier kind (docs/identifiers.md). Empty is
  // left to the type's checks (Finish); anything else outside the kind's
  // character set makes the line malformed, counted per field.
  void Text(dom::element v, Field f, IdKind kind, size_t max, std::string* out) {
    std::string_view s;
    if (!String(v, f, max, &s)) return;
    if (!s.empty() && !IsValidIdentifier(kind, s, max)) {
      CountBadIdentifier("events", kFieldNames[f]);
      Fail(f, "not a valid " + std::string(IdKindName(kind)) + " (docs/identifiers.md)");
      return;
    }
    out->assign(s.data(), s.size());
  }

  bool Number(dom::element v, Field f, double lo, double hi, double* out) {
    double d;
    if (v.get_double().get(d) || !std::isfinite(d)) {
      Fail(f, "not a number");
      return false;
    }
    if (d < lo || d > hi) {
      Fail(f, "out of range");
      return false;
    }
    *out = d;
    return true;
  }

  // A subscriber identity: digits only (an optional leading '+' for phone
  // numbers, not part of the pseudonymized value). The parser's copy is
  // wiped; nothing about the value goes into an error.
  // `out` null: checked and wiped, not pseudonymized (set_secondary_ids).
  void Identity(dom::element v, Field f, const char* kind, size_t min, size_t max, SubjectId* out) {
    std::string_view s;
    if (v.get_string().get(s)) {
      Fail(f, "not a string");
      return;
    }
    std::string_view digits = s;
    if (f == kMsisdn && !digits.empty() && digits.front() == '+') digits.remove_prefix(1);
    // Already a pseudonym of this kind ("imsi:<24 hex>"): a feed that
    // pseudonymizes at its own door under the same key (femtoguard tap,
    // docs/tap.md) sends no raw identity at all.
    const size_t kind_len = std::strlen(kind);
    if (s.size() == kind_len + 1 + 2 * SubjectId{}.bytes.size() && s.compare(0, kind_len, kind) == 0 &&
        s[kind_len] == ':') {
      SubjectId pre;
      if (SubjectId::FromString(s, &pre)) {
        if (out) *out = pre;
        return;
      }
    }
    if (digits.size() >= min && digits.size() <= max && AllDigits(digits)) {
      if (out) impl_.pseudonymizer.PseudonymizeBytes(kind, digits, out->bytes.data());
    } else if (s.size() > limits_.max_text) {
      Fail(f, "oversized (more than " + std::to_string(limits_.max_text) + " bytes)");
    } else {
      Fail(f, "not " + std::string(f == kImsi ? "an IMSI" : f == kImei ? "an IMEI" : "an MSISDN") + " (" +
                  std::to_string(min) + ".." + std::to_string(max) + " digits)");
    }
    Wipe(s);
  }

  // Integer members of cells[] / neighbors[] entries; null = absent.
  bool ListInt(dom::element v, Field f, size_t i, std::string_view name, int64_t lo, int64_t hi, int64_t* out) {
    if (v.is_null()) return false;
    int64_t n;
    if (v.get_int64().get(n)) {
      double d;
      if (v.get_double().get(d) || d != std::floor(d) || !(std::fabs(d) < 9e18)) {
        FailAt(f, i, name, "not an integer");
        return false;
      }
      n = static_cast<int64_t>(d);
    }
    if (n < lo || n > hi) {
      FailAt(f, i, name, "out of range");
      return false;
    }
    *out = n;
    return true;
  }
  bool ListEci(dom::element v, Field f, size_t i, uint64_t* out) {
    if (v.is_null()) return false;
    uint64_t n;
    if (v.get_uint64().get(n)) {
      FailAt(f, i, "eci", "not a non-negative integer");
      return false;
    }
    if (n >= rem::kEciLimit) {  // NR cell identity: 36 bits (common/rem_cell.h)
      FailAt(f, i, "eci", "out of range");
      return false;
    }
    *out = n;
    return true;
  }
  bool ListRsrp(dom::element v, Field f, size_t i, float* out) {
    if (v.is_null()) return false;
    double d;
    // Bounds: common/rem_cell.h, the same as admission's rem cells.
    if (v.get_double().get(d) || !std::isfinite(d) || d < rem::kRsrpMin || d > rem::kRsrpMax) {
      FailAt(f, i, "rsrp", "not a number in -200..0 (dBm)");
      return false;
    }
    *out = static_cast<float>(d);
    return true;
  }

  bool ListOf(dom::element v, Field f, dom::array* arr) {
    if (v.get_array().get(*arr)) {
      Fail(f, "not a list");
      return false;
    }
    if (arr->size() > limits_.max_list) {
      Fail(f, "oversized (more than " + std::to_string(limits_.max_list) + " entries)");
      return false;
    }
    return true;
  }

  void Cells(dom::element v) {
    dom::array arr;
    if (!ListOf(v, kCells, &arr)) return;
    size_t i = 0;
    for (dom::element item : arr) {
      dom::object o;
      if (item.get_object().get(o)) {
        FailAt(kCells, i, {}, "not an object");
        return;
      }
      detect::RemCellSeen c;
      int64_t n;
      for (dom::key_value_pair kv : o) {
        std::string_view k = kv.key;
        if (k == "mcc") {
          if (ListInt(kv.value, kCells, i, k, 0, rem::kMccMax, &n)) c.mcc = static_cast<int>(n);
        } else if (k == "mnc") {
          if (ListInt(kv.value, kCells, i, k, 0, rem::kMncMax, &n)) c.mnc = static_cast<int>(n);
        } else if (k == "tac") {
          if (ListInt(kv.value, kCells, i, k, 0, 0xFFFFFFFF, &n)) c.tac = static_cast<uint32_t>(n);
        } else if (k == "eci") {
          ListEci(kv.value, kCells, i, &c.eci);
        } else if (k == "pci") {
          if (ListInt(kv.value, kCells, i, k, rem::kPciMin, rem::kPciMax, &n)) c.pci = static_cast<int>(n);
        } else if (k == "earfcn") {
          if (ListInt(kv.value, kCells, i, k, rem::kEarfcnMin, rem::kEarfcnMax, &n)) {
            c.earfcn = static_cast<int>(n);
          }
        } else if (k == "rsrp") {
          ListRsrp(kv.value, kCells, i, &c.rsrp);
        }
      }
      out_.cells.push_back(c);
      ++i;
    }
  }

  void Neighbors(dom::element v) {
    dom::array arr;
    if (!ListOf(v, kNeighbors, &arr)) return;
    size_t i = 0;
    for (dom::element item : arr) {
      dom::object o;
      if (item.get_object().get(o)) {
        FailAt(kNeighbors, i, {}, "not an object");
        return;
      }
      detect::Neighbor nb;
      int64_t n;
      for (dom::key_value_pair kv : o) {
        std::string_view k = kv.key;
        if (k == "pci") {
          if (ListInt(kv.value, kNeighbors, i, k, 0, 1007, &n)) nb.pci = static_cast<int>(n);
        } else if (k == "earfcn") {
          if (ListInt(kv.value, kNeighbors, i, k, 0, 3279165, &n)) nb.earfcn = static_cast<int>(n);
        } else if (k == "eci") {
          ListEci(kv.value, kNeighbors, i, &nb.eci);
        } else if (k == "rsrp") {
          ListRsrp(kv.value, kNeighbors, i, &nb.rsrp);
        }
      }
      out_.neighbors.push_back(nb);
      ++i;
    }
  }

  void DecodeField(Field f, dom::element v) {
    constexpr size_t kSessionMax = 128, kFpMax = 128, kIpMax = 64, kStatusMax = 32, kSenderMax = 64,
                     kCurrencyMax = 16;
    const size_t kEndpointMax = std::min(limits_.max_text, IdKindMaxBytes(IdKind::kEndpoint));
    std::string_view s;
    switch (f) {
      case kTs:
        if (String(v, f, 64, &s)) {
          if (!impl_.FastTimestamp(s, &out_.ts_ms)) {
            auto t = ParseRfc3339(s);
            if (t.ok()) {
              out_.ts_ms = *t;
            } else {
              Fail(f, "not an RFC 3339 timestamp");
            }
          }
        }
        break;
      case kType:
        if (v.get_string().get(s)) {
          type_ = TypeState::kNotString;
          Fail(f, "not a string");
        } else {
          type_ = detect::ParseEventType(s, &out_.type) ? TypeState::kKnown : TypeState::kUnknown;
        }
        break;
      case kDevice:
        Text(v, f, IdKind::kDeviceId, limits_.max_device, &out_.device);
        break;
      case kSession:
        Text(v, f, IdKind::kToken, kSessionMax, &out_.session);
        break;
      case kCertFp:
        Text(v, f, IdKind::kToken, kFpMax, &out_.cert_fp);
        break;
      case kSrcIp:
        Text(v, f, IdKind::kAddress, kIpMax, &out_.src_ip);
        break;
      case kEndpoint:
        Text(v, f, IdKind::kEndpoint, kEndpointMax, &out_.endpoint);
        break;
      case kSegw:
        Text(v, f, IdKind::kToken, kSessionMax, &out_.segw);
        break;
      case kStatus:
        Text(v, f, IdKind::kToken, kStatusMax, &out_.status);
        break;
      case kLat: Number(v, f, -90, 90, &out_.lat); break;
      case kLon: Number(v, f, -180, 180, &out_.lon); break;
      case kAccM: Number(v, f, 0, 1e7, &out_.acc_m); break;
      case kCells: Cells(v); break;
      case kImsi: Identity(v, f, "imsi", 6, 15, &out_.imsi); break;
      case kImei: Identity(v, f, "imei", 14, 16, secondary_ids_ ? &out_.imei : nullptr); break;
      case kMsisdn: Identity(v, f, "msisdn", 6, 15, secondary_ids_ ? &out_.msisdn : nullptr); break;
      case kSender:
        if (String(v, f, kSenderMax, &s)) {
          // A subscriber's phone number (7..15 digits, optional '+') is an
          // identity; short codes (<= 6 digits) and names are not.
          std::string_view digits = s;
          if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
          if (digits.size() >= 7 && digits.size() <= 15 && AllDigits(digits)) {
            if (secondary_ids_) {
              impl_.pseudonymizer.PseudonymizeBytes("msisdn", digits, out_.sender_msisdn.bytes.data());
            }
            Wipe(s);
          } else if (!s.empty() && !IsValidIdentifier(IdKind::kText, s, kSenderMax)) {
            CountBadIdentifier("events", kFieldNames[f]);
            Fail(f, "not a valid text value (docs/identifiers.md)");
          } else {
            out_.sender.assign(s.data(), s.size());
          }
        }
        break;
      case kClass:
        if (String(v, f, kStatusMax, &s)) {
          out_.sms_class = s == "otp"    ? detect::SmsClass::kOtp
                           : s == "ars"  ? detect::SmsClass::kArs
                           : s == "p2p"  ? detect::SmsClass::kP2p
                           : s == "bulk" ? detect::SmsClass::kBulk
                                         : detect::SmsClass::kOther;
        }
        break;
      case kMerchant:
        Text(v, f, IdKind::kText, kSessionMax, &out_.merchant);
        break;
      case kCurrency:
        Text(v, f, IdKind::kToken, kCurrencyMax, &out_.currency);
        break;
      case kAmount: Number(v, f, -1e15, 1e15, &out_.amount); break;
      case kChannel:
        if (String(v, f, kStatusMax, &s)) {
          out_.channel = s == "sms_otp" ? detect::PayChannel::kSmsOtp
                         : s == "ars"   ? detect::PayChannel::kArs
                         : s == "none"  ? detect::PayChannel::kNone
                                        : detect::PayChannel::kOther;
        }
        break;
      case kServingEci: {
        uint64_t n;
        if (v.get_uint64().get(n) || n >= (uint64_t{1} << 36)) {
          Fail(f, "not a cell identity (integer below 2^36)");
        } else {
          out_.serving_eci = n;
        }
        break;
      }
      case kNeighbors: Neighbors(v); break;
      case kUnknownField: break;
    }
  }

  // Checks that depend on the type, once all fields are in.
  DecodeResult Finish(uint32_t seen) {
    switch (out_.type) {
      case EventType::kLocationReport:
        out_.has_fix = true;
        break;
      case EventType::kMeasReport:
        out_.has_fix = (seen & Bit(kLat)) && (seen & Bit(kLon));
        break;
      case EventType::kDeviceStatus:
        if (!ParseDeviceStatus(out_.status).ok()) {
          return Malformed("device.status: field 'status': not provisioned, active, suspended or decommissioned");
        }
        break;
      case EventType::kEndpointStatus:
        if (out_.status != "active" && out_.status != "draining" && out_.status != "retired") {
          return Malformed("endpoint.status: field 'status': not active, draining or retired");
        }
        break;
      default: break;
    }
    if ((Required(out_.type) & Bit(kDevice)) && out_.device.empty()) {
      return Malformed(std::string(detect::EventTypeName(out_.type)) + ": field 'device' is empty");
    }
    return DecodeResult::kOk;
  }

  EventDecoder::Impl& impl_;
  const DecodeLimits& limits_;
  const bool secondary_ids_;
  std::string& error_;
  Event& out_;
  enum class TypeState { kAbsent, kNotString, kUnknown, kKnown } type_ = TypeState::kAbsent;
};

}  // namespace

EventDecoder::EventDecoder(const Pseudonymizer& pseudonymizer, DecodeLimits limits)
    : impl_(std::make_unique<Impl>(pseudonymizer)), limits_(limits) {
  // Capacity for the longest accepted line once, not per line.
  // On failure the parser still grows on demand.
  simdjson::error_code err = impl_->parser.allocate(limits_.max_line_bytes + 1);
  (void)err;
}

EventDecoder::~EventDecoder() {
  if (!impl_->scratch.empty()) OPENSSL_cleanse(impl_->scratch.data(), impl_->scratch.size());
}

DecodeResult EventDecoder::Decode(char* line, size_t size, detect::Event* out) {
  out->Clear();
  error_.clear();
  DecodeResult r = LineDecoder(*impl_, limits_, secondary_ids_, &error_, out).Run(line, size);
  std::memset(line, ' ', size);
  switch (r) {
    case DecodeResult::kOk: impl_->decoded.Inc(); break;
    case DecodeResult::kUnknownType: impl_->unknown.Inc(); break;
    case DecodeResult::kMalformed: impl_->malformed.Inc(); break;
  }
  return r;
}

DecodeResult EventDecoder::DecodeCopy(std::string_view line, detect::Event* out) {
  if (line.size() > limits_.max_line_bytes) {
    out->Clear();
    error_ = "line longer than " + std::to_string(limits_.max_line_bytes) + " bytes (oversized)";
    impl_->malformed.Inc();
    return DecodeResult::kMalformed;
  }
  std::string& scratch = impl_->scratch;
  if (scratch.size() < line.size() + kPadding) scratch.resize(line.size() + kPadding);
  std::memcpy(scratch.data(), line.data(), line.size());
  return Decode(scratch.data(), line.size(), out);  // wipes the copy
}

}  // namespace fg::ingest
