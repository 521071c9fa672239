#include "node/node.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "admission/api.h"
#include "admission/engine.h"
#include "bus/jetstream.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pki_tuning.h"
#include "segw/vici_segw.h"
#include "pki/ca.h"
#include "pki/cmp_server.h"
#include "pki/enrolment.h"
#include "pki/issuance.h"
#include "pki/crl.h"
#include "pki/dormancy.h"
#include "pki/device_config.h"
#include "pki/est_server.h"
#include "pki/ocsp_responder.h"
#include "response/siem.h"
#include "response/webhook.h"
#include "http/http.h"
#include "node/api_auth.h"
#include "console/console.h"
#include "node/api_operator.h"
#include "node/api_routes.h"
#include "node/change_follower.h"
#include "node/control_socket.h"
#include "node/data_dir_lock.h"
#include "node/fleet_metrics.h"
#include "node/listen_address.h"
#include "node/live_detection.h"
#include "node/node_gate.h"
#include "node/node_membership.h"
#include "node/segw_subscribers.h"
#include "store/store.h"

namespace fg {
namespace {

constexpr std::string_view kEstPrefix = "/.well-known/est/";

void CountReload(std::string_view what, bool ok) {
  Metrics::Global()
      .GetCounter("femtoguard_reload_total",
                  "what=\"" + std::string(what) + "\",result=\"" + (ok ? "ok" : "failed") + "\"",
                  "Reloads (SIGHUP) of the rules, the admission policy and the cell database, by result")
      .Inc();
}

}  // namespace

class Node::Impl {
 public:
  DataDir dir{""};
  Config config;
  std::unique_ptr<Store> store;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<OcspResponder> ocsp;
  std::unique_ptr<CrlPublisher> crl;  // the current issuing CA's
  // After `ca rotate`: one per retired issuing CA, in ca->issuers() order from 1.
  std::vector<std::unique_ptr<CrlPublisher>> retired_crls;
  std::unique_ptr<RootCrlPublisher> root_crl;
  std::unique_ptr<IssuancePolicy> policy;
  std::unique_ptr<Enrolment> enrolment;
  std::unique_ptr<CmpServer> cmp;
  std::unique_ptr<EstServer> est;
  std::unique_ptr<DeviceConfigService> device_config;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<HttpServer> https;  // the TLS listener; null when off
  std::unique_ptr<ApiAuth> auth;
  std::unique_ptr<admission::Engine> admission;
  std::unique_ptr<LiveDetection> detection;
  std::unique_ptr<admission::Gate> gate;  // admission + detection feed (NodeGate)
  std::unique_ptr<segw::ViciSegw> vici;   // null without --segw
  std::unique_ptr<NodeMembership> membership;  // heartbeat, the cluster's URLs, /healthz
  int poll_ms = 250;

  // The change feed, handed page by page to the subscribers (Subscribe).
  std::unique_ptr<ChangeFollower> changes;
  std::thread follower;
  std::unique_ptr<ControlSocket> control;
  std::mutex stop_mutex;
  bool stopping = false;  // guarded by stop_mutex
  UnixMillis sync_started_ms = 0;  // under the follower's Sync lock (its hooks)
  int lock_fd = -1;  // DIR/serve.lock, held (flock) until Stop()

  ~Impl() {
    if (lock_fd >= 0) ::close(lock_fd);
  }

  // SIGHUP (Node::Reload). One part's failure does not stop the others.
  Status Reload() {
    std::vector<std::string> failed;
    auto report = [&](std::string_view what, const Result<std::string>& r) {
      CountReload(what, r.ok());
      if (r.ok()) {
        LogEvent(spdlog::level::info, "reload", {{"what", std::string(what)}, {"result", "ok"}, {"detail", *r}});
      } else {
        LogEvent(spdlog::level::err, "reload",
                 {{"what", std::string(what)}, {"result", "failed"}, {"detail", r.status().message() + "; the old one is kept"}});
        failed.push_back(std::string(what) + ": " + r.status().message());
      }
    };
    report("rules", detection->ReloadRules());
    Result<std::string> adm = [&]() -> Result<std::string> {
      FG_ASSIGN_OR_RETURN(Config fresh, dir.LoadConfig());
      return admission->ReloadForDataDir(dir, fresh);
    }();
    report("admission", adm);
    report("cells", detection->ReloadCells());
    if (failed.empty()) return Status::Ok();
    std::string why;
    for (const std::string& f : failed) why += (why.empty() ? "" : "; ") + f;
    return Status::InvalidArgument("reload: " + why);
  }

  // Every page of the change feed to every subscriber (Subscribe, in Start).
  Status Sync() { return changes->Sync(); }

  // Around each sync, under its lock. Before: `token revoke` pokes us, so a
  // revoked token stops working now; responses that landed before the read
  // are visible in the feed. After: forget those landed blocks; `ca rotate`
  // pokes us too.
  void BeforeSync() {
    sync_started_ms = NowMillis();
    auth->Invalidate();
  }
  void AfterSync() {
    admission->PruneLandedBlocks(sync_started_ms);
    CheckCaOnDisk();
  }

  // `ca rotate` changes ca/issuing.crt under a running serve, which keeps
  // the CA it loaded until it restarts (docs/pki.md): say so, once, in the
  // log and as the gauge femtoguard_ca_rotation_pending (1 until restart).
  void CheckCaOnDisk() {
    auto pem = ReadFile(dir.CaDir() / "issuing.crt");
    if (!pem.ok()) return;
    auto cert = ossl::CertFromPem(*pem);
    const bool pending = cert.ok() && X509_cmp(cert->get(), ca->issuing_cert()) != 0;
    Metrics::Global()
        .GetGauge("femtoguard_ca_rotation_pending", {},
                  "1 when the issuing CA on disk is not the one serve loaded (`ca rotate` ran): restart serve")
        .Set(pending ? 1 : 0);
    if (pending && !rotation_warned.exchange(true)) {
      LogEvent(spdlog::level::warn, "ca",
               {{"detail", "the issuing CA on disk (" +
                               ossl::SerialToHex(X509_get0_serialNumber(cert->get())) +
                               ") is not the one serve loaded: `ca rotate` ran; restart serve to issue with it"}});
    }
  }
  std::atomic<bool> rotation_warned{false};

  // Suspends dormant devices (pki/dormancy.h); at start and then hourly.
  void SweepDormant() {
    // Admission keeps last-seen times in memory; write them first, or the
    // sweep would suspend devices that connect every day.
    if (admission) {
      if (auto f = admission->FlushLastSeen(); !f.ok()) spdlog::warn("last seen: {}", f.status().ToString());
    }
    auto sweep = SuspendDormant(*store, config.dormancy_days, NowMillis(), /*dry_run=*/false, "serve:dormancy");
    if (!sweep.ok()) {
      spdlog::warn("dormancy sweep: {}", sweep.status().ToString());
    } else if (!sweep->suspended.empty()) {
      spdlog::info("dormancy sweep: suspended {} of {} active devices", sweep->suspended.size(), sweep->examined);
    }
  }

  // The fleet gauges (node/fleet_metrics.h); at start and then every minute.
  void PublishFleet() {
    if (Status s = PublishFleetGauges(*store, *store, config.dormancy_days, NowMillis()); !s.ok()) {
      spdlog::warn("fleet gauges: {}", s.ToString());
    }
  }

  // The follower thread's chores after each sync (ChangeFollower::Run).
  int ticks = 0;    // follower thread only
  int minutes = 0;  // follower thread only
  void AfterEachPoll() {
    ocsp->RenewSignerIfDue();  // a time comparison unless due
    // Every ~minute: keep responses and the CRL inside their validity.
    if (++ticks * poll_ms >= 60000) {
      ticks = 0;
      ocsp->RefreshStale();
      if (Status s = crl->RegenerateIfAging(); !s.ok()) spdlog::warn("CRL: {}", s.ToString());
      for (const auto& old : retired_crls) {
        if (Status s = old->RegenerateIfAging(); !s.ok()) spdlog::warn("CRL (retired CA): {}", s.ToString());
      }
      if (Status s = root_crl->Refresh(); !s.ok()) spdlog::warn("root CRL: {}", s.ToString());
      CheckCaOnDisk();
      PublishFleet();
      if (++minutes >= 60) {
        minutes = 0;
        SweepDormant();
      }
    }
  }

  // The subscribers of the change feed, in the order they get each page:
  // the OCSP cache first (what relying parties ask), then the CRLs, the
  // admission snapshot (with the endpoint list), the detection World (with
  // its endpoint statuses) and, with a SeGW, the session terminator and
  // charon's OCSP-cache flush (SubscribeSegw). A kNode change (the node list)
  // concerns none of them yet: a subscriber for it is one more line here.
  void SubscribeToChanges() {
    changes->Subscribe(*ocsp);
    changes->Subscribe(*crl);
    for (const auto& old : retired_crls) changes->Subscribe(*old);
    changes->Subscribe(*admission);
    changes->Subscribe(*detection);
    // The node list changed: new certificates name every node (AIA, CDP).
    changes->Subscribe(MakeChangeSubscriber("cluster", [this](std::span<const Change> page) {
      for (const Change& c : page) {
        if (c.kind == ChangeKind::kNode) return membership->Refresh();
      }
      return Status::Ok();
    }));
  }
  void SubscribeSegw() {
    changes->Subscribe(MakeSegwCutOff(*store, *store, *store, *vici));
    changes->Subscribe(MakeSegwOcspFlush(*vici));
  }

  void RegisterRoutes() {
    // The cached response is shared with the cache, not copied.
    auto ocsp_reply = [](OcspResponder::SharedReply r) {
      HttpResponse resp;
      resp.status = r.malformed ? 400 : 200;
      resp.content_type = "application/ocsp-response";
      resp.shared_body = std::move(r.der);
      return resp;
    };
    http->Route("POST", "/ocsp", [this, ocsp_reply](const HttpRequest& req) {
      return ocsp_reply(ocsp->RespondShared(req.body));
    });
    http->Route("POST", "/ocsp/", [this, ocsp_reply](const HttpRequest& req) {
      return ocsp_reply(ocsp->RespondShared(req.body));
    });
    // RFC 5019 §6.2: a GET answer may be cached by HTTP proxies, up to its nextUpdate.
    auto ocsp_get_reply = [ocsp_reply](OcspResponder::SharedReply r) {
      const UnixMillis this_update = r.this_update_ms, next_update = r.next_update_ms;
      const bool cacheable = !r.malformed && next_update != 0;
      HttpResponse resp = ocsp_reply(r);
      if (!cacheable) {
        resp.headers.emplace_back("Cache-Control", "no-store");
        return resp;
      }
      const int64_t max_age = std::max<int64_t>(0, (next_update - NowMillis()) / 1000);
      resp.headers.emplace_back("Cache-Control", "max-age=" + std::to_string(max_age) +
                                                     ", public, no-transform, must-revalidate");
      resp.headers.emplace_back("Last-Modified", FormatHttpDate(this_update / 1000));
      resp.headers.emplace_back("Expires", FormatHttpDate(next_update / 1000));
      std::string sha1(SHA_DIGEST_LENGTH, '\0');
      SHA1(reinterpret_cast<const unsigned char*>(resp.shared_body->data()),
           resp.shared_body->size(), reinterpret_cast<unsigned char*>(sha1.data()));
      resp.headers.emplace_back(
          "ETag", "\"" +
                      ossl::HexLower(reinterpret_cast<const unsigned char*>(sha1.data()), sha1.size()) +
                      "\"");
      return resp;
    };
    http->Route("GET", "/ocsp/", [this, ocsp_get_reply](const HttpRequest& req) {
      auto der = DecodeOcspGetSuffix(std::string_view(req.path).substr(std::strlen("/ocsp/")));
      if (!der.ok()) return ocsp_get_reply(ocsp->RespondShared({}));  // malformedRequest, counted
      return ocsp_get_reply(ocsp->RespondShared(*der));
    });
    // One CRL per issuing CA (docs/pki.md, "Issuing CA rotation"): at the
    // path its certificates name, "/crl" for the CA init made, "/crl/<CA
    // serial>" for a CA made by `ca rotate`. With no CA naming "/crl" any
    // more, "/crl" serves the current CA's.
    auto crl_route = [](const CrlPublisher* publisher) {
      return [publisher](const HttpRequest&) {
        auto der = publisher->Der();
        if (!der) return HttpResponse::Text(503, "CRL not yet available\n");
        HttpResponse resp;
        resp.content_type = "application/pkix-crl";
        resp.body = *der;
        return resp;
      };
    };
    const auto issuers = ca->issuers();
    const CrlPublisher* at_crl = crl.get();
    for (size_t i = 0; i < issuers.size(); ++i) {
      const CrlPublisher* publisher = i == 0 ? crl.get() : retired_crls[i - 1].get();
      if (issuers[i].crl_path == "/crl") {
        at_crl = publisher;
      } else {
        http->Route("GET", issuers[i].crl_path, crl_route(publisher));
      }
      if (i > 0 || issuers[i].crl_path != "/crl") {
        std::string der = ossl::CertToDer(issuers[i].cert);
        http->Route("GET", "/ca/issuing-" + issuers[i].serial + ".crt", [der](const HttpRequest&) {
          HttpResponse resp;
          resp.content_type = "application/pkix-cert";
          resp.body = der;
          return resp;
        });
      }
    }
    http->Route("GET", "/crl", crl_route(at_crl));
    // The root's CRL: the issuing CA certificate's CRL distribution point.
    http->Route("GET", "/crl/root", [this](const HttpRequest&) {
      auto der = root_crl->Der();
      if (!der) return HttpResponse::Text(503, "root CRL not available (docs/pki.md)\n");
      HttpResponse resp;
      resp.content_type = "application/pkix-crl";
      resp.body = *der;
      return resp;
    });
    std::string issuing_der = ossl::CertToDer(ca->issuing_cert());
    std::string root_der = ossl::CertToDer(ca->root_cert());
    http->Route("GET", "/ca/issuing.crt", [issuing_der](const HttpRequest&) {
      HttpResponse resp;
      resp.content_type = "application/pkix-cert";
      resp.body = issuing_der;
      return resp;
    });
    http->Route("GET", "/ca/root.crt", [root_der](const HttpRequest&) {
      HttpResponse resp;
      resp.content_type = "application/pkix-cert";
      resp.body = root_der;
      return resp;
    });
    // CMP over HTTP (RFC 6712); any path under /pkix/ (CMP "alias").
    auto cmp_handler = [this](const HttpRequest& req) {
      auto reply = cmp->Handle(req.body, req.remote_addr);
      HttpResponse resp;
      resp.status = reply.http_status;
      resp.content_type = reply.der.empty() ? "text/plain" : "application/pkixcmp";
      if (reply.der.empty()) {
        resp.body = reply.http_status == 429 ? "too many refused enrolment attempts from this address; retry later\n"
                                             : "malformed CMP message\n";
        if (reply.http_status == 429) resp.headers.emplace_back("Retry-After", "60");
      } else {
        resp.body = std::move(reply.der);
      }
      return resp;
    };
    http->Route("POST", "/pkix", cmp_handler);
    http->Route("POST", "/pkix/", cmp_handler);
    RegisterTlsRoutes(*http);  // they answer 403 over plain HTTP
    http->Route("GET", "/healthz",
                [this](const HttpRequest&) { return HttpResponse::Json(200, membership->HealthzJson()); });
    // Bearer-token routes: on the TLS listener (api_routes.h).
    ApiRoutes api(*auth, *http, https.get(), config.api.plain_http);
    api.Route("POST", "/v1/admission", {ApiRole::kSegw}, [this](const HttpRequest& req) {
      int status = 200;
      std::string body = admission::HandleAdmissionJson(*gate, req.body, &status);
      HttpResponse resp = HttpResponse::Json(status, std::move(body));
      resp.trusted_peer = true;  // a SeGW token: its connection is never crowded out
      return resp;
    });
    api.Route("POST", "/v1/events", {ApiRole::kIngest}, [this](const HttpRequest& req) {
      return detection->PostEvents(req);
    });
    api.Route("POST", "/v1/payment/check", {ApiRole::kPayments}, [this](const HttpRequest& req) {
      return detection->PaymentCheck(req);
    });
    RegisterOperatorRoutes(api, {*store, *store, *store, *store, *auth, detection->responder(),
                                 (dir.root() / "log" / "admission.jsonl").string(), [this] { (void)Sync(); },
                                 store.get(), store.get(), config.dormancy_days,
                                 (dir.root() / "cells.csv").string(), store.get()});
    // The web console (docs/console.md): static files on the TLS listener;
    // the plain listener refuses it (a token typed there would travel in clear).
    if (https) console::RegisterRoutes(*https);
    console::RegisterPlainRefusal(*http);
    api.Route("GET", "/metrics", {ApiRole::kOperator}, [](const HttpRequest&) {
      HttpResponse resp;
      resp.content_type = "text/plain; version=0.0.4";
      resp.body = Metrics::Global().RenderPrometheus();
      return resp;
    });
    std::string listed;
    for (const std::string& r : api.routes()) listed += (listed.empty() ? "" : ", ") + r;
    spdlog::info("api: token routes ({}): {}", https ? "TLS listener" : "no TLS listener", listed);
  }

  // EST and the device config document. Registered on both listeners: the
  // handlers refuse plain HTTP themselves (403), so that a client that
  // missed the TLS port learns why.
  void RegisterTlsRoutes(HttpServer& server) {
    auto est_handler = [this](const HttpRequest& req) {
      EstRequest r;
      r.method = req.method;
      r.operation = std::string_view(req.path).substr(kEstPrefix.size());
      r.content_type = req.Header("Content-Type");
      r.authorization = req.Header("Authorization");
      r.body = req.body;
      r.tls = req.tls;
      r.peer_chain_der = req.peer_chain_der;
      r.source_ip = req.remote_addr;
      EstReply reply = est->Handle(r);
      HttpResponse resp;
      resp.status = reply.status;
      resp.content_type = std::move(reply.content_type);
      resp.body = std::move(reply.body);
      resp.headers = std::move(reply.headers);
      return resp;
    };
    server.Route("GET", std::string(kEstPrefix), est_handler);
    server.Route("POST", std::string(kEstPrefix), est_handler);
    server.Route("GET", "/v1/device/config", [this](const HttpRequest& req) {
      auto reply = device_config->Handle(req.tls, req.peer_chain_der, req.remote_addr);
      HttpResponse resp;
      resp.status = reply.status;
      resp.content_type = std::move(reply.content_type);
      resp.body = std::move(reply.body);
      return resp;
    });
  }

  // docs/limits.md. Unset caps split the open-files budget: 3/4 for the plain
  // listener (OCSP, CRL, CMP), 1/4 for TLS (EST, device config, the API).
  void ApplyHttpLimits(HttpServer::Options& o, int max_connections, bool tls) const {
    const auto& h = config.http;
    const size_t budget = HttpServer::ConnectionBudget();
    const size_t reserved = static_cast<size_t>(h.segw_connections);
    const size_t share = tls ? budget / 4 : budget - budget / 4;
    o.max_connections = max_connections > 0
                            ? static_cast<size_t>(max_connections)
                            : std::max<size_t>(share > reserved ? share - reserved : 0, 16);
    o.max_connections_per_source = static_cast<size_t>(h.max_connections_per_source);
    o.header_timeout_s = h.header_timeout_s;
    o.idle_timeout_s = h.idle_timeout_s;
    o.trusted_sources = h.segw_sources;
    o.trusted_connections = reserved;
  }

  // The TLS listener: the CA's TLS server credential, chain up to (not
  // including) the root. The key is handed over as unencrypted PEM in memory
  // only, and wiped here once the server holds its own copy. Made before
  // RegisterRoutes (the API lands on it), started after.
  Status MakeTls(const std::string& listen, int threads) {
    FG_ASSIGN_OR_RETURN(auto hp, SplitHostPort(listen));
    HttpServer::Options tls_options;
    tls_options.host = hp.first;
    tls_options.port = hp.second;
    tls_options.threads = threads;
    tls_options.max_body_bytes = 1 << 20;  // EST bodies are CSRs; the API takes event batches
    ApplyHttpLimits(tls_options, config.http.tls_max_connections, /*tls=*/true);
    auto key_pem = ossl::KeyToPkcs8Pem(ca->tls_key(), "");
    if (!key_pem.ok()) {
      return Status::Internal("TLS listener: cannot export the TLS key: " + key_pem.status().message());
    }
    HttpServer::Options::Tls tls;
    tls.cert_chain_pem = ossl::CertToPem(ca->tls_cert()) + ca->IssuingPem();
    tls.key_pem = std::move(key_pem).value();
    tls_options.tls = std::move(tls);
    OPENSSL_cleanse(key_pem->data(), key_pem->size());  // moved-from; wipe whatever is left
    https = std::make_unique<HttpServer>(tls_options);
    OPENSSL_cleanse(tls_options.tls->key_pem.data(), tls_options.tls->key_pem.size());
    RegisterTlsRoutes(*https);
    https->Route("GET", "/healthz",
                [this](const HttpRequest&) { return HttpResponse::Json(200, membership->HealthzJson()); });
    return Status::Ok();
  }

  Status StartTls(const std::string& listen) {
    if (Status s = https->Start(); !s.ok()) {
      https.reset();
      std::string why = "TLS listener (EST, device config, API) on " + listen + ": " + s.message();
      return s.code() == StatusCode::kInvalidArgument ? Status::InvalidArgument(why) : Status::Unavailable(why);
    }
    device_config->SetEstUrl("https://" + UrlHost(config.public_url) + ":" + std::to_string(https->port()) +
                             "/.well-known/est");
    return Status::Ok();
  }

  void Stop() {
    {
      std::lock_guard lock(stop_mutex);
      if (stopping) return;
      stopping = true;
    }
    if (changes) changes->Stop();
    if (membership) membership->Stop();
    if (vici) vici->Stop();
    if (http) http->Stop();
    if (detection) detection->Stop();
    if (admission) {
      (void)admission->FlushLastSeen();
      (void)admission->FlushLog();
    }
    if (https) https->Stop();
    if (follower.joinable()) follower.join();
    if (control) control->Stop();
    if (lock_fd >= 0) {  // last: the next serve may start once everything above is let go
      ::close(lock_fd);
      lock_fd = -1;
    }
  }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Stop(); }
uint16_t Node::port() const { return impl_->http->port(); }
uint16_t Node::tls_port() const { return impl_->https ? impl_->https->port() : 0; }
Status Node::Sync() { return impl_->Sync(); }
Status Node::Reload() { return impl_->Reload(); }
void Node::Stop() { impl_->Stop(); }

Result<std::unique_ptr<Node>> Node::Start(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->dir = DataDir(options.data_dir);
  impl->poll_ms = options.poll_ms;
  FG_ASSIGN_OR_RETURN(impl->config, impl->dir.LoadConfig());
  FG_ASSIGN_OR_RETURN(impl->lock_fd, LockDataDir(impl->dir));  // before anything is opened or bound
  FG_ASSIGN_OR_RETURN(PkiTuning tuning, LoadPkiTuning(impl->dir));
  FG_ASSIGN_OR_RETURN(impl->store, Store::Open(impl->dir.ResolveStoreUrl(impl->config)));
  FG_ASSIGN_OR_RETURN(std::string passphrase, impl->dir.LoadCaPassphrase());
  FG_ASSIGN_OR_RETURN(impl->ca, CertificateAuthority::Load(impl->dir, impl->config, passphrase));
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  impl->ocsp = std::make_unique<OcspResponder>(*impl->store, *impl->ca, impl->config.ocsp_response_validity_s);
  FG_RETURN_IF_ERROR(impl->ocsp->UseOwnSigner(tuning.ocsp_signer_validity_s));
  impl->crl = std::make_unique<CrlPublisher>(*impl->store, *impl->ca, impl->config.crl_validity_s);
  for (size_t i = 1; i < impl->ca->issuers().size(); ++i) {
    impl->retired_crls.push_back(
        std::make_unique<CrlPublisher>(*impl->store, *impl->ca, impl->config.crl_validity_s, i));
    spdlog::info("issuing CA {} (retired) still answered for: OCSP, CRL at {}", impl->ca->issuers()[i].serial,
                 impl->ca->issuers()[i].crl_path);
  }
  // The root key is read (and decrypted) only when the root CRL is due.
  impl->root_crl = std::make_unique<RootCrlPublisher>(
      impl->dir, impl->ca->root_cert(),
      [dir = impl->dir]() -> Result<ossl::EvpPkeyPtr> {
        FG_ASSIGN_OR_RETURN(std::string pass, dir.LoadCaPassphrase());
        auto key = LoadOnlineRootKey(dir, pass);
        OPENSSL_cleanse(pass.data(), pass.size());
        return key;
      },
      tuning.root_crl_validity_s);
  impl->policy = std::make_unique<IssuancePolicy>(*impl->store, *impl->ca);
  FG_ASSIGN_OR_RETURN(impl->membership, NodeMembership::StartForNode(impl->dir, impl->config, *impl->store, *impl->ca));
  impl->auth = std::make_unique<ApiAuth>(*impl->store);
  FG_ASSIGN_OR_RETURN(std::string token_key, impl->dir.LoadOrCreateTokenKey());
  Impl* self = impl.get();
  impl->enrolment = std::make_unique<Enrolment>(*impl->store, *impl->ca, *impl->policy,
                                                TokenSecrets(std::move(token_key)), [self] {
                                                  if (Status s = self->Sync(); !s.ok()) {
                                                    spdlog::warn("sync after enrolment: {}", s.ToString());
                                                  }
                                                });
  impl->enrolment->SetRetryWindowSeconds(tuning.enrol_retry_window_s);
  impl->cmp = std::make_unique<CmpServer>(*impl->enrolment);
  impl->est = std::make_unique<EstServer>(*impl->enrolment);
  std::string tls_listen = options.tls_listen.empty() ? impl->config.tls_listen : options.tls_listen;
  DeviceConfigService::Options dc_options;
  dc_options.public_url = impl->config.public_url;
  dc_options.renew_at_percent = impl->config.renew_at_percent;
  impl->device_config = std::make_unique<DeviceConfigService>(*impl->enrolment, dc_options);

  // The change-feed position is taken before the snapshots are loaded, so
  // that a change made in between is applied (twice is harmless), not missed.
  FG_ASSIGN_OR_RETURN(int64_t start_seq, impl->store->LatestChangeSeq());
  impl->changes = std::make_unique<ChangeFollower>(*impl->store, start_seq,
                                                   ChangeFollower::Options{.page_size = 1000, .poll_ms = impl->poll_ms});
  FG_ASSIGN_OR_RETURN(impl->admission, admission::Engine::CreateForDataDir(*impl->store, impl->dir, impl->config));
  LiveDetection::Options det_options;
  det_options.rules_path = options.rules_path;
  if (const std::string& url = options.bus_url.empty() ? impl->config.bus.url : options.bus_url; !url.empty()) {
    FG_ASSIGN_OR_RETURN(det_options.stream.servers, bus::ParseBusUrl(url));  // bad: exit 2
    det_options.stream.partitions = impl->config.bus.partitions;
    det_options.stream.replicas = impl->config.bus.replicas;
    det_options.node_id = impl->membership->id();
  }
  det_options.response.webhook_url = options.webhook_url;
  if (!options.webhook_url.empty()) {
    // A malformed URL or an unreadable CA file is bad input (exit 2), not a warning.
    FG_RETURN_IF_ERROR(response::ValidateWebhook(options.webhook_url, options.webhook_ca_file));
    FG_ASSIGN_OR_RETURN(det_options.response.webhook_secret,
                        response::LoadOrCreateWebhookSecret(impl->dir.SecretsDir()));
    det_options.response.webhook_queue_dir = (impl->dir.root() / "webhook").string();
    det_options.response.webhook_ca_file = options.webhook_ca_file;
    det_options.response.webhook_retry_max_ms = options.webhook_retry_max_ms;
    det_options.response.webhook_timeout_ms = 5000;
  }
  if (!options.siem_target.empty()) {
    FG_RETURN_IF_ERROR(response::ValidateSiem(options.siem_target, options.siem_ca_file));  // bad input: exit 2
    det_options.response.siem_target = options.siem_target;
    det_options.response.siem_ca_file = options.siem_ca_file;
    det_options.response.siem_queue_dir = (impl->dir.root() / "siem").string();
    det_options.response.siem_retry_max_ms = options.siem_retry_max_ms;
  }
  admission::Engine* admission_engine = impl->admission.get();
  det_options.on_session_down = [admission_engine](std::string_view device, std::string_view session) {
    admission_engine->SessionDown(device, session);
  };
  // A response that cuts a device off takes effect at admission at once,
  // whether or not the store takes the write (it is retried until it does).
  const auto cuts_off = [](const detect::Alert& a) {
    for (const std::string& action : a.actions) {
      if (action == "block" || action == "revoke" || action == "suspend") return !a.device.empty();
    }
    return false;
  };
  det_options.response.enforce = [admission_engine, cuts_off](const detect::Alert& a) {
    if (cuts_off(a)) admission_engine->EnforceBlock(a.device, a.id, a.rule);
  };
  det_options.response.landed = [admission_engine, cuts_off](const detect::Alert& a) {
    if (cuts_off(a)) admission_engine->BlockLanded(a.device, a.id);
  };
  FG_ASSIGN_OR_RETURN(impl->detection, LiveDetection::Start(*impl->store, impl->dir, det_options));
  impl->gate = MakeNodeGate(*impl->admission, *impl->detection);
  impl->changes->SetSyncHooks([self] { self->BeforeSync(); }, [self] { self->AfterSync(); });
  impl->SubscribeToChanges();

  // Everything that happened before this point is covered by the prewarm.
  impl->SweepDormant();  // before the prewarm, so held certificates start out held
  impl->PublishFleet();
  Metrics::Global()
      .GetGauge("femtoguard_build_info", std::string("version=\"") + kFemtoguardVersion + "\"",
                "Always 1; the label says which version serves")
      .Set(1);
  FG_RETURN_IF_ERROR(impl->crl->Regenerate());
  for (const auto& old : impl->retired_crls) FG_RETURN_IF_ERROR(old->Regenerate());
  if (Status s = impl->root_crl->Refresh(); !s.ok()) spdlog::warn("root CRL: {}", s.ToString());
  size_t warmed = impl->ocsp->Prewarm();
  spdlog::info("OCSP: {} responses pre-produced", warmed);

  FG_ASSIGN_OR_RETURN(auto hp, SplitHostPort(options.listen.empty() ? impl->config.listen : options.listen));
  HttpServer::Options http_options;
  http_options.host = hp.first;
  http_options.port = hp.second;
  http_options.threads = options.threads;
  http_options.max_body_bytes = 1 << 20;
  impl->ApplyHttpLimits(http_options, impl->config.http.max_connections, /*tls=*/false);
  impl->http = std::make_unique<HttpServer>(http_options);
  FG_RETURN_IF_ERROR(CheckPlainApi(impl->config, hp.first, tls_listen));
  if (tls_listen != "off") FG_RETURN_IF_ERROR(impl->MakeTls(tls_listen, options.threads));
  impl->RegisterRoutes();
  // TLS first: once the plain listener answers (health checks), both are up.
  if (impl->https) FG_RETURN_IF_ERROR(impl->StartTls(tls_listen));
  FG_RETURN_IF_ERROR(impl->http->Start());
  FG_ASSIGN_OR_RETURN(impl->control, ControlSocket::Start(impl->dir, [self] { return self->Sync(); }));
  if (!options.segw.empty()) {
    FG_ASSIGN_OR_RETURN(segw::ViciOptions vo, segw::ParseSegwUri(options.segw));
    impl->vici = std::make_unique<segw::ViciSegw>(vo, *impl->gate, nullptr);
    impl->detection->responder().SetTerminator(impl->vici.get());
    impl->vici->Start();
    impl->SubscribeSegw();
    spdlog::info("SeGW: following {} over vici", vo.socket_path);
  }
  impl->follower = std::thread([self] { self->changes->Run([self] { self->AfterEachPoll(); }); });
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

}  // namespace fg
