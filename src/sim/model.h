#pragma once

// Private to fg_sim: the simulated world and the generator that writes it.
//
// Generation is in three passes:
//  1. the world (model_world.cc): ISPs, macro cells, the registered fleet,
//     subscribers with homes, workplaces and CSG memberships;
//  2. the scenario (model_plan.cc): benign look-alikes and attacks, planned
//     up front, whose events go straight into the day buckets and whose
//     labels go to truth.jsonl;
//  3. the days (model_days.cc): for each day, every femtocell's sessions and
//     reports, then every subscriber's routine, into compact records that are
//     sorted and formatted (model_format.cc) one day at a time, so memory is
//     bounded by one day of events.
// Single-threaded.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/device.h"
#include "common/status.h"
#include "common/time.h"
#include "sim/cells.h"
#include "sim/geo.h"
#include "sim/out.h"
#include "sim/rng.h"
#include "sim/sim.h"

namespace fg::sim {

inline constexpr uint32_t kNone = 0xffffffffu;
inline constexpr int64_t kSec = 1000;
inline constexpr int64_t kMin = 60 * kSec;
inline constexpr int64_t kHour = 60 * kMin;
inline constexpr int64_t kDay = 24 * kHour;
inline constexpr int64_t kKstOffset = 9 * kHour;

enum class EvType : uint8_t {
  kSessionUp,
  kSessionDown,
  kLocation,
  kRemScan,
  kUeAttach,
  kUeDetach,
  kSms,
  kPayment,
  kMeas,
  kDeviceStatus,
  kEndpointStatus,
  kS1Setup,
};
enum class SmsClass : uint8_t { kOtp, kArs, kP2p, kBulk };
enum class PayChannel : uint8_t { kSmsOtp, kArs, kNone };

// One event before formatting. What a/b/x/y/u8/u16 mean depends on `type`
// (model_format.cc is the one reader):
//   session.up      dev, a=session no., b=IPv4, u8=endpoint (| kNoOwnSetup), u16=segw,
//                   sub=certificate (device index of the certificate's owner, or
//                   kLegacyCert). Formatted as two lines: the session.up and the
//                   femtocell's s1.setup claiming its own identity from that
//                   address, unless u8 has kNoOwnSetup (an s1.setup record follows)
//   s1.setup        dev=the femtocell whose identity is claimed, b=source IPv4
//   session.down    dev, a=session no.
//   location.report dev, x/y=fix, u16=accuracy m
//   rem.scan        dev, x/y=where the scanner is, a=fading key
//   ue.attach/detach dev, sub
//   sms.deliver     dev (the serving femtocell), sub, u8=class, a=sender code
//   payment.auth    sub, u8=channel, u16=merchant, a=amount KRW
//   meas.report     sub, x/y=UE position, a=fading key, u8=extra neighbour
//                   (1 rogue radio, 2 glitch with b = pci | earfcn << 16)
//   device.status   dev, u8=DeviceStatus
//   endpoint.status u8=endpoint, u16=0 active, 1 draining, 2 retired
struct Rec {
  int64_t ts;
  uint32_t seq;
  EvType type;
  uint8_t u8;
  uint16_t u16;
  uint32_t dev;
  uint32_t sub;
  uint32_t a;
  uint32_t b;
  float x;
  float y;
};
static_assert(sizeof(Rec) == 40, "Rec is the unit of memory use: keep it small");

inline constexpr uint32_t kLegacyCert = 0xfffffffeu;
inline constexpr uint8_t kNoOwnSetup = 0x80;  // session.up u8: its S1 setup is a separate record
inline constexpr const char* kHomePlmn = "45008";  // the simulated operator's PLMN (registry plmn, s1.setup)
inline constexpr uint32_t kP2pSenderFlag = 0x80000000u;

enum class DevKind : uint8_t { kHome, kOffice, kShop };
enum class Role : uint8_t {
  kNormal,          // connects, serves its members
  kDormant,         // registered active, never connects
  kDecommissioned,  // registry status decommissioned, silent
  kSuspended,       // registry status suspended (reported lost), silent
  kSwapOld,         // replaced during the run: decommissioned by a device.status event
  kSwapNew,         // the replacement: provisioned in the registry, activated by an event
  kMoved,           // the customer moves house with it
  kCloneVictim,     // its certificate is copied onto a second box
  kStaleVictim,     // its old config is copied onto a box that uses a retired endpoint
  kReturning,       // decommissioned, comes back
  kReused,          // a lost/dormant identity reused by a counterfeit box
  kIdentityRogue,   // admitted with its own certificate, registers over S1 as another femtocell
  kCounterfeit,     // an unregistered identity (not in registry.jsonl)
};

struct SimDevice {
  Point site;      // registered site
  Point actual;    // where the box is
  Point moved_to;  // kMoved: the new home
  uint32_t prefix = 0;  // registered /20 (host order)
  uint32_t ip = 0;      // current address
  uint32_t csg_begin = 0;
  uint32_t id_number = 0;  // FG-<7 digits>
  uint32_t owner = 0;
  uint32_t successor = kNone;  // kSwapOld: the replacement
  uint16_t max_ues = 0;
  uint16_t radius_m = 150;
  uint8_t csg_count = 0;
  uint8_t segw = 0;
  DevKind kind = DevKind::kHome;
  AccessMode mode = AccessMode::kClosed;
  DeviceStatus reg_status = DeviceStatus::kActive;
  Role role = Role::kNormal;
  bool gnss = true;
  bool registered = true;
  int64_t connect_from = INT64_MIN;  // kSwapNew: first up
  int64_t connect_until = INT64_MAX;  // kSwapOld: last down
  int64_t quiet_from = INT64_MAX;     // no random reconnects from here on
  int64_t move_down = 0, move_up = 0;
  // Running state of the background sessions.
  bool up = false;
  uint8_t endpoint = 0;
  uint32_t session_no = 0;
};

struct SimSubscriber {
  Point home;
  Point work;
  uint32_t home_dev = kNone;    // household femtocell (CSG member)
  uint32_t office_dev = kNone;  // femtocell at work (CSG member)
  bool works = false;
  // Running state.
  uint32_t attached = kNone;
  int64_t exposed_from = INT64_MAX;  // payments from here on are labelled expected
  uint32_t exposed_dev = kNone;
  bool victim = false;
};

struct Label {
  const char* kind;  // attack, fraud_payment, expected
  const char* rule;
  uint32_t dev = kNone;
  uint32_t sub = kNone;
  int64_t from = 0, to = 0;
  int pci = -1, earfcn = -1;
  int merchant = -1;
  int64_t amount = -1;
};

struct Capture {
  int64_t from, to;
  uint32_t dev;
};

struct RogueRadio {
  bool on = false;
  Point pos;
  int pci = 0, earfcn = 0;
  int64_t from = 0, to = 0;
};

struct Rotation {
  bool on = false;
  int64_t start = 0;   // new endpoint active, old draining
  int64_t retire = 0;  // old endpoint retired
};

// Where a subscriber is during one day: home, then optionally out to a
// destination (work, or an errand) and back.
struct DayPlan {
  bool away = false;
  bool to_work = false;
  int64_t leave = 0, arrive = 0, back_leave = 0, back_arrive = 0;
  Point dest;
};

enum class Place : uint8_t { kHome, kOut, kDest, kBack };

struct Piece {
  int64_t t0 = 0, t1 = 0;
  Place place = Place::kHome;
  uint32_t femto = kNone;    // serving femtocell (attach emitted by the routine)
  uint32_t captured = kNone;  // serving counterfeit (attach emitted by the attack)
  int64_t attach_ts = 0;      // femto serves from here
};

class Generator {
 public:
  explicit Generator(const SimOptions& options);
  Status Run(SimSummary* summary);

 private:
  // ---- world (model_world.cc) ----
  void BuildFleet();
  void BuildSubscribers();
  Point ResidentialPoint(Rng& r) const;
  Point BusinessPoint(Rng& r, double sigma) const;
  uint32_t PrefixFor(int isp, int district, int block) const;
  // An address on another ISP's line in the device's district: outside its prefixes.
  uint32_t OtherLineIp(uint32_t d, Rng& r) const;

  // ---- scenario (model_plan.cc) ----
  void PlanScenario();
  void PlanMoves();
  void PlanSwaps();
  void PlanKt();
  void PlanClone();
  void PlanDecommissioned();
  void PlanRogueRadio();
  void PlanStaleEndpoint();
  void PlanGlitches();
  void PlanIdentityTheft();
  uint32_t AddCounterfeitDevice(uint32_t id_number);
  void ExposeMembers(uint32_t dev, int64_t from);
  // Subscribers on macro near p at time t, nearest first.
  std::vector<uint32_t> MacroSubscribersNear(Point p, int64_t t, double radius, size_t max_n,
                                             bool allow_victims) const;

  // ---- days (model_days.cc) ----
  void DeviceDay(uint32_t d, int day);
  void PlanVisits(int day);
  void SubscriberDay(uint32_t s, int day);
  DayPlan PlanDay(uint32_t s, int day) const;
  Point HomeAt(uint32_t s, int64_t t) const;
  // Where s is at t and whether a femtocell (home, office) would serve them
  // there (planning view: ignores reboots and shop visits).
  Point PlaceAt(uint32_t s, int64_t t, bool* on_femto) const;
  uint32_t HomeFemtoAt(uint32_t s, int64_t t) const;
  bool Usable(uint32_t d, int64_t t) const;
  bool Connects(const SimDevice& d) const;
  uint8_t EndpointFor(uint32_t d, int64_t t, int64_t migrate_ts) const;
  uint8_t CurrentEndpoint(int64_t t) const;
  void BuildPieces(uint32_t s, int day, const DayPlan& plan, std::vector<Piece>* pieces);

  // ---- records and output (model_format.cc) ----
  Rec& Push(EvType type, int64_t ts);
  // Starts session ++session_no of device d; the record is valid until the next Push.
  Rec& SessionUp(uint32_t d, int64_t ts, uint32_t ip, uint8_t endpoint, uint32_t cert);
  void SessionDown(uint32_t d, int64_t ts, uint32_t session_no);
  void LocationFix(uint32_t d, int64_t ts, Point p, Rng& r);
  void RemScan(uint32_t d, int64_t ts, Point p, Rng& r);
  // A payment.auth; fraud_dev != kNone labels it fraudulent (made through that
  // counterfeit), else it is labelled expected when the payer is exposed.
  void Payment(uint32_t s, int64_t ts, PayChannel ch, int merchant, int64_t amount, uint32_t fraud_dev);
  Status WriteRegistry(const std::string& path);
  Status WriteCells(const std::string& path);
  Status WriteTruth(const std::string& path);
  Status FlushDay(int day, OutFile& out);
  // One event line; false (nothing written) for a report out of coverage.
  // Reads only state that is constant while days are written: safe to run
  // on several threads with their own `out` and `heard`.
  bool FormatRec(const Rec& r, TextBuf& out, std::vector<HeardCell>* heard) const;
  void PutDeviceId(uint32_t d, TextBuf& out) const;
  void PutImsi(uint32_t s, TextBuf& out) const;
  void PutLatLon(Point p, TextBuf& out) const;
  // The s1.setup line of femtocell `claimed` sent from `ip` at `ts`.
  void PutS1Setup(int64_t ts, uint32_t claimed, uint32_t ip, TextBuf& out) const;

  int64_t DayStart(int day) const { return base_ + day * kDay; }
  int64_t Clock(int day, int hh, int mm) const { return DayStart(day) + hh * kHour + mm * kMin; }
  bool Weekend(int day) const;
  uint32_t DeviceIp(uint32_t prefix, Rng& r) const { return prefix + 1 + static_cast<uint32_t>(r.Below(4093)); }

  // Constant after construction.
  SimOptions opt_;
  int64_t base_ = 0;  // local midnight of the first day, UTC ms
  int days_ = 0;
  uint32_t n_dev_ = 0;  // registered devices (indices below are registered)
  uint32_t n_sub_ = 0;
  int attack_day_ = 0;
  bool kt_ = false, clone_ = false, decom_ = false, rogue_ = false, stale_ = false, identity_ = false;
  std::vector<Point> business_centers_;
  std::vector<Point> residential_centers_;

  // The world.
  CellLayout cells_;
  std::vector<SimDevice> devices_;  // registered first, then counterfeit identities
  std::vector<uint32_t> csg_;       // CSG member subscriber indices (>= n_sub_: phantom members)
  std::vector<SimSubscriber> subs_;
  std::vector<uint32_t> shops_;     // open/hybrid femtocells that connect
  std::vector<std::vector<uint32_t>> shop_grid_;  // 1 km buckets of shops_
  std::vector<std::vector<uint32_t>> home_grid_;  // 1 km buckets of subscriber homes

  // The scenario.
  void AddLabel(const char* kind, const char* rule, uint32_t dev, int64_t from, int64_t to);
  uint32_t TakeFrom(std::vector<uint32_t>& pool, Rng& r);  // kNone when empty
  std::vector<uint32_t> pool_home_;            // normal home units with members and GNSS
  std::vector<uint32_t> pool_single_;          // ... with one member who works
  std::vector<uint32_t> pool_decom_, pool_susp_;
  std::vector<uint32_t> pool_dormant_closed_;  // never connected, closed
  std::vector<uint32_t> pool_dormant_home_;
  std::vector<Label> labels_;
  std::unordered_map<uint32_t, std::vector<Capture>> captures_;
  RogueRadio rogue_radio_;
  Rotation rotation_;
  uint64_t legacy_fp_[4] = {};

  // Per-day state.
  std::unordered_map<uint32_t, std::vector<std::pair<int64_t, int64_t>>> downtime_;
  std::vector<int32_t> visit_of_;  // per subscriber: index into visits_ or -1
  struct Visit {
    uint32_t sub, shop;
    int64_t from, to;
  };
  std::vector<Visit> visits_;

  // Records by day (bucket d holds events of day d).
  std::vector<std::vector<Rec>> buckets_;
  uint32_t seq_ = 0;
  int flushed_days_ = 0;
  uint64_t events_written_ = 0;
  uint64_t unformatted_ = 0;  // records with nothing to say (a report out of coverage)
  uint64_t late_ = 0;         // records for a day already written: a generator bug
};

// Text tables shared by the generator and its tests.
inline constexpr const char* kEndpoints[] = {"203.0.113.10:4500", "203.0.113.20:4500"};
inline constexpr const char* kSegws[] = {"segw-01", "segw-02", "segw-03", "segw-04"};
inline constexpr const char* kBulkSenders[] = {"CJLogistics", "CoupangAd", "KBCard", "Hometax", "ShinhanCard"};
inline constexpr const char* kAuthSenders[] = {"Danal", "KGMobilians", "Galaxia", "KakaoPay", "NaverPay"};
inline constexpr const char* kMerchants[] = {"GooglePlay", "AppStore",    "Nexon",  "Melon",  "Webtoon",
                                             "CultureLand", "HappyMoney", "Yogiyo", "Baemin", "BookNLife"};
inline constexpr int kFraudMerchants[] = {5, 6, 9, 0};  // gift vouchers, resold

}  // namespace fg::sim
