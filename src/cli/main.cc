// femtoguard: one binary, many subcommands (DESIGN.md §3.1).

#include <pwd.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "common/log.h"
#include "common/pseudonym.h"
#include "pki/ca.h"
#include "server/node.h"

namespace fg::cli {

// cmd_config.cc (config keys, reasons, check).
void RegisterConfigCommands(CLI::App& app, Program& program);

void AddDataOption(CLI::App* cmd, std::string* data) {
  cmd->add_option("--data", *data, "data dir (default: $FEMTOGUARD_DATA)");
}

Result<Env> OpenEnv(const std::string& data_flag) {
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty()) return Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA");
  Env env;
  env.dir = DataDir(data);
  FG_ASSIGN_OR_RETURN(env.config, env.dir.LoadConfig());
  FG_ASSIGN_OR_RETURN(env.store, Store::Open(env.dir.ResolveStoreUrl(env.config)));
  return env;
}

void RunWithEnv(CLI::App* cmd, Program& program, std::shared_ptr<std::string> data,
                std::function<int(Env&)> body) {
  cmd->callback([&program, data = std::move(data), body = std::move(body)] {
    program.action = [data, body] {
      auto env = OpenEnv(*data);
      if (!env.ok()) return Fail(env.status());
      return body(*env);
    };
  });
}

AuditContext CliAudit(std::string reason) {
  std::string user;
  if (const char* u = std::getenv("USER"); u && *u) {
    user = u;
  } else if (passwd* pw = getpwuid(getuid())) {
    user = pw->pw_name;
  } else {
    user = std::to_string(getuid());
  }
  return AuditContext{"cli:" + user, std::move(reason)};
}

std::string ShownJson(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
}

std::string ShownJsonText(std::string_view text) {
  // ordered_json: the stored key order is the documented one (DESIGN.md §3.5).
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Shown(text);
  return j.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
}

CLI::Validator IdArg(IdKind kind, size_t max_bytes) {
  return CLI::Validator(
      [kind, max_bytes](std::string& value) -> std::string {
        if (value.empty() || IsValidIdentifier(kind, value, max_bytes)) return {};
        CountBadIdentifier("cli", "argument");
        // "field 'x': " is the API's framing; CLI11 names the option itself.
        std::string why = CheckIdentifier(kind, "x", value, max_bytes).message();
        return why.substr(why.find(": ") + 2);
      },
      std::string(IdKindName(kind)));
}

int Fail(const Status& status) {
  std::fprintf(stderr, "femtoguard: %s\n", Shown(status.ToString()).c_str());
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return 2;
    case StatusCode::kNotFound: return 3;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied: return 4;
    default: return 1;
  }
}

void NotifyServeOrWarn(const DataDir& dir) {
  if (Status s = NotifyServe(dir); !s.ok()) {
    std::fprintf(stderr,
                 "femtoguard: warning: change stored, but the running serve did not confirm: %s\n",
                 Shown(s.ToString()).c_str());
  }
}

namespace {

int RunInit(const std::string& data_flag, const std::string& public_url, const std::string& listen,
            const std::string& tls_listen) {
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(data, ec) && !fs::is_empty(data, ec)) {
    return Fail(Status::AlreadyExists("refusing to overwrite existing data dir " + data));
  }
  DataDir dir(data);
  fs::create_directories(dir.SecretsDir(), ec);
  if (ec) return Fail(Status::Internal("cannot create " + data + ": " + ec.message()));
  fs::permissions(dir.root(), fs::perms::owner_all, ec);
  fs::permissions(dir.SecretsDir(), fs::perms::owner_all, ec);

  Config config;
  if (!listen.empty()) config.listen = listen;
  if (!tls_listen.empty()) config.tls_listen = tls_listen;
  config.public_url = public_url.empty() ? "http://" + config.listen : public_url;
  if (Status s = config.Validate(); !s.ok()) return Fail(s);

  std::string passphrase;
  bool generated = false;
  if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) {
    passphrase = env;
  } else {
    // No operator passphrase: generate one into a 0600 file. Weaker than an
    // external secret (it sits beside the keys) but keeps keys encrypted
    // in backups that skip secrets/.
    std::string raw = Pseudonymizer::GenerateKey();
    passphrase = ossl::HexLower(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    if (Status s = WriteFileAtomic(dir.PassphrasePath(), passphrase, 0600); !s.ok()) return Fail(s);
    generated = true;
  }
  if (Status s = WriteFileAtomic(dir.PseudonymKeyPath(), Pseudonymizer::GenerateKey(), 0600); !s.ok()) {
    return Fail(s);
  }
  if (Status s = WriteFileAtomic(dir.ConfigPath(), config.ToYaml(), 0644); !s.ok()) return Fail(s);
  Status s = CertificateAuthority::Create(dir, config, passphrase);
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  if (!s.ok()) return Fail(s);
  auto store = Store::Open(dir.ResolveStoreUrl(config));
  if (!store.ok()) return Fail(store.status());
  AuditEntry entry;
  entry.ts_ms = NowMillis();
  AuditContext who = CliAudit("init");
  entry.actor = who.actor;
  entry.action = "ca.init";
  entry.subject = config.ca_name;
  entry.reason = generated ? "CA keys encrypted with a generated passphrase file"
                           : "CA keys encrypted with FEMTOGUARD_CA_PASSPHRASE";
  if (Status a = (*store)->AppendAudit(entry); !a.ok()) return Fail(a);
  std::printf("initialised %s (CA '%s', public URL %s)\n", data.c_str(), config.ca_name.c_str(),
              config.public_url.c_str());
  return 0;
}

struct ServeFlags {
  std::string segw;
  std::string rules;
  std::string webhook;
};

// Every connection is a file descriptor, and the usual soft limit (1,024)
// is far below what a node under a connection flood needs; the hard limit
// is ours to take. The HTTP listeners size their connection caps from the
// result (docs/limits.md), so it is logged once.
void RaiseOpenFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  spdlog::info("open files limit: {} (hard {})", static_cast<unsigned long long>(rl.rlim_cur),
               static_cast<unsigned long long>(rl.rlim_max));
}

int RunServe(const std::string& data_flag, const std::string& listen, const std::string& tls_listen, int threads,
             const ServeFlags& flags) {
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  RaiseOpenFileLimit();

  Node::Options options;
  options.data_dir = data;
  options.listen = listen;
  options.tls_listen = tls_listen;
  options.threads = threads;
  options.segw = flags.segw;
  options.rules_path = flags.rules;
  options.webhook_url = flags.webhook;
  auto node = Node::Start(options);
  if (!node.ok()) return Fail(node.status());
  std::printf("femtoguard serve: listening on port %u (data %s)\n", (*node)->port(), data.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("signal {}: stopping", sig);
  (*node)->Stop();
  return 0;
}

}  // namespace
}  // namespace fg::cli

int main(int argc, char** argv) {
  using namespace fg::cli;
  auto logger = spdlog::stderr_color_mt("femtoguard");
  fg::EscapeLogMessages(*logger);  // no input forges a log line (docs/identifiers.md)
  spdlog::set_default_logger(logger);

  CLI::App app{"femtoguard: stops unauthorized femtocells from reaching the core network"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "femtoguard 0.1.0");
  Program program;

  {
    auto* cmd = app.add_subcommand("init", "create a data dir: CA, config and empty store");
    auto data = std::make_shared<std::string>();
    auto public_url = std::make_shared<std::string>();
    auto listen = std::make_shared<std::string>();
    auto tls_listen = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--public-url", *public_url, "URL devices reach this node at (CRL/OCSP in certificates)");
    cmd->add_option("--listen", *listen, "HOST:PORT serve listens on (default 127.0.0.1:8440)");
    cmd->add_option("--tls-listen", *tls_listen, "HOST:PORT of the TLS listener: EST, device config (default 127.0.0.1:8443)");
    cmd->callback([&program, data, public_url, listen, tls_listen] {
      program.action = [=] { return RunInit(*data, *public_url, *listen, *tls_listen); };
    });
  }
  {
    auto* cmd = app.add_subcommand("serve", "run every service of one node (OCSP at /ocsp, CRL at /crl)");
    auto data = std::make_shared<std::string>();
    auto listen = std::make_shared<std::string>();
    auto threads = std::make_shared<int>(0);
    auto tls_listen = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--listen", *listen, "HOST:PORT (default from config, 127.0.0.1:8440)");
    cmd->add_option("--tls-listen", *tls_listen, "HOST:PORT of the TLS listener (default from config; 'off' disables)");
    cmd->add_option("--threads", *threads, "HTTP worker threads (default: cores)");
    auto flags = std::make_shared<ServeFlags>();
    cmd->add_option("--segw", flags->segw, "SeGW to follow and steer, e.g. vici:///run/charon.vici");
    cmd->add_option("--rules", flags->rules, "rules file (default: DATA/rules.yaml if present, else built-in)");
    cmd->add_option("--webhook", flags->webhook, "POST alerts here (http://host:port/path)");
    cmd->callback([&program, data, listen, tls_listen, threads, flags] {
      program.action = [=] { return RunServe(*data, *listen, *tls_listen, *threads, *flags); };
    });
  }
  RegisterCaCommands(app, program);
  RegisterDeviceCommands(app, program);
  RegisterCertCommands(app, program);
  RegisterEnrolmentCommands(app, program);
  RegisterEndpointCommands(app, program);
  RegisterTokenCommands(app, program);
  RegisterAdmitCommand(app, program);
  RegisterReplayCommand(app, program);
  RegisterAlertCommands(app, program);
  RegisterSimCommands(app, program);
  RegisterFeedCommand(app, program);
  RegisterConfigCommands(app, program);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors are bad input: exit 2 (DESIGN.md §3.1), help and version 0.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!program.action) {
    std::fprintf(stderr, "femtoguard: nothing to do (see --help)\n");
    return 2;
  }
  return program.action();
}
