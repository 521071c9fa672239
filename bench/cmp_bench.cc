// CMP initial-request (ir) load generator: OpenSSL's CMP client API in
// process, N threads, M enrolments, each one a complete OSSL_CMP_exec_IR_ses
// transaction over HTTP (one TCP connection, one round trip: implicit
// confirmation is requested). A client, not part of femtoguard: it links
// OpenSSL only, and drives `femtoguard serve` and `openssl cmp -port` (the
// OpenSSL mock server) alike.
//
//   cmp_bench --server HOST:PORT [--path pkix/] [--threads 2] [--enrolments M]
//             (--tokens FILE | --ref REF --secret SECRET [--cn CN])
//             [--newkey KEY.pem] [--timeout SECONDS] [--label NAME]
//
//   --tokens FILE   lines "DEVICE REF SECRET" (femtoguard bootstrap tokens):
//                   enrolment i uses line i, PBM with REF/SECRET, subject
//                   CN=DEVICE. --enrolments defaults to the number of lines.
//   --ref/--secret  one fixed PBM credential for every enrolment (the mock
//                   server does not check tokens), subject CN=--cn
//                   ("device"); --enrolments defaults to 1000.
//   --newkey FILE   enrol this one key every time (the mock server returns
//                   one fixed certificate, and the client checks that its
//                   key is ours). Without it, every enrolment gets a fresh
//                   P-256 key, generated before the timed region (key
//                   generation is the device's cost, not the server's).
//
// Enrolment i goes to thread i % N. The timed region starts when all threads
// are ready and ends when the last one is done (wall clock). Per enrolment:
// new OSSL_CMP_CTX, PBM protection (the client library's defaults: 500
// iterations of SHA-256, HMAC-SHA1), signature POPO with the new key, and
// OSSL_CMP_OPT_IMPLICIT_CONFIRM=1. Success = a certificate with status
// accepted whose public key is ours and whose subject CN is the one asked
// for, after exactly one message exchange (counted in a transfer callback).
//
// Prints one line of key=value pairs on stdout:
//   cmp_bench: label=.. threads=.. enrolments=.. ok=.. failures=..
//     wall_s=.. per_s=.. client_cpu_s=.. client_cores=.. round_trips=..
//     distinct_certs=.. p50_ms=.. p99_ms=.. max_ms=..
// and the first few failures (with OpenSSL's error queue) on stderr.
// Exit status: 0 when every enrolment succeeded, 1 otherwise (the run stops
// after 10 failures; the rest count as failed), 2 on bad usage.

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void Usage(const std::string& what) {
  std::fprintf(stderr, "cmp_bench: %s\n(see the comment at the top of bench/cmp_bench.cc)\n", what.c_str());
  std::exit(2);
}

struct Options {
  std::string host;
  int port = 0;
  std::string path = "pkix/";
  int threads = 2;
  long enrolments = -1;  // -1: from the tokens file, or 1000
  std::string tokens_file;
  std::string ref, secret, cn = "device";
  std::string newkey_file;
  int timeout_s = 30;
  std::string label = "cmp";
};

struct Credential {
  std::string device;  // subject CN
  std::string ref;
  std::string secret;
};

long ToNumber(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
    Usage(flag + " needs a number in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return n;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--server") {
      std::string s = value();
      size_t colon = s.rfind(':');
      if (colon == std::string::npos || colon == 0) Usage("--server HOST:PORT");
      o.host = s.substr(0, colon);
      o.port = static_cast<int>(ToNumber("--server port", s.substr(colon + 1), 1, 65535));
    } else if (a == "--path") {
      o.path = value();
    } else if (a == "--threads") {
      o.threads = static_cast<int>(ToNumber(a, value(), 1, 256));
    } else if (a == "--enrolments") {
      o.enrolments = ToNumber(a, value(), 1, 10'000'000);
    } else if (a == "--tokens") {
      o.tokens_file = value();
    } else if (a == "--ref") {
      o.ref = value();
    } else if (a == "--secret") {
      o.secret = value();
    } else if (a == "--cn") {
      o.cn = value();
    } else if (a == "--newkey") {
      o.newkey_file = value();
    } else if (a == "--timeout") {
      o.timeout_s = static_cast<int>(ToNumber(a, value(), 1, 3600));
    } else if (a == "--label") {
      o.label = value();
    } else if (a == "-h" || a == "--help") {
      Usage("usage");
    } else {
      Usage("unknown option " + a);
    }
  }
  if (o.host.empty()) Usage("--server HOST:PORT is required");
  if (o.tokens_file.empty() == (o.ref.empty() || o.secret.empty())) {
    Usage("give either --tokens FILE or --ref REF --secret SECRET");
  }
  return o;
}

std::vector<Credential> ReadTokens(const std::string& file) {
  std::ifstream in(file);
  if (!in) Usage("cannot read " + file);
  std::vector<Credential> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    std::istringstream fields(line);
    Credential c;
    std::string extra;
    if (!(fields >> c.device >> c.ref >> c.secret) || (fields >> extra)) {
      Usage(file + ":" + std::to_string(lineno) + ": expected \"DEVICE REF SECRET\"");
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string OpenSslErrors() {
  std::string out;
  ERR_print_errors_cb(
      [](const char* str, size_t len, void* u) {
        static_cast<std::string*>(u)->append(str, len);
        return 1;
      },
      &out);
  return out;
}

// Per thread: the CMP library's log lines of the current enrolment (warnings
// and errors only) and the number of messages sent.
thread_local std::string t_log;
thread_local int t_messages = 0;

int CollectLog(const char* func, const char* /*file*/, int /*line*/, OSSL_CMP_severity level, const char* msg) {
  if (t_log.size() < 4096) {
    t_log += std::string(func ? func : "?") + " (level " + std::to_string(level) + "): " + msg + "\n";
  }
  return 1;
}

OSSL_CMP_MSG* CountingTransfer(OSSL_CMP_CTX* ctx, const OSSL_CMP_MSG* req) {
  ++t_messages;
  return OSSL_CMP_MSG_http_perform(ctx, req);
}

// The subject's CN, or "".
std::string CommonName(const X509_NAME* name) {
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string SerialHex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = bn ? BN_bn2hex(bn) : nullptr;
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

// A broken setup (server down, wrong secret) fails every enrolment, slowly:
// stop after this many.
constexpr int kMaxFailures = 10;

struct Outcome {
  bool ok = false;
  int messages = 0;
  double ms = 0;
  std::string serial;
  std::string error;
};

// One complete ir transaction. `key` is up-referenced, not consumed.
Outcome Enrol(const Options& o, const Credential& cred, EVP_PKEY* key) {
  Outcome r;
  t_log.clear();
  t_messages = 0;
  ERR_clear_error();
  auto t0 = std::chrono::steady_clock::now();
  OSSL_CMP_CTX* ctx = OSSL_CMP_CTX_new(nullptr, nullptr);
  X509_NAME* subject = X509_NAME_new();
  bool setup =
      ctx != nullptr && subject != nullptr && OSSL_CMP_CTX_set_log_cb(ctx, CollectLog) == 1 &&
      OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_WARNING) == 1 &&
      OSSL_CMP_CTX_set1_server(ctx, o.host.c_str()) == 1 && OSSL_CMP_CTX_set_serverPort(ctx, o.port) == 1 &&
      OSSL_CMP_CTX_set1_serverPath(ctx, o.path.c_str()) == 1 &&
      OSSL_CMP_CTX_set1_no_proxy(ctx, o.host.c_str()) == 1 &&
      OSSL_CMP_CTX_set_transfer_cb(ctx, CountingTransfer) == 1 &&
      OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, o.timeout_s) == 1 &&
      OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, o.timeout_s) == 1 &&
      OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1) == 1 &&
      OSSL_CMP_CTX_set1_referenceValue(ctx, reinterpret_cast<const unsigned char*>(cred.ref.data()),
                                       static_cast<int>(cred.ref.size())) == 1 &&
      OSSL_CMP_CTX_set1_secretValue(ctx, reinterpret_cast<const unsigned char*>(cred.secret.data()),
                                    static_cast<int>(cred.secret.size())) == 1 &&
      X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cred.device.c_str()), -1, -1, 0) == 1 &&
      OSSL_CMP_CTX_set1_subjectName(ctx, subject) == 1 && EVP_PKEY_up_ref(key) == 1;
  if (setup && OSSL_CMP_CTX_set0_newPkey(ctx, 1, key) != 1) {
    EVP_PKEY_free(key);
    setup = false;
  }
  X509_NAME_free(subject);
  if (!setup) {
    r.error = "client setup failed\n" + OpenSslErrors();
    OSSL_CMP_CTX_free(ctx);
    return r;
  }

  X509* cert = OSSL_CMP_exec_IR_ses(ctx);  // owned by ctx
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.messages = t_messages;
  int status = OSSL_CMP_CTX_get_status(ctx);
  if (cert == nullptr || status != OSSL_CMP_PKISTATUS_accepted) {
    char buf[512] = "";
    OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof buf);
    r.error = std::string("no certificate; PKIStatus: ") + buf + "\n" + t_log + OpenSslErrors();
  } else if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
    r.error = "the certificate does not carry our public key";
  } else if (CommonName(X509_get_subject_name(cert)) != cred.device) {
    r.error = "certificate subject CN '" + CommonName(X509_get_subject_name(cert)) + "', asked for '" +
              cred.device + "'";
  } else if (r.messages != 1) {
    r.error = std::to_string(r.messages) + " message exchanges instead of 1 (implicit confirmation not granted?)";
  } else {
    r.ok = true;
    r.serial = SerialHex(cert);
  }
  OSSL_CMP_CTX_free(ctx);
  ERR_clear_error();
  return r;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);

  std::vector<Credential> creds;
  if (!o.tokens_file.empty()) {
    creds = ReadTokens(o.tokens_file);
    if (o.enrolments < 0) o.enrolments = static_cast<long>(creds.size());
    if (o.enrolments == 0 || static_cast<size_t>(o.enrolments) > creds.size()) {
      Usage(std::to_string(o.enrolments) + " enrolments but " + std::to_string(creds.size()) + " tokens in " +
            o.tokens_file + " (one-time tokens: one per enrolment)");
    }
    creds.resize(static_cast<size_t>(o.enrolments));
  } else {
    if (o.enrolments < 0) o.enrolments = 1000;
    creds.assign(static_cast<size_t>(o.enrolments), Credential{o.cn, o.ref, o.secret});
  }
  const size_t n = creds.size();
  const int threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(o.threads), n));

  // Keys, before the timed region.
  std::vector<EVP_PKEY*> keys(n, nullptr);
  if (!o.newkey_file.empty()) {
    FILE* f = std::fopen(o.newkey_file.c_str(), "r");
    if (f == nullptr) Usage("cannot read " + o.newkey_file);
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (k == nullptr) Usage("no private key in " + o.newkey_file + "\n" + OpenSslErrors());
    for (size_t i = 0; i < n; ++i) {
      EVP_PKEY_up_ref(k);
      keys[i] = k;
    }
    EVP_PKEY_free(k);
  } else {
    std::atomic<bool> keygen_failed{false};
    std::vector<std::thread> gen;
    for (int t = 0; t < threads; ++t) {
      gen.emplace_back([&, t] {
        for (size_t i = static_cast<size_t>(t); i < n; i += static_cast<size_t>(threads)) {
          keys[i] = EVP_EC_gen("P-256");
          if (keys[i] == nullptr) keygen_failed = true;
        }
      });
    }
    for (auto& g : gen) g.join();
    if (keygen_failed) {
      std::fprintf(stderr, "cmp_bench: P-256 key generation failed\n%s", OpenSslErrors().c_str());
      return 1;
    }
  }

  std::vector<Outcome> outcomes(n);
  std::latch ready(threads + 1);
  std::latch go(1);
  std::atomic<int> failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      for (size_t i = static_cast<size_t>(t); i < n; i += static_cast<size_t>(threads)) {
        if (failed.load() >= kMaxFailures) {
          outcomes[i].error = "not attempted: too many failures";
          continue;
        }
        outcomes[i] = Enrol(o, creds[i], keys[i]);
        if (!outcomes[i].ok) ++failed;
      }
    });
  }
  ready.arrive_and_wait();
  double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  go.count_down();
  for (auto& w : workers) w.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;
  for (EVP_PKEY* k : keys) EVP_PKEY_free(k);

  size_t ok = 0, round_trips = 0, shown = 0;
  std::set<std::string> serials;
  std::vector<double> ms;
  ms.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Outcome& r = outcomes[i];
    round_trips += static_cast<size_t>(r.messages);
    if (r.ok) {
      ++ok;
      serials.insert(r.serial);
      ms.push_back(r.ms);
    } else if (shown++ < 5) {
      std::fprintf(stderr, "cmp_bench: %s: enrolment %zu (CN=%s, ref %s) failed: %s\n", o.label.c_str(), i,
                   creds[i].device.c_str(), creds[i].ref.c_str(), r.error.c_str());
    }
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    if (ms.empty()) return 0.0;
    size_t i = static_cast<size_t>(p * static_cast<double>(ms.size() - 1) + 0.5);
    return ms[std::min(i, ms.size() - 1)];
  };
  std::printf(
      "cmp_bench: label=%s threads=%d enrolments=%zu ok=%zu failures=%zu wall_s=%.3f per_s=%.1f "
      "client_cpu_s=%.3f client_cores=%.2f round_trips=%zu distinct_certs=%zu p50_ms=%.2f p99_ms=%.2f "
      "max_ms=%.2f\n",
      o.label.c_str(), threads, n, ok, n - ok, wall, wall > 0 ? static_cast<double>(ok) / wall : 0.0, cpu,
      wall > 0 ? cpu / wall : 0.0, round_trips, serials.size(), pct(0.50), pct(0.99), ms.empty() ? 0.0 : ms.back());
  std::fflush(stdout);
  return ok == n ? 0 : 1;
}
