#include "response/outbox.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include <spdlog/spdlog.h>

#include "common/config.h"
#include "common/ossl.h"

namespace fg::response {
namespace {

namespace fs = std::filesystem;

constexpr size_t kSeqDigits = 16;

// The alert id is hex-encoded in the name: an id may hold any byte.
std::string Hex(std::string_view s) {
  return ossl::HexLower(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}
Result<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2) return Status::InvalidArgument("odd hex");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return Status::InvalidArgument("bad hex");
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// Zero-padded so that the names sort in queueing order.
std::string SeqName(uint64_t seq, std::string_view alert_id, std::string_view suffix) {
  std::string digits = std::to_string(seq);
  return std::string(kSeqDigits - std::min(kSeqDigits, digits.size()), '0') + digits + "-" + Hex(alert_id) +
         std::string(suffix);
}

}  // namespace

Result<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  fs::permissions(options.dir, fs::perms::owner_all, ec);
  if (!fs::is_directory(options.dir)) {
    return Status::Internal(options.queue_name + " " + options.dir.string() + " is not a directory");
  }
  std::unique_ptr<Outbox> box(new Outbox(std::move(options)));
  const std::string& suffix = box->options_.suffix;
  // What an earlier run left behind, oldest first.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(box->options_.dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > kSeqDigits + 1 + suffix.size() && name[kSeqDigits] == '-' && name.ends_with(suffix)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    auto id = Unhex(std::string_view(name).substr(kSeqDigits + 1, name.size() - kSeqDigits - 1 - suffix.size()));
    if (!id.ok() || box->queued_ids_.count(*id)) continue;
    uint64_t seq = 0;
    std::from_chars(name.data(), name.data() + kSeqDigits, seq);
    box->next_seq_ = std::max(box->next_seq_, seq + 1);
    box->queue_.push_back({*id, box->options_.dir / name});
    box->queued_ids_.insert(*id);
  }
  std::lock_guard lock(box->mutex_);
  box->SetPendingGauge();
  return box;
}

void Outbox::StartSending(Deliver deliver, std::string recovered) {
  deliver_ = std::move(deliver);
  recovered_ = std::move(recovered);
  sender_ = std::thread([this] { Run(); });
}

Outbox::~Outbox() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  if (options_.remove_dir) {
    std::error_code ec;
    fs::remove_all(options_.dir, ec);
  }
}

void Outbox::SetPendingGauge() {
  if (options_.pending_gauge) options_.pending_gauge->Set(static_cast<int64_t>(queue_.size()));
}

void Outbox::Enqueue(std::string_view alert_id, std::string payload) {
  std::lock_guard lock(mutex_);
  if (queued_ids_.count(std::string(alert_id))) return;  // still pending: sent once
  fs::path path = options_.dir / SeqName(next_seq_++, alert_id, options_.suffix);
  if (Status s = WriteFileAtomic(path, payload, 0600); !s.ok()) {
    // Not durable, but not dropped: it is still sent from memory.
    spdlog::error("{}: cannot queue alert {} on disk: {}", options_.log_prefix, alert_id, s.ToString());
    in_memory_.emplace(std::string(alert_id), std::move(payload));
  }
  queue_.push_back({std::string(alert_id), path});
  queued_ids_.insert(std::string(alert_id));
  SetPendingGauge();
  cv_.notify_all();
}

bool Outbox::Flush(int timeout_ms) {
  std::unique_lock lock(mutex_);
  auto done = [this] { return stop_ || (queue_.empty() && in_flight_ == 0); };
  if (timeout_ms < 0) {
    cv_.wait(lock, done);
    return queue_.empty();
  }
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done) && queue_.empty();
}

size_t Outbox::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Outbox::Run() {
  int backoff_ms = options_.retry_initial_ms;
  bool failing = false;
  for (;;) {
    std::vector<Item> batch;
    std::vector<std::string> from_memory;  // empty: read from its file
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      for (size_t i = 0; i < queue_.size() && i < options_.max_batch; ++i) {
        batch.push_back(queue_[i]);
        auto m = in_memory_.find(queue_[i].id);
        from_memory.push_back(m == in_memory_.end() ? std::string() : m->second);
      }
      in_flight_ = batch.size();
    }
    // Read back from the queue files, outside the lock: what was made
    // durable is what is sent, byte for byte, every time.
    std::vector<Message> messages;
    std::vector<fs::path> unreadable;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!from_memory[i].empty()) {
        messages.push_back({batch[i].id, std::move(from_memory[i])});
        continue;
      }
      auto text = ReadFile(batch[i].path);
      if (text.ok()) {
        messages.push_back({batch[i].id, std::move(*text)});
        continue;
      }
      spdlog::error("{}: queued alert {} unreadable ({}); skipped", options_.log_prefix, batch[i].id,
                    text.status().ToString());
      unreadable.push_back(batch[i].path);
    }
    if (!unreadable.empty()) {
      // Dropped rather than retried: reading it again will not help. Only
      // this thread removes from queue_, so the rest of the batch is still
      // its front, in order.
      std::lock_guard lock(mutex_);
      std::erase_if(queue_, [&](const Item& item) {
        if (std::find(unreadable.begin(), unreadable.end(), item.path) == unreadable.end()) return false;
        std::error_code ec;
        fs::remove(item.path, ec);
        queued_ids_.erase(item.id);
        return true;
      });
      in_flight_ = messages.size();
      SetPendingGauge();
      cv_.notify_all();
      if (messages.empty()) continue;
    }
    Status sent = deliver_(messages);
    std::unique_lock lock(mutex_);
    in_flight_ = 0;
    if (sent.ok()) {
      for (size_t i = 0; i < messages.size(); ++i) {
        std::error_code ec;
        fs::remove(queue_.front().path, ec);
        in_memory_.erase(queue_.front().id);
        queued_ids_.erase(queue_.front().id);
        queue_.pop_front();
      }
      SetPendingGauge();
      if (failing) spdlog::info("{}: {}", options_.log_prefix, recovered_);
      failing = false;
      backoff_ms = options_.retry_initial_ms;
      cv_.notify_all();
      continue;
    }
    if (!failing) {
      spdlog::warn("{}: {}; {} alert(s) queued, retrying with backoff", options_.log_prefix, sent.message(),
                   queue_.size());
    }
    failing = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stop_; });
    if (stop_) return;
    backoff_ms = std::min(options_.retry_max_ms, backoff_ms * 2);
  }
}

}  // namespace fg::response
