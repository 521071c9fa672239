#include "common/celldb.h"

#include <algorithm>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <filesystem>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "common/config.h"
#include "common/u64_index.h"

namespace fg {
namespace {

constexpr double kEarthRadiusM = 6371008.8;
constexpr double kPi = 3.14159265358979323846;
constexpr double kMetresPerDegreeLat = kEarthRadiusM * kPi / 180.0;
// Grid squares of ~1 km in latitude; longitude uses the same step in degrees,
// so squares narrow towards the poles (queries widen their span to match).
constexpr double kGridDeg = 0.009;

constexpr std::string_view kHeader =
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal";
constexpr size_t kColumns = 14;

int64_t GridIndex(double deg) { return static_cast<int64_t>(std::floor(deg / kGridDeg)); }

uint64_t GridKey(int64_t lat_idx, int64_t lon_idx) {
  return (static_cast<uint64_t>(lat_idx) << 32) ^ static_cast<uint64_t>(static_cast<uint32_t>(lon_idx));
}

uint64_t PlmnAreaKey(int mcc, int mnc, uint32_t area) {
  return (static_cast<uint64_t>(mcc & 0x3FF) << 42) | (static_cast<uint64_t>(mnc & 0x3FF) << 32) | area;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  text = Trim(text);
  if (text.empty()) return false;
  if (text.front() == '+') text.remove_prefix(1);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size();
}

Status LineError(size_t line, std::string_view what) {
  return Status::InvalidArgument("cells.csv line " + std::to_string(line) + ": " + std::string(what));
}

}  // namespace

double DistanceMeters(double lat1, double lon1, double lat2, double lon2) {
  const double to_rad = kPi / 180.0;
  double p1 = lat1 * to_rad, p2 = lat2 * to_rad;
  double dp = (lat2 - lat1) * to_rad, dl = (lon2 - lon1) * to_rad;
  double a = std::sin(dp / 2) * std::sin(dp / 2) + std::cos(p1) * std::cos(p2) * std::sin(dl / 2) * std::sin(dl / 2);
  return 2 * kEarthRadiusM * std::asin(std::min(1.0, std::sqrt(a)));
}

struct CellDb::Index {
  // Grid squares as sorted runs (CSR): square keys, where each square's
  // cells start in `grid_cells`, and the cells. A map of vectors cost ~70
  // bytes a square, and a world file has tens of millions of squares.
  std::vector<uint64_t> grid_keys;
  std::vector<uint32_t> grid_start;  // grid_keys.size() + 1 entries
  std::vector<uint32_t> grid_cells;

  // The cells of one square: [first, last) into grid_cells, empty if none.
  std::pair<const uint32_t*, const uint32_t*> Square(uint64_t key) const {
    auto it = std::lower_bound(grid_keys.begin(), grid_keys.end(), key);
    if (it == grid_keys.end() || *it != key) return {nullptr, nullptr};
    const size_t k = static_cast<size_t>(it - grid_keys.begin());
    return {grid_cells.data() + grid_start[k], grid_cells.data() + grid_start[k + 1]};
  }
  // ECI -> first cell with that ECI (meas.report neighbours look an ECI up
  // each). Sized for load <= 1/2: unknown ECIs, a rogue's, end early.
  U64Index by_eci;
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_area;
  // Radio names ("LTE", ...): a handful, each stored once; cells point at
  // them (a std::string per cell would cost 32 bytes x 40 M rows).
  std::deque<std::string> radios;

  std::string_view Intern(std::string_view r) {
    for (const std::string& s : radios)
      if (s == r) return s;
    return radios.emplace_back(r);
  }

  void BuildEci(const std::vector<Cell>& cells) {
    by_eci.Clear();
    by_eci.Reserve(cells.size() * 3 / 2);
    for (uint32_t c = 0; c < cells.size(); ++c) by_eci.Insert(cells[c].cell, c);  // the first one stays
  }
};

CellDb::CellDb() : index_(std::make_unique<Index>()) {}
CellDb::~CellDb() = default;
CellDb::CellDb(CellDb&&) noexcept = default;
CellDb& CellDb::operator=(CellDb&&) noexcept = default;

size_t CellDb::size() const { return cells_.size(); }
const std::vector<Cell>& CellDb::cells() const { return cells_; }

// Line-by-line OpenCellID parsing, shared by Parse (text in memory) and
// Load (a file streamed through zlib, plain or gzip).
class CellDb::Builder {
 public:
  explicit Builder(CellDb* db) : db_(db) {}

  Status Line(std::string_view line) {
    ++line_no_;
    if (line_no_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 BOM
    line = Trim(line);
    if (line_no_ == 1) {
      if (line == kHeader) return Status::Ok();
      // OpenCellID's per-country dumps come without the header line: a
      // first line that is a cell is taken as one.
      if (line.empty()) return LineError(1, "empty first line, expected the OpenCellID header or a cell");
      Status s = Data(line);
      if (!s.ok()) {
        return LineError(1, "expected the OpenCellID header \"" + std::string(kHeader) +
                                "\" or a cell line (" + s.message() + ")");
      }
      return s;
    }
    if (line.empty()) return Status::Ok();
    Status s = Data(line);
    return s.ok() ? s : LineError(line_no_, s.message());
  }

  Status Finish() {
    if (line_no_ == 0) return LineError(1, "empty file, expected the OpenCellID header or a cell");
    Index& idx = *db_->index_;
    const std::vector<Cell>& cells = db_->cells_;
    {
      std::vector<std::pair<uint64_t, uint32_t>> keyed(cells.size());
      for (uint32_t i = 0; i < cells.size(); ++i) keyed[i] = {GridKey(GridIndex(cells[i].lat), GridIndex(cells[i].lon)), i};
      std::sort(keyed.begin(), keyed.end());
      idx.grid_cells.resize(keyed.size());
      for (size_t i = 0; i < keyed.size(); ++i) {
        if (i == 0 || keyed[i].first != keyed[i - 1].first) {
          idx.grid_keys.push_back(keyed[i].first);
          idx.grid_start.push_back(static_cast<uint32_t>(i));
        }
        idx.grid_cells[i] = keyed[i].second;
      }
      idx.grid_start.push_back(static_cast<uint32_t>(keyed.size()));
      idx.grid_keys.shrink_to_fit();
      idx.grid_start.shrink_to_fit();
    }
    for (uint32_t i = 0; i < cells.size(); ++i) {
      const Cell& c = cells[i];
      idx.by_area[PlmnAreaKey(c.mcc, c.mnc, c.area)].push_back(i);
    }
    idx.BuildEci(db_->cells_);
    return Status::Ok();
  }

  uint64_t rows() const { return db_->cells_.size(); }

 private:
  // One cell line; the error names the field (the caller adds the line).
  Status Data(std::string_view line) {
    std::string_view f[kColumns];
    size_t n = 0, start = 0;
    for (;;) {
      size_t comma = line.find(',', start);
      if (n == kColumns) return Status::InvalidArgument("more than 14 columns");
      f[n++] = line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (n != kColumns) return Status::InvalidArgument("expected 14 columns, got " + std::to_string(n));
    Cell c;
    std::string_view radio = Trim(f[0]);
    if (radio.empty()) return Status::InvalidArgument("radio: empty");
    c.radio = db_->index_->Intern(radio);
    if (!ParseNumber(f[1], &c.mcc) || c.mcc < 0 || c.mcc > 999) return Status::InvalidArgument("mcc: not a number in [0, 999]");
    if (!ParseNumber(f[2], &c.mnc) || c.mnc < 0 || c.mnc > 999) return Status::InvalidArgument("net: not a number in [0, 999]");
    if (!ParseNumber(f[3], &c.area)) return Status::InvalidArgument("area: not an unsigned number");
    if (!ParseNumber(f[4], &c.cell)) return Status::InvalidArgument("cell: not an unsigned number");
    if (!Trim(f[5]).empty()) {
      if (!ParseNumber(f[5], &c.pci) || c.pci < 0) return Status::InvalidArgument("unit: not a PCI");
    }
    if (!ParseNumber(f[6], &c.lon) || !std::isfinite(c.lon) || c.lon < -180 || c.lon > 180) {
      return Status::InvalidArgument("lon: not a longitude in [-180, 180]");
    }
    if (!ParseNumber(f[7], &c.lat) || !std::isfinite(c.lat) || c.lat < -90 || c.lat > 90) {
      return Status::InvalidArgument("lat: not a latitude in [-90, 90]");
    }
    if (!Trim(f[8]).empty()) {
      double range = 0;
      if (!ParseNumber(f[8], &range) || !std::isfinite(range) || range < 0 || range > 1e7) {
        return Status::InvalidArgument("range: not a non-negative number");
      }
      c.range_m = range;
    }
    if (db_->cells_.size() >= std::numeric_limits<uint32_t>::max()) return Status::InvalidArgument("too many cells");
    db_->cells_.push_back(c);
    return Status::Ok();
  }

  CellDb* db_;
  size_t line_no_ = 0;
};

Result<CellDb> CellDb::Parse(std::string_view csv) {
  CellDb db;
  Builder b(&db);
  size_t pos = 0;
  while (pos < csv.size()) {
    size_t end = csv.find('\n', pos);
    if (end == std::string_view::npos) end = csv.size();
    FG_RETURN_IF_ERROR(b.Line(csv.substr(pos, end - pos)));
    pos = end + 1;
  }
  FG_RETURN_IF_ERROR(b.Finish());
  return db;
}

Result<CellDb> CellDb::Load(const std::string& path, const LoadProgress& progress) {
  // gzread reads a plain file as it is and inflates a gzip one (the
  // published exports are .csv.gz): no temporary copy, and the text is
  // never held whole, only 1 MB at a time.
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) return Status::InvalidArgument("cannot read " + path + ": " + ec.message());
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return Status::InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  gzbuffer(gz, 1 << 20);
  CellDb db;
  // A plain file's size says roughly how many rows (~80 bytes each in the
  // exports): reserving spares the vector's doubling, whose copy is the
  // load's peak. gzip hides the size; there the vector grows as it must.
  if (gzdirect(gz) == 1) db.cells_.reserve(file_bytes / 80);
  Builder b(&db);
  std::string buf;
  std::vector<char> chunk(1 << 20);
  uint64_t next_report = kProgressRows;
  Status st = Status::Ok();
  for (;;) {
    int n = gzread(gz, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int err = 0;
      const char* msg = gzerror(gz, &err);
      st = Status::InvalidArgument(path + ": " + (msg ? msg : "read error"));
      break;
    }
    if (n == 0) break;
    buf.append(chunk.data(), static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      st = b.Line(std::string_view(buf).substr(start, nl - start));
      if (!st.ok()) break;
    }
    if (!st.ok()) break;
    buf.erase(0, start);
    if (progress && b.rows() >= next_report) {
      next_report += kProgressRows;
      progress(b.rows(), static_cast<uint64_t>(gzoffset(gz)), file_bytes);
    }
  }
  if (st.ok() && !buf.empty()) st = b.Line(buf);
  // A gzip stream cut short reads as a clean end of file; gzclose tells.
  const int closed = gzclose(gz);
  if (st.ok() && closed == Z_BUF_ERROR) st = Status::InvalidArgument(path + ": truncated gzip file");
  if (st.ok()) st = b.Finish();
  if (!st.ok()) return Status::InvalidArgument(path + ": " + st.message());
  if (progress) progress(b.rows(), file_bytes, file_bytes);
  return db;
}

std::vector<uint32_t> CellDb::Near(double lat, double lon, double radius_m) const {
  std::vector<uint32_t> out;
  if (cells_.empty() || !(radius_m >= 0)) return out;
  double dlat = radius_m / kMetresPerDegreeLat;
  double cos_lat = std::cos(lat * kPi / 180.0);
  double dlon = cos_lat > 0.01 ? dlat / cos_lat : 360.0;
  int64_t lat_lo = GridIndex(lat - dlat), lat_hi = GridIndex(lat + dlat);
  int64_t lon_lo = GridIndex(lon - dlon), lon_hi = GridIndex(lon + dlon);
  uint64_t squares = static_cast<uint64_t>(lat_hi - lat_lo + 1) * static_cast<uint64_t>(lon_hi - lon_lo + 1);
  auto consider = [&](uint32_t i) {
    const Cell& c = cells_[i];
    if (DistanceMeters(lat, lon, c.lat, c.lon) <= radius_m) out.push_back(i);
  };
  if (squares > index_->grid_keys.size() || dlon >= 180.0) {
    for (uint32_t i = 0; i < cells_.size(); ++i) consider(i);
    return out;
  }
  for (int64_t a = lat_lo; a <= lat_hi; ++a) {
    for (int64_t b = lon_lo; b <= lon_hi; ++b) {
      auto [first, last] = index_->Square(GridKey(a, b));
      for (const uint32_t* i = first; i != last; ++i) consider(*i);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

const Cell* CellDb::FindByEci(uint64_t eci) const {
  const uint32_t i = index_->by_eci.Find(eci);
  return i == U64Index::kAbsent ? nullptr : &cells_[i];
}

void CellDb::PrefetchEci(uint64_t eci, int stage) const {
  if (stage == 0) {
    index_->by_eci.Prefetch(eci);
  } else if (const Cell* c = FindByEci(eci)) {
    const char* cell = reinterpret_cast<const char*>(c);
    __builtin_prefetch(cell);
    __builtin_prefetch(cell + sizeof(Cell) - 1);
  }
}

const std::vector<uint32_t>* CellDb::CellsInArea(int mcc, int mnc, uint32_t area) const {
  auto it = index_->by_area.find(PlmnAreaKey(mcc, mnc, area));
  return it == index_->by_area.end() ? nullptr : &it->second;
}

}  // namespace fg
