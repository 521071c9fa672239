#pragma once

// Detection inside `serve`: events arrive over HTTP (POST /v1/events, JSON
// Lines) and from the SeGW (sessions admitted through the gate), are decoded
// and pseudonymized at the door, travel the bus as decoded batches, and one
// detection engine (one thread: the bus dispatcher) turns them into alerts
// that the Responder stores and acts on. The World is seeded from the store
// (registry, endpoints, blocks, legacy credentials) and kept current by the
// node's change feed (ApplyChange). Same detectors and rules as `replay`.
//
// Also answers the payment check (POST /v1/payment/check) from the same
// World, and lists alerts (GET /v1/alerts).
//
// Thread-safety: thread-safe. The engine and World are guarded by one mutex,
// held by the bus thread per batch and briefly by payment checks.

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "bus/bus.h"
#include "bus/jetstream.h"
#include "common/config.h"
#include "common/pseudonym.h"
#include "common/status.h"
#include "detect/engine.h"
#include "response/response.h"
#include "http/http.h"
#include "store/change_subscriber.h"
#include "store/store.h"

namespace fg {

// A change-feed subscriber: registry, endpoint and block changes reach the
// detection World (ApplyChanges).
class LiveDetection final : public ChangeSubscriber {
 public:
  struct Options {
    std::string rules_path;  // empty: DIR/rules.yaml when present, else the built-in default
    std::string cells_path;  // empty: DIR/cells.csv when present
    response::Options response;
    // Called for every session.down accepted by POST /v1/events, after the
    // batch is on the bus: a SeGW that asks over HTTP reports the end of a
    // session this way, and admission must forget it (or the device's next
    // session from a new address would look like a clone). Optional.
    std::function<void(std::string_view device, std::string_view session)> on_session_down;
    // The ingest journal (DIR/journal by default). Every batch is on disk
    // there before POST /v1/events answers 200.
    std::string journal_dir;
    size_t journal_retain_bytes = 128 << 20;
    size_t journal_max_backlog_bytes = size_t{1} << 30;
    // Cluster mode (docs/stream.md): with servers, POST /v1/events publishes
    // each batch to the JetStream event stream instead of the local journal
    // and bus, and answers 200 only once JetStream has stored it.
    bus::JetStreamOptions stream;
    // Cluster mode: this node's id (leases of the stream's partitions).
    std::string node_id;
  };

  static Result<std::unique_ptr<LiveDetection>> Start(Store& store, const DataDir& dir, Options options);
  ~LiveDetection();
  void Stop();

  // POST /v1/events: JSON Lines body. 200 {"accepted":N,"unknown_type":U,
  // "malformed":[{"line":L,"error":"..."}...]} once the accepted events are
  // on disk (the journal); 503 when the bus or the journal cannot take them
  // (nothing from the body was accepted; retry). In cluster mode "on disk"
  // is JetStream's PubAck, and 503 also means the stream is unreachable
  // (femtoguard_bus_publish_total{result="error"}). A request with an
  // `Idempotency-Key` header (1-128 of A-Z a-z 0-9 . _ : -) is taken once:
  // a repeat answers 200 {"duplicate":true,...} and adds nothing.
  HttpResponse PostEvents(const HttpRequest& request);
  // POST /v1/payment/check {imsi, merchant, amount, channel[, ts]} ->
  // {"decision":"allow"|"step_up"|"deny","reasons":[...]}.
  HttpResponse PaymentCheck(const HttpRequest& request);

  // An event produced inside the node (the SeGW gate): already decoded.
  Status Publish(const detect::Event& event);
  // Change-feed row: registry, endpoint and block changes reach the World.
  void ApplyChange(const Change& change);
  // A page of the change feed, in order; the block list is read once. An
  // error when it cannot be read (the page's block changes are skipped;
  // the other changes are applied).
  Status ApplyChanges(std::span<const Change> changes);
  std::string_view name() const override { return "detection"; }
  Status OnChanges(std::span<const Change> changes) override { return ApplyChanges(changes); }
  // Waits until everything published so far has been processed.
  void Drain();
  // Drain(), then waits (at most `timeout_ms`) until the responses have
  // landed in the store; returns whether they all did.
  bool DrainResponses(int timeout_ms);

  response::Responder& responder();
  // Not safe against a concurrent ReloadRules(); other threads use FindRule.
  const detect::RuleSet& rules() const;
  // A copy of one rule's config, taken under the engine's lock.
  std::optional<detect::RuleConfig> FindRule(std::string_view rule) const;
  // SIGHUP: load and validate the rules file (--rules, else DIR/rules.yaml,
  // else built-in) and the cell database (DIR/cells.csv), then swap them in.
  // On an error nothing changes. OK carries a one-line summary.
  Result<std::string> ReloadRules();
  Result<std::string> ReloadCells();
  const Pseudonymizer& pseudonymizer() const;

 private:
  void ApplyBlock(const std::string& key, bool present, bool by_alert);  // key "kind:value"
  // `fn` on the local engine's World and on every stream partition's.
  void ForEachWorld(const std::function<void(detect::World&)>& fn);
  // Sets the World back to the store for an alert dismissed as a false
  // positive (suspicion cleared, status, block and payment holds re-read).
  void ResyncAfterUndo(const StoredAlert& alert);

  class Impl;
  explicit LiveDetection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fg
