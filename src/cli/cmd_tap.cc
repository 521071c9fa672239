// femtoguard tap: S1AP/NGAP from a capture file or a live interface, decoded
// by tshark (Wireshark's dissectors), written as events (docs/tap.md) to a
// file or POSTed to a node. IMSI/IMEI are pseudonymized in this process,
// under the data dir's pseudonym key (or --pseudonym-key), before anything
// is written.

#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "admission/http_client.h"
#include "cli/commands.h"
#include "common/ossl.h"
#include "common/registry_file.h"
#include "tap/tap.h"

namespace fg::cli {
namespace {

struct TapFlags {
  std::string data;
  std::string pseudonym_key;
  std::string pcap;
  std::string interface;
  std::string out;
  std::string server;
  std::string cacert;
  std::string token_file;
  std::string registry;
  std::string tshark = "tshark";
  std::vector<uint16_t> sctp_ports;
  std::vector<std::string> preferences;
  bool quiet = false;
};

// Registry lines with radio fields -> "<plmn>:<enb_id>" -> device, parsed
// and validated as `device import` does (common/registry_file.h).
Result<tap::DeviceMap> LoadDeviceMap(const std::string& path, const Pseudonymizer& pseudonymizer) {
  tap::DeviceMap map;
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto d = ParseRegistryLine(line, pseudonymizer);
    if (!d.ok()) return Status::InvalidArgument(path + ":" + std::to_string(n) + ": " + d.status().message());
    tap::AddToDeviceMap(*d, &map);
  }
  return map;
}

// The node's stored registry (the data dir's store): what `device import`
// last said about each femtocell's radio identity. Decommissioned devices
// name nothing.
Result<tap::DeviceMap> StoredDeviceMap(const std::string& data_flag) {
  FG_ASSIGN_OR_RETURN(Env env, OpenEnv(data_flag));
  FG_ASSIGN_OR_RETURN(std::vector<Device> devices, env.store->ListDevices({}));
  tap::DeviceMap map;
  for (const Device& d : devices) {
    if (d.status != DeviceStatus::kDecommissioned) tap::AddToDeviceMap(d, &map);
  }
  return map;
}

class Poster {
 public:
  Status Open(const TapFlags& f) {
    FG_ASSIGN_OR_RETURN(hp_, admission::ParseHostPort(f.server));
    tls_.ca_file = f.cacert;
    if (hp_.https && f.cacert.empty()) return Status::InvalidArgument("--server over https needs --cacert");
    std::string token;
    if (!f.token_file.empty()) {
      FG_ASSIGN_OR_RETURN(token, ReadFile(f.token_file));
    } else if (const char* e = std::getenv("FEMTOGUARD_TOKEN")) {
      token = e;
    }
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    if (token.empty()) return Status::InvalidArgument("an ingest token is needed: --token-file or FEMTOGUARD_TOKEN");
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1) return Status::Internal("no randomness for the batch ids");
    run_id_ = "tap-" + ossl::HexLower(r, sizeof r);
    headers_ = {{"Authorization", "Bearer " + token}, {"Idempotency-Key", ""}};
    last_ = std::chrono::steady_clock::now();
    return Status::Ok();
  }
  Status Add(const std::string& line) {
    body_ += line;
    body_.push_back('\n');
    // A live capture trickles: flush at least every second (checked as events come).
    if (body_.size() > (512 << 10) || std::chrono::steady_clock::now() - last_ > std::chrono::seconds(1)) return Flush();
    return Status::Ok();
  }
  Status Flush() {
    last_ = std::chrono::steady_clock::now();
    if (body_.empty()) return Status::Ok();
    headers_[1].second = run_id_ + "-" + std::to_string(batch_++);
    for (int attempt = 0;; ++attempt) {
      auto r = admission::HttpPost(hp_, "/v1/events", "application/x-ndjson", body_, headers_, 10000, tls_);
      if (r.ok() && r->status == 200) break;
      const bool retry = r.ok() ? r->status == 503 : r.status().code() == StatusCode::kUnavailable;
      if (retry && attempt < 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      return r.ok() ? Status::Unavailable("POST /v1/events: HTTP " + std::to_string(r->status) + " " + r->body)
                    : r.status();
    }
    body_.clear();
    return Status::Ok();
  }

 private:
  admission::HostPort hp_;
  admission::ClientTls tls_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string run_id_;
  std::string body_;
  size_t batch_ = 0;
  std::chrono::steady_clock::time_point last_;
};

int RunTap(const TapFlags& f) {
  if (f.pcap.empty() == f.interface.empty()) return Fail(Status::InvalidArgument("give one of --pcap FILE or --interface IF"));
  if (f.out.empty() == f.server.empty()) return Fail(Status::InvalidArgument("give one of --out FILE or --server URL"));
  std::string key;
  if (!f.pseudonym_key.empty()) {
    auto k = ReadSecretFile(f.pseudonym_key);
    if (!k.ok()) return Fail(k.status());
    key = *k;
  } else {
    std::string data = ResolveDataDirArg(f.data);
    if (data.empty())
      return Fail(Status::InvalidArgument("the pseudonym key is needed: --data DIR, FEMTOGUARD_DATA or --pseudonym-key FILE"));
    auto k = DataDir(data).LoadPseudonymKey();
    if (!k.ok()) return Fail(k.status());
    key = *k;
  }
  Pseudonymizer pseudonymizer(key);
  OPENSSL_cleanse(key.data(), key.size());
  tap::DeviceMap devices;
  if (!f.registry.empty()) {
    auto m = LoadDeviceMap(f.registry, pseudonymizer);
    if (!m.ok()) return Fail(m.status());
    devices = std::move(*m);
  } else if (!ResolveDataDirArg(f.data).empty()) {
    // No --registry: the data dir's stored registry names the femtocells.
    auto m = StoredDeviceMap(f.data);
    if (!m.ok()) return Fail(m.status());
    devices = std::move(*m);
  }

  // --out: written to FILE.tmp and renamed at the end for a capture file, so
  // that a failed run leaves no half file; a live capture appends as it goes.
  std::FILE* out = nullptr;
  std::string tmp;
  Poster poster;
  if (!f.out.empty()) {
    if (f.out == "-") {
      out = stdout;
    } else {
      tmp = f.interface.empty() ? f.out + ".tmp" : f.out;
      out = std::fopen(tmp.c_str(), f.interface.empty() ? "w" : "a");
      if (!out) return Fail(Status::InvalidArgument("cannot write " + tmp + ": " + std::strerror(errno)));
    }
  } else if (Status s = poster.Open(f); !s.ok()) {
    return Fail(s);
  }
  const bool live = !f.interface.empty();
  tap::EventBuilder builder(pseudonymizer, std::move(devices), [&](const std::string& line) -> Status {
    if (out) {
      if (std::fputs(line.c_str(), out) < 0 || std::fputc('\n', out) < 0) return Status::Internal("write failed");
      if (live) std::fflush(out);
      return Status::Ok();
    }
    return poster.Add(line);
  });
  tap::TapOptions o;
  o.pcap = f.pcap;
  o.interface = f.interface;
  o.tshark = f.tshark;
  o.sctp_ports = f.sctp_ports;
  o.preferences = f.preferences;
  const auto start = std::chrono::steady_clock::now();
  Status st = tap::RunTshark(o, builder);
  if (st.ok() && !out) st = poster.Flush();
  if (out && out != stdout) {
    if (std::fclose(out) != 0 && st.ok()) st = Status::Internal("write failed: " + tmp);
    if (!st.ok() && !live) {
      std::remove(tmp.c_str());
    } else if (!live && std::rename(tmp.c_str(), f.out.c_str()) != 0) {
      st = Status::Internal("rename " + tmp + ": " + std::strerror(errno));
    }
  } else if (out == stdout) {
    std::fflush(stdout);
  }
  if (!st.ok()) return Fail(st);
  const auto& s = builder.stats();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!f.quiet) {
    std::fprintf(stderr, "tap: %llu packets, %llu PDUs, %llu events in %.2f s; %llu attaches without a revealed IMSI\n",
                 static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(s.pdus),
                 static_cast<unsigned long long>(s.events), secs, static_cast<unsigned long long>(s.attaches_without_imsi));
  }
  return 0;
}

}  // namespace

void RegisterTapCommand(CLI::App& app, Program& program) {
  auto* cmd = app.add_subcommand("tap", "S1AP/NGAP from a capture or an interface (decoded by tshark) into events");
  auto f = std::make_shared<TapFlags>();
  AddDataOption(cmd, &f->data);
  cmd->add_option("--pseudonym-key", f->pseudonym_key,
                  "file (mode 600) with the pseudonym key, instead of the data dir's secrets/pseudonym.key");
  cmd->add_option("--pcap", f->pcap, "pcap or pcapng file to read");
  cmd->add_option("--interface", f->interface,
                  "live capture on this interface (needs CAP_NET_RAW/CAP_NET_ADMIN or the wireshark group; docs/tap.md)");
  cmd->add_option("--out", f->out, "events file to write (JSON Lines; - for stdout)");
  cmd->add_option("--server", f->server, "POST the events to this node: https://HOST:PORT");
  cmd->add_option("--cacert", f->cacert, "CA certificate(s), PEM, to check the node's TLS certificate");
  cmd->add_option("--token-file", f->token_file, "file holding an ingest token (default: $FEMTOGUARD_TOKEN)");
  cmd->add_option("--registry", f->registry,
                  "registry.jsonl whose plmn/enb_id/gnb_id/csg_id fields name the femtocell of each eNB (default: the data dir's stored registry, else enb-PLMN-ID)");
  cmd->add_option("--tshark", f->tshark, "the tshark binary (default: tshark on PATH)");
  cmd->add_option("--sctp-port", f->sctp_ports, "extra SCTP port(s) to decode as S1AP (36412 and 38412 always are)");
  cmd->add_option("--tshark-pref", f->preferences,
                  "a tshark preference NAME:VALUE (tshark -o), e.g. sctp.tsn_analysis:FALSE");
  cmd->add_flag("--quiet", f->quiet, "no summary on stderr");
  cmd->callback([&program, f] { program.action = [f] { return RunTap(*f); }; });
}

}  // namespace fg::cli
