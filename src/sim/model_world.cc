// The simulated world: ISP lines, the registered fleet, subscribers.

#include <algorithm>
#include <cmath>

#include "sim/model.h"

namespace fg::sim {

namespace {

struct IspDef {
  const char* name;
  uint32_t base;  // a /12; its /20s are handed out per district
  double share;
};
// Fixed-line ISPs of the simulated city (the addresses are synthetic).
constexpr IspDef kIsps[] = {
    {"KT", 0x79800000u, 0.50},          // 121.128.0.0/12
    {"SKBroadband", 0x3AE00000u, 0.25},  // 58.224.0.0/12
    {"LGU+", 0x6AF00000u, 0.20},        // 106.240.0.0/12
    {"HelloVision", 0xB7600000u, 0.05},  // 183.96.0.0/12
};
constexpr int kIspCount = 4;
constexpr int kBlocksPerDistrict = 10;  // the last one is kept for "another line"
constexpr uint32_t kDevicesPerBlock = 1500;

Point Jitter(Point c, double sigma, Rng& r) { return {c.x + r.Normal() * sigma, c.y + r.Normal() * sigma}; }

Point InDisc(Point c, double radius, Rng& r) {
  double a = r.Uniform(0, 6.283185307179586);
  double d = radius * std::sqrt(r.Uniform());
  return {c.x + d * std::cos(a), c.y + d * std::sin(a)};
}

Point Inner(Point p) {
  auto c = [](double v) { return std::clamp(v, 300.0, Area::kSizeM - 300.0); };
  return {c(p.x), c(p.y)};
}

}  // namespace

uint32_t Generator::PrefixFor(int isp, int district, int block) const {
  return kIsps[isp].base + (static_cast<uint32_t>(district * kBlocksPerDistrict + block) << 12);
}

uint32_t Generator::OtherLineIp(uint32_t d, Rng& r) const {
  const SimDevice& D = devices_[d];
  int own = 0;
  for (int i = 0; i < kIspCount; ++i) {
    if ((D.prefix & 0xFFF00000u) == kIsps[i].base) own = i;
  }
  int other = (own + 1 + static_cast<int>(r.Below(kIspCount - 1))) % kIspCount;
  return DeviceIp(PrefixFor(other, Area::District(D.site), kBlocksPerDistrict - 1), r);
}

Point Generator::ResidentialPoint(Rng& r) const {
  if (r.Chance(0.65)) return {r.Uniform(500, Area::kSizeM - 500), r.Uniform(500, Area::kSizeM - 500)};
  return Inner(Jitter(residential_centers_[r.Below(residential_centers_.size())], 1500, r));
}

Point Generator::BusinessPoint(Rng& r, double sigma) const {
  return Inner(Jitter(business_centers_[r.Below(business_centers_.size())], sigma, r));
}

void Generator::BuildFleet() {
  Rng world(opt_.seed, Stream::kWorld, 0);
  for (int i = 0; i < 8; ++i) business_centers_.push_back({world.Uniform(6000, 24000), world.Uniform(6000, 24000)});
  for (int i = 0; i < 12; ++i) residential_centers_.push_back({world.Uniform(2000, 28000), world.Uniform(2000, 28000)});

  std::vector<uint32_t> per_block(kIspCount * Area::kDistricts, 0);
  devices_.resize(n_dev_);
  for (uint32_t d = 0; d < n_dev_; ++d) {
    Rng r(opt_.seed, Stream::kDevice, d);
    SimDevice& D = devices_[d];
    D.id_number = d + 1;
    D.owner = d + 1;
    double k = r.Uniform();
    D.kind = k < 0.82 ? DevKind::kHome : (k < 0.92 ? DevKind::kOffice : DevKind::kShop);
    switch (D.kind) {
      case DevKind::kHome:
        D.site = ResidentialPoint(r);
        D.radius_m = static_cast<uint16_t>(100 + 50 * r.Below(3));
        D.mode = AccessMode::kClosed;
        D.max_ues = 8;
        break;
      case DevKind::kOffice:
        D.site = BusinessPoint(r, 900);
        D.radius_m = 150;
        D.mode = AccessMode::kClosed;
        D.max_ues = 8;
        break;
      case DevKind::kShop:
        D.site = r.Chance(0.5) ? BusinessPoint(r, 1200) : ResidentialPoint(r);
        D.radius_m = 100;
        D.mode = r.Chance(0.6) ? AccessMode::kOpen : AccessMode::kHybrid;
        D.max_ues = static_cast<uint16_t>(8 << r.Below(D.mode == AccessMode::kOpen ? 3 : 2));
        break;
    }
    D.actual = InDisc(D.site, 0.4 * D.radius_m, r);
    D.gnss = r.Chance(0.75);
    double st = r.Uniform();
    if (st < 0.03) {
      D.reg_status = DeviceStatus::kDecommissioned;
      D.role = Role::kDecommissioned;
    } else if (st < 0.04) {
      D.reg_status = DeviceStatus::kSuspended;
      D.role = Role::kSuspended;
    } else if (st < 0.08) {
      D.reg_status = DeviceStatus::kActive;
      D.role = Role::kDormant;
    } else {
      D.reg_status = DeviceStatus::kActive;
      D.role = Role::kNormal;
    }
    double u = r.Uniform();
    int isp = 0;
    for (double acc = kIsps[0].share; isp < kIspCount - 1 && u >= acc; acc += kIsps[++isp].share) {
    }
    int district = Area::District(D.site);
    uint32_t& used = per_block[isp * Area::kDistricts + district];
    int block = static_cast<int>((used++ / kDevicesPerBlock) % (kBlocksPerDistrict - 1));
    D.prefix = PrefixFor(isp, district, block);
    D.ip = DeviceIp(D.prefix, r);
    D.segw = static_cast<uint8_t>(district % 4);
  }
  // A small fleet can draw too few lost or dormant units for the scenarios
  // (and for a replacement): top them up from ordinary home units.
  struct Quota {
    Role role;
    DeviceStatus status;
    int min;
  };
  const Quota quotas[] = {{Role::kDecommissioned, DeviceStatus::kDecommissioned, 4},
                          {Role::kSuspended, DeviceStatus::kSuspended, 2},
                          {Role::kDormant, DeviceStatus::kActive, 4}};
  for (const Quota& q : quotas) {
    int have = 0;
    for (const SimDevice& D : devices_) have += D.role == q.role && D.kind == DevKind::kHome ? 1 : 0;
    for (int tries = 0; have < q.min && tries < 10000; ++tries) {
      SimDevice& D = devices_[world.Below(n_dev_)];
      if (D.role != Role::kNormal || D.kind != DevKind::kHome) continue;
      D.role = q.role;
      D.reg_status = q.status;
      ++have;
    }
  }
}

void Generator::BuildSubscribers() {
  subs_.resize(n_sub_);
  uint32_t cursor = 0;   // next subscriber to place in a household
  uint32_t phantom = n_sub_;  // CSG members whose phones never show up
  // Households: the members of each home femtocell live at its site.
  for (uint32_t d = 0; d < n_dev_; ++d) {
    SimDevice& D = devices_[d];
    if (D.kind != DevKind::kHome) continue;
    Rng r(opt_.seed, Stream::kDevice, d, 1);
    double h = r.Uniform();
    int size = h < 0.3 ? 1 : (h < 0.65 ? 2 : (h < 0.85 ? 3 : 4));
    D.csg_begin = static_cast<uint32_t>(csg_.size());
    D.csg_count = static_cast<uint8_t>(size);
    for (int i = 0; i < size; ++i) {
      if (cursor < n_sub_) {
        uint32_t s = cursor++;
        csg_.push_back(s);
        subs_[s].home_dev = d;
        subs_[s].home = InDisc(D.actual, 15, r);
      } else {
        csg_.push_back(phantom++);
      }
    }
  }
  // Everyone else lives somewhere without a femtocell.
  for (uint32_t s = cursor; s < n_sub_; ++s) {
    Rng r(opt_.seed, Stream::kSubscriber, s, 1);
    subs_[s].home = ResidentialPoint(r);
  }
  for (uint32_t s = 0; s < n_sub_; ++s) {
    Rng r(opt_.seed, Stream::kSubscriber, s);
    SimSubscriber& S = subs_[s];
    S.works = r.Chance(0.75);
    S.work = r.Chance(0.6) ? BusinessPoint(r, 1500)
                           : Point{r.Uniform(500, Area::kSizeM - 500), r.Uniform(500, Area::kSizeM - 500)};
  }
  // Offices and hybrid shops: their CSG is staff who work there.
  for (uint32_t d = 0; d < n_dev_; ++d) {
    SimDevice& D = devices_[d];
    if (D.kind == DevKind::kHome || D.mode == AccessMode::kOpen) continue;
    Rng r(opt_.seed, Stream::kDevice, d, 2);
    int size = D.kind == DevKind::kOffice ? static_cast<int>(r.Range(2, 4)) : static_cast<int>(r.Range(1, 2));
    D.csg_begin = static_cast<uint32_t>(csg_.size());
    D.csg_count = static_cast<uint8_t>(size);
    for (int i = 0; i < size; ++i) {
      uint32_t s = kNone;
      for (int tries = 0; tries < 20 && n_sub_ > 0; ++tries) {
        uint32_t c = static_cast<uint32_t>(r.Below(n_sub_));
        if (subs_[c].office_dev == kNone && subs_[c].works) {
          s = c;
          break;
        }
      }
      if (s == kNone) {
        csg_.push_back(phantom++);
        continue;
      }
      csg_.push_back(s);
      subs_[s].office_dev = d;
      subs_[s].work = InDisc(D.actual, 20, r);
    }
  }
  // Shops that can take visitors, and where people live, for quick lookups.
  shop_grid_.assign(30 * 30, {});
  home_grid_.assign(30 * 30, {});
  auto bucket = [](Point p) {
    Point c = Area::Clamp(p);
    return static_cast<size_t>(c.x / 1000) + 30 * static_cast<size_t>(c.y / 1000);
  };
  for (uint32_t d = 0; d < n_dev_; ++d) {
    const SimDevice& D = devices_[d];
    if (D.kind == DevKind::kShop && D.role == Role::kNormal) {
      shop_grid_[bucket(D.actual)].push_back(static_cast<uint32_t>(shops_.size()));
      shops_.push_back(d);
    }
  }
  for (uint32_t s = 0; s < n_sub_; ++s) home_grid_[bucket(subs_[s].home)].push_back(s);
}

}  // namespace fg::sim
