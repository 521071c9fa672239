#pragma once

// The ingest journal: what makes an acknowledged event survive kill -9.
//
// POST /v1/events (and every later transport) appends its decoded batch
// here and answers only once the record is on disk. Detection reads the
// same batches from the bus; when a batch has been processed and every
// response it caused has landed in the store, the node moves the journal's
// checkpoint past it. On start, every retained record is handed back in
// order: those past the checkpoint are the work a crash interrupted, those
// before it rebuild detection state. Alerts have stable ids and responses
// are idempotent by alert id, so processing a record twice raises the same
// alert once and acts once.
//
// On disk: DIR/seg-<first seq, 20 digits>.log files of records
//   u32 magic "FGJ1" | u32 body length | u64 seq | u32 CRC-32 of seq+body |
//   u16 batch-id length | u16 flags(0) | body = batch id + payload
// and DIR/checkpoint (decimal seq). The payload is the decoded batch
// (bus/event_codec.h): pseudonyms only, never a raw subscriber identifier.
// A torn record at the end of the last segment (a crash mid-write) is cut
// off at open; a bad record elsewhere is reported, counted and skipped with
// the rest of its segment.
//
// Group commit: Append() writes without waiting for the disk; Sync(seq)
// waits until seq is durable, and one fdatasync serves every writer that
// was waiting for it. After a failed fdatasync the journal refuses writes
// (the kernel may have dropped the pages: retrying would acknowledge data
// that is not on disk).
//
// Bounded: processed segments are kept up to `retain_bytes`; records not
// yet processed may take up to `max_backlog_bytes`, then Append refuses
// (Unavailable: the HTTP client is told 503 and retries).
//
// Metrics: femtoguard_journal_bytes, femtoguard_journal_backlog_records,
// femtoguard_journal_fsyncs_total, femtoguard_journal_errors_total{op=...}.
//
// Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace fg::ingest {

class Journal {
 public:
  struct Options {
    std::filesystem::path dir;
    size_t segment_bytes = 64 << 20;
    size_t retain_bytes = 128 << 20;
    size_t max_backlog_bytes = size_t{1} << 30;
    size_t remembered_batch_ids = 100000;  // client batch ids deduplicated
  };
  struct Record {
    uint64_t seq = 0;
    std::string_view batch_id;  // may be empty
    std::string_view payload;
  };
  using ReplayFn = std::function<void(const Record&)>;
  // Makes the payload visible to readers (the bus) while the record is the
  // journal's newest; a refusal takes the record back.
  using PublishFn = std::function<Status(uint64_t seq)>;

  // Opens (creating) the journal and calls `replay` for every valid record,
  // in order, before returning.
  static Result<std::unique_ptr<Journal>> Open(Options options, const ReplayFn& replay);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends a record; `publish` is called under the journal's lock, so
  // publish order is journal order. Returns the record's seq.
  // AlreadyExists (message: the earlier seq) when `batch_id` is non-empty
  // and was appended before: nothing is written.
  Result<uint64_t> Append(std::string_view batch_id, std::string_view payload,
                          const PublishFn& publish);
  // Waits until every record up to `seq` is on disk.
  Status Sync(uint64_t seq);
  // The seq of an earlier record with this batch id, if remembered.
  std::optional<uint64_t> FindBatch(std::string_view batch_id) const;

  // Every record up to `seq` is processed and its effects are stored. The
  // checkpoint file is written at most once a second (or when `force`), and
  // processed segments beyond the retention are deleted.
  void Checkpoint(uint64_t seq, bool force = false);

  uint64_t last_seq() const;
  uint64_t checkpoint() const;
  uint64_t bytes() const;

 private:
  struct Segment {
    std::filesystem::path path;
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;  // 0: empty
    uint64_t bytes = 0;
  };
  struct File;  // an open segment (fd), shared with a running fdatasync

  explicit Journal(Options options);
  Status Load(const ReplayFn& replay);
  Status OpenTail();                                       // the newest segment, for appending
  Status Rotate();                                         // guarded by mu_
  void Remember(std::string_view batch_id, uint64_t seq);  // guarded by mu_
  void PruneLocked(std::vector<std::filesystem::path>* doomed);
  void UpdateGauges();  // guarded by mu_

  const Options options_;

  mutable std::mutex mu_;
  std::vector<Segment> segments_;      // guarded by mu_; oldest first, last is the tail
  std::shared_ptr<File> tail_;         // guarded by mu_
  uint64_t tail_offset_ = 0;           // guarded by mu_
  uint64_t last_seq_ = 0;              // guarded by mu_
  uint64_t checkpoint_ = 0;            // guarded by mu_
  uint64_t checkpoint_written_ = 0;    // guarded by mu_
  int64_t checkpoint_written_ms_ = 0;  // guarded by mu_
  uint64_t total_bytes_ = 0;           // guarded by mu_
  bool failed_ = false;                // guarded by mu_ (after a failed fdatasync)
  std::unordered_map<std::string, uint64_t> batch_ids_;  // guarded by mu_
  std::deque<std::string> batch_order_;                  // guarded by mu_

  std::mutex checkpoint_file_mu_;  // one writer of DIR/checkpoint at a time

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t synced_seq_ = 0;  // guarded by sync_mu_
  bool syncing_ = false;     // guarded by sync_mu_
};

}  // namespace fg::ingest
