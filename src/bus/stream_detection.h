#pragma once

// Cluster-mode detection over the JetStream event stream (docs/stream.md,
// "Consumption"). Each partition of the stream is worked on by the node
// holding its lease (bus/leases.h), in two stages, both on that node:
//
//  - the DEVICE stage reads the partition's events (<prefix>.ev.<N>.>) in
//    stream order and runs every detector except payment.risk: a device's
//    events all land in its partition, so its state is whole there. After
//    each message it publishes the DERIVED records subscriber rules need to
//    the derived stream: the events that say which femtocell served whom
//    (ue.attach, ue.detach, sms.deliver) to the served subscriber's
//    partition, each femtocell's changed risk (registered, status, blocked,
//    suspect until) to every partition, and the partition's payments to
//    their subscriber's. Then it records its progress: "every batch whose
//    end marker is at stream sequence S or before is processed" (KV
//    wm.<N>; the producer stores a marker in every partition after each
//    batch).
//  - the SUBSCRIBER stage reads <prefix>.sub.<N>.> and runs payment.risk.
//    A payment is judged only once every device partition's progress has
//    passed the payment's own stream sequence (the producer stores a
//    batch's payments after the rest of it): by then every record that
//    replay would have applied before it is here, and records are applied
//    in event-time order. So the alerts equal single-process replay's for
//    input in event-time order, whatever the node and partition counts.
//
// A new owner of a partition (a node died, joined or started) rebuilds the
// partition's state by reading it from the start; alerts of messages whose
// effects had already landed (KV ack.<N> / sack.<N>) are not handed on
// again, and those after it are handed on with their stable ids (the
// sink makes them idempotent: the responder stores each alert id once).
//
// Thread-safety: Start/Stop/Wait from one thread; the sink is called from
// partition threads (one per owned partition) concurrently.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "detect/engine.h"

namespace fg::bus {

enum class Stage { kDevice, kSubscriber };

struct StreamDetectionOptions {
  std::vector<std::string> servers;  // nats://...
  std::string node_id;               // [A-Za-z0-9_-]+
  // Subjects <prefix>.ev.<N>.<device> (the producer's, JetStreamOptions)
  // and <prefix>.sub.<N>.<kind>; streams and buckets by name.
  std::string prefix = "fg";
  std::string event_stream = "FG_EVENTS";
  std::string derived_stream = "FG_DERIVED";
  std::string lease_bucket = "FG_LEASES";
  std::string progress_bucket = "FG_PROGRESS";
  int partitions = 16;
  int replicas = 3;
  int64_t lease_ttl_ms = 6000;
  int min_nodes = 1;  // LeaseOptions::min_nodes
  // serve: every alert, once on_alert has it, also goes to the stream
  // FG_ALERTS, subject <prefix>.alerts.<rule>, message id = the alert id
  // (at least once; JetStream drops a re-publication within its window).
  bool publish_alerts = false;
  std::string alert_stream = "FG_ALERTS";
  // serve: each subscriber's exposure (served by a risky femtocell within
  // payment.risk's exposure_s) in a KV bucket, for payment checks on any
  // node (Exposure()): key "s.<24 hex>", written when it changes.
  bool publish_exposure = false;
  std::string exposure_bucket = "FG_EXPOSURE";
  // Replay: the input ends (every partition gets an end marker) and Wait()
  // returns once every partition is done.
  bool finite = false;
  // The NATS client's limit of deliveries waiting per stream consumer
  // (messages, bytes); 0: cnats' default (65536, 64 MiB), or the
  // environment's FEMTOGUARD_STREAM_PENDING_MSGS / _BYTES. Past it the
  // client drops deliveries and the reader asks for them again
  // (docs/stream.md); tests set it small to make that happen.
  int reader_pending_msgs = 0;
  int reader_pending_bytes = 0;
  // A World and the rules for one stage of one partition, fresh each time
  // (registry from the store or a file; cells only for the device stage).
  std::function<Result<std::pair<detect::World, detect::RuleSet>>(Stage)> seed;
  // Called for every alert, on the partition's thread; returns once the
  // alert is durable (stored, written). An error is retried (the partition
  // waits): an alert is never skipped.
  std::function<Status(const detect::Alert&, uint32_t partition)> on_alert;
  // An alert re-raised by a rebuild (already landed: not handed on), with
  // the World it changed, under the partition's lock. Optional.
  std::function<void(const detect::Alert&, detect::World&)> on_replayed;
  std::function<void(uint32_t partition, bool owned)> on_ownership;
};

// A subscriber's exposure as the keyed stage last judged it.
struct Exposure {
  std::string femto;        // the risky femtocell that served them last
  std::string risk;         // unknown, inactive, blocked, suspect
  UnixMillis served_ms = 0; // when it last served them
  UnixMillis until_ms = 0;  // exposed until (event time)
  UnixMillis as_of_ms = 0;  // event time of the judgement
};

struct StreamDetectionStats {
  uint64_t events = 0;        // device-stage events processed (rebuilds included)
  uint64_t keyed = 0;         // keyed-stage events judged (payments, cell reports per cell partition)
  uint64_t alerts = 0;        // handed to on_alert
  uint64_t suppressed = 0;    // re-raised during a rebuild, already landed
  uint64_t derived = 0;       // derived messages published
};

class StreamDetection {
 public:
  static Result<std::unique_ptr<StreamDetection>> Start(StreamDetectionOptions options);
  ~StreamDetection();
  StreamDetection(const StreamDetection&) = delete;
  StreamDetection& operator=(const StreamDetection&) = delete;

  // finite: blocks until every partition is done (true), or `timeout_ms`
  // passes (false).
  bool Wait(int64_t timeout_ms);
  // Stops every partition thread and releases the leases (a clean stop:
  // another node takes over at once).
  void Stop();
  // Runs `fn` on the World of every engine this node holds, each under its
  // partition's lock (registry changes from the store's change feed).
  void ForEachWorld(const std::function<void(detect::World&)>& fn);
  StreamDetectionStats stats() const;
  std::vector<uint32_t> owned() const;
  // The exposure of `subscriber` from the bucket (any node's judgement);
  // nullopt when none is recorded. Unavailable when the bucket is not.
  Result<std::optional<Exposure>> GetExposure(const detect::SubjectId& subscriber);

 private:
  struct Impl;
  explicit StreamDetection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Subject of an end-of-input marker for partition N (replay), published by
// the producer after the last batch.
std::string EndSubject(const std::string& prefix, uint32_t partition);
inline constexpr const char* kEndHeader = "Fg-End";
// Header of the marker the producer stores in every partition after each
// batch (JetStreamProducer::PublishBatch).
inline constexpr const char* kBatchEndHeader = "Fg-Batch-End";

}  // namespace fg::bus
