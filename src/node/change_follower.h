#pragma once

// Follows the store's change feed for the node: remembers the last seq it
// applied, reads every page after it (ChangeFeed::ChangesSince) and hands
// each page to every subscriber (store/change_subscriber.h), in subscription
// order. The node's composition (node.cc) subscribes the OCSP cache, the CRL
// publishers, the admission snapshot, the detection world and the SeGW
// adapters; adding one is one Subscribe() call.
//
// Thread-safety: Sync() and Subscribe() may be called from any thread; they
// are serialised, so a subscriber sees one page at a time. Run() is the
// follower thread's loop; Stop() ends it from another thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg {

class Counter;

class ChangeFollower {
 public:
  struct Options {
    size_t page_size = 1000;  // changes per ChangesSince read, and per OnChanges call
    int poll_ms = 250;        // Run(): the longest wait between two reads
  };

  // Starts after `last_seq`: take it (LatestChangeSeq) before loading the
  // snapshots the subscribers hold, so that a change made in between is
  // applied twice (harmless), not missed.
  ChangeFollower(ChangeFeed& feed, int64_t last_seq, Options options);
  ChangeFollower(ChangeFeed& feed, int64_t last_seq) : ChangeFollower(feed, last_seq, Options{}) {}

  // Pages after the one in progress go to `subscriber` too. Not owned: it
  // must outlive the follower (or at least the last Sync).
  void Subscribe(ChangeSubscriber& subscriber);
  // The same, the follower keeping it (the node's small adapters).
  void Subscribe(std::unique_ptr<ChangeSubscriber> subscriber);

  // Under Sync's lock: `before` ahead of the first read, `after` once the
  // feed was read to its end (not after a failed read). For what the node
  // does around every sync (the token cache, landed blocks, the CA on disk).
  void SetSyncHooks(std::function<void()> before, std::function<void()> after);

  // Reads every page after last_seq() and hands it to every subscriber. The
  // seq advances past a page once every subscriber was given it, whether or
  // not each one took it without error: a failed subscriber is logged and
  // counted (femtoguard_change_subscriber_errors_total{subscriber}), the
  // others still get the page and the pages after it, and the failed page is
  // not replayed (a replay would hand it twice to the subscribers that took
  // it). The failed subscriber's state is then stale for those keys until its
  // own re-read catches up: the admission and detection snapshots on reload,
  // the OCSP cache's minute refresh (RefreshStale), the CRL's regeneration
  // when aging, a later change of the same key. A store error reading the
  // feed returns it, with the seq unchanged: the next Sync reads again.
  Status Sync();

  // Until Stop(): waits for a change (ChangeFeed::WaitForChange, at most
  // poll_ms: a LISTEN/NOTIFY wake-up on PostgreSQL, a sleep on SQLite), then
  // Sync(), then `after_sync` (the node's periodic chores), if set.
  void Run(const std::function<void()>& after_sync = {});
  void Stop() { stopping_.store(true); }
  bool stopping() const { return stopping_.load(); }

  int64_t last_seq() const;

 private:
  struct Entry {
    ChangeSubscriber* subscriber;
    Counter* errors;
  };
  void Add(ChangeSubscriber& subscriber);

  ChangeFeed& feed_;
  const Options options_;
  mutable std::mutex mutex_;  // serialises Sync; guards the members below
  int64_t last_seq_;
  std::vector<Entry> subscribers_;
  std::vector<std::unique_ptr<ChangeSubscriber>> owned_;
  std::function<void()> before_sync_, after_sync_;
  std::atomic<bool> stopping_{false};
};

// A subscriber made of a name and a function, for the node's one-liners:
//   follower.Subscribe(MakeChangeSubscriber("nodes", [](std::span<const Change> page) { ...; return Status::Ok(); }));
std::unique_ptr<ChangeSubscriber> MakeChangeSubscriber(std::string name,
                                                       std::function<Status(std::span<const Change>)> on_changes);

}  // namespace fg
