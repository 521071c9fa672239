#pragma once

// The event stream on NATS JetStream (docs/stream.md): the cluster-mode
// producer side. Ingest (POST /v1/events, `femtoguard feed --bus`) hands it a
// batch in the binary batch format (event_codec.h); it splits the batch by
// partition, publishes each part to the file-backed, replicated stream
// FG_EVENTS on subject fg.ev.<partition>.<device>, and returns only once
// JetStream has stored every part (its PubAck: the stream's RAFT group has
// it on a quorum of disks). Nothing is acknowledged to a client before that.
//
// The partition of an event is computed here, by the producer (nats-server
// 2.9 has no subject transforms): a stable hash of the device id, or of the
// subscriber pseudonym for an event without a device. A part's message id is
// "<batch id>.p<partition>": a batch re-sent with the same id (a client's
// Idempotency-Key, after a timeout or a 503) splits the same way, and
// JetStream drops the parts it already holds (its duplicate window).
//
// Thread-safety: thread-safe (one NATS connection, shared; cnats serialises).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "detect/event.h"

namespace fg::bus {

inline constexpr const char* kEventStream = "FG_EVENTS";
inline constexpr const char* kEventSubjectPrefix = "fg.ev.";

struct JetStreamOptions {
  std::vector<std::string>
      servers;  // nats://host[:port], any number; the client fails over between them
  std::string stream = kEventStream;
  // Subjects <subject_prefix><partition>.<device>; replay runs use their own.
  std::string subject_prefix = kEventSubjectPrefix;
  // Fixed for the stream's life: written into its description at creation
  // and checked by every producer, since a change would move devices to
  // other partitions under their owners' feet.
  int partitions = 16;
  int replicas = 3;  // R3: survives the loss of one server of three
  // How long one batch may take to be stored, retries across a stream
  // leader election included, before the client gets a 503.
  int publish_timeout_ms = 5000;
  // Re-sent batches within this window are de-duplicated by JetStream.
  int64_t duplicate_window_ms = 10 * 60 * 1000;
  std::string client_name = "femtoguard";
};

// "nats://h1:4222,nats://h2,..." (the --bus flag, config bus.url): the
// server URLs, each checked. InvalidArgument on anything else.
Result<std::vector<std::string>> ParseBusUrl(std::string_view url);

// The partition an event belongs to (stable across versions and machines:
// FNV-1a of the key) and its subject. Events of one device always share a
// partition; an event without a device goes by its subscriber.
uint32_t PartitionOf(std::string_view key, uint32_t partitions);
// payment.auth always goes by its subscriber (even when it names a
// femtocell): the subscriber stage judges it (bus/stream_detection.h).
uint32_t EventPartition(const detect::Event& e, uint32_t partitions);
// fg.ev.<partition>.<token>: the device id made a valid subject token, "_"
// for no device, "mixed" for a part that holds several devices.
// Events whose copies go to every partition (besides their device's): the
// state of CrossDevice() detectors (a certificate or a transport address
// shared by several devices) needs every device's (stream_detection.h).
bool SharedAcrossPartitions(detect::EventType t);
std::string EventSubject(uint32_t partition, std::string_view device_token,
                         std::string_view prefix = kEventSubjectPrefix);
std::string SubjectToken(std::string_view device);

struct PublishReport {
  size_t parts = 0;       // messages the batch became
  size_t duplicates = 0;  // of them, already in the stream (a re-sent batch)
  size_t events = 0;
};

class JetStreamProducer {
 public:
  // Connects (in the background when no server answers yet: a node starts
  // while the NATS cluster is down, and answers 503 until it is up).
  static Result<std::unique_ptr<JetStreamProducer>> Connect(const JetStreamOptions& options);
  ~JetStreamProducer();
  JetStreamProducer(const JetStreamProducer&) = delete;
  JetStreamProducer& operator=(const JetStreamProducer&) = delete;

  // Creates the stream when it is missing (file storage, `replicas`,
  // subjects fg.ev.>, the duplicate window); checks an existing one was made
  // with the same partition count (FailedPrecondition if not).
  Status EnsureStream();

  // Splits `batch` (binary batch format) by partition and publishes every
  // part with message id "<batch_id>.p<N>" (events of femtocells) or
  // "<batch_id>.s<N>" (events without one, payments: published only once
  // every other part is stored, so that a payment's stream sequence is
  // above everything the batch said before it), then an end marker
  // ("<batch_id>.e<N>", header Fg-Batch-End) in every partition, waiting
  // for each PubAck
  // (retrying, with the same id, through a leader election for up to
  // publish_timeout_ms). OK only when every part is stored. Unavailable when
  // JetStream cannot be reached or does not answer in time: some parts may
  // be stored, and re-sending the batch with the same id completes it
  // without duplicates. InvalidArgument for an undecodable batch or a bad id.
  Result<PublishReport> PublishBatch(std::string_view batch, std::string_view batch_id);

  // One message, waiting for its PubAck (same retry rule); true when
  // JetStream already held `msg_id`.
  Result<bool> Publish(const std::string& subject, std::string_view payload,
                       const std::string& msg_id);

  // Replay: an end-of-input marker in every partition (bus/stream_detection.h).
  Status PublishEnd(std::string_view run_id);

  const JetStreamOptions& options() const { return options_; }

 private:
  struct Nats;
  explicit JetStreamProducer(JetStreamOptions options);
  Status TryEnsureStream();  // nats_->mutex held
  // An empty batch with `header` in every partition, ids <id_prefix><N>.
  Status PublishMarkers(const std::string& id_prefix, const char* header, const char* token);

  const JetStreamOptions options_;
  std::unique_ptr<Nats> nats_;
};

}  // namespace fg::bus
