#include "admission/decision_log.h"

#include <fcntl.h>
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

Result<std::unique_ptr<DecisionLog>> DecisionLog::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Status::Internal("decision log: cannot create " + p.parent_path().string() + ": " + ec.message());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Status::Internal("decision log: cannot open " + path + ": " + std::strerror(errno));
  return std::unique_ptr<DecisionLog>(new DecisionLog(fd));
}

DecisionLog::DecisionLog(int fd) : fd_(fd) { flusher_ = std::thread([this] { Run(); }); }

DecisionLog::~DecisionLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  (void)Flush();
  ::close(fd_);
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
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Internal(std::string("decision log: write: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
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
