// Records in, text out: the event lines (DESIGN.md §3.4), the registry
// (§3.2), cells.csv (§3.3) and truth.jsonl (docs/detection.md).

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "sim/model.h"

namespace fg::sim {

namespace {

constexpr uint64_t kSessionKey = 0x5e55;

const char* SmsClassName(uint8_t c) {
  switch (static_cast<SmsClass>(c)) {
    case SmsClass::kOtp:
      return "otp";
    case SmsClass::kArs:
      return "ars";
    case SmsClass::kP2p:
      return "p2p";
    case SmsClass::kBulk:
      return "bulk";
  }
  return "p2p";
}

const char* ChannelName(uint8_t c) {
  switch (static_cast<PayChannel>(c)) {
    case PayChannel::kSmsOtp:
      return "sms_otp";
    case PayChannel::kArs:
      return "ars";
    case PayChannel::kNone:
      return "none";
  }
  return "none";
}

}  // namespace

// ---------------------------------------------------------------------------
// Records

Rec& Generator::Push(EvType type, int64_t ts) {
  static thread_local Rec discard;
  int64_t idx = ts >= base_ ? (ts - base_) / kDay : -1;
  if (idx < 0 || idx >= days_) {
    discard = Rec{};
    return discard;  // outside the simulated span
  }
  if (idx < flushed_days_) {
    ++late_;  // a bug: this day is already written
    discard = Rec{};
    return discard;
  }
  Rec r{};
  r.ts = ts;
  r.seq = seq_++;
  r.type = type;
  r.dev = kNone;
  r.sub = kNone;
  auto& bucket = buckets_[static_cast<size_t>(idx)];
  bucket.push_back(r);
  return bucket.back();
}

Rec& Generator::SessionUp(uint32_t d, int64_t ts, uint32_t ip, uint8_t endpoint, uint32_t cert) {
  SimDevice& D = devices_[d];
  ++D.session_no;
  D.endpoint = endpoint;
  Rec& r = Push(EvType::kSessionUp, ts);
  r.dev = d;
  r.a = D.session_no;
  r.b = ip;
  r.u8 = endpoint;
  r.u16 = D.segw;
  r.sub = cert;
  return r;
}

void Generator::SessionDown(uint32_t d, int64_t ts, uint32_t session_no) {
  Rec& r = Push(EvType::kSessionDown, ts);
  r.dev = d;
  r.a = session_no;
}

void Generator::LocationFix(uint32_t d, int64_t ts, Point p, Rng& r) {
  int acc = static_cast<int>(r.Range(8, 40));
  double dx = r.Normal() * acc / 2.5, dy = r.Normal() * acc / 2.5;
  double len = std::hypot(dx, dy);
  if (len > 0.9 * acc) {
    dx *= 0.9 * acc / len;
    dy *= 0.9 * acc / len;
  }
  Rec& m = Push(EvType::kLocation, ts);
  m.dev = d;
  m.x = static_cast<float>(p.x + dx);
  m.y = static_cast<float>(p.y + dy);
  m.u16 = static_cast<uint16_t>(acc);
}

void Generator::RemScan(uint32_t d, int64_t ts, Point p, Rng& r) {
  Rec& m = Push(EvType::kRemScan, ts);
  m.dev = d;
  m.x = static_cast<float>(p.x);
  m.y = static_cast<float>(p.y);
  m.a = static_cast<uint32_t>(r.Next());
}

void Generator::Payment(uint32_t s, int64_t ts, PayChannel ch, int merchant, int64_t amount, uint32_t fraud_dev) {
  Rec& m = Push(EvType::kPayment, ts);
  m.sub = s;
  m.u8 = static_cast<uint8_t>(ch);
  m.u16 = static_cast<uint16_t>(merchant);
  m.a = static_cast<uint32_t>(amount);
  if (ts < base_ || ts >= DayStart(days_)) return;
  Label l;
  l.rule = "payment.risk";
  l.sub = s;
  l.from = l.to = ts;
  l.merchant = merchant;
  l.amount = amount;
  if (fraud_dev != kNone) {
    l.kind = "fraud_payment";
    l.dev = fraud_dev;
  } else if (subs_[s].exposed_from <= ts) {
    // An exposed subscriber's own payment: payment.risk may rightly hold it.
    l.kind = "expected";
    l.dev = subs_[s].exposed_dev;
  } else {
    return;
  }
  labels_.push_back(l);
}

// ---------------------------------------------------------------------------
// Text

void Generator::PutDeviceId(uint32_t d, TextBuf& out) const {
  out.Put("\"FG-");
  out.Digits(devices_[d].id_number, 7);
  out.Put('"');
}

void Generator::PutImsi(uint32_t s, TextBuf& out) const {
  out.Put("\"4500899");  // mcc 450, mnc 08, then a synthetic range
  out.Digits(s, 8);
  out.Put('"');
}

void Generator::PutLatLon(Point p, TextBuf& out) const {
  out.Put(",\"lat\":");
  out.Fixed(Area::Lat(p), 6);
  out.Put(",\"lon\":");
  out.Fixed(Area::Lon(p), 6);
}

bool Generator::FormatRec(const Rec& r, TextBuf& out, std::vector<HeardCell>* heard) const {
  auto head = [&](const char* type) {
    out.Put("{\"ts\":");
    out.Ts(r.ts);
    out.Put(",\"type\":\"");
    out.Put(type);
    out.Put('"');
  };
  auto device = [&] {
    out.Put(",\"device\":");
    PutDeviceId(r.dev, out);
  };
  auto imsi = [&] {
    out.Put(",\"imsi\":");
    PutImsi(r.sub, out);
  };
  const Point pos{r.x, r.y};
  switch (r.type) {
    case EvType::kSessionUp: {
      head("session.up");
      device();
      out.Put(",\"session\":\"spi-");
      out.Hex64(MixKey(opt_.seed, kSessionKey, devices_[r.dev].id_number, r.a));
      out.Put("\",\"cert_fp\":\"sha256:");
      for (int i = 0; i < 4; ++i) {
        out.Hex64(r.sub == kLegacyCert ? legacy_fp_[i]
                                       : MixKey(opt_.seed, static_cast<uint64_t>(Stream::kCert),
                                                devices_[r.sub].id_number, static_cast<uint64_t>(i)));
      }
      out.Put("\",\"src_ip\":\"");
      out.Ipv4(r.b);
      out.Put("\",\"endpoint\":\"");
      out.Put(kEndpoints[r.u8 & 1]);
      out.Put("\",\"segw\":\"");
      out.Put(kSegws[r.u16 & 3]);
      out.Put("\"}\n");
      if (!(r.u8 & kNoOwnSetup)) PutS1Setup(r.ts, r.dev, r.b, out);
      break;
    }
    case EvType::kS1Setup:
      PutS1Setup(r.ts, r.dev, r.b, out);
      break;
    case EvType::kSessionDown:
      head("session.down");
      device();
      out.Put(",\"session\":\"spi-");
      out.Hex64(MixKey(opt_.seed, kSessionKey, devices_[r.dev].id_number, r.a));
      out.Put("\"}\n");
      break;
    case EvType::kLocation:
      head("location.report");
      device();
      PutLatLon(pos, out);
      out.Put(",\"acc_m\":");
      out.Int(r.u16);
      out.Put("}\n");
      break;
    case EvType::kRemScan: {
      head("rem.scan");
      device();
      out.Put(",\"cells\":[");
      cells_.Hear(pos, kHomeOperator, MixKey(opt_.seed, r.a), 6, heard);
      bool first = true;
      for (const HeardCell& h : (*heard)) {
        const MacroCell& c = cells_.cells()[h.cell];
        out.Put(first ? "{\"mcc\":450,\"mnc\":" : ",{\"mcc\":450,\"mnc\":");
        first = false;
        out.Int(kOperators[c.op].mnc);
        out.Put(",\"tac\":");
        out.Int(c.tac);
        out.Put(",\"eci\":");
        out.Int(static_cast<int64_t>(c.eci));
        out.Put(",\"pci\":");
        out.Int(c.pci);
        out.Put(",\"earfcn\":");
        out.Int(c.earfcn);
        out.Put(",\"rsrp\":");
        out.Int(h.rsrp);
        out.Put('}');
      }
      out.Put("]}\n");
      break;
    }
    case EvType::kUeAttach:
    case EvType::kUeDetach:
      head(r.type == EvType::kUeAttach ? "ue.attach" : "ue.detach");
      device();
      imsi();
      out.Put(",\"imei\":\"3599990");
      out.Digits(r.sub, 8);
      out.Put("\"}\n");
      break;
    case EvType::kSms:
      head("sms.deliver");
      device();
      imsi();
      out.Put(",\"sender\":\"");
      if (r.a & kP2pSenderFlag) {
        out.Put("+8210");
        out.Digits((r.a & ~kP2pSenderFlag) % 100000000u, 8);
      } else {
        out.Put(r.u8 == static_cast<uint8_t>(SmsClass::kBulk) ? kBulkSenders[r.a % 5] : kAuthSenders[r.a % 5]);
      }
      out.Put("\",\"class\":\"");
      out.Put(SmsClassName(r.u8));
      out.Put("\"}\n");
      break;
    case EvType::kPayment:
      head("payment.auth");
      imsi();
      out.Put(",\"merchant\":\"");
      out.Put(kMerchants[r.u16 % 10]);
      out.Put("\",\"amount\":");
      out.Int(r.a);
      out.Put(",\"currency\":\"KRW\",\"channel\":\"");
      out.Put(ChannelName(r.u8));
      out.Put("\"}\n");
      break;
    case EvType::kMeas: {
      cells_.Hear(pos, kHomeOperator, MixKey(opt_.seed, r.a), 5, heard);
      if (heard->empty()) return false;  // out of coverage: nothing to report
      struct Nb {
        int pci, earfcn, rsrp;
        uint64_t eci;
      };
      Nb nbs[8];
      int n = 0;
      for (size_t i = 1; i < (*heard).size(); ++i) {
        const MacroCell& c = cells_.cells()[(*heard)[i].cell];
        // Some UEs also decode the neighbour's global id (ANR).
        bool with_eci = MixKey(r.a, (*heard)[i].cell) % 4 == 0;
        nbs[n++] = {c.pci, c.earfcn, (*heard)[i].rsrp, with_eci ? c.eci : 0};
      }
      if (r.u8 == 1 && rogue_radio_.on) {
        double rsrp = CellLayout::PathRsrp(Dist(pos, rogue_radio_.pos), 34.0) + static_cast<double>(r.a % 7) - 3;
        if (rsrp >= -118) {
          nbs[n++] = {rogue_radio_.pci, rogue_radio_.earfcn, static_cast<int>(std::lround(std::min(rsrp, -50.0))), 0};
        }
      } else if (r.u8 == 2) {
        nbs[n++] = {static_cast<int>(r.b & 0xffff), static_cast<int>(r.b >> 16), -110 - static_cast<int>(r.a % 8), 0};
      }
      std::stable_sort(nbs, nbs + n, [](const Nb& a, const Nb& b) { return a.rsrp > b.rsrp; });
      head("meas.report");
      imsi();
      out.Put(",\"serving_eci\":");
      out.Int(static_cast<int64_t>(cells_.cells()[(*heard)[0].cell].eci));
      PutLatLon(pos, out);
      out.Put(",\"neighbors\":[");
      for (int i = 0; i < n; ++i) {
        out.Put(i ? ",{\"pci\":" : "{\"pci\":");
        out.Int(nbs[i].pci);
        out.Put(",\"earfcn\":");
        out.Int(nbs[i].earfcn);
        if (nbs[i].eci) {
          out.Put(",\"eci\":");
          out.Int(static_cast<int64_t>(nbs[i].eci));
        }
        out.Put(",\"rsrp\":");
        out.Int(nbs[i].rsrp);
        out.Put('}');
      }
      out.Put("]}\n");
      break;
    }
    case EvType::kDeviceStatus:
      head("device.status");
      device();
      out.Put(",\"status\":\"");
      out.Put(DeviceStatusName(static_cast<DeviceStatus>(r.u8)));
      out.Put("\"}\n");
      break;
    case EvType::kEndpointStatus:
      head("endpoint.status");
      out.Put(",\"endpoint\":\"");
      out.Put(kEndpoints[r.u8 & 1]);
      out.Put("\",\"status\":\"");
      out.Put(r.u16 == 0 ? "active" : (r.u16 == 1 ? "draining" : "retired"));
      out.Put("\"}\n");
      break;
  }
  return true;
}

// What the femtocell's HeNB says over S1 right after its IPsec session is
// up (docs/tap.md): its home eNB id (the device number) and, for a closed
// or hybrid unit, its CSG id (the device number too), as the registry has
// them. Only device and src_ip are read by detection (identity.mismatch).
void Generator::PutS1Setup(int64_t ts, uint32_t claimed, uint32_t ip, TextBuf& out) const {
  const SimDevice& D = devices_[claimed];
  out.Put("{\"ts\":");
  out.Ts(ts);
  out.Put(",\"type\":\"s1.setup\",\"device\":");
  PutDeviceId(claimed, out);
  out.Put(",\"src_ip\":\"");
  out.Ipv4(ip);
  out.Put("\",\"plmn\":\"");
  out.Put(kHomePlmn);
  out.Put("\",\"enb_id\":");
  out.Int(D.id_number);
  out.Put(",\"enb_kind\":\"home\"");
  if (D.mode != AccessMode::kOpen) {
    out.Put(",\"csg_ids\":[");
    out.Int(D.id_number);
    out.Put("]");
  }
  out.Put(",\"access_mode\":\"");
  out.Put(AccessModeName(D.mode));
  out.Put("\"}\n");
}

Status Generator::FlushDay(int day, OutFile& out) {
  std::vector<Rec>& bucket = buckets_[static_cast<size_t>(day)];
  std::sort(bucket.begin(), bucket.end(),
            [](const Rec& a, const Rec& b) { return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq; });
  // Formatted in chunks handed whole to the writer thread. (Formatting the
  // chunks on parallel threads gave the same bytes but no gain on the shared
  // 2-core machine, for 15 % more CPU: see BENCHMARKS.md, Simulator.)
  constexpr size_t kChunk = 32768;
  TextBuf text;
  text.str().reserve(kChunk * 320);  // ~280 bytes a line
  std::vector<HeardCell> heard;
  for (size_t i = 0; i < bucket.size(); ++i) {
    if (!FormatRec(bucket[i], text, &heard)) ++unformatted_;
    if (bucket[i].type == EvType::kSessionUp && !(bucket[i].u8 & kNoOwnSetup)) ++events_written_;  // its s1.setup
    if ((i + 1) % kChunk == 0) out.PutOwned(text.str());
  }
  out.PutOwned(text.str());
  events_written_ += bucket.size();
  std::vector<Rec>().swap(bucket);
  flushed_days_ = day + 1;
  return Status::Ok();
}

Status Generator::WriteRegistry(const std::string& path) {
  OutFile out;
  FG_RETURN_IF_ERROR(out.Open(path));
  for (uint32_t d = 0; d < n_dev_; ++d) {
    const SimDevice& D = devices_[d];
    out.Put("{\"device\":");
    PutDeviceId(d, out);
    out.Put(",\"status\":\"");
    out.Put(DeviceStatusName(D.reg_status));
    out.Put("\",\"owner\":\"acct-");
    out.Digits(D.owner, 7);
    out.Put("\",\"mode\":\"");
    out.Put(AccessModeName(D.mode));
    out.Put("\",\"site\":{\"lat\":");
    out.Fixed(Area::Lat(D.site), 6);
    out.Put(",\"lon\":");
    out.Fixed(Area::Lon(D.site), 6);
    out.Put(",\"radius_m\":");
    out.Int(D.radius_m);
    out.Put("},\"prefixes\":[\"");
    out.Ipv4(D.prefix);
    out.Put("/20\"],\"csg\":[");
    for (uint32_t i = 0; i < D.csg_count; ++i) {
      if (i) out.Put(',');
      PutImsi(csg_[D.csg_begin + i], out);
    }
    out.Put("],\"cert_fp\":\"sha256:");
    for (int i = 0; i < 4; ++i) {
      out.Hex64(MixKey(opt_.seed, static_cast<uint64_t>(Stream::kCert), D.id_number, static_cast<uint64_t>(i)));
    }
    out.Put("\",\"max_ues\":");
    out.Int(D.max_ues);
    // The radio identity its S1 setups must claim (PutS1Setup).
    out.Put(",\"plmn\":\"");
    out.Put(kHomePlmn);
    out.Put("\",\"enb_id\":");
    out.Int(D.id_number);
    if (D.mode != AccessMode::kOpen) {
      out.Put(",\"csg_id\":");
      out.Int(D.id_number);
    }
    out.Put("}\n");
  }
  return out.Close();
}

Status Generator::WriteCells(const std::string& path) {
  OutFile out;
  FG_RETURN_IF_ERROR(out.Open(path));
  out.Put("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n");
  for (const MacroCell& c : cells_.cells()) {
    out.Put("LTE,450,");
    out.Int(kOperators[c.op].mnc);
    out.Put(',');
    out.Int(c.tac);
    out.Put(',');
    out.Int(static_cast<int64_t>(c.eci));
    out.Put(',');
    out.Int(c.pci);
    out.Put(',');
    out.Fixed(c.lon, 6);
    out.Put(',');
    out.Fixed(c.lat, 6);
    out.Put(',');
    out.Int(c.range_m);
    out.Put(',');
    out.Int(c.samples);
    out.Put(",1,");
    out.Int(c.created_s);
    out.Put(',');
    out.Int(c.updated_s);
    out.Put(",0\n");
  }
  return out.Close();
}

Status Generator::WriteTruth(const std::string& path) {
  OutFile out;
  FG_RETURN_IF_ERROR(out.Open(path));
  out.Put("{\"kind\":\"meta\",\"scenario\":");
  out.Str(opt_.scenario);
  out.Put(",\"seed\":");
  out.Put(std::to_string(opt_.seed));
  out.Put(",\"devices\":");
  out.Int(n_dev_);
  out.Put(",\"subscribers\":");
  out.Int(n_sub_);
  out.Put(",\"from\":");
  out.Ts(DayStart(0));
  out.Put(",\"to\":");
  out.Ts(DayStart(days_));
  out.Put("}\n");
  auto order = [](const char* kind) {
    std::string_view k(kind);
    return k == "attack" ? 0 : (k == "fraud_payment" ? 1 : 2);
  };
  std::stable_sort(labels_.begin(), labels_.end(), [&](const Label& a, const Label& b) {
    if (order(a.kind) != order(b.kind)) return order(a.kind) < order(b.kind);
    if (a.from != b.from) return a.from < b.from;
    int c = std::strcmp(a.rule, b.rule);
    if (c != 0) return c < 0;
    return a.dev < b.dev;
  });
  for (const Label& l : labels_) {
    out.Put("{\"kind\":\"");
    out.Put(l.kind);
    out.Put("\",\"rule\":\"");
    out.Put(l.rule);
    out.Put("\",\"device\":");
    if (l.dev == kNone) {
      out.Put("null");
    } else {
      PutDeviceId(l.dev, out);
    }
    out.Put(",\"imsi\":");
    if (l.sub == kNone) {
      out.Put("null");
    } else {
      PutImsi(l.sub, out);
    }
    if (l.pci >= 0) {
      out.Put(",\"cell\":{\"pci\":");
      out.Int(l.pci);
      out.Put(",\"earfcn\":");
      out.Int(l.earfcn);
      out.Put('}');
    }
    out.Put(",\"from\":");
    out.Ts(l.from);
    out.Put(",\"to\":");
    out.Ts(l.to);
    if (l.merchant >= 0) {
      out.Put(",\"merchant\":\"");
      out.Put(kMerchants[l.merchant]);
      out.Put("\",\"amount\":");
      out.Int(l.amount);
    }
    out.Put("}\n");
  }
  return out.Close();
}

// ---------------------------------------------------------------------------

Generator::Generator(const SimOptions& options) : opt_(options) {
  base_ = ((opt_.start_ms + kKstOffset) / kDay) * kDay - kKstOffset;
  if (opt_.start_ms + kKstOffset < 0) base_ -= kDay;  // floor for times before 1970
  days_ = static_cast<int>(opt_.days);
  n_dev_ = opt_.devices;
  n_sub_ = opt_.subscribers ? opt_.subscribers : opt_.devices * 3;
  const std::string& s = opt_.scenario;
  bool all = s == "all";
  kt_ = all || s == "kt-2025";
  clone_ = all || s == "clone";
  decom_ = all || s == "decommissioned";
  rogue_ = all || s == "rogue-radio";
  stale_ = all || s == "stale-endpoint";
  identity_ = all || s == "identity-theft";
  for (int i = 0; i < 4; ++i) {
    legacy_fp_[i] = MixKey(opt_.seed, static_cast<uint64_t>(Stream::kCert), 0xFFFFFFFFu, static_cast<uint64_t>(i));
  }
}

Status Generator::Run(SimSummary* summary) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(opt_.out_dir, ec);
  if (ec) return Status::Unavailable("cannot create " + opt_.out_dir + ": " + ec.message());

  cells_.Build(opt_.seed, base_ / 1000);
  BuildFleet();
  BuildSubscribers();
  buckets_.assign(static_cast<size_t>(days_), {});
  PlanScenario();

  const fs::path dir(opt_.out_dir);
  FG_RETURN_IF_ERROR(WriteRegistry((dir / "registry.jsonl").string()));
  FG_RETURN_IF_ERROR(WriteCells((dir / "cells.csv").string()));
  OutFile events;
  FG_RETURN_IF_ERROR(events.Open((dir / "events.jsonl").string()));
  for (int day = 0; day < days_; ++day) {
    downtime_.clear();
    // About 38 events per device a day with 3 subscribers each: reserve once
    // instead of growing (and copying) a few hundred MB.
    auto& bucket = buckets_[static_cast<size_t>(day)];
    bucket.reserve(bucket.size() + 12 * static_cast<size_t>(n_dev_) + 10 * static_cast<size_t>(n_sub_));
    for (uint32_t d = 0; d < n_dev_; ++d) DeviceDay(d, day);
    PlanVisits(day);
    for (uint32_t s = 0; s < n_sub_; ++s) SubscriberDay(s, day);
    FG_RETURN_IF_ERROR(FlushDay(day, events));
  }
  uint64_t event_bytes = events.bytes();
  FG_RETURN_IF_ERROR(events.Close());
  if (late_ != 0) {
    return Status::Internal(std::to_string(late_) + " simulated events fell on days already written");
  }
  FG_RETURN_IF_ERROR(WriteTruth((dir / "truth.jsonl").string()));

  summary->devices = n_dev_;
  summary->subscribers = n_sub_;
  summary->cells = cells_.cells().size();
  summary->events = events_written_ - unformatted_;
  summary->labels = labels_.size();
  summary->event_bytes = event_bytes;
  summary->from_ms = DayStart(0);
  summary->to_ms = DayStart(days_);
  return Status::Ok();
}

}  // namespace fg::sim
