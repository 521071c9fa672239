// Certificate issuance through the policy, in process, with the raw ECDSA
// P-256 sign/verify costs measured in the same run as ceilings.
//
//   BM_IssueForKey        IssuancePolicy::IssueForKey: checks (device, key
//                         reuse), random serial, CA signature, SQLite record
//                         with audit and change-feed rows.
//   BM_IssueFromCsr       the same from a PEM PKCS#10 CSR (parse + CSR
//                         signature verification = proof of possession).
//   BM_CaSignDeviceCert   CertificateAuthority::SignDeviceCertificate alone
//                         (no policy, no store): the signing part.
//   BM_StoreRecordIssued  Store::RecordIssuedCertificate alone: the store part.
//   BM_StoreRevoke        Store::RevokeCertificate alone (a security-critical
//                         write: durable when it returns, synchronous=FULL).
//   *NormalSync           the same against a second store opened with
//                         synchronous=NORMAL (the setting before issue 13),
//                         for the cost of FULL in the same run.
//   BM_KeyFingerprint     ossl::KeyFingerprint (i2d_PUBKEY + SHA-256), called
//                         twice per issuance.
//   BM_X509SetPubkey      X509_set_pubkey, once per issuance; and
//   BM_X509PubkeySet0Param an encoder-free way to the same bytes.
//   BM_EcdsaP256Sign      EVP_DigestSign(SHA-256) of a 400-byte TBS, P-256.
//   BM_EcdsaP256Verify    EVP_DigestVerify of the same.
//
// Every issuance goes to a fresh active device with a fresh key (one device =
// one key; re-issuing to a device would also supersede its previous
// certificate). Devices are registered and keys generated outside the timed
// region, in chunks, with the timer paused: key generation is the device's
// cost, registration the operator's. Any --benchmark_min_time works.
//
// Run: build/bench/issuance_bench (or bench/issuance_bench.sh for the
// comparison with `openssl speed ecdsap256`).

#include <benchmark/benchmark.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/device.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "pki/issuance.h"
#include "store/sqlite_store.h"  // SetSqliteSynchronousNormalForTest
#include "store/store.h"

namespace fg {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "issuance_bench: %s\n", what.c_str());
  std::exit(1);
}

// One CA and one SQLite store in a temp dir, shared by all benchmarks.
struct Env {
  std::filesystem::path root;
  Config config;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<Store> store;
  std::unique_ptr<IssuancePolicy> policy;
  // The same CA over a store with synchronous=NORMAL.
  std::unique_ptr<Store> store_normal;
  std::unique_ptr<IssuancePolicy> policy_normal;
  std::atomic<int64_t> next_device{0};
};

Env* g_env = nullptr;

void SetUpEnv() {
  char tmpl[] = "/tmp/fg-issuance-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  g_env = new Env();
  Env& e = *g_env;
  e.root = tmpl;
  DataDir dir(e.root);
  std::filesystem::create_directories(dir.CaDir());
  const char* passphrase = "issuance-bench-passphrase";
  if (Status s = CertificateAuthority::Create(dir, e.config, passphrase); !s.ok()) Die(s.ToString());
  auto ca = CertificateAuthority::Load(dir, e.config, passphrase);
  if (!ca.ok()) Die(ca.status().ToString());
  e.ca = std::move(ca).value();
  auto store = Store::Open("sqlite:" + (e.root / "store.db").string());
  if (!store.ok()) Die(store.status().ToString());
  e.store = std::move(store).value();
  e.policy = std::make_unique<IssuancePolicy>(*e.store, *e.ca);
  SetSqliteSynchronousNormalForTest(true);
  auto normal = Store::Open("sqlite:" + (e.root / "store-normal.db").string());
  SetSqliteSynchronousNormalForTest(false);
  if (!normal.ok()) Die(normal.status().ToString());
  e.store_normal = std::move(normal).value();
  e.policy_normal = std::make_unique<IssuancePolicy>(*e.store_normal, *e.ca);
}

void TearDownEnv() {
  if (g_env == nullptr) return;
  std::filesystem::path root = g_env->root;
  g_env->policy.reset();
  g_env->store.reset();
  g_env->policy_normal.reset();
  g_env->store_normal.reset();
  g_env->ca.reset();
  delete g_env;
  g_env = nullptr;
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
}

ossl::EvpPkeyPtr NewKey() {
  auto key = ossl::GenerateP256Key();
  if (!key.ok()) Die(key.status().ToString());
  return std::move(key).value();
}

std::string MakeCsrPem(EVP_PKEY* key, const std::string& cn) {
  ossl::X509ReqPtr req(X509_REQ_new());
  ossl::X509NamePtr name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  if (!req || !name || !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_subject_name(req.get(), name.get()) ||
      !X509_REQ_set_pubkey(req.get(), key) || X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    Die("building a CSR: " + ossl::LastError());
  }
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A ready-to-issue device: registered active, with its own key (and CSR).
struct Prepared {
  std::string device;
  ossl::EvpPkeyPtr key;
  std::string csr;
};

// Registers `n` fresh active devices and makes their keys. Not timed.
std::vector<Prepared> Prepare(size_t n, bool with_csr, Store& store) {
  std::vector<Prepared> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Prepared p;
    char id[32];
    std::snprintf(id, sizeof id, "BENCH-%08lld", static_cast<long long>(g_env->next_device.fetch_add(1)));
    p.device = id;
    Device d;
    d.id = p.device;
    d.status = DeviceStatus::kActive;
    d.owner = "bench";
    if (Status s = store.AddDevice(d, {"bench", "issuance benchmark"}); !s.ok()) Die(s.ToString());
    p.key = NewKey();
    if (with_csr) p.csr = MakeCsrPem(p.key.get(), p.device);
    out.push_back(std::move(p));
  }
  return out;
}

constexpr size_t kChunk = 256;

IssueRequest Request(const std::string& device) {
  IssueRequest r;
  r.device = device;
  r.audit = {"bench", "issuance benchmark"};
  return r;
}

void IssueForKeyLoop(benchmark::State& state, Store& store, IssuancePolicy& policy) {
  std::vector<Prepared> pool;
  size_t next = 0;
  for (auto _ : state) {
    if (next == pool.size()) {
      state.PauseTiming();
      pool = Prepare(kChunk, false, store);
      next = 0;
      state.ResumeTiming();
    }
    Prepared& p = pool[next++];
    auto issued = policy.IssueForKey(Request(p.device), p.key.get());
    if (!issued.ok()) {
      state.SkipWithError(issued.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(issued->pem.data());
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_IssueForKey(benchmark::State& state) { IssueForKeyLoop(state, *g_env->store, *g_env->policy); }
BENCHMARK(BM_IssueForKey)->Unit(benchmark::kMicrosecond)->UseRealTime()->Threads(1)->Threads(2);
void BM_IssueForKeyNormalSync(benchmark::State& state) {
  IssueForKeyLoop(state, *g_env->store_normal, *g_env->policy_normal);
}
BENCHMARK(BM_IssueForKeyNormalSync)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_IssueFromCsr(benchmark::State& state) {
  std::vector<Prepared> pool;
  size_t next = 0;
  for (auto _ : state) {
    if (next == pool.size()) {
      state.PauseTiming();
      pool = Prepare(kChunk, true, *g_env->store);
      next = 0;
      state.ResumeTiming();
    }
    Prepared& p = pool[next++];
    auto issued = g_env->policy->IssueFromCsr(Request(p.device), p.csr);
    if (!issued.ok()) {
      state.SkipWithError(issued.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(issued->pem.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueFromCsr)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CaSignDeviceCert(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  const std::string spki = *ossl::SpkiDer(key.get());
  UnixMillis now = NowMillis();
  for (auto _ : state) {
    auto serial = CertificateAuthority::RandomSerial();
    auto cert = g_env->ca->SignDeviceCertificate("BENCH-SIGN-ONLY", spki, now - 300000,
                                                 now + 30LL * 86400000, serial->get());
    if (!cert.ok()) {
      state.SkipWithError(cert.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(cert->get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CaSignDeviceCert)->Unit(benchmark::kMicrosecond);

void StoreRecordIssuedLoop(benchmark::State& state, Store& store, bool then_revoke) {
  // A real certificate's DER as the payload; unique serial and key
  // fingerprint per record, as the store requires.
  ossl::EvpPkeyPtr key = NewKey();
  UnixMillis now = NowMillis();
  auto serial = CertificateAuthority::RandomSerial();
  auto cert = g_env->ca->SignDeviceCertificate("BENCH-STORE", *ossl::SpkiDer(key.get()), now - 300000,
                                               now + 30LL * 86400000,
                                               serial->get());
  if (!cert.ok()) Die(cert.status().ToString());
  const std::string der = ossl::CertToDer(cert->get());
  std::vector<Prepared> pool;
  size_t next = 0;
  int64_t n = 0;
  for (auto _ : state) {
    if (next == pool.size()) {
      state.PauseTiming();
      pool.clear();
      // Devices only: the store does not look at the key itself.
      for (size_t i = 0; i < kChunk; ++i) {
        Prepared p;
        char id[32];
        std::snprintf(id, sizeof id, "BENCH-%08lld", static_cast<long long>(g_env->next_device.fetch_add(1)));
        p.device = id;
        Device d;
        d.id = p.device;
        d.status = DeviceStatus::kActive;
        if (Status s = store.AddDevice(d, {"bench", "store benchmark"}); !s.ok()) Die(s.ToString());
        pool.push_back(std::move(p));
      }
      next = 0;
      state.ResumeTiming();
    }
    Prepared& p = pool[next++];
    unsigned char rnd[16];
    RAND_bytes(rnd, sizeof rnd);
    rnd[0] = (rnd[0] & 0x7f) | 0x40;
    Certificate rec;
    rec.serial = ossl::HexLower(rnd, sizeof rnd);
    for (char& c : rec.serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    rec.device = p.device;
    rec.key_fp = "sha256:" + std::to_string(++n) + "-" + rec.serial;
    rec.cert_fp = "sha256:cert-" + rec.serial;
    rec.not_before_ms = (now / 1000) * 1000;
    rec.not_after_ms = rec.not_before_ms + 30LL * 86400000;
    rec.issued_ms = now;
    rec.der = der;
    if (then_revoke) state.PauseTiming();
    auto superseded = store.RecordIssuedCertificate(rec, {"bench", "store benchmark"});
    if (!superseded.ok()) {
      state.SkipWithError(superseded.status().ToString().c_str());
      break;
    }
    if (!then_revoke) continue;
    state.ResumeTiming();
    Status revoked = store.RevokeCertificate(rec.serial, RevocationReason::kKeyCompromise, now, {"bench", "revoke"});
    if (!revoked.ok()) {
      state.SkipWithError(revoked.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_StoreRecordIssued(benchmark::State& state) { StoreRecordIssuedLoop(state, *g_env->store, false); }
BENCHMARK(BM_StoreRecordIssued)->Unit(benchmark::kMicrosecond)->UseRealTime();
void BM_StoreRecordIssuedNormalSync(benchmark::State& state) {
  StoreRecordIssuedLoop(state, *g_env->store_normal, false);
}
BENCHMARK(BM_StoreRecordIssuedNormalSync)->Unit(benchmark::kMicrosecond)->UseRealTime();
// Only the revocation is timed (recording the certificate is paused).
void BM_StoreRevoke(benchmark::State& state) { StoreRecordIssuedLoop(state, *g_env->store, true); }
BENCHMARK(BM_StoreRevoke)->Unit(benchmark::kMicrosecond)->UseRealTime();
void BM_StoreRevokeNormalSync(benchmark::State& state) { StoreRecordIssuedLoop(state, *g_env->store_normal, true); }
BENCHMARK(BM_StoreRevokeNormalSync)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The two OpenSSL 3.0 calls that dominate issuance (see BENCHMARKS.md), and
// an encoder-free alternative for the second, for comparison.
void BM_KeyFingerprint(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  for (auto _ : state) {
    auto fp = ossl::KeyFingerprint(key.get());
    benchmark::DoNotOptimize(fp->data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeyFingerprint)->Unit(benchmark::kMicrosecond);

void BM_X509SetPubkey(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  for (auto _ : state) {
    ossl::X509Ptr cert(X509_new());
    if (X509_set_pubkey(cert.get(), key.get()) != 1) {
      state.SkipWithError("X509_set_pubkey");
      break;
    }
    benchmark::DoNotOptimize(cert.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_X509SetPubkey)->Unit(benchmark::kMicrosecond);

// Same SubjectPublicKeyInfo, set from the encoded point (as a CSR carries
// it) with X509_PUBKEY_set0_param: no OSSL_ENCODER/DECODER round trip.
bool SetPubkeyFromPoint(X509* cert, EVP_PKEY* key) {
  unsigned char point[133];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", point, sizeof point, &len) != 1) return false;
  unsigned char* copy = static_cast<unsigned char*>(OPENSSL_memdup(point, len));
  if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                             OBJ_nid2obj(NID_X9_62_prime256v1), copy, static_cast<int>(len)) != 1) {
    OPENSSL_free(copy);
    return false;
  }
  return true;
}

std::string SpkiDer(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  std::string out(reinterpret_cast<char*>(der), n > 0 ? static_cast<size_t>(n) : 0);
  OPENSSL_free(der);
  return out;
}

void BM_X509PubkeySet0Param(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  {
    // Same DER as X509_set_pubkey, or this comparison means nothing.
    ossl::X509Ptr a(X509_new()), b(X509_new());
    if (X509_set_pubkey(a.get(), key.get()) != 1 || !SetPubkeyFromPoint(b.get(), key.get()) ||
        SpkiDer(a.get()).empty() || SpkiDer(a.get()) != SpkiDer(b.get())) {
      state.SkipWithError("X509_PUBKEY_set0_param gives a different SubjectPublicKeyInfo");
      return;
    }
  }
  for (auto _ : state) {
    ossl::X509Ptr cert(X509_new());
    if (!SetPubkeyFromPoint(cert.get(), key.get())) {
      state.SkipWithError("X509_PUBKEY_set0_param");
      break;
    }
    benchmark::DoNotOptimize(cert.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_X509PubkeySet0Param)->Unit(benchmark::kMicrosecond);

// A ~400-byte to-be-signed blob, about a device certificate's TBSCertificate.
std::string Tbs() {
  std::string tbs(400, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(tbs.data()), static_cast<int>(tbs.size()));
  return tbs;
}

std::string Sign(EVP_PKEY* key, const std::string& tbs) {
  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char sig[80];
  size_t len = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) != 1) {
    Die("EVP_DigestSign: " + ossl::LastError());
  }
  return std::string(reinterpret_cast<char*>(sig), len);
}

void BM_EcdsaP256Sign(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  const std::string tbs = Tbs();
  for (auto _ : state) {
    // A fresh context per signature, as X509_sign does.
    std::string sig = Sign(key.get(), tbs);
    benchmark::DoNotOptimize(sig.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EcdsaP256Sign)->Unit(benchmark::kMicrosecond);

void BM_EcdsaP256Verify(benchmark::State& state) {
  ossl::EvpPkeyPtr key = NewKey();
  const std::string tbs = Tbs();
  const std::string sig = Sign(key.get(), tbs);
  for (auto _ : state) {
    ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    int ok = EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
             EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                              reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) == 1;
    if (!ok) {
      state.SkipWithError("signature did not verify");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EcdsaP256Verify)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fg

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  fg::SetUpEnv();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fg::TearDownEnv();
  return 0;
}
