#include "ingest/journal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "common/metrics.h"
#include "common/time.h"

namespace fg::ingest {
namespace {

constexpr uint32_t kMagic = 0x314A4746;  // "FGJ1" little-endian
constexpr size_t kHeaderBytes = 24;
constexpr size_t kMaxBatchIdBytes = 0xFFFF;
constexpr uint32_t kMaxBodyBytes = 256u << 20;

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86_64, aarch64)
  out->append(b, sizeof(T));
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint32_t Crc(uint64_t seq, std::string_view body) {
  boost::crc_32_type crc;
  crc.process_bytes(&seq, sizeof seq);
  crc.process_bytes(body.data(), body.size());
  return crc.checksum();
}

Counter& Errors(std::string_view op) {
  return Metrics::Global().GetCounter(
      "femtoguard_journal_errors_total", "op=\"" + std::string(op) + "\"",
      "Ingest journal failures by operation (write, fsync, read, corrupt)");
}

std::string SegmentName(uint64_t first_seq) {
  char name[40];
  std::snprintf(name, sizeof name, "seg-%020llu.log", static_cast<unsigned long long>(first_seq));
  return name;
}

Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

Status WriteAllAt(int fd, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("journal write");
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + dir.string());
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync " + dir.string());
}

}  // namespace

struct Journal::File {
  explicit File(int f) : fd(f) {}
  ~File() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

Journal::Journal(Options options) : options_(std::move(options)) {}
Journal::~Journal() {
  std::lock_guard lock(mu_);
  if (tail_ && !failed_) (void)::fdatasync(tail_->fd);
}

Result<std::unique_ptr<Journal>> Journal::Open(Options options, const ReplayFn& replay) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec)
    return Status::Internal("journal: cannot create " + options.dir.string() + ": " + ec.message());
  std::filesystem::permissions(options.dir, std::filesystem::perms::owner_all, ec);
  std::unique_ptr<Journal> j(new Journal(std::move(options)));
  FG_RETURN_IF_ERROR(j->Load(replay));
  FG_RETURN_IF_ERROR(j->OpenTail());
  std::lock_guard lock(j->mu_);
  j->UpdateGauges();
  return j;
}

Status Journal::Load(const ReplayFn& replay) {
  {
    std::ifstream in(options_.dir / "checkpoint");
    unsigned long long c = 0;
    if (in >> c) checkpoint_ = checkpoint_written_ = c;
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name.size() > 8 &&
        name.compare(name.size() - 4, 4, ".log") == 0) {
      paths.push_back(entry.path());
    }
  }
  std::sort(paths.begin(), paths.end());  // zero-padded seqs: name order is seq order
  uint64_t replayed = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    const bool last = i + 1 == paths.size();
    std::string data;
    {
      std::ifstream in(paths[i], std::ios::binary);
      if (!in) return Status::Internal("journal: cannot read " + paths[i].string());
      data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    Segment seg;
    seg.path = paths[i];
    seg.first_seq = std::strtoull(paths[i].filename().string().c_str() + 4, nullptr, 10);
    size_t pos = 0;
    while (pos < data.size()) {
      const char* p = data.data() + pos;
      const size_t left = data.size() - pos;
      bool ok = left >= kHeaderBytes && Get<uint32_t>(p) == kMagic;
      uint32_t body_len = ok ? Get<uint32_t>(p + 4) : 0;
      uint64_t seq = ok ? Get<uint64_t>(p + 8) : 0;
      uint16_t id_len = ok ? Get<uint16_t>(p + 20) : 0;
      ok = ok && body_len <= kMaxBodyBytes && kHeaderBytes + body_len <= left &&
           id_len <= body_len && seq > last_seq_;
      std::string_view body =
          ok ? std::string_view(p + kHeaderBytes, body_len) : std::string_view();
      ok = ok && Crc(seq, body) == Get<uint32_t>(p + 16);
      if (!ok) {
        if (last) {
          // A crash in the middle of a write: what follows was never acknowledged.
          spdlog::warn("journal: {} ends in a torn record at byte {}; {} bytes cut off",
                       paths[i].string(), pos, left);
          Errors("torn_tail").Inc();
          if (::truncate(paths[i].c_str(), static_cast<off_t>(pos)) != 0)
            return Errno("journal truncate");
        } else {
          spdlog::error(
              "journal: {} is corrupt at byte {}; the rest of that segment ({} bytes) is skipped",
              paths[i].string(), pos, left);
          Errors("corrupt").Inc();
        }
        break;
      }
      Record r;
      r.seq = seq;
      r.batch_id = body.substr(0, id_len);
      r.payload = body.substr(id_len);
      if (!r.batch_id.empty()) Remember(r.batch_id, seq);
      replay(r);
      ++replayed;
      last_seq_ = seq;
      seg.last_seq = seq;
      pos += kHeaderBytes + body_len;
    }
    seg.bytes = pos;
    total_bytes_ += seg.bytes;
    segments_.push_back(std::move(seg));
  }
  // Records up to the checkpoint may have been pruned; seqs never go back.
  last_seq_ = std::max(last_seq_, checkpoint_);
  {
    std::lock_guard lock(sync_mu_);
    synced_seq_ = last_seq_;
  }
  if (replayed) {
    spdlog::info("journal: {} records replayed ({} past the checkpoint {})", replayed,
                 last_seq_ > checkpoint_ ? last_seq_ - checkpoint_ : 0, checkpoint_);
  }
  return Status::Ok();
}

Status Journal::OpenTail() {
  std::lock_guard lock(mu_);
  if (segments_.empty() || segments_.back().bytes >= options_.segment_bytes) return Rotate();
  int fd = ::open(segments_.back().path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno("journal open " + segments_.back().path.string());
  tail_ = std::make_shared<File>(fd);
  tail_offset_ = segments_.back().bytes;
  return Status::Ok();
}

Status Journal::Rotate() {
  if (tail_ && ::fdatasync(tail_->fd) != 0) {
    Errors("fsync").Inc();
    failed_ = true;
    return Errno("journal fdatasync");
  }
  if (tail_) {
    std::lock_guard lock(sync_mu_);
    synced_seq_ = std::max(synced_seq_, last_seq_);
  }
  Segment seg;
  seg.first_seq = last_seq_ + 1;
  seg.path = options_.dir / SegmentName(seg.first_seq);
  int fd = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    Errors("write").Inc();
    return Errno("journal create " + seg.path.string());
  }
  if (Status s = SyncDir(options_.dir); !s.ok()) {
    ::close(fd);
    ::unlink(seg.path.c_str());
    Errors("fsync").Inc();
    return s;
  }
  tail_ = std::make_shared<File>(fd);
  tail_offset_ = 0;
  segments_.push_back(std::move(seg));
  return Status::Ok();
}

void Journal::Remember(std::string_view batch_id, uint64_t seq) {
  auto [it, inserted] = batch_ids_.emplace(std::string(batch_id), seq);
  if (!inserted) return;
  batch_order_.push_back(it->first);
  while (batch_order_.size() > options_.remembered_batch_ids) {
    batch_ids_.erase(batch_order_.front());
    batch_order_.pop_front();
  }
}

std::optional<uint64_t> Journal::FindBatch(std::string_view batch_id) const {
  std::lock_guard lock(mu_);
  auto it = batch_ids_.find(std::string(batch_id));
  if (it == batch_ids_.end()) return std::nullopt;
  return it->second;
}

Result<uint64_t> Journal::Append(std::string_view batch_id, std::string_view payload,
                                 const PublishFn& publish) {
  if (batch_id.size() > kMaxBatchIdBytes) return Status::InvalidArgument("batch id too long");
  if (batch_id.size() + payload.size() > kMaxBodyBytes)
    return Status::InvalidArgument("batch too large");
  std::lock_guard lock(mu_);
  if (failed_)
    return Status::Unavailable(
        "journal: a disk write failed earlier; restart serve once the disk is sound");
  if (!batch_id.empty()) {
    auto it = batch_ids_.find(std::string(batch_id));
    if (it != batch_ids_.end()) return Status::AlreadyExists(std::to_string(it->second));
  }
  uint64_t backlog = 0;
  for (const Segment& s : segments_) {
    if (s.last_seq == 0 || s.last_seq > checkpoint_) backlog += s.bytes;
  }
  if (backlog > options_.max_backlog_bytes) {
    Errors("backlog_full").Inc();
    return Status::Unavailable("journal: " + std::to_string(backlog) +
                               " bytes wait for detection; retry later");
  }
  if (tail_offset_ >= options_.segment_bytes) FG_RETURN_IF_ERROR(Rotate());

  const uint64_t seq = last_seq_ + 1;
  std::string record;
  record.reserve(kHeaderBytes + batch_id.size() + payload.size());
  Put<uint32_t>(&record, kMagic);
  Put<uint32_t>(&record, static_cast<uint32_t>(batch_id.size() + payload.size()));
  Put<uint64_t>(&record, seq);
  Put<uint32_t>(&record, 0);  // CRC, below
  Put<uint16_t>(&record, static_cast<uint16_t>(batch_id.size()));
  Put<uint16_t>(&record, 0);
  record.append(batch_id);
  record.append(payload);
  const uint32_t crc = Crc(seq, std::string_view(record).substr(kHeaderBytes));
  std::memcpy(record.data() + 16, &crc, sizeof crc);

  if (Status s = WriteAllAt(tail_->fd, record, tail_offset_); !s.ok()) {
    Errors("write").Inc();
    // Nothing half-written stays behind: the next record starts here.
    if (::ftruncate(tail_->fd, static_cast<off_t>(tail_offset_)) != 0) failed_ = true;
    return Status::Unavailable(s.message());
  }
  if (Status s = publish(seq); !s.ok()) {
    if (::ftruncate(tail_->fd, static_cast<off_t>(tail_offset_)) != 0) {
      Errors("write").Inc();
      failed_ = true;
    }
    return s;
  }
  tail_offset_ += record.size();
  Segment& seg = segments_.back();
  seg.bytes = tail_offset_;
  seg.last_seq = seq;
  total_bytes_ += record.size();
  last_seq_ = seq;
  if (!batch_id.empty()) Remember(batch_id, seq);
  UpdateGauges();
  return seq;
}

Status Journal::Sync(uint64_t seq) {
  std::unique_lock lock(sync_mu_);
  while (synced_seq_ < seq) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    // This writer syncs for everyone who has written so far.
    syncing_ = true;
    lock.unlock();
    std::shared_ptr<File> file;
    uint64_t target;
    {
      std::lock_guard jl(mu_);
      if (failed_) {
        lock.lock();
        syncing_ = false;
        sync_cv_.notify_all();
        return Status::Unavailable("journal: a disk write failed earlier");
      }
      file = tail_;
      target = last_seq_;
    }
    const int rc = ::fdatasync(file->fd);
    const int err = errno;
    Metrics::Global()
        .GetCounter("femtoguard_journal_fsyncs_total", {}, "fdatasync calls of the ingest journal")
        .Inc();
    if (rc != 0) {
      Errors("fsync").Inc();
      std::lock_guard jl(mu_);
      failed_ = true;
    }
    lock.lock();
    syncing_ = false;
    if (rc == 0) synced_seq_ = std::max(synced_seq_, target);
    sync_cv_.notify_all();
    if (rc != 0)
      return Status::Unavailable(std::string("journal fdatasync: ") + std::strerror(err));
  }
  return Status::Ok();
}

void Journal::Checkpoint(uint64_t seq, bool force) {
  std::vector<std::filesystem::path> doomed;
  uint64_t to_write = 0;
  {
    std::lock_guard lock(mu_);
    seq = std::min(seq, last_seq_);
    if (seq > checkpoint_) checkpoint_ = seq;
    const int64_t now = NowMillis();
    if (checkpoint_ == checkpoint_written_ || (!force && now - checkpoint_written_ms_ < 1000)) {
      UpdateGauges();
      return;
    }
    checkpoint_written_ms_ = now;
    checkpoint_written_ = to_write = checkpoint_;
    PruneLocked(&doomed);
    UpdateGauges();
  }
  // A lost or stale checkpoint only means more records are processed again
  // at start; it needs no fsync of its own.
  std::lock_guard file_lock(checkpoint_file_mu_);
  const auto tmp = options_.dir / "checkpoint.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << to_write << "\n";
    if (!out.flush()) {
      Errors("checkpoint").Inc();
      return;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.dir / "checkpoint", ec);
  if (ec) Errors("checkpoint").Inc();
  for (const auto& p : doomed) std::filesystem::remove(p, ec);
}

void Journal::PruneLocked(std::vector<std::filesystem::path>* doomed) {
  // Processed segments (all but the tail), oldest first, while the processed
  // ones together exceed the retention.
  uint64_t processed = 0;
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    if (segments_[i].last_seq != 0 && segments_[i].last_seq <= checkpoint_)
      processed += segments_[i].bytes;
  }
  while (segments_.size() > 1 && processed > options_.retain_bytes) {
    const Segment& s = segments_.front();
    if (s.last_seq != 0 && s.last_seq > checkpoint_) break;
    processed -= s.bytes;
    total_bytes_ -= s.bytes;
    doomed->push_back(s.path);
    segments_.erase(segments_.begin());
  }
}

void Journal::UpdateGauges() {
  static Gauge& bytes =
      Metrics::Global().GetGauge("femtoguard_journal_bytes", {}, "Bytes in the ingest journal");
  static Gauge& backlog =
      Metrics::Global().GetGauge("femtoguard_journal_backlog_records", {},
                                 "Journal records not yet processed by detection and response");
  bytes.Set(static_cast<int64_t>(total_bytes_));
  backlog.Set(static_cast<int64_t>(last_seq_ > checkpoint_ ? last_seq_ - checkpoint_ : 0));
}

uint64_t Journal::last_seq() const {
  std::lock_guard lock(mu_);
  return last_seq_;
}
uint64_t Journal::checkpoint() const {
  std::lock_guard lock(mu_);
  return checkpoint_;
}
uint64_t Journal::bytes() const {
  std::lock_guard lock(mu_);
  return total_bytes_;
}

}  // namespace fg::ingest
