// Store: RecordIssuedCertificate/s on SQLite and on PostgreSQL (issue 15),
// in the same run, with 1 and 8 concurrent threads. PostgreSQL is a local
// server started by the bench (tests/testing/pg_server.cc: fsync on, trust
// on loopback), group commit on. See BENCHMARKS.md for the command.
//
// Each thread issues to its own device, one certificate after another (each
// supersedes the previous one: a revocation, two audit rows and two change
// rows per issuance, as on a renewal), operator-authorised.

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "store/pg_store.h"
#include "store/store.h"
#include "testing/pg_server.h"

namespace fg {
namespace {

const AuditContext kBench{"bench", "store bench"};
std::atomic<int64_t> g_serial{0};

struct Backends {
  std::string sqlite_dir;
  std::unique_ptr<testing::PgServer> pg;
  std::unique_ptr<Store> sqlite;
  std::unique_ptr<Store> postgresql;
  std::unique_ptr<Store> postgresql_no_group;  // same database, group commit off
};

Backends& Shared() {
  static Backends b;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fg-store-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    b.sqlite_dir = tmpl;
    auto s = Store::Open("sqlite:" + tmpl + "/store.db");
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      std::abort();
    }
    b.sqlite = std::move(s).value();
    auto pg = testing::PgServer::Start({});
    if (!pg.ok()) {
      std::fprintf(stderr, "%s\n", pg.status().ToString().c_str());
      std::abort();
    }
    b.pg = std::move(pg).value();
    auto db = b.pg->CreateDatabase("bench");
    auto p = db.ok() ? Store::Open(b.pg->Url(*db)) : Result<std::unique_ptr<Store>>(db.status());
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", p.status().ToString().c_str());
      std::abort();
    }
    b.postgresql = std::move(p).value();
    SetPgGroupCommitForTest(false);
    auto q = Store::Open(b.pg->Url(*db));
    SetPgGroupCommitForTest(true);
    if (!q.ok()) std::abort();
    b.postgresql_no_group = std::move(q).value();
    std::atexit([] {
      Backends& bb = Shared();
      bb.sqlite.reset();
      bb.postgresql.reset();
      bb.postgresql_no_group.reset();
      bb.pg.reset();
      std::filesystem::remove_all(bb.sqlite_dir);
    });
  });
  return b;
}

void RecordIssued(benchmark::State& state, Store* store, const std::string& backend) {
  const std::string device = "B-" + backend + "-" + std::to_string(state.threads()) + "-" +
                             std::to_string(state.thread_index());
  {
    Device d;
    d.id = device;
    d.status = DeviceStatus::kProvisioned;
    Status added = store->AddDevice(d, kBench);
    if (!added.ok() && !added.IsAlreadyExists()) state.SkipWithError(added.ToString().c_str());
  }
  const UnixMillis now = NowMillis();
  for (auto _ : state) {
    const int64_t n = g_serial.fetch_add(1);
    Certificate c;
    c.serial = "B" + std::to_string(n);
    c.device = device;
    c.key_fp = "sha256:bk" + std::to_string(n);
    c.cert_fp = "sha256:bc" + std::to_string(n);
    c.not_before_ms = now;
    c.not_after_ms = now + 30 * kMillisPerDay;
    c.der = std::string(600, 'x');  // about a P-256 device certificate
    auto r = store->RecordIssuedCertificate(c, kBench);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RecordIssued_Sqlite(benchmark::State& state) {
  RecordIssued(state, Shared().sqlite.get(), "sqlite");
}
void BM_RecordIssued_Postgresql(benchmark::State& state) {
  RecordIssued(state, Shared().postgresql.get(), "postgresql");
}

void BM_RecordIssued_PostgresqlNoGroupCommit(benchmark::State& state) {
  RecordIssued(state, Shared().postgresql_no_group.get(), "postgresql-nogroup");
}

BENCHMARK(BM_RecordIssued_Sqlite)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(8);
BENCHMARK(BM_RecordIssued_Postgresql)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(8);
BENCHMARK(BM_RecordIssued_PostgresqlNoGroupCommit)->Unit(benchmark::kMicrosecond)->UseRealTime()->Threads(8);

}  // namespace
}  // namespace fg

int main(int argc, char** argv) {
  fg::Shared();  // both backends up before the first measurement
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
