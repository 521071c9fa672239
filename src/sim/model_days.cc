// The everyday background, one day at a time: femtocell sessions and
// reports, and subscribers' routines (home, commute, work, errands, shop
// visits) with their attachments, SMS, payments and measurement reports.

#include <algorithm>
#include <queue>

#include "sim/model.h"

namespace fg::sim {

namespace {

constexpr double kRogueRangeM = 1500;

int64_t MigrateTs(uint64_t seed, uint32_t d, int64_t start) {
  return start + static_cast<int64_t>(MixKey(seed, 0x316a7e, d) % static_cast<uint64_t>(3 * kHour));
}

}  // namespace

bool Generator::Weekend(int day) const {
  int64_t local_days = (base_ + kKstOffset) / kDay + day;
  int wd = static_cast<int>((local_days + 4) % 7);  // 0 = Sunday (1970-01-01 was a Thursday)
  return wd == 0 || wd == 6;
}

bool Generator::Connects(const SimDevice& d) const {
  switch (d.role) {
    case Role::kNormal:
    case Role::kSwapOld:
    case Role::kSwapNew:
    case Role::kMoved:
    case Role::kCloneVictim:
    case Role::kStaleVictim:
      return true;
    default:
      return false;
  }
}

uint8_t Generator::CurrentEndpoint(int64_t t) const {
  return rotation_.on && t >= rotation_.start ? 1 : 0;
}

uint8_t Generator::EndpointFor(uint32_t d, int64_t t, int64_t migrate_ts) const {
  if (!rotation_.on || t < rotation_.start) return 0;
  return t >= migrate_ts ? 1 : 0;
}

DayPlan Generator::PlanDay(uint32_t s, int day) const {
  const SimSubscriber& S = subs_[s];
  Rng r(opt_.seed, Stream::kPlan, s, static_cast<uint64_t>(day));
  // Draw everything first, so the stream does not depend on the branch.
  double u_leave = r.Uniform(), u_back = r.Uniform(), u_out = r.Uniform();
  double speed = r.Uniform(5.5, 8.5);  // m/s door to door
  double e_dist = r.Uniform(500, 4000), e_angle = r.Uniform(0, 6.283185307179586);
  int64_t e_start = r.Range(0, 60 * kMin), e_stay = r.Range(60 * kMin, 150 * kMin);
  DayPlan p;
  bool weekend = Weekend(day);
  if (S.works && !weekend) {
    p.away = p.to_work = true;
    p.dest = S.work;
    Point home = HomeAt(s, Clock(day, 7, 0));
    int64_t commute = std::min<int64_t>(static_cast<int64_t>(Dist(home, S.work) / speed * 1000) + 10 * kMin,
                                        100 * kMin);
    p.leave = Clock(day, 7, 0) + static_cast<int64_t>(u_leave * 120) * kMin;
    p.arrive = p.leave + commute;
    p.back_leave = Clock(day, 17, 30) + static_cast<int64_t>(u_back * 150) * kMin;
    p.back_arrive = p.back_leave + commute;
  } else if (u_out < (weekend ? 0.55 : 0.35)) {
    p.away = true;
    Point home = HomeAt(s, Clock(day, 13, 0));
    p.dest = Area::Clamp({home.x + e_dist * std::cos(e_angle), home.y + e_dist * std::sin(e_angle)});
    int64_t trip = static_cast<int64_t>(Dist(home, p.dest) / speed * 1000) + 5 * kMin;
    p.leave = Clock(day, 13, 0) + e_start;
    p.arrive = p.leave + trip;
    p.back_leave = p.arrive + e_stay;
    p.back_arrive = p.back_leave + trip;
  }
  return p;
}

Point Generator::HomeAt(uint32_t s, int64_t t) const {
  const SimSubscriber& S = subs_[s];
  if (S.home_dev != kNone) {
    const SimDevice& D = devices_[S.home_dev];
    if (D.role == Role::kMoved && t >= D.move_down) {
      // The household keeps its layout around the box (offsets from the registered site).
      return {D.moved_to.x + (S.home.x - D.site.x), D.moved_to.y + (S.home.y - D.site.y)};
    }
  }
  return S.home;
}

uint32_t Generator::HomeFemtoAt(uint32_t s, int64_t t) const {
  uint32_t d = subs_[s].home_dev;
  if (d == kNone) return kNone;
  const SimDevice& D = devices_[d];
  if (D.role == Role::kSwapOld && t >= D.connect_until) return D.successor;
  return d;
}

bool Generator::Usable(uint32_t d, int64_t t) const {
  if (d == kNone) return false;
  const SimDevice& D = devices_[d];
  if (!Connects(D) || t < D.connect_from || t >= D.connect_until) return false;
  if (D.role == Role::kMoved && t >= D.move_down && t < D.move_up + 2 * kSec) return false;
  auto it = downtime_.find(d);
  if (it != downtime_.end()) {
    for (const auto& [a, b] : it->second) {
      if (t >= a && t < b) return false;
    }
  }
  return true;
}

Point Generator::PlaceAt(uint32_t s, int64_t t, bool* on_femto) const {
  const SimSubscriber& S = subs_[s];
  int day = static_cast<int>((t - base_) / kDay);
  DayPlan p = PlanDay(s, day);
  *on_femto = false;
  if (!p.away || t < p.leave || t >= p.back_arrive) {
    uint32_t f = HomeFemtoAt(s, t);
    if (f != kNone) {
      const SimDevice& D = devices_[f];
      *on_femto = Connects(D) && t >= D.connect_from && t < D.connect_until;
    }
    return HomeAt(s, t);
  }
  if (t < p.arrive) {
    return Lerp(HomeAt(s, p.leave), p.dest, static_cast<double>(t - p.leave) / std::max<int64_t>(1, p.arrive - p.leave));
  }
  if (t < p.back_leave) {
    if (p.to_work && S.office_dev != kNone) *on_femto = Connects(devices_[S.office_dev]);
    return p.dest;
  }
  return Lerp(p.dest, HomeAt(s, p.back_arrive),
              static_cast<double>(t - p.back_leave) / std::max<int64_t>(1, p.back_arrive - p.back_leave));
}

// ---------------------------------------------------------------------------
// Femtocells

void Generator::DeviceDay(uint32_t d, int day) {
  if (!Connects(devices_[d])) return;
  SimDevice& D = devices_[d];
  const int64_t ds = DayStart(day), de = ds + kDay;
  if (ds >= D.connect_until || de <= D.connect_from) return;
  Rng r(opt_.seed, Stream::kDeviceDay, d, static_cast<uint64_t>(day));
  // Fixed draw order: the stream must not depend on which branches run.
  const bool readdress = r.Chance(0.10);
  const int64_t t_re = ds + r.Range(1 * kHour, 22 * kHour);
  const bool reboot = r.Chance(0.04);
  const int64_t t_rb = ds + r.Range(1 * kHour, 22 * kHour);
  const int64_t t_loc = ds + r.Range(0, kDay - 1);
  const int64_t t_rem = ds + r.Range(3 * kHour, 4 * kHour);
  const int64_t first_up = ds + r.Range(5 * kSec, 10 * kMin);
  const int64_t rb_gap = r.Range(60 * kSec, 240 * kSec);
  const int64_t re_gap = r.Range(1 * kSec, 25 * kSec);
  const int64_t mig_gap = r.Range(1 * kSec, 10 * kSec);
  uint32_t new_ip = DeviceIp(D.prefix, r);
  if (new_ip == D.ip) new_ip = D.prefix + 1 + ((new_ip - D.prefix) % 4093);

  enum Kind { kFirstUp, kSwapDown, kMoveDown, kMoveUp, kMigrate, kReaddress, kReboot, kLoc, kRem };
  struct Act {
    int64_t t;
    Kind kind;
  };
  std::vector<Act> acts;
  bool special = false;
  if (day == 0 && D.connect_from == INT64_MIN) acts.push_back({first_up, kFirstUp});
  if (D.role == Role::kSwapNew && D.connect_from >= ds && D.connect_from < de) {
    acts.push_back({D.connect_from, kFirstUp});
    special = true;
  }
  if (D.role == Role::kSwapOld && D.connect_until >= ds && D.connect_until < de) {
    acts.push_back({D.connect_until, kSwapDown});
    special = true;
  }
  if (D.role == Role::kMoved && D.move_down >= ds && D.move_down < de) {
    acts.push_back({D.move_down, kMoveDown});
    acts.push_back({D.move_up, kMoveUp});
    special = true;
  }
  const int64_t migrate_ts = rotation_.on ? MigrateTs(opt_.seed, d, rotation_.start) : INT64_MAX;
  if (rotation_.on && migrate_ts >= ds && migrate_ts < de) acts.push_back({migrate_ts, kMigrate});
  if (!special) {
    if (readdress && t_re < D.quiet_from) acts.push_back({t_re, kReaddress});
    if (reboot && t_rb < D.quiet_from && (!readdress || std::llabs(t_rb - t_re) > 10 * kMin)) {
      acts.push_back({t_rb, kReboot});
    }
  }
  if (D.gnss) acts.push_back({t_loc, kLoc});
  acts.push_back({t_rem, kRem});
  std::sort(acts.begin(), acts.end(), [](const Act& a, const Act& b) { return a.t != b.t ? a.t < b.t : a.kind < b.kind; });

  auto boot_reports = [&](int64_t up_t) {
    RemScan(d, up_t + r.Range(20 * kSec, 60 * kSec), D.actual, r);
    if (D.gnss) LocationFix(d, up_t + r.Range(40 * kSec, 180 * kSec), D.actual, r);
  };
  for (const Act& a : acts) {
    if (a.t < D.connect_from || (a.t >= D.connect_until && a.kind != kSwapDown)) continue;
    switch (a.kind) {
      case kFirstUp:
        if (D.up) break;
        SessionUp(d, a.t, D.ip, EndpointFor(d, a.t, migrate_ts), d);
        D.up = true;
        downtime_[d].push_back({ds, a.t + 2 * kSec});
        boot_reports(a.t);
        break;
      case kSwapDown:
        if (!D.up) break;
        SessionDown(d, a.t, D.session_no);
        D.up = false;
        break;
      case kMoveDown:
        if (!D.up) break;
        SessionDown(d, a.t, D.session_no);
        D.up = false;
        break;
      case kMoveUp:
        // Same ISP, new address in the registered prefix; the box is now elsewhere.
        D.actual = D.moved_to;
        D.ip = new_ip;
        SessionUp(d, a.t, D.ip, EndpointFor(d, a.t, migrate_ts), d);
        D.up = true;
        boot_reports(a.t);
        break;
      case kMigrate: {
        if (!D.up || D.endpoint == 1) break;
        // Make before break: up on the new endpoint, old session down within seconds.
        uint32_t old = D.session_no;
        SessionUp(d, a.t, D.ip, 1, d);
        SessionDown(d, a.t + mig_gap, old);
        break;
      }
      case kReaddress: {
        if (!D.up) break;
        // ISP re-addressing: new address in the same prefix, old session gone within 25 s.
        uint32_t old = D.session_no;
        D.ip = new_ip;
        SessionUp(d, a.t, D.ip, EndpointFor(d, a.t, migrate_ts), d);
        SessionDown(d, a.t + re_gap, old);
        break;
      }
      case kReboot: {
        if (!D.up) break;
        SessionDown(d, a.t, D.session_no);
        int64_t up_t = a.t + rb_gap;
        SessionUp(d, up_t, D.ip, EndpointFor(d, up_t, migrate_ts), d);
        downtime_[d].push_back({a.t, up_t + 2 * kSec});
        boot_reports(up_t);
        break;
      }
      case kLoc:
        if (D.up && Usable(d, a.t)) LocationFix(d, a.t, D.actual, r);
        break;
      case kRem:
        if (D.up && Usable(d, a.t)) RemScan(d, a.t, D.actual, r);
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// Shop visits: who goes into an open/hybrid femtocell's shop today, kept
// below 3/4 of its max_ues (staff included).

void Generator::PlanVisits(int day) {
  visits_.clear();
  visit_of_.assign(n_sub_, -1);
  if (shops_.empty()) return;
  std::vector<Visit> cand;
  std::vector<uint32_t> near;
  for (uint32_t s = 0; s < n_sub_; ++s) {
    Rng r(opt_.seed, Stream::kVisit, s, static_cast<uint64_t>(day));
    DayPlan p = PlanDay(s, day);
    if (!p.away) continue;
    double u = r.Uniform();
    int64_t from, to;
    if (p.to_work) {
      if (u >= 0.08) continue;
      from = Clock(day, 11, 30) + r.Range(0, 90 * kMin);
      to = from + r.Range(20 * kMin, 60 * kMin);
    } else {
      if (u >= 0.30) continue;
      from = p.arrive + r.Range(0, 30 * kMin);
      to = std::min(from + r.Range(20 * kMin, 60 * kMin), p.back_leave - kMin);
      if (to <= from + 5 * kMin) continue;
    }
    near.clear();
    Point c = Area::Clamp(p.dest);
    int bx = static_cast<int>(c.x / 1000), by = static_cast<int>(c.y / 1000);
    for (int y = std::max(0, by - 1); y <= std::min(29, by + 1); ++y) {
      for (int x = std::max(0, bx - 1); x <= std::min(29, bx + 1); ++x) {
        for (uint32_t i : shop_grid_[x + 30 * y]) {
          if (Dist(devices_[shops_[i]].actual, p.dest) <= 1500) near.push_back(i);
        }
      }
    }
    if (near.empty()) continue;
    std::sort(near.begin(), near.end());
    cand.push_back({s, near[r.Below(near.size())], from, to});
  }
  std::sort(cand.begin(), cand.end(), [](const Visit& a, const Visit& b) {
    return a.shop != b.shop ? a.shop < b.shop : (a.from != b.from ? a.from < b.from : a.sub < b.sub);
  });
  size_t i = 0;
  while (i < cand.size()) {
    uint32_t shop = cand[i].shop;
    const SimDevice& D = devices_[shops_[shop]];
    int cap = D.max_ues * 3 / 4 - D.csg_count;
    std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> ends;
    for (; i < cand.size() && cand[i].shop == shop; ++i) {
      const Visit& v = cand[i];
      while (!ends.empty() && ends.top() <= v.from) ends.pop();
      if (static_cast<int>(ends.size()) >= cap) continue;
      ends.push(v.to + 2 * kMin);  // detach lags a little
      visit_of_[v.sub] = static_cast<int32_t>(visits_.size());
      visits_.push_back({v.sub, shops_[shop], v.from, v.to});
    }
  }
}

// ---------------------------------------------------------------------------
// Subscribers

void Generator::BuildPieces(uint32_t s, int day, const DayPlan& plan, std::vector<Piece>* pieces) {
  const SimSubscriber& S = subs_[s];
  const int64_t ds = DayStart(day), de = ds + kDay;
  struct Seg {
    int64_t t0, t1;
    Place place;
  };
  Seg segs[5];
  int n = 0;
  if (plan.away) {
    segs[n++] = {ds, plan.leave, Place::kHome};
    segs[n++] = {plan.leave, plan.arrive, Place::kOut};
    segs[n++] = {plan.arrive, plan.back_leave, Place::kDest};
    segs[n++] = {plan.back_leave, plan.back_arrive, Place::kBack};
    segs[n++] = {plan.back_arrive, de, Place::kHome};
  } else {
    segs[n++] = {ds, de, Place::kHome};
  }
  const Visit* visit = visit_of_[s] >= 0 ? &visits_[static_cast<size_t>(visit_of_[s])] : nullptr;
  pieces->clear();
  std::vector<int64_t> cuts;
  auto add_device_cuts = [&](uint32_t d) {
    if (d == kNone) return;
    const SimDevice& D = devices_[d];
    cuts.push_back(D.connect_from);
    cuts.push_back(D.connect_until);
    if (D.role == Role::kMoved) {
      cuts.push_back(D.move_down);
      cuts.push_back(D.move_up + 2 * kSec);
    }
    auto it = downtime_.find(d);
    if (it != downtime_.end()) {
      for (const auto& [a, b] : it->second) {
        cuts.push_back(a);
        cuts.push_back(b);
      }
    }
  };
  for (int i = 0; i < n; ++i) {
    const Seg& g = segs[i];
    if (g.t1 <= g.t0) continue;
    cuts.clear();
    cuts.push_back(g.t0);
    cuts.push_back(g.t1);
    bool stationary = g.place == Place::kHome || g.place == Place::kDest;
    if (g.place == Place::kHome && S.home_dev != kNone) {
      add_device_cuts(S.home_dev);
      add_device_cuts(devices_[S.home_dev].successor);
    }
    if (g.place == Place::kDest && plan.to_work) add_device_cuts(S.office_dev);
    if (visit && stationary) {
      cuts.push_back(visit->from);
      cuts.push_back(visit->to);
      add_device_cuts(visit->shop);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      int64_t a = cuts[k], b = cuts[k + 1];
      if (a < g.t0 || b > g.t1 || b <= a) continue;
      int64_t mid = a + (b - a) / 2;
      uint32_t f = kNone;
      if (visit && stationary && mid >= visit->from && mid < visit->to) {
        if (Usable(visit->shop, mid)) f = visit->shop;
      } else if (g.place == Place::kHome) {
        uint32_t h = HomeFemtoAt(s, mid);
        if (Usable(h, mid)) f = h;
      } else if (g.place == Place::kDest && plan.to_work && Usable(S.office_dev, mid)) {
        f = S.office_dev;
      }
      if (!pieces->empty() && pieces->back().place == g.place && pieces->back().femto == f &&
          pieces->back().t1 == a) {
        pieces->back().t1 = b;
      } else {
        Piece p;
        p.t0 = a;
        p.t1 = b;
        p.place = g.place;
        p.femto = f;
        pieces->push_back(p);
      }
    }
  }
  // A counterfeit femtocell holding the subscriber overrides everything.
  auto cap = captures_.find(s);
  if (cap == captures_.end()) return;
  for (const Capture& c : cap->second) {
    std::vector<Piece> out;
    for (const Piece& p : *pieces) {
      if (c.to <= p.t0 || c.from >= p.t1 || p.captured != kNone) {
        out.push_back(p);
        continue;
      }
      if (p.t0 < c.from) {
        Piece a = p;
        a.t1 = c.from;
        out.push_back(a);
      }
      Piece m = p;
      m.t0 = std::max(p.t0, c.from);
      m.t1 = std::min(p.t1, c.to);
      m.femto = kNone;
      m.captured = c.dev;
      out.push_back(m);
      if (p.t1 > c.to) {
        Piece b = p;
        b.t0 = c.to;
        out.push_back(b);
      }
    }
    pieces->swap(out);
  }
}

void Generator::SubscriberDay(uint32_t s, int day) {
  SimSubscriber& S = subs_[s];
  Rng r(opt_.seed, Stream::kSubscriberDay, s, static_cast<uint64_t>(day));
  const DayPlan plan = PlanDay(s, day);
  std::vector<Piece> pieces;
  BuildPieces(s, day, plan, &pieces);

  auto pos_at = [&](const Piece& p, int64_t t) -> Point {
    switch (p.place) {
      case Place::kHome:
        return HomeAt(s, t);
      case Place::kDest:
        return plan.dest;
      case Place::kOut:
        return Lerp(HomeAt(s, plan.leave), plan.dest,
                    static_cast<double>(t - plan.leave) / std::max<int64_t>(1, plan.arrive - plan.leave));
      case Place::kBack:
        return Lerp(plan.dest, HomeAt(s, plan.back_arrive),
                    static_cast<double>(t - plan.back_leave) / std::max<int64_t>(1, plan.back_arrive - plan.back_leave));
    }
    return S.home;
  };
  auto meas = [&](int64_t t, Point p, bool rogue) {
    Rec& m = Push(EvType::kMeas, t);
    m.sub = s;
    m.x = static_cast<float>(p.x + r.Normal() * 25);
    m.y = static_cast<float>(p.y + r.Normal() * 25);
    m.a = static_cast<uint32_t>(r.Next());
    m.u8 = rogue ? 1 : 0;
  };
  const RogueRadio& rr = rogue_radio_;

  for (Piece& p : pieces) {
    if (p.captured != kNone) {
      if (S.attached != kNone) {
        Rec& e = Push(EvType::kUeDetach, p.t0 - 2 * kSec);
        e.dev = S.attached;
        e.sub = s;
        S.attached = kNone;
      }
      continue;  // the counterfeit's attach/detach come from the attack plan
    }
    p.attach_ts = p.t0;
    if (p.femto != S.attached) {
      if (S.attached != kNone) {
        Rec& e = Push(EvType::kUeDetach, p.t0 + r.Range(500, 3000));
        e.dev = S.attached;
        e.sub = s;
        S.attached = kNone;
      }
      if (p.femto != kNone) {
        int64_t at = p.t0 + r.Range(5 * kSec, 90 * kSec);
        if (at < p.t1 - kSec) {
          Rec& e = Push(EvType::kUeAttach, at);
          e.dev = p.femto;
          e.sub = s;
          S.attached = p.femto;
          p.attach_ts = at;
        } else {
          p.femto = kNone;
        }
      }
    }
    if (p.femto != kNone) continue;
    // On the macro network: measurement reports.
    bool moving = p.place == Place::kOut || p.place == Place::kBack;
    double mean = moving ? 12.0 * kMin : (p.place == Place::kHome ? 4.0 * kHour : 3.0 * kHour);
    for (int64_t t = p.t0 + static_cast<int64_t>(r.Exponential(mean)); t < p.t1;
         t += 1 + static_cast<int64_t>(r.Exponential(mean))) {
      Point q = pos_at(p, t);
      bool rogue = rr.on && t >= rr.from && t <= rr.to && Dist(q, rr.pos) <= kRogueRangeM;
      meas(t, q, rogue);
    }
    // A strong new neighbour triggers event reports (A3) while the rogue radio is on.
    if (rr.on && !moving && p.t1 > rr.from && p.t0 < rr.to) {
      Point q = pos_at(p, std::max(p.t0, rr.from));
      if (Dist(q, rr.pos) <= kRogueRangeM) {
        int64_t end = std::min(p.t1, rr.to);
        for (int64_t t = std::max(p.t0, rr.from) + r.Range(1 * kMin, 12 * kMin); t < end;
             t += r.Range(20 * kMin, 40 * kMin)) {
          meas(t, pos_at(p, t), true);
        }
      }
    }
  }

  auto serving_at = [&](int64_t t) -> uint32_t {
    for (const Piece& p : pieces) {
      if (t >= p.t0 && t < p.t1) {
        if (p.captured != kNone) return p.captured;
        return p.femto != kNone && t >= p.attach_ts ? p.femto : kNone;
      }
    }
    return kNone;
  };
  // The feed carries SMS delivered through a femtocell (sms.deliver names
  // the serving femtocell); the macro network's deliveries are not in it.
  auto sms = [&](int64_t t, SmsClass c, uint32_t sender) {
    uint32_t dev = serving_at(t);
    if (dev == kNone) return;
    Rec& m = Push(EvType::kSms, t);
    m.dev = dev;
    m.sub = s;
    m.u8 = static_cast<uint8_t>(c);
    m.a = sender;
  };
  const int n_p2p = r.Poisson(1.5), n_bulk = r.Poisson(0.5), n_otp = r.Poisson(0.25);
  const int64_t waking = 17 * kHour;
  for (int i = 0; i < n_p2p; ++i) {
    sms(Clock(day, 7, 0) + r.Range(0, waking - 1), SmsClass::kP2p,
        kP2pSenderFlag | static_cast<uint32_t>(r.Below(n_sub_)));
  }
  for (int i = 0; i < n_bulk; ++i) {
    sms(Clock(day, 7, 0) + r.Range(0, waking - 1), SmsClass::kBulk, static_cast<uint32_t>(r.Below(5)));
  }
  for (int i = 0; i < n_otp; ++i) {  // logins, not payments
    sms(Clock(day, 7, 0) + r.Range(0, waking - 1), SmsClass::kOtp, static_cast<uint32_t>(r.Below(5)));
  }
  // Carrier-billed payments, each preceded by its OTP SMS or ARS call.
  static constexpr int64_t kAmounts[] = {1100, 3300, 5500, 9900, 12000, 15000, 30000, 50000};
  const int n_pay = r.Poisson(0.12);
  for (int i = 0; i < n_pay; ++i) {
    int64_t t = Clock(day, 8, 0) + r.Range(0, 15 * kHour);
    double u = r.Uniform();
    PayChannel ch = u < 0.6 ? PayChannel::kSmsOtp : (u < 0.85 ? PayChannel::kArs : PayChannel::kNone);
    int merchant = static_cast<int>(r.Below(10));
    int64_t amount = kAmounts[r.Below(8)];
    uint32_t provider = static_cast<uint32_t>(r.Below(5));
    if (ch == PayChannel::kSmsOtp) sms(t - r.Range(15 * kSec, 60 * kSec), SmsClass::kOtp, provider);
    if (ch == PayChannel::kArs) sms(t - r.Range(20 * kSec, 90 * kSec), SmsClass::kArs, provider);
    Payment(s, t, ch, merchant, amount, kNone);
  }
}

}  // namespace fg::sim
