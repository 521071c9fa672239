// femtoguard feed: streams an events file (e.g. from `femtoguard sim`) into a
// running serve at an accelerated clock, with a live view of the alerts as
// they fire and the actions taken. The demo's main job; also how an operator
// pushes a day of exported logs through a live node.
//
// Events go over the API (POST /v1/events, ingest token) on serve's TLS
// listener (https, server checked against --cacert, by default the data
// dir's root CA), paced by event
// time so that the whole file takes --duration seconds of wall time. Alerts
// are read from the node's store (as `femtoguard alert list` does).
//
// With --bus nats://... (cluster mode, docs/stream.md) the feed is a
// producer itself: it decodes and pseudonymizes the lines with the data
// dir's key (as serve's ingest does), and publishes each batch to the
// JetStream event stream, split by partition, going on only once JetStream
// has stored it. No token or server is needed then.

#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "admission/http_client.h"
#include "bus/event_codec.h"
#include "bus/jetstream.h"
#include "common/pseudonym.h"
#include "ingest/decoder.h"
#include "cli/commands.h"
#include "common/ossl.h"
#include "common/time.h"

namespace fg::cli {
namespace {

struct FeedOptions {
  std::string server;  // empty: https://<tls_listen of the data dir's config>
  std::string cacert;  // empty: <data dir>/ca/root.crt
  std::string token_file;
  std::string events;
  std::string alerts_out;
  std::string bus;  // nats://...: publish to the event stream instead of POST /v1/events
  double duration_s = 45;
  bool quiet = false;
};

// The "ts" of one JSON line, or 0.
UnixMillis LineTs(std::string_view line) {
  size_t k = line.find("\"ts\"");
  if (k == std::string_view::npos) return 0;
  size_t q1 = line.find('"', line.find(':', k) + 1);
  size_t q2 = q1 == std::string_view::npos ? q1 : line.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return 0;
  auto t = ParseRfc3339(line.substr(q1 + 1, q2 - q1 - 1));
  return t.ok() ? *t : 0;
}

std::string Bar(double frac, int width) {
  int n = static_cast<int>(frac * width + 0.5);
  return std::string(static_cast<size_t>(std::clamp(n, 0, width)), '#') +
         std::string(static_cast<size_t>(width - std::clamp(n, 0, width)), '.');
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

class AlertWatcher {
 public:
  AlertWatcher(Store& store, bool tty) : store_(store), tty_(tty) {}
  // Prints alerts not seen before; returns how many are known in all.
  size_t Poll(const std::string& progress) {
    AlertFilter f;
    f.limit = 500;
    auto alerts = store_.ListAlerts(f);
    if (!alerts.ok()) return seen_.size();
    std::vector<const StoredAlert*> fresh;
    for (const auto& a : *alerts) {
      if (seen_.insert(a.id).second) fresh.push_back(&a);
    }
    std::reverse(fresh.begin(), fresh.end());  // oldest first
    for (const StoredAlert* a : fresh) {
      if (tty_) std::fprintf(stderr, "\r\033[K");
      std::string done = Join(a->actions_done), pending = Join(a->actions_pending);
      std::fprintf(stderr, "  ALERT %s  %-18s %-8s %-12s done: %s%s\n",
                   FormatRfc3339(a->ts_ms).substr(5, 14).c_str(), Shown(a->rule).c_str(),
                   Shown(a->severity).c_str(), a->device.empty() ? "-" : Shown(a->device).c_str(),
                   Shown(done).c_str(),
                   pending == "-" ? "" : ("  awaiting approval: " + pending).c_str());
    }
    if (tty_ && !progress.empty()) std::fprintf(stderr, "\r\033[K%s", progress.c_str());
    std::fflush(stderr);
    return seen_.size();
  }
  size_t count() const { return seen_.size(); }

 private:
  Store& store_;
  bool tty_;
  std::set<std::string> seen_;
};

// serve's TLS listener as this host reaches it: a wildcard address becomes loopback.
std::string DefaultServer(const Config& config) {
  std::string listen = config.tls_listen;
  if (listen.rfind("0.0.0.0:", 0) == 0) listen = "127.0.0.1" + listen.substr(7);
  if (listen.rfind("[::]:", 0) == 0) listen = "[::1]" + listen.substr(4);
  return "https://" + listen;
}

// The --bus producer: decodes a body of JSON Lines the way serve's ingest
// does and publishes it as one batch (binary format) to the event stream.
class BusFeed {
 public:
  static Result<std::unique_ptr<BusFeed>> Open(Env& env, const std::string& url) {
    FG_ASSIGN_OR_RETURN(std::vector<std::string> servers, bus::ParseBusUrl(url));
    FG_ASSIGN_OR_RETURN(std::string key, env.dir.LoadPseudonymKey());
    auto f = std::unique_ptr<BusFeed>(new BusFeed(std::move(key)));
    bus::JetStreamOptions jo;
    jo.servers = std::move(servers);
    jo.partitions = env.config.bus.partitions;
    jo.replicas = env.config.bus.replicas;
    jo.client_name = "femtoguard-feed";
    FG_ASSIGN_OR_RETURN(f->producer_, bus::JetStreamProducer::Connect(jo));
    return f;
  }
  // OK: stored (or already stored under this id). `malformed` counts the
  // lines that were not events.
  Status Publish(const std::string& body, const std::string& batch_id, size_t* malformed) {
    std::string batch;
    bus::BeginBatch(&batch);
    uint32_t n = 0;
    detect::Event e;
    size_t pos = 0;
    uint64_t line_no = 0;
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      std::string_view line(body.data() + pos, (nl == std::string::npos ? body.size() : nl) - pos);
      pos = nl == std::string::npos ? body.size() : nl + 1;
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      switch (decoder_.DecodeCopy(line, &e)) {
        case ingest::DecodeResult::kOk:
          e.line = line_no;
          bus::AppendEvent(e, &batch);
          ++n;
          break;
        case ingest::DecodeResult::kUnknownType:
          break;
        case ingest::DecodeResult::kMalformed:
          ++*malformed;
          break;
      }
    }
    bus::FinishBatch(&batch, n);
    if (n == 0) return Status::Ok();
    return producer_->PublishBatch(batch, batch_id).status();
  }

 private:
  explicit BusFeed(std::string key) : pseudonymizer_(std::move(key)), decoder_(pseudonymizer_) {}
  Pseudonymizer pseudonymizer_;
  ingest::EventDecoder decoder_;
  std::unique_ptr<bus::JetStreamProducer> producer_;
};

int RunFeed(Env& env, const FeedOptions& o) {
  std::unique_ptr<BusFeed> bus_feed;
  if (!o.bus.empty()) {
    auto f = BusFeed::Open(env, o.bus);
    if (!f.ok()) return Fail(f.status());
    bus_feed = std::move(f).value();
  }
  const std::string server = o.server.empty() ? DefaultServer(env.config) : o.server;
  auto hp = admission::ParseHostPort(server);
  if (!hp.ok()) return Fail(hp.status());
  admission::ClientTls tls;
  tls.ca_file = o.cacert.empty() ? (env.dir.CaDir() / "root.crt").string() : o.cacert;
  if (!bus_feed && hp->https && ::access(tls.ca_file.c_str(), R_OK) != 0) {
    return Fail(Status::InvalidArgument("--cacert: cannot read " + tls.ca_file));
  }
  std::string token;
  if (!o.token_file.empty()) {
    auto t = ReadFile(o.token_file);
    if (!t.ok()) return Fail(t.status());
    token = *t;
  } else if (const char* e = std::getenv("FEMTOGUARD_TOKEN")) {
    token = e;
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  if (token.empty() && !bus_feed) return Fail(Status::InvalidArgument("an ingest token is needed: --token-file or FEMTOGUARD_TOKEN"));

  std::ifstream in(o.events, std::ios::binary);
  if (!in) return Fail(Status::InvalidArgument("cannot read " + o.events));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  if (lines.empty()) return Fail(Status::InvalidArgument(o.events + " has no events"));
  const UnixMillis t0 = LineTs(lines.front()), t1 = LineTs(lines.back());
  const double span = std::max<double>(1, static_cast<double>(t1 - t0));
  const bool tty = !o.quiet && isatty(STDERR_FILENO);
  AlertWatcher watcher(*env.store, tty);
  watcher.Poll("");  // alerts from before this feed are not news

  const auto start = std::chrono::steady_clock::now();
  // Every batch carries an Idempotency-Key, so that a batch re-sent after a
  // timeout or a node restart is taken once (docs/durability.md).
  std::string run_id;
  {
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1) return Fail(Status::Internal("no randomness for the feed's batch ids"));
    run_id = "feed-" + ossl::HexLower(r, sizeof r);
  }
  std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token},
                                                              {"Idempotency-Key", ""}};
  size_t batch_no = 0;
  size_t i = 0, sent = 0, malformed = 0;
  auto last_poll = start;
  while (i < lines.size()) {
    // Everything whose (scaled) event time has come, up to ~900 KB a batch.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const UnixMillis due = t0 + static_cast<UnixMillis>(span * std::min(1.0, elapsed / o.duration_s));
    std::string body;
    size_t n = 0;
    while (i < lines.size() && body.size() < (900 << 10)) {
      UnixMillis ts = LineTs(lines[i]);
      if (ts > due && n > 0) break;
      if (ts > due && n == 0) break;
      body += lines[i];
      body.push_back('\n');
      ++i;
      ++n;
    }
    if (n == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else {
      headers[1].second = run_id + "-" + std::to_string(batch_no++);
      for (int attempt = 0; bus_feed; ++attempt) {
        // The producer already rides out a leader election; a cluster down
        // for longer is retried here, same id, as the HTTP path does.
        size_t bad_lines = 0;
        Status s = bus_feed->Publish(body, headers[1].second, &bad_lines);
        if (s.ok()) {
          if (bad_lines) ++malformed;
          break;
        }
        if (s.code() == StatusCode::kUnavailable && attempt < 20) continue;
        if (tty) std::fprintf(stderr, "\n");
        return Fail(s);
      }
      for (int attempt = 0; !bus_feed; ++attempt) {
        auto r = admission::HttpPost(*hp, "/v1/events", "application/x-ndjson", body, headers, 10000, tls);
        // 400 with a report = every line of the batch was malformed: reported
        // by serve and skipped, like replay does; the feed goes on.
        if (r.ok() && (r->status == 200 || (r->status == 400 && r->body.find("\"malformed\"") != std::string::npos))) {
          auto pos = r->body.find("\"malformed\":[");
          if (pos != std::string::npos && r->body.compare(pos + 13, 1, "]") != 0) ++malformed;
          break;
        }
        // 503: the node is busy (or its disk full); no answer at all: it may
        // be restarting. Either way the same batch goes again, same key. Bad
        // input on our side (an unreadable CA file) is not retried.
        const bool retry = r.ok() ? r->status == 503 : r.status().code() == StatusCode::kUnavailable;
        if (retry && attempt < 100) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        if (tty) std::fprintf(stderr, "\n");
        return Fail(r.ok() ? Status::Unavailable("POST /v1/events: HTTP " + std::to_string(r->status) + " " + r->body)
                           : r.status());
      }
      sent += n;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_poll > std::chrono::milliseconds(250) || i == lines.size()) {
      last_poll = now;
      const UnixMillis sim_now = i < lines.size() ? LineTs(lines[i]) : t1;
      char progress[256];
      std::snprintf(progress, sizeof progress, "[%s] %3.0f%%  sim %s  events %zu  alerts %zu",
                    Bar(static_cast<double>(i) / lines.size(), 30).c_str(), 100.0 * i / lines.size(),
                    FormatRfc3339(sim_now).substr(0, 16).c_str(), sent, watcher.count());
      watcher.Poll(progress);
      if (!tty && !o.quiet) std::fprintf(stderr, "%s\n", progress);
    }
  }
  // Let the node finish: until no new alert shows up for 2 s.
  size_t before = watcher.Poll("");
  for (int quiet_polls = 0; quiet_polls < 8;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    size_t now = watcher.Poll("");
    quiet_polls = now == before ? quiet_polls + 1 : 0;
    before = now;
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "fed %zu events in %.1f s; %zu alerts\n", sent,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), watcher.count());
  if (malformed) std::fprintf(stderr, "warning: %zu batches had malformed lines (see serve's reply)\n", malformed);

  if (!o.alerts_out.empty()) {
    AlertFilter f;
    f.limit = 0;
    auto alerts = env.store->ListAlerts(f);
    if (!alerts.ok()) return Fail(alerts.status());
    std::sort(alerts->begin(), alerts->end(),
              [](const StoredAlert& a, const StoredAlert& b) { return a.ts_ms != b.ts_ms ? a.ts_ms < b.ts_ms : a.id < b.id; });
    std::string out;
    for (const auto& a : *alerts) out += a.json + "\n";
    if (Status s = WriteFileAtomic(o.alerts_out, out, 0644); !s.ok()) return Fail(s);
  }
  return 0;
}

}  // namespace

void RegisterFeedCommand(CLI::App& app, Program& program) {
  auto* cmd = app.add_subcommand("feed", "stream an events file into a running serve, with a live view of alerts");
  auto data = std::make_shared<std::string>();
  auto o = std::make_shared<FeedOptions>();
  AddDataOption(cmd, data.get());
  cmd->add_option("--server", o->server,
                  "serve's API: https://HOST:PORT (TLS listener; default https://<tls_listen> of the data dir), "
                  "or HOST:PORT for plain HTTP (only with api.plain_http)");
  cmd->add_option("--cacert", o->cacert, "CA certificate(s), PEM, to check serve's TLS certificate (default: "
                                         "the data dir's root CA, ca/root.crt)");
  cmd->add_option("--token-file", o->token_file, "file holding an ingest token (default: $FEMTOGUARD_TOKEN)");
  cmd->add_option("--events", o->events, "events.jsonl, sorted by ts")->required();
  cmd->add_option("--duration", o->duration_s, "wall seconds the whole file should take (default 45)");
  cmd->add_option("--alerts-out", o->alerts_out, "write every alert of the node here (JSON Lines) at the end");
  cmd->add_flag("--quiet", o->quiet, "no live view");
  cmd->add_option("--bus", o->bus,
                  "publish to the JetStream event stream (nats://h1:4222,nats://h2:4222,...) instead of POST "
                  "/v1/events; docs/stream.md");
  RunWithEnv(cmd, program, data, [o](Env& env) { return RunFeed(env, *o); });
}

}  // namespace fg::cli
