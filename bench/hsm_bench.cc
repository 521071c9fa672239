// Device-certificate signing latency with the issuing CA key in a PKCS#11
// token (SoftHSM2, through libp11's engine) against the same with the key in
// a file, in one process and one run, alternating: round r signs `batch`
// certificates with the file CA, then `batch` with the HSM CA (and the other
// order on odd rounds), so both see the same machine load.
//
//   hsm_bench --module SO --uri pkcs11:token=T;object=L --pin-file F
//             [--rounds R] [--batch B]
//
// SOFTHSM2_CONF must point at a token dir made for the run (bench/hsm_bench.sh
// does that). Prints one line per kind (median, p90, mean in microseconds)
// and the ratio of medians (hsm / file).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/ossl.h"
#include "common/time.h"
#include "pki/ca.h"

namespace fg {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "hsm_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<CertificateAuthority> MakeCa(const std::filesystem::path& root, Config config) {
  DataDir dir(root);
  std::filesystem::create_directories(dir.CaDir());
  const char* passphrase = "hsm-bench-passphrase";
  if (Status s = CertificateAuthority::Create(dir, config, passphrase); !s.ok()) Die(s.ToString());
  auto ca = CertificateAuthority::Load(dir, config, passphrase);
  if (!ca.ok()) Die(ca.status().ToString());
  return std::move(ca).value();
}

struct Summary {
  double median_us, p90_us, mean_us;
};
Summary Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[v.size() * 9 / 10], sum / static_cast<double>(v.size())};
}

int Main(int argc, char** argv) {
  std::string module, uri, pin_file;
  int rounds = 20, batch = 25;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--module") module = v;
    else if (k == "--uri") uri = v;
    else if (k == "--pin-file") pin_file = v;
    else if (k == "--rounds") rounds = std::atoi(v.c_str());
    else if (k == "--batch") batch = std::atoi(v.c_str());
    else Die("unknown option " + k);
  }
  if (module.empty() || uri.empty() || pin_file.empty() || rounds < 1 || batch < 1) {
    Die("usage: hsm_bench --module SO --uri URI --pin-file F [--rounds R] [--batch B]");
  }
  CertificateAuthority::UseFastKdfForTest(true);  // set-up only; not timed
  char tmpl[] = "/tmp/fg-hsm-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  std::filesystem::path root = tmpl;
  Config file_config;
  Config hsm_config;
  hsm_config.ca_hsm_uri = uri;
  hsm_config.ca_hsm_module = module;
  hsm_config.ca_hsm_pin_file = pin_file;
  auto file_ca = MakeCa(root / "file", file_config);
  auto hsm_ca = MakeCa(root / "hsm", hsm_config);
  if (!hsm_ca->issuing_key_in_hsm() || file_ca->issuing_key_in_hsm()) Die("CA kinds are not as set up");

  auto key = ossl::GenerateP256Key();
  if (!key.ok()) Die(key.status().ToString());
  auto spki = ossl::SpkiDer(key->get());
  if (!spki.ok()) Die(spki.status().ToString());

  std::vector<double> file_us, hsm_us;
  auto sign = [&](const CertificateAuthority& ca, std::vector<double>& out) {
    for (int i = 0; i < batch; ++i) {
      UnixMillis now = NowMillis();
      auto t0 = std::chrono::steady_clock::now();
      auto cert = ca.SignDeviceCertificate("FG-BENCH-1", *spki, now, now + 86400000, nullptr);
      auto t1 = std::chrono::steady_clock::now();
      if (!cert.ok()) Die(cert.status().ToString());
      out.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  };
  sign(*file_ca, file_us);  // warm-up, discarded
  sign(*hsm_ca, hsm_us);
  file_us.clear();
  hsm_us.clear();
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      sign(*file_ca, file_us);
      sign(*hsm_ca, hsm_us);
    } else {
      sign(*hsm_ca, hsm_us);
      sign(*file_ca, file_us);
    }
  }
  Summary f = Summarise(file_us), h = Summarise(hsm_us);
  std::printf("kind  signatures  median_us  p90_us  mean_us\n");
  std::printf("file  %10zu  %9.1f  %6.1f  %7.1f\n", file_us.size(), f.median_us, f.p90_us, f.mean_us);
  std::printf("hsm   %10zu  %9.1f  %6.1f  %7.1f\n", hsm_us.size(), h.median_us, h.p90_us, h.mean_us);
  std::printf("ratio hsm/file (median): %.2f\n", h.median_us / f.median_us);
  std::filesystem::remove_all(root);
  return 0;
}

}  // namespace
}  // namespace fg

int main(int argc, char** argv) { return fg::Main(argc, argv); }
