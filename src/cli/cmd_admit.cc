// femtoguard admit: the admission gate as a program, for strongSwan's
// upstream ext-auth plugin (and any SeGW that can run a command before it
// accepts). Reads the plugin's environment:
//   IKE_REMOTE_ID    the peer's identity; a DN ("C=KR, O=Op, CN=FG-1") gives its CN
//   IKE_REMOTE_HOST  the femtocell's outer address   -> src_ip
//   IKE_LOCAL_HOST   the SeGW address it connected to -> endpoint
//   IKE_UNIQUE_ID    the IKE_SA's unique id           -> session
//   IKE_NAME         the connection name (for the error line only)
// asks the node's POST /v1/admission (https on the TLS listener, the server
// checked against --cacert), and exits 0 only on "allow".
// Deny by default: deny and quarantine exit 1, any error or timeout 2, each
// with one line on stderr.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "admission/http_client.h"
#include "cli/commands.h"

namespace fg::cli {
namespace {

constexpr int kDenied = 1;
constexpr int kError = 2;

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t start = s.find_first_not_of(" \t");
  return start == std::string::npos ? std::string() : s.substr(start);
}

int Error(const std::string& message) {
  std::fprintf(stderr, "femtoguard admit: error: %s\n", Shown(message).c_str());
  return kError;
}

// The device id in an IKE identity: the CN of a DN, else the identity itself.
Result<std::string> DeviceFromIkeId(const std::string& id) {
  if (id.find('=') == std::string::npos) {
    if (id.empty()) return Status::InvalidArgument("IKE_REMOTE_ID is empty");
    return id;
  }
  // RDNs separated by ',' (strongSwan prints "C=KR, O=Op, CN=FG-1") or '/'.
  size_t pos = 0;
  while (pos < id.size()) {
    size_t end = id.find_first_of(",/", pos);
    if (end == std::string::npos) end = id.size();
    std::string rdn = Trim(id.substr(pos, end - pos));
    if (rdn.size() > 3 && (rdn.compare(0, 3, "CN=") == 0 || rdn.compare(0, 3, "cn=") == 0)) {
      return Trim(rdn.substr(3));
    }
    pos = end + 1;
  }
  return Status::InvalidArgument("IKE_REMOTE_ID is a DN without a CN: \"" + id + "\"");
}

}  // namespace

void RegisterAdmitCommand(CLI::App& app, Program& program) {
  auto* cmd = app.add_subcommand(
      "admit", "ask the node whether the IKE peer in the environment (strongSwan ext-auth) may connect; exit 0 = allow");
  struct Options {
    std::string server;
    std::string token_file;
    int timeout_ms = 2000;
    std::string segw;
    std::string cacert;
    std::string data;
  };
  auto opt = std::make_shared<Options>();
  cmd->add_option("--server", opt->server,
                  "node API: https://HOST:PORT (TLS listener), or HOST:PORT for plain HTTP (only with "
                  "api.plain_http); default $FEMTOGUARD_SERVER or https://127.0.0.1:8443");
  cmd->add_option("--cacert", opt->cacert,
                  "CA certificate(s), PEM, to check the node's TLS certificate (default $FEMTOGUARD_CACERT, else "
                  "DIR/ca/root.crt with --data DIR, else the system's trust store)");
  cmd->add_option("--data", opt->data, "data dir whose root CA checks the node (default $FEMTOGUARD_DATA)");
  cmd->add_option("--token-file", opt->token_file, "file holding the bearer token (default $FEMTOGUARD_TOKEN)");
  cmd->add_option("--timeout-ms", opt->timeout_ms, "give up (and refuse) after this long")->check(CLI::Range(1, 60000));
  cmd->add_option("--segw", opt->segw, "this SeGW's id in the decision (default: the host name)");
  cmd->callback([&program, opt] {
    program.action = [opt]() -> int {
      std::string server = !opt->server.empty() ? opt->server : GetEnv("FEMTOGUARD_SERVER");
      if (server.empty()) server = "https://127.0.0.1:8443";
      auto hp = admission::ParseHostPort(server);
      if (!hp.ok()) return Error(hp.status().message());
      admission::ClientTls tls;
      tls.ca_file = !opt->cacert.empty() ? opt->cacert : GetEnv("FEMTOGUARD_CACERT");
      if (tls.ca_file.empty()) {
        if (std::string data = ResolveDataDirArg(opt->data); !data.empty()) {
          tls.ca_file = (DataDir(data).CaDir() / "root.crt").string();
        }
      }
      if (hp->https && !tls.ca_file.empty() && ::access(tls.ca_file.c_str(), R_OK) != 0) {
        return Error("CA file " + tls.ca_file + " is not readable");
      }

      std::string token;
      if (!opt->token_file.empty()) {
        auto t = ReadFile(opt->token_file);
        if (!t.ok()) return Error("token file: " + t.status().message());
        token = Trim(*t);
        if (token.empty()) return Error("token file " + opt->token_file + " is empty");
      } else {
        token = Trim(GetEnv("FEMTOGUARD_TOKEN"));
      }

      auto device = DeviceFromIkeId(GetEnv("IKE_REMOTE_ID"));
      if (!device.ok()) return Error(device.status().message());
      std::string segw = opt->segw;
      if (segw.empty()) {
        char host[256] = {};
        if (gethostname(host, sizeof(host) - 1) == 0) segw = host;
      }
      nlohmann::json body = {{"device", *device},
                             {"session", GetEnv("IKE_UNIQUE_ID")},
                             {"src_ip", GetEnv("IKE_REMOTE_HOST")},
                             {"endpoint", GetEnv("IKE_LOCAL_HOST")},
                             {"segw", segw}};
      std::vector<std::pair<std::string, std::string>> headers;
      if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
      auto resp = admission::HttpPost(*hp, "/v1/admission", "application/json",
                                      body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), headers,
                                      opt->timeout_ms, tls);
      if (!resp.ok()) return Error(resp.status().message());
      auto j = nlohmann::json::parse(resp->body, nullptr, false);
      if (resp->status != 200) {
        std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                              ? j["error"].get<std::string>()
                              : "HTTP " + std::to_string(resp->status);
        return Error("server " + server + " answered " + std::to_string(resp->status) + ": " + why);
      }
      if (!j.is_object() || !j.contains("decision") || !j["decision"].is_string()) {
        return Error("server " + server + " sent no decision");
      }
      std::string decision = j["decision"].get<std::string>();
      if (decision == "allow") return 0;
      std::string reasons;
      if (j.contains("reasons") && j["reasons"].is_array()) {
        for (const auto& r : j["reasons"]) {
          if (r.is_string()) reasons += (reasons.empty() ? "" : ",") + r.get<std::string>();
        }
      }
      std::string conn = GetEnv("IKE_NAME");
      std::fprintf(stderr, "femtoguard admit: %s %s%s%s: %s\n",
                   decision == "quarantine" ? "quarantine" : "deny", Shown(*device).c_str(),
                   conn.empty() ? "" : " on ", Shown(conn).c_str(),
                   reasons.empty() ? "(no reason given)" : Shown(reasons).c_str());
      return kDenied;
    };
  });
}

}  // namespace fg::cli
