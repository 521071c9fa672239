#include "fuzz_env.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/time.h"

namespace fg::fuzz {
namespace {

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "fuzz env: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::abort();
}

std::string g_root;  // removed at exit
void RemoveRoot() {
  std::error_code ec;
  if (!g_root.empty()) std::filesystem::remove_all(g_root, ec);
}

}  // namespace

void QuietLogs() { spdlog::set_level(spdlog::level::off); }

Env& GetEnv() {
  static Env* env = [] {
    auto* e = new Env;
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/fg-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    e->root = g_root = tmpl;
    std::atexit(RemoveRoot);
    e->dir = std::make_unique<DataDir>(e->root);
    e->config.cert_default_validity_days = 30;
    e->config.cert_max_validity_days = 90;
    if (Status s = CertificateAuthority::Create(*e->dir, e->config, "fuzz-passphrase"); !s.ok()) Die("CA", s);
    auto ca = CertificateAuthority::Load(*e->dir, e->config, "fuzz-passphrase");
    if (!ca.ok()) Die("CA load", ca.status());
    e->ca = std::move(ca).value();
    auto store = Store::Open("sqlite:" + e->root + "/store.db");
    if (!store.ok()) Die("store", store.status());
    e->store = std::move(store).value();
    Device d;
    d.id = kDevice;
    d.status = DeviceStatus::kActive;
    if (Status s = e->store->AddDevice(d, {"fuzz", "setup"}); !s.ok()) Die("device", s);
    BootstrapToken t;
    t.ref = kTokenRef;
    t.device = kDevice;
    t.created_ms = NowMillis();
    t.expires_ms = t.created_ms + 365LL * 24 * 3600 * 1000;
    if (Status s = e->store->AddBootstrapToken(t, {"fuzz", "setup"}); !s.ok()) Die("token", s);
    e->policy = std::make_unique<IssuancePolicy>(*e->store, *e->ca);
    e->enrolment = std::make_unique<Enrolment>(*e->store, *e->ca, *e->policy, TokenSecrets(kTokenKey), nullptr);
    return e;
  }();
  return *env;
}

}  // namespace fg::fuzz
