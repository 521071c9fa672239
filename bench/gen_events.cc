// Synthetic input for bench/replay_bench.sh: a registry of N femtocells, a
// macro cell grid (cells.csv) and E events (DESIGN.md §3.4) over M
// subscribers, deterministic for a seed. The traffic is mostly benign
// (subscribers attach to their own closed femtocell or visit open ones,
// SMS, payments, measurement reports near registered cells, fixes at the
// registered site) so that the benchmark measures the steady state, not an
// alert storm.
//
//   gen_events --out DIR [--devices 189000] [--subscribers 1000000]
//              [--events 10000000] [--seed 1]
//
// --subscribers 0 writes device-side events only (sessions, fixes, REM
// scans) and no CSG: replaying it gives the memory of the devices alone.
// Identities are synthetic: 45008xxxxxxxxxx IMSIs, 3539180xxxxxxxx IMEIs,
// 8210xxxxxxxx MSISDNs.

#include <cinttypes>
#include <cstdarg>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) / 9007199254740992.0; }
};

// Area covered: lat 35..38, lon 126.5..129.5; macro cells every 0.02 deg.
constexpr double kLat0 = 35.0, kLon0 = 126.5, kSpan = 3.0, kGrid = 0.02;
constexpr int kGridN = 150;
constexpr int kEarfcn = 1850;
constexpr int64_t kStartMs = 1756684800000;  // 2025-09-01T00:00:00Z

int CellIndex(int row, int col) { return row * kGridN + col; }
uint64_t CellEci(int idx) { return 1000000 + idx; }
int CellPci(int idx) { return idx % 504; }
uint32_t CellTac(int idx) { return 100 + idx / 300; }
int Row(double lat) { return std::min(kGridN - 1, std::max(0, static_cast<int>((lat - kLat0) / kGrid))); }
int Col(double lon) { return std::min(kGridN - 1, std::max(0, static_cast<int>((lon - kLon0) / kGrid))); }

class Out {
 public:
  explicit Out(const std::string& path) : f_(std::fopen(path.c_str(), "w")) {
    if (!f_) {
      std::perror(path.c_str());
      std::exit(2);
    }
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 22);
  }
  ~Out() { std::fclose(f_); }
  void Printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(f_, fmt, ap);
    va_end(ap);
  }

 private:
  std::FILE* f_;
};

std::string Ts(int64_t ms) {
  int64_t secs = ms / 1000;
  time_t t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir;
  uint64_t devices = 189000, subscribers = 1000000, events = 10000000, seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gen_events: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--out") out_dir = next();
    else if (a == "--devices") devices = std::strtoull(next(), nullptr, 10);
    else if (a == "--subscribers") subscribers = std::strtoull(next(), nullptr, 10);
    else if (a == "--events") events = std::strtoull(next(), nullptr, 10);
    else if (a == "--seed") seed = std::strtoull(next(), nullptr, 10);
    else {
      std::fprintf(stderr, "usage: gen_events --out DIR [--devices N] [--subscribers M] [--events E] [--seed S]\n");
      return 2;
    }
  }
  if (out_dir.empty() || devices == 0 || devices > 9999999 || subscribers > 999999999) {
    std::fprintf(stderr, "gen_events: --out DIR required; 1 <= devices <= 9999999\n");
    return 2;
  }
  Rng rng{seed};

  // ---- cells ----
  {
    Out cells(out_dir + "/cells.csv");
    cells.Printf("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n");
    for (int r = 0; r < kGridN; ++r) {
      for (int c = 0; c < kGridN; ++c) {
        int idx = CellIndex(r, c);
        cells.Printf("LTE,450,8,%u,%" PRIu64 ",%d,%.5f,%.5f,3000,20,1,1500000000,1700000000,0\n", CellTac(idx),
                     CellEci(idx), CellPci(idx), kLon0 + (c + 0.5) * kGrid, kLat0 + (r + 0.5) * kGrid);
      }
    }
  }

  // ---- registry ----
  struct Dev {
    float lat, lon;
    uint8_t mode;  // 0 closed, 1 hybrid, 2 open
  };
  std::vector<Dev> devs(devices);
  std::vector<uint32_t> open_devs, open_only;
  {
    Out reg(out_dir + "/registry.jsonl");
    for (uint64_t d = 0; d < devices; ++d) {
      Dev& dv = devs[d];
      dv.lat = static_cast<float>(kLat0 + 0.05 + rng.Unit() * (kSpan - 0.1));
      dv.lon = static_cast<float>(kLon0 + 0.05 + rng.Unit() * (kSpan - 0.1));
      uint64_t m = rng.Below(100);
      dv.mode = m < 80 ? 0 : m < 90 ? 1 : 2;
      if (dv.mode != 0) open_devs.push_back(static_cast<uint32_t>(d));
      if (dv.mode == 2) open_only.push_back(static_cast<uint32_t>(d));
      std::string csg;
      if (dv.mode != 2) {
        // Home subscribers of d: j = d, d + N, d + 2N, ...
        for (uint64_t j = d; j < subscribers; j += devices) {
          char buf[24];
          std::snprintf(buf, sizeof buf, "%s\"45008%010" PRIu64 "\"", csg.empty() ? "" : ",", 1000000000 + j);
          csg += buf;
        }
      }
      reg.Printf(
          "{\"device\":\"FG-%07" PRIu64 "\",\"status\":\"active\",\"owner\":\"acct-%" PRIu64
          "\",\"mode\":\"%s\",\"site\":{\"lat\":%.5f,\"lon\":%.5f,\"radius_m\":150},\"prefixes\":[\"10.%d.%d.0/24\"],"
          "\"csg\":[%s],\"cert_fp\":\"sha256:%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "\",\"max_ues\":%d}\n",
          d, 100000 + d, dv.mode == 0 ? "closed" : dv.mode == 1 ? "hybrid" : "open", dv.lat, dv.lon,
          static_cast<int>(d / 256 % 256), static_cast<int>(d % 256), csg.c_str(), d * uint64_t{0x9e3779b97f4a7c15}, d, ~d,
          d ^ 0xabcdef, dv.mode == 2 ? 32 : 8);
    }
  }

  // ---- events ----
  std::vector<uint32_t> session(devices, 0);           // live session number, 0 = down
  std::vector<uint32_t> attached(subscribers, 0);      // device + 1, 0 = not attached
  Out ev(out_dir + "/events.jsonl");
  int64_t now = kStartMs;
  const uint64_t span_ms = 86400000;  // one day of traffic
  const double step = static_cast<double>(span_ms) / static_cast<double>(events ? events : 1);
  double acc = 0;
  auto ip = [](uint64_t d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "10.%d.%d.%d", static_cast<int>(d / 256 % 256), static_cast<int>(d % 256),
                  static_cast<int>(7 + d % 200));
    return std::string(buf);
  };
  for (uint64_t n = 0; n < events; ++n) {
    acc += step;
    now = kStartMs + static_cast<int64_t>(acc);
    std::string ts = Ts(now);
    enum { kSession, kUe, kSms, kPay, kMeas, kLoc, kRem } kind;
    uint64_t r = rng.Below(100);
    if (subscribers == 0) {
      kind = r < 40 ? kSession : r < 70 ? kLoc : kRem;
    } else {
      kind = r < 6    ? kSession
             : r < 64 ? kUe
             : r < 79 ? kSms
             : r < 84 ? kPay
             : r < 94 ? kMeas
             : r < 97 ? kLoc
                      : kRem;
    }
    if (n < devices) kind = kSession;  // every femtocell connects first
    if (kind == kSession) {
      uint64_t d = n < devices ? n : rng.Below(devices);
      if (session[d]) {
        ev.Printf("{\"ts\":\"%s\",\"type\":\"session.down\",\"device\":\"FG-%07" PRIu64 "\",\"session\":\"s%" PRIu64
                  "-%u\"}\n",
                  ts.c_str(), d, d, session[d]);
        session[d] = 0;
      } else {
        session[d] = static_cast<uint32_t>(n % 1000000 + 1);
        ev.Printf("{\"ts\":\"%s\",\"type\":\"session.up\",\"device\":\"FG-%07" PRIu64 "\",\"session\":\"s%" PRIu64
                  "-%u\",\"cert_fp\":\"sha256:%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64
                  "\",\"src_ip\":\"%s\",\"endpoint\":\"segw1.example.net:500\",\"segw\":\"segw-%d\"}\n",
                  ts.c_str(), d, d, session[d], d * uint64_t{0x9e3779b97f4a7c15}, d, ~d, d ^ 0xabcdef, ip(d).c_str(),
                  static_cast<int>(d % 4));
      }
    } else if (kind == kUe) {  // attach / detach
      uint64_t j = rng.Below(subscribers);
      if (attached[j]) {
        uint64_t d = attached[j] - 1;
        ev.Printf("{\"ts\":\"%s\",\"type\":\"ue.detach\",\"device\":\"FG-%07" PRIu64 "\",\"imsi\":\"45008%010" PRIu64
                  "\"}\n",
                  ts.c_str(), d, 1000000000 + j);
        attached[j] = 0;
      } else {
        // At home (a CSG member), or visiting an open femtocell (a cafe).
        uint64_t d = j % devices;
        if (devs[d].mode == 2 || rng.Below(100) < 10) {
          std::vector<uint32_t>& pool = open_only.empty() ? open_devs : open_only;
          if (!pool.empty()) d = pool[rng.Below(pool.size())];
        }
        attached[j] = static_cast<uint32_t>(d + 1);
        ev.Printf("{\"ts\":\"%s\",\"type\":\"ue.attach\",\"device\":\"FG-%07" PRIu64 "\",\"imsi\":\"45008%010" PRIu64
                  "\",\"imei\":\"3539180%08" PRIu64 "\"}\n",
                  ts.c_str(), d, 1000000000 + j, j);
      }
    } else if (kind == kSms) {
      uint64_t j = rng.Below(subscribers);
      if (!attached[j]) {
        uint64_t d = j % devices;
        if (devs[d].mode == 2) d = open_devs[rng.Below(open_devs.size())];
        attached[j] = static_cast<uint32_t>(d + 1);
        ev.Printf("{\"ts\":\"%s\",\"type\":\"ue.attach\",\"device\":\"FG-%07" PRIu64 "\",\"imsi\":\"45008%010" PRIu64
                  "\",\"imei\":\"3539180%08" PRIu64 "\"}\n",
                  ts.c_str(), d, 1000000000 + j, j);
        continue;
      }
      uint64_t c = rng.Below(100);
      const char* cls = c < 60 ? "p2p" : c < 80 ? "otp" : c < 95 ? "bulk" : "ars";
      char sender[32];
      if (c < 60) {
        std::snprintf(sender, sizeof sender, "+8210%08" PRIu64, rng.Below(subscribers));
      } else {
        std::snprintf(sender, sizeof sender, "%s", c < 80 ? "KB-Bank" : c < 95 ? "1588" : "ARS-Pay");
      }
      ev.Printf("{\"ts\":\"%s\",\"type\":\"sms.deliver\",\"device\":\"FG-%07u\",\"imsi\":\"45008%010" PRIu64
                "\",\"sender\":\"%s\",\"class\":\"%s\"}\n",
                ts.c_str(), attached[j] - 1, 1000000000 + j, sender, cls);
    } else if (kind == kPay) {
      uint64_t j = rng.Below(subscribers);
      uint64_t c = rng.Below(10);
      ev.Printf("{\"ts\":\"%s\",\"type\":\"payment.auth\",\"imsi\":\"45008%010" PRIu64 "\",\"msisdn\":\"8210%08" PRIu64
                "\",\"merchant\":\"shop-%d\",\"amount\":%d,\"currency\":\"KRW\",\"channel\":\"%s\"}\n",
                ts.c_str(), 1000000000 + j, j, static_cast<int>(rng.Below(500)), static_cast<int>(1000 + rng.Below(200000)),
                c < 5 ? "sms_otp" : c < 7 ? "ars" : "none");
    } else if (kind == kMeas) {  // measurement report near the home site
      uint64_t j = rng.Below(subscribers);
      const Dev& h = devs[j % devices];
      double lat = h.lat + (rng.Unit() - 0.5) * 0.01, lon = h.lon + (rng.Unit() - 0.5) * 0.01;
      int r = Row(lat), c = Col(lon);
      int serving = CellIndex(r, c);
      int n1 = CellIndex(r, std::min(kGridN - 1, c + 1)), n2 = CellIndex(std::min(kGridN - 1, r + 1), c),
          n3 = CellIndex(std::max(0, r - 1), c);
      ev.Printf("{\"ts\":\"%s\",\"type\":\"meas.report\",\"imsi\":\"45008%010" PRIu64 "\",\"serving_eci\":%" PRIu64
                ",\"lat\":%.5f,\"lon\":%.5f,\"neighbors\":[{\"pci\":%d,\"earfcn\":%d,\"rsrp\":-%d},{\"pci\":%d,\"earfcn\":%d,"
                "\"rsrp\":-%d},{\"pci\":%d,\"earfcn\":%d,\"eci\":%" PRIu64 ",\"rsrp\":-%d}]}\n",
                ts.c_str(), 1000000000 + j, CellEci(serving), lat, lon, CellPci(n1), kEarfcn,
                static_cast<int>(90 + rng.Below(20)), CellPci(n2), kEarfcn, static_cast<int>(95 + rng.Below(20)),
                CellPci(n3), kEarfcn, CellEci(n3), static_cast<int>(100 + rng.Below(20)));
    } else if (kind == kLoc) {  // GNSS fix at the site (jitter ~20 m)
      uint64_t d = rng.Below(devices);
      ev.Printf("{\"ts\":\"%s\",\"type\":\"location.report\",\"device\":\"FG-%07" PRIu64
                "\",\"lat\":%.6f,\"lon\":%.6f,\"acc_m\":%d}\n",
                ts.c_str(), d, devs[d].lat + (rng.Unit() - 0.5) * 0.0003, devs[d].lon + (rng.Unit() - 0.5) * 0.0003,
                static_cast<int>(5 + rng.Below(20)));
    } else {  // REM scan: the macro cells around the site
      uint64_t d = rng.Below(devices);
      int r = Row(devs[d].lat), c = Col(devs[d].lon);
      int cells[4] = {CellIndex(r, c), CellIndex(r, std::min(kGridN - 1, c + 1)), CellIndex(std::min(kGridN - 1, r + 1), c),
                      CellIndex(r, std::max(0, c - 1))};
      std::string list;
      for (int k = 0; k < 4; ++k) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "%s{\"mcc\":450,\"mnc\":8,\"tac\":%u,\"eci\":%" PRIu64 ",\"pci\":%d,\"earfcn\":%d,\"rsrp\":-%d}",
                      k ? "," : "", CellTac(cells[k]), CellEci(cells[k]), CellPci(cells[k]), kEarfcn,
                      static_cast<int>(80 + k * 8 + rng.Below(5)));
        list += buf;
      }
      ev.Printf("{\"ts\":\"%s\",\"type\":\"rem.scan\",\"device\":\"FG-%07" PRIu64 "\",\"cells\":[%s]}\n", ts.c_str(), d,
                list.c_str());
    }
  }
  return 0;
}
