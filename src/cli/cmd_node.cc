// femtoguard node bundle|join|list|set|remove: the nodes of a cluster
// sharing one store (docs/cluster.md).

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "common/ossl.h"
#include "common/time.h"
#include "pki/ca.h"
#include "pki/node_bundle.h"
#include "node/node.h"
#include "node/node_membership.h"

namespace fg::cli {

namespace fs = std::filesystem;

Status CheckStoreUrl(const std::string& url) {
  if (url.rfind("sqlite:", 0) == 0 && url.size() > 7) return Status::Ok();
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return Status::Ok();
  return Status::InvalidArgument("--store: expected sqlite:PATH, postgresql://... or postgres://..., got '" +
                                 ShownStoreUrl(url) + "'");
}

std::string ShownStoreUrl(const std::string& url) {
  // scheme://user:password@host...: the password never reaches a terminal.
  size_t scheme = url.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t at = url.find('@', start);
    size_t slash = url.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      size_t colon = url.find(':', start);
      if (colon != std::string::npos && colon < at) {
        return Shown(url.substr(0, colon + 1) + "***" + url.substr(at));
      }
    }
  }
  // password=... in a query string or a key=value connection string.
  std::string out = url;
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    size_t end = out.find_first_of("& ", p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - (p + 9), "***");
  }
  return Shown(out);
}

std::string CaInitDetail(const DataDir& dir, const std::string& node_id) {
  nlohmann::ordered_json j;
  if (auto pem = ReadFile(dir.CaDir() / "root.crt"); pem.ok()) {
    if (auto cert = ossl::CertFromPem(*pem); cert.ok()) j["root_fp"] = ossl::CertFingerprint(cert->get());
  }
  j["node"] = node_id;
  return j.dump();
}

namespace {

// The passphrase a joining node opens the bundle with: --passphrase-file,
// else FEMTOGUARD_CA_PASSPHRASE (there is no data dir to read one from yet).
Result<std::string> JoinPassphrase(const std::string& passphrase_file) {
  if (!passphrase_file.empty()) {
    if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) {
      return Status::InvalidArgument("give either --passphrase-file or FEMTOGUARD_CA_PASSPHRASE, not both");
    }
    return ReadSecretFile(passphrase_file);
  }
  if (const char* env = std::getenv("FEMTOGUARD_CA_PASSPHRASE"); env && *env) return std::string(env);
  return Status::InvalidArgument(
      "the bundle is encrypted under the CA passphrase: pass --passphrase-file FILE (mode 600) or set "
      "FEMTOGUARD_CA_PASSPHRASE (a first node with a generated passphrase keeps it in DIR/secrets/ca.passphrase)");
}

Status CheckPublicUrl(const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("--public-url: must start with http:// or https://");
  }
  // It goes into certificate extensions as one entry of a list.
  if (url.find_first_of(", \t\r\n\"") != std::string::npos || url.size() > 512) {
    return Status::InvalidArgument("--public-url: no commas, spaces or quotes, at most 512 bytes");
  }
  return Status::Ok();
}

// Whether the store belongs to the bundle's CA: the ca.init audit entry of
// its first node names the root's fingerprint; a store from before that
// entry carried one is matched by its certificates instead (issued by one of
// the bundle's CA certificates).
Status CheckStoreMatchesBundle(Store& store, const NodeBundle& bundle) {
  AuditFilter filter;
  filter.subject = bundle.ca_name;
  FG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, store.ListAudit(filter));
  bool other_ca = false;
  for (const AuditEntry& e : entries) {
    if (e.action != "ca.init" || e.detail.empty()) continue;
    auto j = nlohmann::json::parse(e.detail, nullptr, false);
    if (!j.is_object() || !j.contains("root_fp") || !j["root_fp"].is_string()) continue;
    if (j["root_fp"].get<std::string>() == bundle.root_fp) return Status::Ok();
    other_ca = true;
  }
  if (other_ca) {
    return Status::FailedPrecondition("the store belongs to another CA (its first node's root CA is not the "
                                      "bundle's): nothing written");
  }
  // No marker: look at what the store has issued.
  std::vector<ossl::X509Ptr> cas;
  for (const NodeBundle::File& f : bundle.files) {
    if (f.path.rfind("ca/", 0) != 0 || f.path.size() < 4 || f.path.substr(f.path.size() - 4) != ".crt") continue;
    if (auto cert = ossl::CertFromPem(f.data); cert.ok() && X509_check_ca(cert->get()) >= 1) {
      cas.push_back(std::move(cert).value());
    }
  }
  FG_ASSIGN_OR_RETURN(std::vector<Certificate> certs, store.ListCertificates(std::nullopt));
  if (certs.empty()) {
    return Status::FailedPrecondition(
        "the store has no record of the bundle's CA (no ca.init entry with its fingerprint, no certificate): "
        "`node join` a store that the bundle's first node uses; nothing written");
  }
  // One certificate tells: a store holds the certificates of one CA (and
  // its rotated predecessors, which the bundle carries too).
  const std::string& der = certs.front().der;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509Ptr leaf(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  for (const auto& ca : cas) {
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    if (leaf && key != nullptr && X509_verify(leaf.get(), key) == 1) return Status::Ok();
  }
  ERR_clear_error();
  return Status::FailedPrecondition("the store's certificates were not issued by the bundle's CA: nothing written");
}

struct JoinFlags {
  std::string data;
  std::string store;
  std::string bundle;
  std::string public_url;
  int url_order = 0;
  std::string listen;
  std::string tls_listen;
  std::string passphrase_file;
  std::string hsm_pin_file;
};

// Writes the joining node's data dir into `staging`.
Status JoinInto(const fs::path& staging, const NodeBundle& bundle, const std::string& config_yaml,
                const std::string& passphrase, const std::string& node_id, bool keep_passphrase_file) {
  std::error_code ec;
  DataDir dir(staging);
  fs::create_directories(dir.SecretsDir(), ec);
  fs::create_directories(dir.CaDir(), ec);
  if (ec) return Status::Internal("cannot create " + staging.string() + ": " + ec.message());
  fs::permissions(dir.root(), fs::perms::owner_all, ec);
  fs::permissions(dir.SecretsDir(), fs::perms::owner_all, ec);
  for (const NodeBundle::File& f : bundle.files) {
    const fs::path path = staging / f.path;
    fs::create_directories(path.parent_path(), ec);
    FG_RETURN_IF_ERROR(WriteFileAtomic(path, f.data, f.mode));
  }
  if (keep_passphrase_file) {
    // As on the first node: the passphrase in a 0600 file beside the keys.
    FG_RETURN_IF_ERROR(WriteFileAtomic(dir.PassphrasePath(), passphrase, 0600));
  }
  FG_RETURN_IF_ERROR(WriteFileAtomic(dir.ConfigPath(), config_yaml, 0644));
  FG_RETURN_IF_ERROR(WriteFileAtomic(dir.NodeIdPath(), node_id + "\n", 0644));
  // The keys must open here, with this passphrase (and this node's HSM PIN):
  // a node that cannot sign is no node.
  FG_ASSIGN_OR_RETURN(Config config, dir.LoadConfig());
  FG_ASSIGN_OR_RETURN(auto ca, CertificateAuthority::Load(dir, config, passphrase));
  return Status::Ok();
}

int RunJoin(const JoinFlags& flags) {
  std::string data = ResolveDataDirArg(flags.data);
  if (data.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  std::error_code ec;
  if (fs::exists(data, ec) && (!fs::is_directory(data, ec) || !fs::is_empty(data, ec))) {
    return Fail(Status::AlreadyExists("refusing to overwrite existing data dir " + data));
  }
  if (Status s = CheckStoreUrl(flags.store); !s.ok()) return Fail(s);
  if (flags.url_order < 0) return Fail(Status::InvalidArgument("--url-order: must be 0 or more"));
  NodeLocalSettings local;
  local.listen = flags.listen.empty() ? Config{}.listen : flags.listen;
  local.tls_listen = flags.tls_listen.empty() ? Config{}.tls_listen : flags.tls_listen;
  local.public_url = flags.public_url.empty() ? "http://" + local.listen : flags.public_url;
  local.store = flags.store;
  if (Status s = CheckPublicUrl(local.public_url); !s.ok()) return Fail(s);
  if (!flags.passphrase_file.empty()) local.ca_passphrase_file = fs::absolute(flags.passphrase_file, ec).string();
  if (!flags.hsm_pin_file.empty()) {
    auto pin = ReadSecretFile(flags.hsm_pin_file);
    if (!pin.ok()) return Fail(pin.status());
    OPENSSL_cleanse(pin->data(), pin->size());
    local.ca_hsm_pin_file = fs::absolute(flags.hsm_pin_file, ec).string();
  }

  auto sealed = ReadFile(flags.bundle);
  if (!sealed.ok()) return Fail(Status::InvalidArgument("--bundle: cannot read " + flags.bundle));
  auto passphrase = JoinPassphrase(flags.passphrase_file);
  if (!passphrase.ok()) return Fail(passphrase.status());
  auto bundle = OpenNodeBundle(*sealed, *passphrase);
  if (!bundle.ok()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(bundle.status());
  }
  if (!bundle->hsm_uri.empty() && local.ca_hsm_pin_file.empty()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(Status::InvalidArgument("the cluster's issuing CA key is in an HSM (" + Shown(bundle->hsm_uri) +
                                        "): pass --hsm-pin-file with the token's PIN"));
  }
  auto config_yaml = NodeConfigYaml(bundle->config_yaml, local);
  if (!config_yaml.ok()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(Status::InvalidArgument(config_yaml.status().message()));
  }

  fs::path target = fs::absolute(data, ec).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  // The store as this node will open it (a relative sqlite path is inside
  // the new data dir: empty, so it matches no CA and join says so).
  Config probe;
  probe.store = flags.store;
  const std::string store_url = DataDir(target).ResolveStoreUrl(probe);
  if (flags.store.rfind("sqlite:", 0) == 0 && fs::path(flags.store.substr(7)).is_relative()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(Status::InvalidArgument("--store: a node joins the cluster's shared store, not a new one inside "
                                        "its data dir (give an absolute sqlite: path or a postgresql:// URL)"));
  }
  auto store = Store::Open(store_url);
  if (!store.ok()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(store.status());
  }
  if (Status s = CheckStoreMatchesBundle(**store, *bundle); !s.ok()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(s);
  }

  fs::create_directories(target.parent_path(), ec);
  const fs::path staging =
      target.parent_path() / ("." + target.filename().string() + ".join-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  const std::string node_id = NewNodeId();
  Status s = JoinInto(staging, *bundle, *config_yaml, *passphrase, node_id,
                      bundle->passphrase_generated && flags.passphrase_file.empty());
  OPENSSL_cleanse(passphrase->data(), passphrase->size());
  if (!s.ok()) {
    fs::remove_all(staging, ec);
    return Fail(s);
  }
  NodeInfo node;
  node.id = node_id;
  node.public_url = local.public_url;
  node.url_order = flags.url_order;
  node.joined_ms = NowMillis();
  if (Status u = (*store)->UpsertNode(node, CliAudit("node join")); !u.ok()) {
    fs::remove_all(staging, ec);
    return Fail(u);
  }
  if (fs::exists(target, ec)) fs::remove(target, ec);  // the empty dir we were given
  fs::rename(staging, target, ec);
  if (ec) {
    const std::string why = ec.message();
    (void)(*store)->RemoveNode(node_id, CliAudit("node join failed: data dir not moved into place"));
    fs::remove_all(staging, ec);
    return Fail(Status::Internal("cannot move " + staging.string() + " to " + data + ": " + why));
  }
  std::printf("joined %s to the cluster of CA '%s' as node %s (public URL %s, url order %d)\n", data.c_str(),
              Shown(bundle->ca_name).c_str(), node_id.c_str(), Shown(local.public_url).c_str(), flags.url_order);
  if (!bundle->hsm_uri.empty()) {
    std::printf("the issuing CA key stays in the HSM %s: this node signs through the same token\n",
                Shown(bundle->hsm_uri).c_str());
  }
  return 0;
}

int RunBundle(const std::string& data_flag, const std::string& out) {
  if (out.empty()) return Fail(Status::InvalidArgument("--out FILE is required"));
  std::string data = ResolveDataDirArg(data_flag);
  if (data.empty()) return Fail(Status::InvalidArgument("no data dir: pass --data DIR or set FEMTOGUARD_DATA"));
  DataDir dir(data);
  auto config = dir.LoadConfig();
  if (!config.ok()) return Fail(config.status());
  std::error_code ec;
  if (fs::exists(out, ec)) return Fail(Status::AlreadyExists("refusing to overwrite " + out));
  auto bundle = CollectNodeBundle(dir, *config);
  if (!bundle.ok()) return Fail(bundle.status());
  auto passphrase = dir.LoadCaPassphrase();
  if (!passphrase.ok()) return Fail(passphrase.status());
  // A bundle sealed under a passphrase that does not open the CA keys would
  // open at join and then fail there: refuse it here, where it is made.
  if (auto ca = CertificateAuthority::Load(dir, *config, *passphrase); !ca.ok()) {
    OPENSSL_cleanse(passphrase->data(), passphrase->size());
    return Fail(Status::InvalidArgument("the CA passphrase does not open this data dir's CA keys: " +
                                        ca.status().message()));
  }
  auto sealed = SealNodeBundle(*bundle, *passphrase);
  OPENSSL_cleanse(passphrase->data(), passphrase->size());
  if (!sealed.ok()) return Fail(sealed.status());
  if (Status s = WriteFileAtomic(out, *sealed, 0600); !s.ok()) return Fail(s);
  // The operator's record of who exported the CA's keys, and when.
  if (auto store = Store::Open(dir.ResolveStoreUrl(*config)); store.ok()) {
    AuditEntry entry;
    entry.ts_ms = NowMillis();
    AuditContext who = CliAudit("node bundle");
    entry.actor = who.actor;
    entry.action = "node.bundle";
    entry.subject = config->ca_name;
    entry.reason = "node bundle written to " + fs::absolute(out, ec).string();
    if (Status a = (*store)->AppendAudit(entry); !a.ok()) {
      std::fprintf(stderr, "femtoguard: warning: bundle written, audit entry not: %s\n", Shown(a.ToString()).c_str());
    }
  }
  std::printf("node bundle written to %s (%zu files, CMS EnvelopedData under the CA passphrase)\n", out.c_str(),
              bundle->files.size());
  if (!bundle->hsm_uri.empty()) {
    std::printf("the issuing CA key stays in the HSM %s: the bundle carries its URI and module only\n",
                Shown(bundle->hsm_uri).c_str());
  }
  return 0;
}

std::string AgeText(UnixMillis now, UnixMillis then) {
  if (then == 0) return "never";
  int64_t s = std::max<int64_t>(0, (now - then) / 1000);
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

int RunList(Env& env, bool json) {
  auto nodes = env.store->ListNodes();
  if (!nodes.ok()) return Fail(nodes.status());
  const UnixMillis now = NowMillis();
  auto self_id = ReadNodeId(env.dir);
  const std::string self = self_id.ok() ? *self_id : std::string();
  nlohmann::json out = nlohmann::json::array();
  if (!json) {
    std::printf("%-14s %-5s %-36s %-24s %-10s %-6s %-8s %s\n", "ID", "ORDER", "PUBLIC URL", "JOINED", "HEARTBEAT",
                "STATE", "VERSION", "STORE");
  }
  for (const NodeInfo& n : *nodes) {
    NodeState state = StateOf(n, now, env.config.cluster_heartbeat_s);
    auto health = nlohmann::json::parse(n.health.empty() ? "{}" : n.health, nullptr, false);
    if (!health.is_object()) health = nlohmann::json::object();
    const auto text_of = [&health](const char* key) {
      return health.contains(key) && health[key].is_string() ? health[key].get<std::string>() : std::string();
    };
    const std::string store_health = text_of("store");
    const std::string version = text_of("version");
    if (json) {
      nlohmann::json j = {{"id", n.id},
                          {"public_url", n.public_url},
                          {"url_order", n.url_order},
                          {"joined", FormatRfc3339(n.joined_ms)},
                          {"heartbeat", n.heartbeat_ms == 0 ? nlohmann::json(nullptr)
                                                            : nlohmann::json(FormatRfc3339(n.heartbeat_ms))},
                          {"heartbeat_age_s", n.heartbeat_ms == 0 ? nlohmann::json(nullptr)
                                                                  : nlohmann::json((now - n.heartbeat_ms) / 1000)},
                          {"state", NodeStateName(state)},
                          {"this_node", n.id == self},
                          {"health", health}};
      out.push_back(std::move(j));
      continue;
    }
    std::printf("%-14s %-5d %-36s %-24s %-10s %-6s %-8s %s\n", Shown(n.id).c_str(), n.url_order,
                Shown(n.public_url).c_str(), FormatRfc3339(n.joined_ms).c_str(),
                AgeText(now, n.heartbeat_ms).c_str(), std::string(NodeStateName(state)).c_str(),
                Shown(version.empty() ? "-" : version).c_str(), Shown(store_health.empty() ? "-" : store_health).c_str());
  }
  if (json) std::printf("%s\n", ShownJson(out).c_str());
  return 0;
}

Result<NodeInfo> FindNode(Store& store, const std::string& id) {
  FG_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, store.ListNodes());
  for (NodeInfo& n : nodes) {
    if (n.id == id) return std::move(n);
  }
  return Status::NotFound("no node " + id + " in this cluster (`femtoguard node list`)");
}

CLI::Validator NodeIdArg() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return IsNodeId(value) ? std::string() : std::string("not a node id (node-<8 hex digits>)");
      },
      "NODE-ID");
}

}  // namespace

void RegisterNodeCommands(CLI::App& app, Program& program) {
  auto* node = app.add_subcommand("node", "the nodes of a cluster sharing one store (docs/cluster.md)");
  node->require_subcommand(1);
  {
    auto* cmd = node->add_subcommand("bundle", "export what a second node needs, encrypted under the CA passphrase");
    auto data = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("--out", *out, "the bundle file to write (mode 600; refused if it exists)")->required();
    cmd->callback([&program, data, out] {
      program.action = [data, out] { return RunBundle(*data, *out); };
    });
  }
  {
    auto* cmd = node->add_subcommand("join", "make a new data dir a node of the bundle's cluster");
    auto flags = std::make_shared<JoinFlags>();
    AddDataOption(cmd, &flags->data);
    cmd->add_option("--store", flags->store, "the cluster's store: postgresql://... (or an absolute sqlite:PATH)")
        ->required();
    cmd->add_option("--bundle", flags->bundle, "the file `femtoguard node bundle` wrote")->required();
    cmd->add_option("--public-url", flags->public_url, "URL devices reach this node at (default http://LISTEN)");
    cmd->add_option("--url-order", flags->url_order, "position in the certificates' OCSP and CRL URL lists (0 first)")
        ->check(CLI::Range(0, 1000000));
    cmd->add_option("--listen", flags->listen, "HOST:PORT serve listens on (default 127.0.0.1:8440)");
    cmd->add_option("--tls-listen", flags->tls_listen, "HOST:PORT of the TLS listener (default 127.0.0.1:8443)");
    cmd->add_option("--passphrase-file", flags->passphrase_file,
                    "CA passphrase from this file (mode 600; else FEMTOGUARD_CA_PASSPHRASE); kept as ca.passphrase_file");
    cmd->add_option("--hsm-pin-file", flags->hsm_pin_file, "the HSM's user PIN (mode 600), when the CA key is in one");
    cmd->callback([&program, flags] {
      program.action = [flags] { return RunJoin(*flags); };
    });
  }
  {
    auto* cmd = node->add_subcommand("list", "every node: URL, order, heartbeat, state (up, down, never), health");
    auto data = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    AddDataOption(cmd, data.get());
    cmd->add_flag("--json", *json, "one JSON array");
    RunWithEnv(cmd, program, data, [json](Env& env) { return RunList(env, *json); });
  }
  {
    auto* cmd = node->add_subcommand("set", "change a node's public URL or its place in the URL order");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto public_url = std::make_shared<std::string>();
    auto url_order = std::make_shared<int>(-1);
    AddDataOption(cmd, data.get());
    cmd->add_option("ID", *id, "node id")->required()->check(NodeIdArg());
    cmd->add_option("--public-url", *public_url, "new public URL");
    cmd->add_option("--url-order", *url_order, "new position (0 first)")->check(CLI::Range(0, 1000000));
    RunWithEnv(cmd, program, data, [id, public_url, url_order](Env& env) {
      if (public_url->empty() && *url_order < 0) {
        return Fail(Status::InvalidArgument("nothing to change: give --public-url and/or --url-order"));
      }
      if (!public_url->empty()) {
        if (Status s = CheckPublicUrl(*public_url); !s.ok()) return Fail(s);
      }
      auto node = FindNode(*env.store, *id);
      if (!node.ok()) return Fail(node.status());
      if (!public_url->empty()) node->public_url = *public_url;
      if (*url_order >= 0) node->url_order = *url_order;
      if (Status s = env.store->UpsertNode(*node, CliAudit("node set")); !s.ok()) return Fail(s);
      NotifyServeOrWarn(env.dir);
      std::printf("node %s: public URL %s, url order %d (certificates issued from now on)\n", node->id.c_str(),
                  Shown(node->public_url).c_str(), node->url_order);
      return 0;
    });
  }
  {
    auto* cmd = node->add_subcommand("remove", "take a node out of the cluster's URL lists and node list");
    auto data = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    AddDataOption(cmd, data.get());
    cmd->add_option("ID", *id, "node id")->required()->check(NodeIdArg());
    RunWithEnv(cmd, program, data, [id](Env& env) {
      if (Status s = env.store->RemoveNode(*id, CliAudit("node remove")); !s.ok()) {
        return Fail(s.code() == StatusCode::kNotFound
                        ? Status::NotFound("no node " + *id + " in this cluster (`femtoguard node list`)")
                        : s);
      }
      NotifyServeOrWarn(env.dir);
      std::printf("node %s removed: certificates issued from now on do not name it\n", id->c_str());
      return 0;
    });
  }
}

}  // namespace fg::cli
