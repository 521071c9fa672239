#include "admission/decision_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/json_text.h"
#include "common/metrics.h"

namespace fg::admission {

std::string DecisionLog::Format(const AdmissionRequest& r, UnixMillis ts, const Decision& d) {
  std::string out;
  out.reserve(256);
  out.append("{\"ts\":");
  AppendJsonString(&out, FormatRfc3339(ts));
  auto field = [&](const char* name, const std::string& value) {
    out.append(",\"").append(name).append("\":");
    AppendJsonString(&out, value);
  };
  field("device", r.device);
  field("session", r.session);
  field("src_ip", r.src_ip);
  field("endpoint", r.endpoint);
  field("segw", r.segw);
  if (!r.serial.empty()) field("serial", r.serial);
  if (!r.cert_fp.empty()) field("cert_fp", r.cert_fp);
  out.append(",\"decision\":");
  AppendJsonString(&out, VerdictName(d.verdict));
  out.append(",\"reasons\":[");
  for (size_t i = 0; i < d.reasons.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, d.reasons[i]);
  }
  out.append("],\"evidence\":{");
  for (size_t i = 0; i < d.evidence.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, d.evidence[i].first);
    out.push_back(':');
    AppendJsonString(&out, d.evidence[i].second);
  }
  out.append("}}");
  return out;
}

namespace {

int OpenAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
}

}  // namespace

Result<std::unique_ptr<DecisionLog>> DecisionLog::Open(const std::string& path, DecisionLogRotation rotation) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Status::Internal("decision log: cannot create " + p.parent_path().string() + ": " + ec.message());
  if (rotation.keep < 0) return Status::InvalidArgument("decision log: keep must be >= 0");
  int fd = OpenAppend(path);
  if (fd < 0) return Status::Internal("decision log: cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return std::unique_ptr<DecisionLog>(new DecisionLog(path, rotation, fd, size));
}

DecisionLog::DecisionLog(std::string path, DecisionLogRotation rotation, int fd, uint64_t size)
    : path_(std::move(path)), rotation_(rotation), fd_(fd), size_(size) {
  flusher_ = std::thread([this] { Run(); });
}

DecisionLog::~DecisionLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  (void)Flush();
  if (fd_ >= 0) ::close(fd_);
}

void DecisionLog::Append(const AdmissionRequest& request, UnixMillis ts, const Decision& decision) {
  std::string line = Format(request, ts, decision);
  line.push_back('\n');
  std::lock_guard lock(mu_);
  buffer_.append(line);
}

Status DecisionLog::Flush() {
  std::unique_lock lock(mu_);
  return WriteLocked(lock);
}

Status DecisionLog::WriteLocked(std::unique_lock<std::mutex>& lock) {
  std::string out;
  out.swap(buffer_);
  // Take the write lock before releasing mu_ so that batches stay in order.
  std::lock_guard write_lock(write_mu_);
  lock.unlock();
  if (out.empty()) return Status::Ok();
  // Rotate at a line boundary: the lines that would cross max_bytes go to the
  // next file. A batch larger than max_bytes is split at its lines.
  size_t off = 0;
  while (off < out.size()) {
    size_t end = out.size();
    if (rotation_.max_bytes > 0) {
      uint64_t room = size_ < rotation_.max_bytes ? rotation_.max_bytes - size_ : 0;
      if (end - off > room) {
        // The last complete line that fits; at least one line per file.
        size_t cut = room > 0 ? out.rfind('\n', off + room - 1) : std::string::npos;
        if (cut == std::string::npos || cut < off) {
          if (size_ > 0) {
            FG_RETURN_IF_ERROR(RotateLocked());
            continue;
          }
          cut = out.find('\n', off);
          if (cut == std::string::npos) cut = out.size() - 1;
        }
        end = cut + 1;
      }
    }
    if (fd_ < 0) {
      fd_ = OpenAppend(path_);
      if (fd_ < 0) return Status::Internal("decision log: cannot open " + path_ + ": " + std::strerror(errno));
    }
    while (off < end) {
      ssize_t n = ::write(fd_, out.data() + off, end - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Internal(std::string("decision log: write: ") + std::strerror(errno));
      }
      off += static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
  }
  return Status::Ok();
}

Status DecisionLog::RotateLocked() {
  // path.(keep) is dropped, path.(i) -> path.(i+1), path -> path.1.
  std::error_code ec;
  auto name = [&](int i) { return i == 0 ? path_ : path_ + "." + std::to_string(i); };
  std::filesystem::remove(name(rotation_.keep), ec);
  for (int i = rotation_.keep - 1; i >= 0; --i) {
    if (!std::filesystem::exists(name(i), ec)) continue;
    std::filesystem::rename(name(i), name(i + 1), ec);
    if (ec) return Status::Internal("decision log: rotate " + name(i) + ": " + ec.message());
  }
  if (rotation_.keep == 0) std::filesystem::remove(path_, ec);
  ::close(fd_);
  fd_ = OpenAppend(path_);
  size_ = 0;
  if (fd_ < 0) return Status::Internal("decision log: cannot open " + path_ + ": " + std::strerror(errno));
  Metrics::Global()
      .GetCounter("femtoguard_admission_log_rotations_total", {}, "Decision log files rotated by size")
      .Inc();
  return Status::Ok();
}

void DecisionLog::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
    if (buffer_.empty()) continue;
    if (Status s = WriteLocked(lock); !s.ok()) {
      Metrics::Global()
          .GetCounter("femtoguard_admission_log_errors_total", {}, "Decision log writes that failed")
          .Inc();
      spdlog::error("{}", s.ToString());
    }
    lock.lock();
  }
}

}  // namespace fg::admission
