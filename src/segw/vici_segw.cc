#include "segw/vici_segw.h"

#include <openssl/sha.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "common/metrics.h"
#include "common/ossl.h"
#include "segw/vici_client.h"

namespace fg::segw {
namespace {

using vici::Section;

// ---- metrics ----
Counter& Connects() {
  static Counter& c = Metrics::Global().GetCounter("femtoguard_vici_connected_total", {},
                                                    "Connections made to charon's vici socket");
  return c;
}
Counter& Events(std::string_view event) {
  static constexpr const char* kHelp = "vici events received from charon";
  if (event == "ike-updown") {
    static Counter& c = Metrics::Global().GetCounter("femtoguard_vici_events_total", "event=\"ike-updown\"", kHelp);
    return c;
  }
  if (event == "child-updown") {
    static Counter& c =
        Metrics::Global().GetCounter("femtoguard_vici_events_total", "event=\"child-updown\"", kHelp);
    return c;
  }
  static Counter& c = Metrics::Global().GetCounter("femtoguard_vici_events_total", "event=\"other\"", kHelp);
  return c;
}
Counter& Terminations(std::string_view cause) {
  return Metrics::Global().GetCounter("femtoguard_vici_terminations_total",
                                      "cause=\"" + std::string(cause) + "\"",
                                      "IKE_SAs femtoguard asked charon to terminate");
}
Counter& Errors(std::string_view kind) {
  return Metrics::Global().GetCounter("femtoguard_vici_errors_total", "kind=\"" + std::string(kind) + "\"",
                                      "vici failures: connect, event, terminate, flush, admission");
}

// What an ike-updown / child-updown / list-sa message says about one IKE_SA.
struct IkeInfo {
  std::string conn;  // IKE config name
  std::string uniqueid;
  std::string state;
  std::string local_host, local_port;
  std::string remote_host;
  std::string remote_id;
  std::string spi_i, spi_r;
  std::string Key() const { return uniqueid + "/" + spi_i + "/" + spi_r; }
};

// The first sub-section of `msg` is the IKE_SA (vici names it after its config).
bool ParseIke(const Section& msg, IkeInfo& out) {
  for (const auto& e : msg.entries()) {
    if (e.kind != Section::Kind::kSection) continue;
    const Section& s = *e.section;
    out.conn = e.name;
    out.uniqueid = s.Get("uniqueid");
    out.state = s.Get("state");
    out.local_host = s.Get("local-host");
    out.local_port = s.Get("local-port");
    out.remote_host = s.Get("remote-host");
    out.remote_id = s.Get("remote-id");
    out.spi_i = s.Get("initiator-spi");
    out.spi_r = s.Get("responder-spi");
    if (out.uniqueid.empty()) return false;
    for (char c : out.uniqueid) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }
  return false;
}

// "CN=FG-0000001" or "C=KR, O=Op, CN=FG-0000001" -> "FG-0000001"; an identity
// that is not a DN (FQDN, e-mail, address) is the device id as it is.
std::string DeviceFromIdentity(const std::string& id) {
  size_t pos = std::string::npos;
  for (size_t at = id.find("CN="); at != std::string::npos; at = id.find("CN=", at + 1)) {
    if (at == 0 || id[at - 1] == ' ' || id[at - 1] == ',' || id[at - 1] == '/') pos = at;
  }
  if (pos == std::string::npos) return id;
  size_t start = pos + 3;
  size_t end = id.find(',', start);
  std::string cn = id.substr(start, end == std::string::npos ? std::string::npos : end - start);
  while (!cn.empty() && cn.back() == ' ') cn.pop_back();
  return cn;
}

struct CertId {
  std::string fp;      // "sha256:<hex>"
  std::string serial;  // hex, lower case, no leading zeros beyond one byte
};

// The fingerprint and serial of a DER certificate; false if it is not one.
bool IdentifyCert(const std::string& der, CertId& out) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) return false;
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
  out.fp = "sha256:" + ossl::HexLower(md, sizeof md);
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
  out.serial = ossl::HexLower(serial->data, static_cast<size_t>(serial->length));
  X509_free(x);
  return true;
}

}  // namespace

Result<ViciOptions> ParseSegwUri(std::string_view uri) {
  ViciOptions o;
  std::string_view rest;
  if (uri.rfind("vici://", 0) == 0) {
    rest = uri.substr(7);
  } else if (uri.rfind("unix://", 0) == 0) {
    rest = uri.substr(7);
  } else {
    return Status::InvalidArgument("--segw: expected vici:///path/to/charon.vici, got '" + std::string(uri) + "'");
  }
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.empty() || rest[0] != '/') {
    return Status::InvalidArgument("--segw: only a local socket path is supported (vici:///abs/path), got '" +
                                   std::string(uri) + "'");
  }
  o.socket_path = std::string(rest);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = kv.find('=');
    std::string_view k = kv.substr(0, eq);
    std::string v(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
    if (k == "segw" && !v.empty()) {
      o.segw_id = v;
    } else if (k == "reconnect_ms") {
      int n = 0;
      bool ok = !v.empty() && v.size() <= 6;
      for (char c : v) ok = ok && c >= '0' && c <= '9';
      if (ok) n = std::stoi(v);
      if (!ok || n < 10) {
        return Status::InvalidArgument("--segw: reconnect_ms must be a number of milliseconds >= 10");
      }
      o.reconnect_ms = n;
    } else {
      return Status::InvalidArgument("--segw: unknown parameter '" + std::string(k) +
                                     "' (known: segw, reconnect_ms)");
    }
  }
  return o;
}

class ViciSegw::Impl {
 public:
  Impl(ViciOptions options, admission::Gate& gate, EventSink sink)
      : options_(std::move(options)), gate_(gate), sink_(std::move(sink)) {}

  void Start();
  void Stop();
  bool connected() const { return connected_.load(); }
  int TerminateDevice(std::string_view device, std::string_view reason);
  bool TerminateSession(std::string_view session, std::string_view reason);
  Status FlushOcspCache();

 private:
  struct Session {
    IkeInfo ike;
    std::string device;
    std::string session;  // "<segw>/<uniqueid>"
    bool admitted = false;     // the gate records it as live
    bool terminating = false;  // we asked charon to end it
  };
  // Work for the worker thread, in arrival order.
  struct Up {
    IkeInfo ike;
  };
  struct Down {
    IkeInfo ike;
  };
  struct ResyncBegin {
    uint64_t id;
  };
  struct Resync {
    uint64_t id;
    std::vector<IkeInfo> live;
  };
  using Work = std::variant<Up, Down, ResyncBegin, Resync>;

  void ConnectionLoop();
  void WorkerLoop();
  void OnEvent(const std::string& name, const Section& msg);
  void Enqueue(Work w);
  void HandleUp(const IkeInfo& ike);
  void HandleDown(const IkeInfo& ike);
  void HandleResync(const Resync& r);
  void Emit(bool up, const Session& s);
  CertId LookupCert(const std::string& remote_id);
  // Asks charon to end IKE_SA `uniqueid`; false if it could not be asked.
  bool Terminate(const std::string& uniqueid, const std::string& why);
  std::shared_ptr<vici::Client> CurrentClient();
  std::string EndpointOf(const IkeInfo& ike) const;

  // Constant after construction.
  const ViciOptions options_;
  admission::Gate& gate_;
  const EventSink sink_;
  static constexpr int kRequestTimeoutMs = 5000;
  static constexpr int kListTimeoutMs = 15000;
  static constexpr int kTerminateTimeoutMs = 2000;
  static constexpr size_t kTombstones = 4096;

  std::atomic<bool> connected_{false};
  std::thread connection_thread_;
  std::thread worker_thread_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;                 // guarded by mutex_
  bool lost_ = false;                     // guarded by mutex_; the current connection ended
  std::shared_ptr<vici::Client> client_;  // guarded by mutex_
  std::deque<Work> queue_;                // guarded by mutex_
  uint64_t resync_ids_ = 0;               // guarded by mutex_

  std::mutex sessions_mutex_;
  std::map<std::string, Session> sessions_;  // guarded by sessions_mutex_; by uniqueid
  // Worker thread only: SAs seen going down (IkeInfo::Key), so a resync
  // snapshot taken just before cannot revive them; the resync in progress.
  std::set<std::string> tombstones_;
  std::deque<std::string> tombstone_order_;
  uint64_t resync_open_ = 0;
  std::set<std::string> since_resync_;  // uniqueids admitted after ResyncBegin
};

void ViciSegw::Impl::Start() {
  {
    std::lock_guard lock(mutex_);
    if (connection_thread_.joinable()) return;
    stopping_ = false;
  }
  worker_thread_ = std::thread([this] { WorkerLoop(); });
  connection_thread_ = std::thread([this] { ConnectionLoop(); });
}

void ViciSegw::Impl::Stop() {
  std::shared_ptr<vici::Client> client;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    client = client_;
  }
  cv_.notify_all();
  if (client) client->Close();
  if (connection_thread_.joinable()) connection_thread_.join();
  if (worker_thread_.joinable()) worker_thread_.join();
  connected_ = false;
}

std::shared_ptr<vici::Client> ViciSegw::Impl::CurrentClient() {
  std::lock_guard lock(mutex_);
  return client_;
}

void ViciSegw::Impl::Enqueue(Work w) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(w));
  }
  cv_.notify_all();
}

// The SeGW address the device reached: local-host, with the port only when
// it is not one of IKE's own. 500 and 4500 are one endpoint: NAT traversal
// (and kernel-libipsec's forced UDP encapsulation) moves every IKE_SA from
// 500 to 4500 after the first exchange, while devices are configured with
// "host" or "host:500".
std::string ViciSegw::Impl::EndpointOf(const IkeInfo& ike) const {
  if (ike.local_port.empty() || ike.local_port == "500" || ike.local_port == "4500") return ike.local_host;
  if (ike.local_host.find(':') != std::string::npos) return "[" + ike.local_host + "]:" + ike.local_port;
  return ike.local_host + ":" + ike.local_port;
}

void ViciSegw::Impl::ConnectionLoop() {
  bool logged_failure = false;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      lost_ = false;
    }
    auto connected = vici::Client::Connect(
        options_.socket_path, kRequestTimeoutMs, [this](const std::string& n, const Section& m) { OnEvent(n, m); },
        [this](const Status&) {
          {
            std::lock_guard lock(mutex_);
            lost_ = true;
          }
          cv_.notify_all();
        });
    Status failure;
    std::shared_ptr<vici::Client> client;
    if (connected.ok()) {
      client = std::move(*connected);
      auto version = client->Request("version", {}, kRequestTimeoutMs);
      if (!version.ok()) failure = version.status();
      for (const char* event : {"ike-updown", "child-updown"}) {
        if (failure.ok()) failure = client->Register(event, kRequestTimeoutMs);
      }
      if (failure.ok()) {
        spdlog::info("vici: connected to {} {} at {}", version->Get("daemon", "charon"), version->Get("version"),
                     options_.socket_path);
        logged_failure = false;
        Connects().Inc();
        uint64_t id;
        {
          std::lock_guard lock(mutex_);
          client_ = client;
          id = ++resync_ids_;
        }
        connected_ = true;
        // Catch up with SAs that came or went while we were away.
        Enqueue(ResyncBegin{id});
        auto listed = client->StreamRequest("list-sas", {}, "list-sa", kListTimeoutMs);
        if (listed.ok()) {
          Resync r{id, {}};
          for (const auto& ev : listed->events) {
            IkeInfo ike;
            if (ParseIke(ev, ike) && ike.state == "ESTABLISHED") r.live.push_back(std::move(ike));
          }
          Enqueue(std::move(r));
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [&] { return stopping_ || lost_; });
        } else {
          failure = listed.status();
        }
      }
    } else {
      failure = connected.status();
    }
    if (!failure.ok()) {
      Errors("connect").Inc();
      if (!logged_failure) spdlog::warn("vici: {} (retrying every {} ms)", failure.ToString(), options_.reconnect_ms);
      logged_failure = true;
    } else {
      spdlog::warn("vici: connection to {} lost; reconnecting", options_.socket_path);
    }
    {
      std::lock_guard lock(mutex_);
      client_.reset();
    }
    connected_ = false;
    if (client) client->Close();
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.reconnect_ms), [&] { return stopping_; });
  }
}

void ViciSegw::Impl::OnEvent(const std::string& name, const Section& msg) {
  Events(name).Inc();
  if (name != "ike-updown" && name != "child-updown") return;
  IkeInfo ike;
  if (!ParseIke(msg, ike)) {
    Errors("event").Inc();
    spdlog::warn("vici: {} event without a usable IKE_SA section", name);
    return;
  }
  bool up = msg.Get("up") == "yes";
  if (up) {
    // child-updown up also carries the IKE_SA: an IKE_SA we have not admitted
    // yet (an ike-updown missed or still queued) is admitted once.
    Enqueue(Up{std::move(ike)});
  } else if (name == "ike-updown") {
    Enqueue(Down{std::move(ike)});
  }
}

void ViciSegw::Impl::WorkerLoop() {
  for (;;) {
    Work w;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    if (auto* up = std::get_if<Up>(&w)) {
      HandleUp(up->ike);
    } else if (auto* down = std::get_if<Down>(&w)) {
      HandleDown(down->ike);
    } else if (auto* begin = std::get_if<ResyncBegin>(&w)) {
      resync_open_ = begin->id;
      since_resync_.clear();
    } else if (auto* r = std::get_if<Resync>(&w)) {
      HandleResync(*r);
    }
  }
}

void ViciSegw::Impl::Emit(bool up, const Session& s) {
  if (!sink_) return;
  SessionEvent e;
  e.up = up;
  e.device = s.device;
  e.session = s.session;
  e.src_ip = s.ike.remote_host;
  e.endpoint = EndpointOf(s.ike);
  e.segw = options_.segw_id;
  e.ts_ms = NowMillis();
  sink_(e);
}

CertId ViciSegw::Impl::LookupCert(const std::string& remote_id) {
  CertId none;
  auto client = CurrentClient();
  if (!client || remote_id.empty()) return none;
  Section args;
  args.Set("type", "X509").Set("subject", remote_id);
  auto listed = client->StreamRequest("list-certs", args, "list-cert", kRequestTimeoutMs);
  if (!listed.ok()) return none;
  // Several different certificates for one subject (renewal, or a clone
  // with its own key): which one this IKE_SA used is unknown, say nothing.
  std::optional<CertId> found;
  for (const auto& ev : listed->events) {
    const std::string* data = ev.Value("data");
    CertId id;
    if (!data || !IdentifyCert(*data, id)) continue;
    if (found && found->fp != id.fp) return none;
    found = id;
  }
  return found.value_or(none);
}

void ViciSegw::Impl::HandleUp(const IkeInfo& ike) {
  if (tombstones_.count(ike.Key())) return;
  std::optional<Session> replaced;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(ike.uniqueid);
    if (it != sessions_.end()) {
      if (it->second.ike.Key() == ike.Key()) return;  // already seen (child-updown, resync)
      // Same unique id, other SPIs: charon restarted and counts from 1 again.
      replaced = std::move(it->second);
      sessions_.erase(it);
    }
  }
  if (replaced) {
    Emit(false, *replaced);
    if (replaced->admitted) gate_.SessionDown(replaced->device, replaced->session);
  }
  Session s;
  s.ike = ike;
  s.device = DeviceFromIdentity(ike.remote_id);
  s.session = options_.segw_id + "/" + ike.uniqueid;
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_[ike.uniqueid] = s;
  }
  if (resync_open_) since_resync_.insert(ike.uniqueid);
  Emit(true, s);

  admission::AdmissionRequest req;
  req.device = s.device;
  req.session = s.session;
  CertId cert = LookupCert(ike.remote_id);
  req.cert_fp = cert.fp;
  req.serial = cert.serial;
  req.src_ip = ike.remote_host;
  req.endpoint = EndpointOf(ike);
  req.segw = options_.segw_id;
  admission::Decision d;
  try {
    d = gate_.Admit(req);
  } catch (const std::exception& e) {
    Errors("admission").Inc();
    d.verdict = admission::Verdict::kDeny;
    d.reasons = {"internal"};
    spdlog::error("vici: admission failed for {}: {}", s.session, e.what());
  }
  bool deny = d.verdict != admission::Verdict::kAllow && d.verdict != admission::Verdict::kQuarantine;
  std::string reasons;
  for (const auto& r : d.reasons) reasons += (reasons.empty() ? "" : ",") + r;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(ike.uniqueid);
    if (it != sessions_.end() && it->second.ike.Key() == ike.Key()) {
      it->second.admitted = !deny;
      it->second.terminating = deny;
    }
  }
  if (!deny) {
    spdlog::info("vici: {} {} from {} to {} admitted{}{}", s.session, s.device, req.src_ip, req.endpoint,
                 reasons.empty() ? "" : " with ", reasons);
    return;
  }
  spdlog::warn("vici: {} {} from {} to {} denied ({}); terminating", s.session, s.device, req.src_ip,
               req.endpoint, reasons.empty() ? "no reason" : reasons);
  if (Terminate(ike.uniqueid, reasons)) Terminations("admission").Inc();
}

void ViciSegw::Impl::HandleDown(const IkeInfo& ike) {
  if (tombstones_.insert(ike.Key()).second) {
    tombstone_order_.push_back(ike.Key());
    if (tombstone_order_.size() > kTombstones) {
      tombstones_.erase(tombstone_order_.front());
      tombstone_order_.pop_front();
    }
  }
  Session s;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(ike.uniqueid);
    if (it == sessions_.end() || (it->second.ike.Key() != ike.Key() && !ike.spi_i.empty())) return;
    s = it->second;
    sessions_.erase(it);
  }
  spdlog::info("vici: {} {} down", s.session, s.device);
  Emit(false, s);
  if (s.admitted) gate_.SessionDown(s.device, s.session);
}

void ViciSegw::Impl::HandleResync(const Resync& r) {
  std::set<std::string> live;
  for (const auto& ike : r.live) live.insert(ike.Key());
  // Sessions we knew before this connection that charon no longer has.
  std::vector<IkeInfo> gone;
  {
    std::lock_guard lock(sessions_mutex_);
    for (const auto& [id, s] : sessions_) {
      bool fresh = resync_open_ == r.id && since_resync_.count(id);
      if (!fresh && !live.count(s.ike.Key())) gone.push_back(s.ike);
    }
  }
  for (const auto& ike : gone) HandleDown(ike);
  for (const auto& ike : r.live) HandleUp(ike);
  if (resync_open_ == r.id) {
    resync_open_ = 0;
    since_resync_.clear();
  }
  spdlog::info("vici: resynchronised: {} live IKE_SAs, {} gone while away", r.live.size(), gone.size());
}

bool ViciSegw::Impl::Terminate(const std::string& uniqueid, const std::string& why) {
  auto client = CurrentClient();
  if (!client) {
    Errors("terminate").Inc();
    spdlog::error("vici: cannot terminate IKE_SA {} ({}): not connected to charon", uniqueid, why);
    return false;
  }
  Section args;
  // force: charon deletes the IKE_SA at once instead of waiting for a peer
  // that may never answer (a rogue one has no reason to).
  args.Set("ike-id", uniqueid).Set("force", "yes").Set("timeout", std::to_string(kTerminateTimeoutMs));
  auto reply = client->Request("terminate", args, kTerminateTimeoutMs + 1000);
  if (!reply.ok()) {
    Errors("terminate").Inc();
    spdlog::error("vici: terminate IKE_SA {}: {}", uniqueid, reply.status().ToString());
    return false;
  }
  if (reply->Get("success") != "yes") {
    // Already gone is fine; anything else is worth a line and a counter.
    std::string err = reply->Get("errmsg");
    if (err.find("no matching") == std::string::npos) {
      Errors("terminate").Inc();
      spdlog::error("vici: terminate IKE_SA {}: {}", uniqueid, err.empty() ? "failed" : err);
      return false;
    }
  }
  return true;
}

int ViciSegw::Impl::TerminateDevice(std::string_view device, std::string_view reason) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(sessions_mutex_);
    for (auto& [id, s] : sessions_) {
      if (s.device == device && !s.terminating) {
        s.terminating = true;
        ids.push_back(id);
      }
    }
  }
  int n = 0;
  for (const auto& id : ids) {
    spdlog::warn("vici: terminating {}/{} of {}: {}", options_.segw_id, id, device, reason);
    if (Terminate(id, std::string(reason))) {
      ++n;
      Terminations("request").Inc();
    } else {
      std::lock_guard lock(sessions_mutex_);
      if (auto it = sessions_.find(id); it != sessions_.end()) it->second.terminating = false;
    }
  }
  return n;
}

bool ViciSegw::Impl::TerminateSession(std::string_view session, std::string_view reason) {
  std::string prefix = options_.segw_id + "/";
  if (session.substr(0, prefix.size()) != prefix) return false;
  std::string id(session.substr(prefix.size()));
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return false;
    it->second.terminating = true;
  }
  spdlog::warn("vici: terminating {}: {}", session, reason);
  if (!Terminate(id, std::string(reason))) {
    std::lock_guard lock(sessions_mutex_);
    if (auto it = sessions_.find(id); it != sessions_.end()) it->second.terminating = false;
    return false;
  }
  Terminations("request").Inc();
  return true;
}

Status ViciSegw::Impl::FlushOcspCache() {
  auto client = CurrentClient();
  if (!client) {
    Errors("flush").Inc();
    return Status::Unavailable("vici: not connected to charon; its OCSP cache was not flushed");
  }
  vici::Section args;
  args.Set("type", "OCSP_RESPONSE");
  auto reply = client->Request("flush-certs", args, kRequestTimeoutMs);
  if (!reply.ok()) {
    Errors("flush").Inc();
    return reply.status();
  }
  if (reply->Get("success") != "yes") {
    Errors("flush").Inc();
    return Status::Internal("vici: flush-certs: " + reply->Get("errmsg", "failed"));
  }
  Metrics::Global().GetCounter("femtoguard_vici_ocsp_flushes_total", {}, "charon OCSP caches flushed").Inc();
  return Status::Ok();
}

ViciSegw::ViciSegw(ViciOptions options, admission::Gate& gate, EventSink sink)
    : impl_(std::make_unique<Impl>(std::move(options), gate, std::move(sink))) {}
ViciSegw::~ViciSegw() { impl_->Stop(); }
void ViciSegw::Start() { impl_->Start(); }
void ViciSegw::Stop() { impl_->Stop(); }
bool ViciSegw::connected() const { return impl_->connected(); }
int ViciSegw::TerminateDevice(std::string_view device, std::string_view reason) {
  return impl_->TerminateDevice(device, reason);
}
bool ViciSegw::TerminateSession(std::string_view session, std::string_view reason) {
  return impl_->TerminateSession(session, reason);
}
Status ViciSegw::FlushOcspCache() { return impl_->FlushOcspCache(); }

}  // namespace fg::segw
