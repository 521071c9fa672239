// femtoguard: one binary, many subcommands (DESIGN.md §3.1).

#include <pwd.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "common/log.h"
#include "common/pseudonym.h"
#include "pki/ca.h"
#include "response/webhook.h"
#include "pki/crl.h"
#include "node/node.h"
#include "node/node_membership.h"

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

// Where the CA keys live (docs/pki.md, "CA custody"): init's and serve's flags.
struct CustodyFlags {
  std::string passphrase_file;
  std::string hsm_uri;
  std::string hsm_module;
  std::string hsm_pin_file;
  std::string issuing_csr_out;  // offline root: make the issuing key and a request, no root
};

// Checks init's custody flags before anything is written and puts them in
// `config` (absolute paths). The passphrase from --passphrase-file goes to
// `passphrase`.
Status ApplyCustodyFlags(const CustodyFlags& flags, Config& config, std::string& passphrase) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!flags.passphrase_file.empty()) {
    if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) {
      return Status::InvalidArgument("give either --passphrase-file or FEMTOGUARD_CA_PASSPHRASE, not both");
    }
    FG_ASSIGN_OR_RETURN(passphrase, ReadSecretFile(flags.passphrase_file));
    config.ca_passphrase_file = fs::absolute(flags.passphrase_file, ec).string();
  }
  if (!flags.hsm_uri.empty() || !flags.hsm_module.empty() || !flags.hsm_pin_file.empty()) {
    if (flags.hsm_uri.empty() || flags.hsm_module.empty() || flags.hsm_pin_file.empty()) {
      return Status::InvalidArgument("--hsm-uri, --hsm-module and --hsm-pin-file go together");
    }
    if (!fs::is_regular_file(flags.hsm_module, ec)) {
      return Status::InvalidArgument("--hsm-module: no PKCS#11 library at " + flags.hsm_module);
    }
    FG_ASSIGN_OR_RETURN(std::string pin, ReadSecretFile(flags.hsm_pin_file));
    OPENSSL_cleanse(pin.data(), pin.size());
    config.ca_hsm_uri = flags.hsm_uri;
    config.ca_hsm_module = fs::absolute(flags.hsm_module, ec).string();
    config.ca_hsm_pin_file = fs::absolute(flags.hsm_pin_file, ec).string();
  }
  return Status::Ok();
}

// Writes a new data dir's contents into `root` (an empty staging dir).
// `passphrase` is the operator's (--passphrase-file) or empty.
int InitInto(const std::filesystem::path& root, const Config& config, std::string passphrase,
             const CustodyFlags& custody, const std::string& node_id) {
  namespace fs = std::filesystem;
  std::error_code ec;
  DataDir dir(root);
  fs::create_directories(dir.SecretsDir(), ec);
  if (ec) return Fail(Status::Internal("cannot create " + root.string() + ": " + ec.message()));
  fs::permissions(dir.root(), fs::perms::owner_all, ec);
  fs::permissions(dir.SecretsDir(), fs::perms::owner_all, ec);

  bool generated = false;
  if (!passphrase.empty()) {
    // --passphrase-file: nothing about the passphrase is written here.
  } else if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) {
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
  // The alert webhook's HMAC key (response/webhook.h), for the receiver to share.
  if (auto k = response::LoadOrCreateWebhookSecret(dir.SecretsDir()); !k.ok()) return Fail(k.status());
  if (Status s = WriteFileAtomic(dir.ConfigPath(), config.ToYaml(), 0644); !s.ok()) return Fail(s);
  // This node's name in its cluster (docs/cluster.md).
  if (Status s = WriteFileAtomic(dir.NodeIdPath(), node_id + "\n", 0644); !s.ok()) return Fail(s);
  Status s;
  if (custody.issuing_csr_out.empty()) {
    s = CertificateAuthority::Create(dir, config, passphrase);
  } else {
    // Offline root (docs/pki.md): no root key here, ever.
    auto csr = CertificateAuthority::CreateIssuingRequest(dir, config, passphrase);
    s = csr.ok() ? WriteFileAtomic(custody.issuing_csr_out, *csr, 0644) : csr.status();
  }
  // The root CRL (served at /crl/root), while the root key is here.
  if (s.ok() && custody.issuing_csr_out.empty()) s = WriteRootCrlFromDataDir(dir, passphrase);
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
                 : !config.ca_passphrase_file.empty()
                     ? "CA keys encrypted with the passphrase in " + config.ca_passphrase_file
                     : "CA keys encrypted with FEMTOGUARD_CA_PASSPHRASE";
  if (!config.ca_hsm_uri.empty()) entry.reason += "; issuing CA key in the PKCS#11 token " + config.ca_hsm_uri;
  if (!custody.issuing_csr_out.empty()) entry.reason += "; issuing CA request for an offline root written";
  // The CA's fingerprint in the store: `node join` checks a bundle against it.
  entry.detail = CaInitDetail(dir, node_id);
  if (Status a = (*store)->AppendAudit(entry); !a.ok()) return Fail(a);
  NodeInfo self;
  self.id = node_id;
  self.public_url = config.public_url;
  self.url_order = 0;
  self.joined_ms = NowMillis();
  if (Status u = (*store)->UpsertNode(self, CliAudit("init")); !u.ok()) return Fail(u);
  return 0;
}

// `init` checks everything it can before it writes anything, then builds the
// data dir in a staging dir beside it and renames it into place: a failed
// init (a bad flag, a full disk, a refused passphrase) leaves nothing behind,
// and the next init does not trip over a half-made secrets/.
int RunInit(const std::string& data_flag, const std::string& public_url, const std::string& listen,
            const std::string& tls_listen, const std::string& store_url, const CustodyFlags& custody) {
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(data, ec) && !fs::is_empty(data, ec)) {
    return Fail(Status::AlreadyExists("refusing to overwrite existing data dir " + data));
  }
  if (fs::exists(data, ec) && !fs::is_directory(data, ec)) {
    return Fail(Status::AlreadyExists("refusing to overwrite " + data + ": not a directory"));
  }
  Config config;
  std::string passphrase;
  if (Status s = ApplyCustodyFlags(custody, config, passphrase); !s.ok()) return Fail(s);
  if (!listen.empty()) config.listen = listen;
  if (!tls_listen.empty()) config.tls_listen = tls_listen;
  config.public_url = public_url.empty() ? "http://" + config.listen : public_url;
  if (Status s = config.Validate(); !s.ok()) return Fail(s);
  if (!store_url.empty()) {
    if (Status s = CheckStoreUrl(store_url); !s.ok()) return Fail(s);
    config.store = store_url;
  }
  // A store outside the data dir may already serve a cluster, with its CA:
  // a second CA in it would split the fleet. The next node joins instead.
  if (!store_url.empty() && !(store_url.rfind("sqlite:", 0) == 0 && fs::path(store_url.substr(7)).is_relative())) {
    auto store = Store::Open(DataDir(fs::absolute(data, ec)).ResolveStoreUrl(config));
    if (!store.ok()) return Fail(store.status());
    auto nodes = (*store)->ListNodes();
    if (!nodes.ok()) return Fail(nodes.status());
    if (!nodes->empty()) {
      return Fail(Status::FailedPrecondition("the store " + ShownStoreUrl(store_url) + " already has " +
                                             std::to_string(nodes->size()) +
                                             " node(s) and their CA: add this node with `femtoguard node join` "
                                             "(docs/cluster.md)"));
    }
  }
  const std::string node_id = NewNodeId();

  fs::path target = fs::absolute(data, ec).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  fs::create_directories(target.parent_path(), ec);
  if (ec) return Fail(Status::Internal("cannot create " + target.parent_path().string() + ": " + ec.message()));
  const fs::path staging =
      target.parent_path() / ("." + target.filename().string() + ".init-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  int rc = InitInto(staging, config, std::move(passphrase), custody, node_id);
  if (rc == 0) {
    if (fs::exists(target, ec)) fs::remove(target, ec);  // the empty dir we were given
    fs::rename(staging, target, ec);
    if (ec) rc = Fail(Status::Internal("cannot move " + staging.string() + " to " + data + ": " + ec.message()));
  }
  if (rc != 0) {
    fs::remove_all(staging, ec);
    return rc;
  }
  std::printf("initialised %s (CA '%s', public URL %s, node %s)\n", data.c_str(), config.ca_name.c_str(),
              config.public_url.c_str(), node_id.c_str());
  return 0;
}

struct ServeFlags {
  std::string segw;
  std::string bus;
  std::string rules;
  std::string webhook;
  std::string passphrase_file;
  std::string webhook_cacert;
  int webhook_retry_max_s = 60;
  std::string syslog_export;
  std::string syslog_cacert;
  int syslog_retry_max_s = 60;
  std::string log_format = "text";
  std::string log_level = "info";
};

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (a path,
// or '@' for the abstract namespace). Nothing when not run by systemd.
void NotifySystemd(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len) < 0) {
    spdlog::warn("sd_notify to {}: {}", path, std::strerror(errno));
  }
  ::close(fd);
}

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
  if (Status s = ConfigureLogging(flags.log_format, flags.log_level); !s.ok()) return Fail(s);
  if (!flags.passphrase_file.empty()) {
    // Checked now, read again by the CA loader (DataDir::LoadCaPassphrase).
    auto pass = ReadSecretFile(flags.passphrase_file);
    if (!pass.ok()) return Fail(pass.status());
    OPENSSL_cleanse(pass->data(), pass->size());
    std::error_code ec;
    ::setenv("FEMTOGUARD_CA_PASSPHRASE_FILE", std::filesystem::absolute(flags.passphrase_file, ec).c_str(), 1);
  }
  // Block the stop and reload signals in every thread; the main thread waits
  // for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  RaiseOpenFileLimit();

  Node::Options options;
  options.data_dir = data;
  options.listen = listen;
  options.tls_listen = tls_listen;
  options.threads = threads;
  options.segw = flags.segw;
  options.bus_url = flags.bus;
  options.rules_path = flags.rules;
  options.webhook_url = flags.webhook;
  options.webhook_ca_file = flags.webhook_cacert;
  options.webhook_retry_max_ms = flags.webhook_retry_max_s * 1000;
  options.siem_target = flags.syslog_export;
  options.siem_ca_file = flags.syslog_cacert;
  options.siem_retry_max_ms = flags.syslog_retry_max_s * 1000;
  auto node = Node::Start(options);
  if (!node.ok()) return Fail(node.status());
  std::printf("femtoguard serve: listening on port %u (data %s)\n", (*node)->port(), data.c_str());
  std::fflush(stdout);
  NotifySystemd("READY=1\nMAINPID=" + std::to_string(::getpid()));
  int sig = 0;
  for (;;) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    // A reload that fails keeps what runs: serve stays up either way. Each
    // part's outcome is already logged (event "reload") and counted.
    NotifySystemd("RELOADING=1");
    (void)(*node)->Reload();
    NotifySystemd("READY=1");
  }
  spdlog::info("signal {}: stopping", sig);
  NotifySystemd("STOPPING=1");
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
  app.set_version_flag("--version", std::string("femtoguard ") + fg::kFemtoguardVersion);
  Program program;

  {
    auto* cmd = app.add_subcommand("init", "create a data dir: CA, config and empty store");
    auto data = std::make_shared<std::string>();
    auto public_url = std::make_shared<std::string>();
    auto listen = std::make_shared<std::string>();
    auto tls_listen = std::make_shared<std::string>();
    auto store_url = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--public-url", *public_url, "URL devices reach this node at (CRL/OCSP in certificates)");
    cmd->add_option("--store", *store_url,
                    "store URL: sqlite:PATH (default sqlite:store.db in the data dir) or postgresql://... for the "
                    "first node of a cluster (docs/cluster.md)");
    cmd->add_option("--listen", *listen, "HOST:PORT serve listens on (default 127.0.0.1:8440)");
    cmd->add_option("--tls-listen", *tls_listen, "HOST:PORT of the TLS listener: EST, device config (default 127.0.0.1:8443)");
    auto custody = std::make_shared<CustodyFlags>();
    cmd->add_option("--passphrase-file", custody->passphrase_file,
                    "CA key passphrase from this file (mode 600), kept outside the data dir");
    cmd->add_option("--hsm-uri", custody->hsm_uri, "issuing CA key in a PKCS#11 token: pkcs11:token=T;object=L");
    cmd->add_option("--hsm-module", custody->hsm_module, "PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so");
    cmd->add_option("--hsm-pin-file", custody->hsm_pin_file, "file (mode 600) holding the token's user PIN");
    cmd->add_option("--issuing-csr-out", custody->issuing_csr_out,
                    "offline root: make only the issuing key and write its request here (then `ca sign-issuing`, "
                    "`ca install-issuing`)");
    cmd->callback([&program, data, public_url, listen, tls_listen, store_url, custody] {
      program.action = [=] { return RunInit(*data, *public_url, *listen, *tls_listen, *store_url, *custody); };
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
    cmd->add_option("--bus", flags->bus,
                    "NATS JetStream servers, nats://h1:4222,nats://h2:4222,...: POST /v1/events publishes to the "
                    "event stream (default: config bus.url; none = in-process; docs/stream.md)");
    cmd->add_option("--webhook", flags->webhook,
                    "POST alerts here, signed (https://host:port/path; docs/operations.md)");
    cmd->add_option("--webhook-cacert", flags->webhook_cacert,
                    "CA certificate(s), PEM, that the webhook's HTTPS server must chain to (default: system store)");
    cmd->add_option("--webhook-retry-max-s", flags->webhook_retry_max_s,
                    "longest wait between webhook retries (backoff doubles up to it; default 60)")
        ->check(CLI::Range(1, 3600));
    cmd->add_option("--syslog-export", flags->syslog_export,
                    "send every alert to a SIEM as RFC 5424 syslog with an ECS JSON body: tcp://HOST:PORT or "
                    "tls://HOST:PORT (docs/siem.md)");
    cmd->add_option("--syslog-cacert", flags->syslog_cacert,
                    "CA certificate(s), PEM, that a tls:// collector must chain to (default: system store)");
    cmd->add_option("--syslog-retry-max-s", flags->syslog_retry_max_s,
                    "longest wait between SIEM export retries (backoff doubles up to it; default 60)")
        ->check(CLI::Range(1, 3600));
    cmd->add_option("--passphrase-file", flags->passphrase_file,
                    "CA key passphrase from this file (mode 600); overrides config ca.passphrase_file");
    cmd->add_option("--log-format", flags->log_format, "stderr log lines: text or json (one object per line)")
        ->check(CLI::IsMember({"text", "json"}));
    cmd->add_option("--log-level", flags->log_level, "debug, info, warn or error (default info)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
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
  RegisterBlockCommands(app, program);     // cmd_block.cc
  RegisterPaymentsCommands(app, program);  // cmd_payments.cc
  RegisterSimCommands(app, program);
  RegisterFeedCommand(app, program);
  RegisterTapCommand(app, program);  // cmd_tap.cc
  RegisterConfigCommands(app, program);
  RegisterNodeCommands(app, program);  // cmd_node.cc

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
