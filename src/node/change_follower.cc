#include "node/change_follower.h"

#include <spdlog/spdlog.h>

#include "common/metrics.h"

namespace fg {
namespace {

class FunctionSubscriber final : public ChangeSubscriber {
 public:
  FunctionSubscriber(std::string name, std::function<Status(std::span<const Change>)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string_view name() const override { return name_; }
  Status OnChanges(std::span<const Change> changes) override { return fn_(changes); }

 private:
  std::string name_;
  std::function<Status(std::span<const Change>)> fn_;
};

Gauge& AppliedSeqGauge() {
  static Gauge& g = Metrics::Global().GetGauge(
      "femtoguard_change_feed_applied_seq", {},
      "The last change-feed seq this node handed to every subscriber (compare across nodes for the lag)");
  return g;
}

}  // namespace

std::unique_ptr<ChangeSubscriber> MakeChangeSubscriber(std::string name,
                                                       std::function<Status(std::span<const Change>)> on_changes) {
  return std::make_unique<FunctionSubscriber>(std::move(name), std::move(on_changes));
}

ChangeFollower::ChangeFollower(ChangeFeed& feed, int64_t last_seq, Options options)
    : feed_(feed), options_(options), last_seq_(last_seq) {}

void ChangeFollower::Add(ChangeSubscriber& subscriber) {
  Counter& errors = Metrics::Global().GetCounter(
      "femtoguard_change_subscriber_errors_total", "subscriber=\"" + std::string(subscriber.name()) + "\"",
      "Change-feed pages a subscriber failed to apply (it catches up on its own re-read), by subscriber");
  subscribers_.push_back({&subscriber, &errors});
}

void ChangeFollower::Subscribe(ChangeSubscriber& subscriber) {
  std::lock_guard lock(mutex_);
  Add(subscriber);
}

void ChangeFollower::Subscribe(std::unique_ptr<ChangeSubscriber> subscriber) {
  std::lock_guard lock(mutex_);
  Add(*subscriber);
  owned_.push_back(std::move(subscriber));
}

void ChangeFollower::SetSyncHooks(std::function<void()> before, std::function<void()> after) {
  std::lock_guard lock(mutex_);
  before_sync_ = std::move(before);
  after_sync_ = std::move(after);
}

int64_t ChangeFollower::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_seq_;
}

Status ChangeFollower::Sync() {
  std::lock_guard lock(mutex_);
  if (before_sync_) before_sync_();
  for (;;) {
    FG_ASSIGN_OR_RETURN(std::vector<Change> page, feed_.ChangesSince(last_seq_, options_.page_size));
    if (page.empty()) break;
    for (const Entry& e : subscribers_) {
      Status s = e.subscriber->OnChanges(page);
      if (!s.ok()) {
        e.errors->Inc();
        spdlog::warn("change feed: subscriber {} failed on seq {}..{}: {}", e.subscriber->name(), page.front().seq,
                     page.back().seq, s.ToString());
      }
    }
    last_seq_ = page.back().seq;
    AppliedSeqGauge().Set(last_seq_);
    if (page.size() < options_.page_size) break;  // that was the last page
  }
  if (after_sync_) after_sync_();
  return Status::Ok();
}

void ChangeFollower::Run(const std::function<void()>& after_sync) {
  while (!stopping()) {
    feed_.WaitForChange(last_seq(), options_.poll_ms);
    if (stopping()) break;
    if (Status s = Sync(); !s.ok()) spdlog::warn("change feed: {}", s.ToString());
    if (after_sync) after_sync();
  }
}

}  // namespace fg
