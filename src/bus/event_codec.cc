#include "bus/event_codec.h"

#include <cstring>

#include "bus/wire.h"

namespace fg::bus {
namespace {

constexpr char kMagic[4] = {'F', 'G', 'E', '1'};
constexpr uint32_t kMaxList = 4096;
constexpr uint32_t kMaxString = 1 << 16;

using wire::Put;
using wire::PutStr;

void PutSubject(std::string* out, const detect::SubjectId& s) {
  out->append(reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size());
}

// Event fields on top of the wire reader: strings bounded at kMaxString,
// subjects as their 12 raw bytes.
class Reader : public wire::Reader {
 public:
  using wire::Reader::Reader;
  bool GetStr(std::string* s) { return wire::Reader::GetStr(s, kMaxString); }
  bool GetSubject(detect::SubjectId* s) { return GetBytes(s->bytes.data(), s->bytes.size()); }
};

bool ReadEvent(Reader& r, detect::Event* e) {
  e->Clear();
  uint8_t type, sms, chan;
  uint8_t has_fix;
  if (!r.Get(&type) || type > static_cast<uint8_t>(detect::EventType::kLast)) return false;
  e->type = static_cast<detect::EventType>(type);
  if (!r.Get(&e->ts_ms) || !r.Get(&e->line)) return false;
  if (!r.GetStr(&e->device) || !r.GetStr(&e->session) || !r.GetStr(&e->cert_fp) || !r.GetStr(&e->src_ip) ||
      !r.GetStr(&e->endpoint) || !r.GetStr(&e->segw) || !r.GetStr(&e->status)) {
    return false;
  }
  if (!r.Get(&has_fix) || !r.Get(&e->lat) || !r.Get(&e->lon) || !r.Get(&e->acc_m)) return false;
  e->has_fix = has_fix != 0;
  uint32_t n;
  if (!r.Get(&n) || n > kMaxList) return false;
  e->cells.resize(n);
  for (auto& c : e->cells) {
    if (!r.Get(&c.mcc) || !r.Get(&c.mnc) || !r.Get(&c.tac) || !r.Get(&c.eci) || !r.Get(&c.pci) ||
        !r.Get(&c.earfcn) || !r.Get(&c.rsrp)) {
      return false;
    }
  }
  if (!r.GetSubject(&e->imsi) || !r.GetSubject(&e->imei) || !r.GetSubject(&e->msisdn)) return false;
  if (!r.GetStr(&e->sender) || !r.GetSubject(&e->sender_msisdn) || !r.Get(&sms)) return false;
  if (sms > static_cast<uint8_t>(detect::SmsClass::kOther)) return false;
  e->sms_class = static_cast<detect::SmsClass>(sms);
  if (!r.GetStr(&e->merchant) || !r.GetStr(&e->currency) || !r.Get(&e->amount) || !r.Get(&chan)) return false;
  if (chan > static_cast<uint8_t>(detect::PayChannel::kOther)) return false;
  e->channel = static_cast<detect::PayChannel>(chan);
  if (!r.Get(&e->serving_eci) || !r.Get(&n) || n > kMaxList) return false;
  e->neighbors.resize(n);
  for (auto& nb : e->neighbors) {
    if (!r.Get(&nb.pci) || !r.Get(&nb.earfcn) || !r.Get(&nb.eci) || !r.Get(&nb.rsrp)) return false;
  }
  return true;
}

}  // namespace

void BeginBatch(std::string* batch) {
  batch->assign(kMagic, sizeof kMagic);
  Put<uint32_t>(batch, 0);
}

void FinishBatch(std::string* batch, uint32_t count) { std::memcpy(batch->data() + 4, &count, 4); }

void AppendEvent(const detect::Event& e, std::string* out) {
  Put<uint8_t>(out, static_cast<uint8_t>(e.type));
  Put(out, e.ts_ms);
  Put(out, e.line);
  for (const std::string* s : {&e.device, &e.session, &e.cert_fp, &e.src_ip, &e.endpoint, &e.segw, &e.status}) {
    PutStr(out, *s);
  }
  Put<uint8_t>(out, e.has_fix ? 1 : 0);
  Put(out, e.lat);
  Put(out, e.lon);
  Put(out, e.acc_m);
  Put<uint32_t>(out, static_cast<uint32_t>(e.cells.size()));
  for (const auto& c : e.cells) {
    Put(out, c.mcc);
    Put(out, c.mnc);
    Put(out, c.tac);
    Put(out, c.eci);
    Put(out, c.pci);
    Put(out, c.earfcn);
    Put(out, c.rsrp);
  }
  PutSubject(out, e.imsi);
  PutSubject(out, e.imei);
  PutSubject(out, e.msisdn);
  PutStr(out, e.sender);
  PutSubject(out, e.sender_msisdn);
  Put<uint8_t>(out, static_cast<uint8_t>(e.sms_class));
  PutStr(out, e.merchant);
  PutStr(out, e.currency);
  Put(out, e.amount);
  Put<uint8_t>(out, static_cast<uint8_t>(e.channel));
  Put(out, e.serving_eci);
  Put<uint32_t>(out, static_cast<uint32_t>(e.neighbors.size()));
  for (const auto& nb : e.neighbors) {
    Put(out, nb.pci);
    Put(out, nb.earfcn);
    Put(out, nb.eci);
    Put(out, nb.rsrp);
  }
}

Status ForEachEvent(std::string_view batch, const std::function<void(const detect::Event&)>& fn) {
  Reader r(batch);
  char magic[4];
  uint32_t count;
  for (char& c : magic) {
    if (!r.Get(&c)) return Status::InvalidArgument("event batch: truncated header");
  }
  if (std::memcmp(magic, kMagic, 4) != 0 || !r.Get(&count)) return Status::InvalidArgument("event batch: bad header");
  detect::Event e;
  for (uint32_t i = 0; i < count; ++i) {
    if (!ReadEvent(r, &e)) return Status::InvalidArgument("event batch: event " + std::to_string(i) + " is malformed");
    fn(e);
  }
  if (!r.empty()) return Status::InvalidArgument("event batch: trailing bytes");
  return Status::Ok();
}

}  // namespace fg::bus
