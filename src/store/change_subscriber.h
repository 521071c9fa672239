#pragma once

// What a reader of the change feed (store.h's ChangeFeed) implements to be
// driven by node/change_follower.h: the OCSP cache, the CRL publishers, the
// admission snapshot, the detection world, the SeGW session terminator...
// Header only, next to the feed, so that pki/, admission/ and the node's
// adapters can implement it without depending on the node.

#include <span>
#include <string_view>

#include "common/status.h"
#include "store/store.h"

namespace fg {

class ChangeSubscriber {
 public:
  virtual ~ChangeSubscriber() = default;

  // For logs and the label of femtoguard_change_subscriber_errors_total.
  virtual std::string_view name() const = 0;

  // One page of the feed, oldest first. Pages arrive in feed order, each
  // exactly once, on one thread at a time (the follower serialises them).
  // An error is logged and counted; the page is not handed over again (see
  // ChangeFollower::Sync), so a subscriber that can fail keeps a way to
  // catch up by itself (a re-read of its snapshot).
  virtual Status OnChanges(std::span<const Change> changes) = 0;
};

}  // namespace fg
