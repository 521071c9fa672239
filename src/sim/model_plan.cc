// The scenario: benign look-alikes that are always there, and the attacks
// of the chosen scenario, with their labels (docs/detection.md).

#include <algorithm>
#include <cmath>

#include "sim/model.h"

namespace fg::sim {

namespace {

constexpr uint32_t kTestNet2 = 0xC6336400u;  // 198.51.100.0/24: an overseas VPS
constexpr uint32_t kTestNet1 = 0xC0000200u;  // 192.0.2.0/24

Point Toward(Point p, double dist, double angle) {
  return Area::Clamp({p.x + dist * std::cos(angle), p.y + dist * std::sin(angle)});
}

}  // namespace

void Generator::AddLabel(const char* kind, const char* rule, uint32_t dev, int64_t from, int64_t to) {
  Label l;
  l.kind = kind;
  l.rule = rule;
  l.dev = dev;
  l.from = from;
  l.to = to;
  labels_.push_back(l);
}

uint32_t Generator::TakeFrom(std::vector<uint32_t>& pool, Rng& r) {
  // Pools overlap: skip what another plan already took.
  while (!pool.empty()) {
    size_t i = r.Below(pool.size());
    uint32_t d = pool[i];
    pool[i] = pool.back();
    pool.pop_back();
    Role role = devices_[d].role;
    if (role == Role::kNormal || role == Role::kDormant || role == Role::kDecommissioned ||
        role == Role::kSuspended) {
      return d;
    }
  }
  return kNone;
}

void Generator::ExposeMembers(uint32_t dev, int64_t from) {
  const SimDevice& D = devices_[dev];
  for (uint32_t i = 0; i < D.csg_count; ++i) {
    uint32_t s = csg_[D.csg_begin + i];
    if (s >= n_sub_) continue;
    if (subs_[s].exposed_from > from) {
      subs_[s].exposed_from = from;
      subs_[s].exposed_dev = dev;
    }
  }
}

uint32_t Generator::AddCounterfeitDevice(uint32_t id_number) {
  SimDevice D;
  D.id_number = id_number;
  D.registered = false;
  D.role = Role::kCounterfeit;
  D.reg_status = DeviceStatus::kActive;
  D.gnss = true;
  devices_.push_back(D);
  return static_cast<uint32_t>(devices_.size() - 1);
}

std::vector<uint32_t> Generator::MacroSubscribersNear(Point p, int64_t t, double radius, size_t max_n,
                                                      bool allow_victims) const {
  std::vector<std::pair<double, uint32_t>> found;
  Point c = Area::Clamp(p);
  int reach = static_cast<int>(radius / 1000) + 1;
  int bx = static_cast<int>(c.x / 1000), by = static_cast<int>(c.y / 1000);
  for (int y = std::max(0, by - reach); y <= std::min(29, by + reach); ++y) {
    for (int x = std::max(0, bx - reach); x <= std::min(29, bx + reach); ++x) {
      for (uint32_t s : home_grid_[x + 30 * y]) {
        const SimSubscriber& S = subs_[s];
        if ((S.victim && !allow_victims) || S.exposed_from != INT64_MAX) continue;
        bool on_femto = false;
        Point q = PlaceAt(s, t, &on_femto);
        if (on_femto) continue;
        double d = Dist(q, p);
        if (d <= radius) found.push_back({d, s});
      }
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<uint32_t> out;
  for (size_t i = 0; i < found.size() && out.size() < max_n; ++i) out.push_back(found[i].second);
  return out;
}

void Generator::PlanScenario() {
  attack_day_ = days_ >= 2 ? 1 : 0;
  for (uint32_t d = 0; d < n_dev_; ++d) {
    const SimDevice& D = devices_[d];
    bool real_member = D.csg_count > 0 && csg_[D.csg_begin] < n_sub_;
    switch (D.role) {
      case Role::kNormal:
        if (D.kind == DevKind::kHome && real_member && D.gnss) {
          pool_home_.push_back(d);
          if (D.csg_count == 1 && subs_[csg_[D.csg_begin]].works) pool_single_.push_back(d);
        }
        break;
      case Role::kDecommissioned:
        pool_decom_.push_back(d);
        break;
      case Role::kSuspended:
        pool_susp_.push_back(d);
        break;
      case Role::kDormant:
        if (D.mode == AccessMode::kClosed) pool_dormant_closed_.push_back(d);
        if (D.kind == DevKind::kHome) pool_dormant_home_.push_back(d);
        break;
      default:
        break;
    }
  }
  PlanMoves();
  PlanSwaps();
  if (stale_) PlanStaleEndpoint();  // first: the rotation decides which endpoint attackers use
  if (kt_) PlanKt();
  if (clone_) PlanClone();
  if (decom_) PlanDecommissioned();
  if (rogue_) PlanRogueRadio();
  PlanGlitches();
  if (identity_) PlanIdentityTheft();  // last: the other scenarios pick the same devices as before
}

// ---------------------------------------------------------------------------
// Benign look-alikes

// A customer moves house with the femtocell: down in the morning, up a few
// hours later 3-8 km away, same ISP (new address in the registered prefix),
// stationary afterwards. location.mismatch may fire (quarantine only).
void Generator::PlanMoves() {
  Rng r(opt_.seed, Stream::kAttack, 1);
  uint32_t n = std::max<uint32_t>(1, n_dev_ / 20000);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t d = TakeFrom(pool_home_, r);
    if (d == kNone) return;
    SimDevice& D = devices_[d];
    D.role = Role::kMoved;
    D.move_down = Clock(0, 10, 0) + r.Range(0, 60 * kMin);
    D.move_up = D.move_down + r.Range(3 * kHour, 4 * kHour);
    Point to = D.actual;
    for (int tries = 0; tries < 100; ++tries) {
      to = Toward(D.actual, r.Uniform(3000, 8000), r.Uniform(0, 6.283185307179586));
      if (Area::District(to) != Area::District(D.actual) && to.x > 500 && to.y > 500 &&
          to.x < Area::kSizeM - 500 && to.y < Area::kSizeM - 500) {
        break;
      }
    }
    D.moved_to = to;
    int64_t end = DayStart(days_);
    AddLabel("expected", "location.mismatch", d, D.move_up, end);
    AddLabel("expected", "payment.risk", d, D.move_up, end);
    ExposeMembers(d, D.move_up);
  }
}

// A femtocell swapped for a replacement: the new unit is provisioned in the
// registry at the same site for the same CSG; the old one goes down, is
// decommissioned, the new one is activated and connects with its own
// certificate. Nothing should fire.
void Generator::PlanSwaps() {
  Rng r(opt_.seed, Stream::kAttack, 2);
  uint32_t n = std::max<uint32_t>(1, n_dev_ / 20000);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t o = TakeFrom(pool_home_, r);
    uint32_t p = TakeFrom(pool_dormant_home_, r);
    if (o == kNone || p == kNone) return;
    // The unit that becomes the replacement leaves its old household (they
    // never had it working anyway: it was dormant).
    SimDevice& P = devices_[p];
    for (uint32_t k = 0; k < P.csg_count; ++k) {
      uint32_t s = csg_[P.csg_begin + k];
      if (s < n_sub_ && subs_[s].home_dev == p) subs_[s].home_dev = kNone;
    }
    SimDevice& O = devices_[o];
    P.site = O.site;
    P.actual = O.actual;
    P.radius_m = O.radius_m;
    P.prefix = O.prefix;
    P.ip = DeviceIp(O.prefix, r);
    P.csg_begin = O.csg_begin;
    P.csg_count = O.csg_count;
    P.kind = O.kind;
    P.mode = O.mode;
    P.max_ues = O.max_ues;
    P.owner = O.owner;
    P.gnss = O.gnss;
    P.segw = O.segw;
    P.reg_status = DeviceStatus::kProvisioned;
    P.role = Role::kSwapNew;
    O.role = Role::kSwapOld;
    O.successor = p;
    int64_t t = Clock(0, 11, 0) + r.Range(0, 60 * kMin);
    O.connect_until = t;
    Rec& dec = Push(EvType::kDeviceStatus, t + r.Range(1 * kMin, 5 * kMin));
    dec.dev = o;
    dec.u8 = static_cast<uint8_t>(DeviceStatus::kDecommissioned);
    Rec& act = Push(EvType::kDeviceStatus, t + r.Range(6 * kMin, 9 * kMin));
    act.dev = p;
    act.u8 = static_cast<uint8_t>(DeviceStatus::kActive);
    P.connect_from = t + r.Range(10 * kMin, 20 * kMin);
  }
}

// Measurement glitches: now and then one UE reports a neighbour nobody
// explains. A single odd report must not raise cell.unregistered; they are
// hours apart so two never fall in one window.
void Generator::PlanGlitches() {
  Rng r(opt_.seed, Stream::kAttack, 60);
  const int n = days_ * 6;
  for (int g = 0; g < n; ++g) {
    int64_t t = base_ + g * 4 * kHour + r.Range(0, 60 * kMin);
    for (int tries = 0; tries < 30; ++tries) {
      uint32_t s = static_cast<uint32_t>(r.Below(n_sub_));
      bool on_femto = false;
      Point p = PlaceAt(s, t, &on_femto);
      if (on_femto || subs_[s].victim) continue;
      int pci = cells_.FreePci(p, 6500, r, rogue_radio_.on ? rogue_radio_.pci : -1);
      int earfcn = kOperators[kHomeOperator].earfcn[r.Below(2)];
      Rec& m = Push(EvType::kMeas, t);
      m.sub = s;
      m.x = static_cast<float>(p.x);
      m.y = static_cast<float>(p.y);
      m.a = static_cast<uint32_t>(r.Next());
      m.u8 = 2;
      m.b = static_cast<uint32_t>(pci) | (static_cast<uint32_t>(earfcn) << 16);
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// Attacks

// kt-2025: the fleet's legacy shared credential is extracted; counterfeit
// boxes built from it (some reusing identities of lost or dormant units,
// some with made-up identities) are driven at night through several
// districts, capture nearby phones, intercept their OTP/ARS and buy gift
// vouchers through carrier billing.
void Generator::PlanKt() {
  Rng r(opt_.seed, Stream::kAttack, 10);
  const int boxes = std::max<int>(4, static_cast<int>(n_dev_ / 25000));
  const int64_t night = Clock(attack_day_, 0, 30);
  const int64_t end = DayStart(days_);
  struct Box {
    uint32_t dev;
    int64_t up;
  };
  std::vector<Box> started;
  int64_t t_start = night;
  for (int i = 0; i < boxes; ++i) {
    int type = i % 4;  // 0 made-up id, 1 lost unit (inactive), 2 dormant unit, 3 made-up id, REM only
    uint32_t dev = kNone;
    if (type == 1) {
      dev = (i / 4) % 2 == 0 ? TakeFrom(pool_decom_, r) : TakeFrom(pool_susp_, r);
      if (dev == kNone) dev = TakeFrom(pool_decom_, r);
      if (dev == kNone) dev = TakeFrom(pool_susp_, r);
    } else if (type == 2) {
      dev = TakeFrom(pool_dormant_closed_, r);
    }
    if (dev == kNone && (type == 1 || type == 2)) type = 0;
    if (type == 0 || type == 3) {
      dev = AddCounterfeitDevice(8000000 + static_cast<uint32_t>(i) * 1000 + static_cast<uint32_t>(r.Below(1000)));
    } else {
      devices_[dev].role = Role::kReused;
    }

    // The route: stops where people sleep on the macro network, each in
    // another district, 3-10 km apart.
    const int n_stops = 3 + static_cast<int>(r.Below(3));
    std::vector<Point> stops;
    for (int k = 0; k < n_stops; ++k) {
      bool found = false;
      for (int tries = 0; tries < 80 && !found; ++tries) {
        uint32_t s = static_cast<uint32_t>(r.Below(n_sub_));
        if (subs_[s].victim || subs_[s].exposed_from != INT64_MAX) continue;
        bool on_femto = false;
        Point h = PlaceAt(s, night, &on_femto);
        if (on_femto) continue;
        if (k > 0) {
          double dd = Dist(h, stops.back());
          if (dd < 3000 || dd > 10000 || Area::District(h) == Area::District(stops.back())) continue;
        }
        stops.push_back(h);
        found = true;
      }
      if (!found) {
        stops.push_back(k == 0 ? Point{r.Uniform(3000, 27000), r.Uniform(3000, 27000)}
                               : Toward(stops.back(), r.Uniform(3000, 6000), r.Uniform(0, 6.283185307179586)));
      }
    }
    t_start += r.Range(3 * kMin, 12 * kMin);
    int64_t t = t_start;
    const int64_t up = t;
    const uint32_t ip = (r.Chance(0.5) ? kTestNet2 : kTestNet1) + 1 + static_cast<uint32_t>(r.Below(254));
    SessionUp(dev, up, ip, CurrentEndpoint(up), kLegacyCert);
    const uint32_t session = devices_[dev].session_no;
    std::vector<std::pair<int64_t, Point>> route;
    Point here = Toward(stops[0], r.Uniform(3000, 4000), r.Uniform(0, 6.283185307179586));
    route.push_back({t, here});
    constexpr double kSpeed = 8.3;  // m/s, 30 km/h through town at night
    int64_t first_attach = INT64_MAX, last_detach = 0, first_otp = INT64_MAX, last_otp = 0;
    for (const Point& stop : stops) {
      const int64_t arrive = t + static_cast<int64_t>(Dist(here, stop) / kSpeed * 1000) + kMin;
      route.push_back({arrive, stop});
      const size_t want = 2 + r.Below(4);
      std::vector<uint32_t> victims = MacroSubscribersNear(stop, arrive, 800, want, false);
      if (victims.size() < 2) victims = MacroSubscribersNear(stop, arrive, 2500, want, false);
      if (victims.size() < 2) victims = MacroSubscribersNear(stop, arrive, 45000, want, false);
      std::vector<int64_t> at(victims.size());
      for (auto& a : at) a = arrive + r.Range(1 * kMin, 8 * kMin);
      std::sort(at.begin(), at.end());
      for (size_t j = 0; j < victims.size(); ++j) {
        Rec& e = Push(EvType::kUeAttach, at[j]);
        e.dev = dev;
        e.sub = victims[j];
        first_attach = std::min(first_attach, at[j]);
      }
      // Only once the phones are held: OTP / ARS through the box, then the payment.
      int64_t tp = (at.empty() ? arrive : at.back()) + r.Range(1 * kMin, 4 * kMin);
      for (uint32_t v : victims) {
        int n_pay = r.Chance(0.3) ? 2 : 1;
        for (int q = 0; q < n_pay; ++q) {
          PayChannel ch = r.Chance(0.7) ? PayChannel::kSmsOtp : PayChannel::kArs;
          Rec& m = Push(EvType::kSms, tp);
          m.dev = dev;
          m.sub = v;
          m.u8 = static_cast<uint8_t>(ch == PayChannel::kSmsOtp ? SmsClass::kOtp : SmsClass::kArs);
          m.a = static_cast<uint32_t>(r.Below(5));
          first_otp = std::min(first_otp, tp);
          last_otp = std::max(last_otp, tp);
          int64_t pay_t = tp + r.Range(20 * kSec, 60 * kSec);
          int merchant = kFraudMerchants[r.Below(4)];
          int64_t amount = 10000 + 5000 * static_cast<int64_t>(r.Below(9));
          Payment(v, pay_t, ch, merchant, amount, dev);
          tp = pay_t + r.Range(30 * kSec, 2 * kMin);
        }
      }
      const int64_t depart = std::max(tp + kMin, arrive + r.Range(30 * kMin, 45 * kMin));
      for (size_t j = 0; j < victims.size(); ++j) {
        uint32_t v = victims[j];
        int64_t det = depart + r.Range(0, 60 * kSec);
        Rec& e = Push(EvType::kUeDetach, det);
        e.dev = dev;
        e.sub = v;
        last_detach = std::max(last_detach, det);
        captures_[v].push_back({at[j], det, dev});
        SimSubscriber& V = subs_[v];
        V.victim = true;
        if (V.exposed_from > at[j]) {
          V.exposed_from = at[j];
          V.exposed_dev = dev;
        }
      }
      route.push_back({depart, stop});
      here = stop;
      t = depart + r.Range(30 * kSec, 2 * kMin);
    }
    Point away = Toward(here, r.Uniform(1500, 3000), r.Uniform(0, 6.283185307179586));
    t += static_cast<int64_t>(Dist(here, away) / kSpeed * 1000);
    route.push_back({t, away});
    const int64_t down = t + r.Range(1 * kMin, 5 * kMin);
    route.push_back({down, away});
    SessionDown(dev, down, session);

    auto where = [&](int64_t ts) {
      for (size_t k = 0; k + 1 < route.size(); ++k) {
        if (ts >= route[k].first && ts <= route[k + 1].first) {
          int64_t span = std::max<int64_t>(1, route[k + 1].first - route[k].first);
          return Lerp(route[k].second, route[k + 1].second, static_cast<double>(ts - route[k].first) / span);
        }
      }
      return route.back().second;
    };
    if (type != 3) {
      for (int64_t ts = up + 30 * kSec; ts < down; ts += 5 * kMin) LocationFix(dev, ts, where(ts), r);
    }
    const int64_t rem_every = type == 3 ? 5 * kMin : 10 * kMin;
    for (int64_t ts = up + 60 * kSec; ts < down; ts += rem_every) RemScan(dev, ts, where(ts), r);

    if (type == 1) AddLabel("attack", "device.inactive", dev, up, down);
    if (type == 0 || type == 3) AddLabel("attack", "device.unknown", dev, up, down);
    if (type == 1 || type == 2) AddLabel("attack", "location.mismatch", dev, up, down);
    AddLabel("attack", "location.moving", dev, up, down);
    if (first_attach != INT64_MAX) AddLabel("attack", "ue.capture", dev, first_attach, last_detach);
    if (first_otp != INT64_MAX) AddLabel("attack", "sms.intercept", dev, first_otp, last_otp);
    if (first_attach != INT64_MAX) AddLabel("expected", "payment.risk", dev, first_attach, end);
    started.push_back({dev, up});
  }
  // cert.shared: the legacy certificate is "shared" from the second identity
  // that presents it on.
  std::sort(started.begin(), started.end(), [](const Box& a, const Box& b) { return a.up < b.up; });
  for (size_t i = 1; i < started.size(); ++i) {
    for (const Label& l : labels_) {
      if (l.dev == started[i].dev && std::string_view(l.rule) == "location.moving") {
        AddLabel("attack", "cert.shared", started[i].dev, l.from, l.to);
        break;
      }
    }
  }
}

// clone: a unique, valid certificate copied onto a second box that connects
// from another ISP's line while the real unit stays connected.
void Generator::PlanClone() {
  Rng r(opt_.seed, Stream::kAttack, 20);
  uint32_t x = TakeFrom(pool_single_, r);
  if (x == kNone) x = TakeFrom(pool_home_, r);
  if (x == kNone) return;
  const int64_t up = Clock(attack_day_, 13, 0) + r.Range(0, 60 * kMin);
  const int64_t down = up + r.Range(3 * kHour, 5 * kHour);
  SimDevice& X = devices_[x];
  X.role = Role::kCloneVictim;
  X.quiet_from = up - 2 * kHour;  // the real unit stays up through the attack
  uint32_t ip = OtherLineIp(x, r);
  uint8_t segw = static_cast<uint8_t>((X.segw + 1 + r.Below(3)) % 4);
  SessionUp(x, up, ip, CurrentEndpoint(up), x).u16 = segw;
  SessionDown(x, down, devices_[x].session_no);
  AddLabel("attack", "cert.clone", x, up, down);
  AddLabel("attack", "location.mismatch", x, up, down);
  AddLabel("expected", "payment.risk", x, up, DayStart(days_));
  ExposeMembers(x, up);
}

// decommissioned: a retired unit comes back (from its old line), twice; a
// second one, if the fleet has it, from someone else's line.
void Generator::PlanDecommissioned() {
  Rng r(opt_.seed, Stream::kAttack, 30);
  for (int unit = 0; unit < 2; ++unit) {
    uint32_t d = TakeFrom(pool_decom_, r);
    if (d == kNone) return;
    SimDevice& D = devices_[d];
    D.role = Role::kReturning;
    const bool own_line = unit == 0;
    const uint32_t ip = own_line ? DeviceIp(D.prefix, r) : OtherLineIp(d, r);
    int64_t t = Clock(attack_day_, 16, 0) + r.Range(0, 60 * kMin) + unit * 30 * kMin;
    const int64_t first = t;
    int64_t last_down = t;
    for (int visit = 0; visit < 2; ++visit) {
      SessionUp(d, t, ip, CurrentEndpoint(t), d);
      uint32_t session = devices_[d].session_no;
      RemScan(d, t + r.Range(20 * kSec, 60 * kSec), D.actual, r);
      if (D.gnss) LocationFix(d, t + r.Range(40 * kSec, 180 * kSec), D.actual, r);
      last_down = t + r.Range(60 * kMin, 150 * kMin);
      SessionDown(d, last_down, session);
      t = last_down + r.Range(40 * kMin, 80 * kMin);
    }
    AddLabel("attack", "device.inactive", d, first, last_down);
    if (!own_line) AddLabel("attack", "location.mismatch", d, first, last_down);
  }
}

// rogue-radio: a fake base station that never touches the core. Macro UEs
// near it report a strong neighbour with a PCI no nearby cell uses.
void Generator::PlanRogueRadio() {
  Rng r(opt_.seed, Stream::kAttack, 40);
  RogueRadio& rr = rogue_radio_;
  rr.from = Clock(attack_day_, 10, 30) + r.Range(0, 30 * kMin);
  rr.to = rr.from + r.Range(4 * kHour, 5 * kHour);
  const int64_t probe = rr.from + 30 * kMin;
  // Put it where the most people are on the macro network (a business
  // district on a weekday): pick the best of a few candidate spots.
  std::vector<Point> where;
  where.reserve(n_sub_);
  for (uint32_t s = 0; s < n_sub_; ++s) {
    bool on_femto = false;
    bool stay = false;
    Point p = PlaceAt(s, probe, &on_femto);
    bool on2 = false;
    Point q = PlaceAt(s, rr.from + 2 * kHour, &on2);
    stay = Dist(p, q) < 50;
    if (!on_femto && stay) where.push_back(p);
  }
  Point best = Area::DistrictCenter(12);
  size_t best_n = 0;
  for (int c = 0; c < 40 && !where.empty(); ++c) {
    Point cand = where[r.Below(where.size())];
    size_t n = 0;
    for (const Point& p : where) n += Dist(p, cand) <= 900 ? 1 : 0;
    if (n > best_n) {
      best_n = n;
      best = cand;
    }
  }
  rr.pos = Toward(best, r.Uniform(50, 200), r.Uniform(0, 6.283185307179586));
  rr.pci = cells_.FreePci(rr.pos, 7000, r);
  rr.earfcn = kOperators[kHomeOperator].earfcn[0];
  rr.on = true;
  Label l;
  l.kind = "attack";
  l.rule = "cell.unregistered";
  l.from = rr.from;
  l.to = rr.to;
  l.pci = rr.pci;
  l.earfcn = rr.earfcn;
  labels_.push_back(l);
}

// stale-endpoint: the operator rotates its authentication endpoint (new one
// active, old one draining, every unit moves over, old one retired); then a
// box built from an old copy of a unit's config connects to the retired
// endpoint while the real unit is up on the new one.
void Generator::PlanStaleEndpoint() {
  Rng r(opt_.seed, Stream::kAttack, 50);
  rotation_.on = true;
  rotation_.start = Clock(attack_day_, 6, 0);
  rotation_.retire = Clock(attack_day_, 9, 30);
  Rec& e0 = Push(EvType::kEndpointStatus, DayStart(0));
  e0.u8 = 0;
  e0.u16 = 0;
  Rec& e1 = Push(EvType::kEndpointStatus, rotation_.start);
  e1.u8 = 1;
  e1.u16 = 0;
  Rec& e2 = Push(EvType::kEndpointStatus, rotation_.start + 1);
  e2.u8 = 0;
  e2.u16 = 1;
  Rec& e3 = Push(EvType::kEndpointStatus, rotation_.retire);
  e3.u8 = 0;
  e3.u16 = 2;

  uint32_t y = TakeFrom(pool_single_, r);
  if (y == kNone) y = TakeFrom(pool_home_, r);
  if (y == kNone) return;
  const int64_t up = Clock(attack_day_, 19, 0) + r.Range(0, 60 * kMin);
  const int64_t down = up + r.Range(1 * kHour, 3 * kHour);
  SimDevice& Y = devices_[y];
  Y.role = Role::kStaleVictim;
  Y.quiet_from = up - 2 * kHour;
  SessionUp(y, up, OtherLineIp(y, r), 0, y);
  SessionDown(y, down, devices_[y].session_no);
  AddLabel("attack", "endpoint.retired", y, up, down);
  AddLabel("attack", "cert.clone", y, up, down);
  AddLabel("attack", "location.mismatch", y, up, down);
  AddLabel("expected", "payment.risk", y, up, DayStart(days_));
  ExposeMembers(y, up);
}

// identity-theft: two admitted femtocells (their own certificates, their
// own lines, first connected on the attack day) register over S1 as another
// femtocell of the fleet: their S1 setup names the victim's eNB id and CSG
// id from the rogue's own session address (TS 33.320's binding, rule
// identity.mismatch). The victims keep running as themselves; their own
// setups, from their own sessions, are the must-not-fire side.
void Generator::PlanIdentityTheft() {
  Rng r(opt_.seed, Stream::kAttack, 60);
  for (int k = 0; k < 2; ++k) {
    const uint32_t x = TakeFrom(pool_home_, r);
    const uint32_t v = TakeFrom(pool_home_, r);
    if (x == kNone || v == kNone) return;
    SimDevice& X = devices_[x];
    X.role = Role::kIdentityRogue;  // no background sessions: the box is the attacker's
    const int64_t up = Clock(attack_day_, 10 + 4 * k, 0) + r.Range(0, 60 * kMin);
    const int64_t down = up + r.Range(1 * kHour, 3 * kHour);
    Rec& s = SessionUp(x, up, X.ip, CurrentEndpoint(up), x);
    s.u8 |= kNoOwnSetup;
    Rec& setup = Push(EvType::kS1Setup, up + 2 * kSec);
    setup.dev = v;
    setup.b = X.ip;
    SessionDown(x, down, X.session_no);
    AddLabel("attack", "identity.mismatch", x, up, down);
  }
}

}  // namespace fg::sim
