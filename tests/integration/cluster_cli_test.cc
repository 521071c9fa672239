// A cluster on one store (docs/cluster.md), on SQLite: two data dirs share
// one store file. init gives a node its id; node bundle exports what a second
// node needs, as a CMS container the real `openssl cms` opens; node join
// makes the second node; node list/set/remove; serve heartbeats and says
// how its store is in /healthz; and every node's URLs are in the device
// certificates, in the operator's order, whichever node issues them.

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class ClusterCliTest : public ::testing::Test {
 protected:
  RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args);
  }
  std::string P(const std::string& name) { return tmp_ / name; }
  std::string Listen(int port) { return "127.0.0.1:" + std::to_string(port); }

  // First node: init with the shared store.
  void InitFirst(const std::string& data, const std::string& public_url, int port = 0, int tls_port = 0) {
    std::filesystem::create_directories(P("shared"));
    std::vector<std::string> args = {"init", "--data", data, "--store", "sqlite:" + Shared(), "--public-url",
                                     public_url};
    if (port != 0) {
      args.insert(args.end(), {"--listen", Listen(port), "--tls-listen", Listen(tls_port)});
    }
    auto r = Fg(args);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::string Shared() { return P("shared") + "/store.db"; }

  // The first node's generated passphrase, in a 0600 file for join.
  std::string PassFile(const std::string& data) {
    std::string path = P("ca.pass");
    WriteAll(path, ReadAll(data + "/secrets/ca.passphrase"));
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
  }

  nlohmann::json Nodes(const std::string& data) {
    auto r = Fg({"node", "list", "--data", data, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  std::string NodeId(const std::string& data) {
    std::string id = ReadAll(data + "/node.id");
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  // A device and a CSR for it; `cert issue` on `data`; the PEM.
  std::string Issue(const std::string& data, const std::string& device) {
    auto add = Fg({"device", "add", "--data", data, "--device", device, "--status", "provisioned"});
    EXPECT_EQ(add.exit_code, 0) << add.out;
    std::string key = P(device + ".key"), csr = P(device + ".csr");
    EXPECT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", key, "-subj", "/CN=" + device, "-out", csr})
                  .exit_code,
              0);
    auto r = Fg({"cert", "issue", "--data", data, "--device", device, "--csr", csr});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::string pem = P(device + ".pem");
    WriteAll(pem, r.out);
    return pem;
  }

  // The OCSP and CRL URIs of a certificate as `openssl x509 -text` prints
  // them, in order.
  static std::vector<std::string> Uris(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::regex re(prefix + "URI:(\\S+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
      out.push_back((*it)[1]);
    }
    return out;
  }
  static std::vector<std::string> OcspUris(const std::string& pem) {
    return Uris(fg::testing::Run({"openssl", "x509", "-in", pem, "-noout", "-text"}).out, "OCSP - ");
  }
  static std::vector<std::string> CrlUris(const std::string& pem) {
    auto text = fg::testing::Run({"openssl", "x509", "-in", pem, "-noout", "-ext", "crlDistributionPoints"}).out;
    return Uris(text, "");
  }

  TempDir tmp_;
};

TEST_F(ClusterCliTest, InitGivesTheNodeAnIdAndRegistersIt) {
  std::string a = P("a");
  auto r = Fg({"init", "--data", a, "--public-url", "http://a.example:8440"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::string id = ReadAll(a + "/node.id");
  EXPECT_TRUE(std::regex_match(id, std::regex("node-[0-9a-f]{8}\n"))) << id;
  EXPECT_EQ(ModeOf(a + "/node.id"), 0644u);
  EXPECT_THAT(r.out, HasSubstr(NodeId(a)));
  auto nodes = Nodes(a);
  ASSERT_EQ(nodes.size(), 1u) << nodes.dump();
  EXPECT_EQ(nodes[0]["id"], NodeId(a));
  EXPECT_EQ(nodes[0]["public_url"], "http://a.example:8440");
  EXPECT_EQ(nodes[0]["url_order"], 0);
  EXPECT_EQ(nodes[0]["state"], "never");  // registered, never served
  EXPECT_EQ(nodes[0]["this_node"], true);
  EXPECT_THAT(ReadAll(a + "/config.yaml"), HasSubstr("heartbeat_s: 5"));
  // The table form too, with its header.
  auto table = Fg({"node", "list", "--data", a});
  EXPECT_THAT(table.out, HasSubstr("HEARTBEAT"));
  EXPECT_THAT(table.out, HasSubstr("never"));
}

TEST_F(ClusterCliTest, InitRefusesABadStoreUrlAndWritesNothing) {
  for (const std::string url : {"mysql://db/fg", "sqlite:", "postgresq://x", "store.db"}) {
    auto r = Fg({"init", "--data", P("bad"), "--store", url});
    EXPECT_EQ(r.exit_code, 2) << url << ": " << r.out;
    EXPECT_THAT(r.out, HasSubstr("--store"));
    EXPECT_FALSE(std::filesystem::exists(P("bad"))) << url;
  }
  // A password in a refused URL is not echoed back.
  auto r = Fg({"init", "--data", P("bad"), "--store", "mysql://fg:s3cret@db/fg"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, Not(HasSubstr("s3cret")));
}

TEST_F(ClusterCliTest, InitRefusesAStoreThatAlreadyHasACluster) {
  InitFirst(P("a"), "http://a.example:8440");
  auto r = Fg({"init", "--data", P("other"), "--store", "sqlite:" + Shared()});
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_THAT(r.out, HasSubstr("node join"));
  EXPECT_FALSE(std::filesystem::exists(P("other")));
  EXPECT_EQ(Nodes(P("a")).size(), 1u);
}

TEST_F(ClusterCliTest, BundleJoinAndEveryNodesUrlsInOrder) {
  const std::string a = P("a"), b = P("b");
  InitFirst(a, "http://a.example:8440");
  const std::string pass_file = PassFile(a);
  const std::string passphrase = ReadAll(pass_file);

  // --- the bundle: 0600, not printed, opened by the stock openssl CLI ---
  const std::string bundle = P("node.bundle");
  auto made = Fg({"node", "bundle", "--data", a, "--out", bundle});
  ASSERT_EQ(made.exit_code, 0) << made.out;
  EXPECT_EQ(ModeOf(bundle), 0600u);
  EXPECT_THAT(made.out, Not(HasSubstr(passphrase)));
  EXPECT_THAT(made.out, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_EQ(ReadAll(bundle).find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(Fg({"node", "bundle", "--data", a, "--out", bundle}).exit_code, 4) << "never overwrites";
  // A passphrase that does not open the CA keys seals nothing.
  auto bad_pass = fg::testing::Run({Femtoguard(), "node", "bundle", "--data", a, "--out", P("other.bundle")}, {}, 60,
                                   {"FEMTOGUARD_CA_PASSPHRASE=not-the-passphrase"});
  EXPECT_EQ(bad_pass.exit_code, 2) << bad_pass.out;
  EXPECT_FALSE(std::filesystem::exists(P("other.bundle")));

  auto info = fg::testing::Run({"openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", bundle});
  EXPECT_THAT(info.out, HasSubstr("pwri"));      // a password recipient (RFC 3211)
  EXPECT_THAT(info.out, HasSubstr("PBKDF2"));
  EXPECT_THAT(info.out, HasSubstr(":13D620"));  // 1,300,000 iterations (hex, as asn1parse prints it)
  EXPECT_THAT(info.out, HasSubstr("id-alg-PWRI-KEK"));
  EXPECT_THAT(info.out, HasSubstr("algorithm: aes-256-cbc"));  // the content
  EXPECT_THAT(info.out, HasSubstr("OBJECT            :aes-256-cbc"));  // the key wrap
  const std::string clear = P("bundle.json");
  auto opened = fg::testing::Run({"openssl", "cms", "-decrypt", "-inform", "DER", "-in", bundle, "-pwri_password", passphrase,
                     "-out", clear});
  ASSERT_EQ(opened.exit_code, 0) << opened.out;
  auto doc = nlohmann::json::parse(ReadAll(clear), nullptr, false);
  std::filesystem::remove(clear);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["format"], "femtoguard-node-bundle/1");
  EXPECT_EQ(doc["issuing_key"], "file");
  std::vector<std::string> paths;
  for (const auto& f : doc["files"]) paths.push_back(f["path"]);
  for (const char* want : {"ca/root.crt", "ca/issuing.crt", "ca/issuing.key", "ca/ocsp.crt", "ca/ocsp.key",
                           "secrets/pseudonym.key", "secrets/webhook.key"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), want), paths.end()) << want << " missing from the bundle";
  }
  EXPECT_EQ(std::find(paths.begin(), paths.end(), "secrets/ca.passphrase"), paths.end());
  EXPECT_THAT(doc["config"].get<std::string>(), Not(HasSubstr("listen")));
  auto wrong_cli = fg::testing::Run({"openssl", "cms", "-decrypt", "-inform", "DER", "-in", bundle, "-pwri_password",
                        "not-the-passphrase", "-out", clear});
  EXPECT_NE(wrong_cli.exit_code, 0);

  // --- join with the wrong passphrase: exit 2, nothing written ---
  const std::string wrong = P("wrong.pass");
  WriteAll(wrong, "not-the-passphrase\n");
  std::filesystem::permissions(wrong, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto refused = Fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", bundle,
                     "--passphrase-file", wrong, "--public-url", "http://b.example:8440"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("wrong CA passphrase"));
  EXPECT_FALSE(std::filesystem::exists(b));
  EXPECT_EQ(Nodes(a).size(), 1u);
  // No passphrase at all: told how to give one.
  auto none = Fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", bundle});
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_FALSE(std::filesystem::exists(b));

  // --- join ---
  auto joined = Fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", bundle,
                    "--passphrase-file", pass_file, "--public-url", "http://b.example:8440", "--url-order", "0"});
  ASSERT_EQ(joined.exit_code, 0) << joined.out;
  EXPECT_THAT(joined.out, Not(HasSubstr(passphrase)));
  EXPECT_TRUE(std::regex_match(ReadAll(b + "/node.id"), std::regex("node-[0-9a-f]{8}\n")));
  EXPECT_NE(NodeId(a), NodeId(b));
  EXPECT_EQ(ReadAll(a + "/ca/root.crt"), ReadAll(b + "/ca/root.crt"));
  EXPECT_EQ(ReadAll(a + "/ca/issuing.crt"), ReadAll(b + "/ca/issuing.crt"));
  EXPECT_EQ(ReadAll(a + "/secrets/pseudonym.key"), ReadAll(b + "/secrets/pseudonym.key"));
  EXPECT_EQ(ModeOf(b + "/ca/issuing.key"), 0600u);
  EXPECT_EQ(ModeOf(b + "/secrets/pseudonym.key"), 0600u);
  std::string config_b = ReadAll(b + "/config.yaml");
  EXPECT_THAT(config_b, HasSubstr("public_url: http://b.example:8440"));
  EXPECT_THAT(config_b, HasSubstr("store: sqlite:" + Shared()));
  EXPECT_THAT(config_b, HasSubstr("passphrase_file: " + pass_file));
  // No staging dir left behind.
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr(".join-")));
  }

  // The existing data dir is refused.
  auto again = Fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", bundle,
                   "--passphrase-file", pass_file});
  EXPECT_EQ(again.exit_code, 4) << again.out;

  // --- node list from either node; the operator's order: B, then A ---
  auto nodes = Nodes(b);
  ASSERT_EQ(nodes.size(), 2u) << nodes.dump();
  const std::string id_a = NodeId(a), id_b = NodeId(b);
  ASSERT_EQ(Fg({"node", "set", id_a, "--data", a, "--url-order", "1"}).exit_code, 0);
  ASSERT_EQ(Fg({"node", "set", id_b, "--data", a, "--url-order", "0"}).exit_code, 0);
  nodes = Nodes(a);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]["id"], id_b);
  EXPECT_EQ(nodes[1]["id"], id_a);

  // --- a certificate issued on either node names B, then A ---
  const std::vector<std::string> ocsp = {"http://b.example:8440/ocsp", "http://a.example:8440/ocsp"};
  const std::vector<std::string> crl = {"http://b.example:8440/crl", "http://a.example:8440/crl"};
  std::string on_a = Issue(a, "FG-0000001");
  EXPECT_EQ(OcspUris(on_a), ocsp);
  EXPECT_EQ(CrlUris(on_a), crl);
  std::string on_b = Issue(b, "FG-0000002");
  EXPECT_EQ(OcspUris(on_b), ocsp);
  EXPECT_EQ(CrlUris(on_b), crl);
  // Same CA: B's certificate verifies under A's chain, and A sees it.
  WriteAll(P("chain.pem"), Fg({"ca", "cert", "--data", a, "--chain"}).out);
  auto verify = fg::testing::Run({"openssl", "verify", "-CAfile", P("chain.pem"), on_b});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_THAT(Fg({"cert", "list", "--data", a, "--device", "FG-0000002"}).out, HasSubstr("FG-0000002"));

  // --- set, remove: bad input and unknown nodes ---
  EXPECT_EQ(Fg({"node", "set", "node-XYZ", "--data", a, "--url-order", "1"}).exit_code, 2);
  EXPECT_EQ(Fg({"node", "set", id_b, "--data", a, "--public-url", "ftp://b"}).exit_code, 2);
  EXPECT_EQ(Fg({"node", "set", id_b, "--data", a, "--public-url", "http://b,c"}).exit_code, 2);
  EXPECT_EQ(Fg({"node", "set", id_b, "--data", a}).exit_code, 2);
  EXPECT_EQ(Fg({"node", "set", "node-00000000", "--data", a, "--url-order", "1"}).exit_code, 3);
  EXPECT_EQ(Nodes(a)[0]["public_url"], "http://b.example:8440");
  auto removed = Fg({"node", "remove", id_b, "--data", a});
  ASSERT_EQ(removed.exit_code, 0) << removed.out;
  EXPECT_EQ(Fg({"node", "remove", id_b, "--data", a}).exit_code, 3);
  EXPECT_EQ(Nodes(a).size(), 1u);
  std::string after = Issue(a, "FG-0000003");
  EXPECT_EQ(OcspUris(after), std::vector<std::string>{"http://a.example:8440/ocsp"});
  // Audited, with who and what.
  auto audit = Fg({"audit", "list", "--data", a, "--subject", id_b}).out;
  EXPECT_THAT(audit, HasSubstr("node.join"));
  EXPECT_THAT(audit, HasSubstr("node.update"));
  EXPECT_THAT(audit, HasSubstr("node.remove"));
}

TEST_F(ClusterCliTest, JoinRefusesAStoreOfAnotherCa) {
  const std::string a = P("a");
  InitFirst(a, "http://a.example:8440");
  const std::string pass_file = PassFile(a);
  ASSERT_EQ(Fg({"node", "bundle", "--data", a, "--out", P("node.bundle")}).exit_code, 0);
  // Another cluster, with its own CA, in its own store file.
  const std::string other = P("other");
  ASSERT_EQ(Fg({"init", "--data", other, "--store", "sqlite:" + P("other.db")}).exit_code, 0);
  auto r = Fg({"node", "join", "--data", P("b"), "--store", "sqlite:" + P("other.db"), "--bundle",
               P("node.bundle"), "--passphrase-file", pass_file});
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_THAT(r.out, HasSubstr("another CA"));
  EXPECT_FALSE(std::filesystem::exists(P("b")));
  EXPECT_EQ(Nodes(other).size(), 1u);
  // An empty store (no CA at all) is refused too.
  auto empty = Fg({"node", "join", "--data", P("b"), "--store", "sqlite:" + P("empty.db"), "--bundle",
                   P("node.bundle"), "--passphrase-file", pass_file});
  EXPECT_EQ(empty.exit_code, 4) << empty.out;
  EXPECT_FALSE(std::filesystem::exists(P("b")));
  // A bad store URL and a missing bundle are bad input.
  EXPECT_EQ(Fg({"node", "join", "--data", P("b"), "--store", "mysql://x", "--bundle", P("node.bundle"),
                "--passphrase-file", pass_file})
                .exit_code,
            2);
  EXPECT_EQ(Fg({"node", "join", "--data", P("b"), "--store", "sqlite:" + Shared(), "--bundle", P("nope"),
                "--passphrase-file", pass_file})
                .exit_code,
            2);
  // Not a bundle at all.
  WriteAll(P("junk.bundle"), "this is not CMS");
  auto junk = Fg({"node", "join", "--data", P("b"), "--store", "sqlite:" + Shared(), "--bundle", P("junk.bundle"),
                  "--passphrase-file", pass_file});
  EXPECT_EQ(junk.exit_code, 2) << junk.out;
  EXPECT_FALSE(std::filesystem::exists(P("b")));
}

TEST_F(ClusterCliTest, ServeHeartbeatsReportsItsStoreAndFollowsTheUrlOrder) {
  const std::string a = P("a"), b = P("b");
  const int port = FreePort();
  int tls_port = FreePort();
  while (tls_port == port) tls_port = FreePort();
  const std::string url = "http://" + Listen(port);
  InitFirst(a, url, port, tls_port);
  {
    std::string config = ReadAll(a + "/config.yaml");
    size_t at = config.find("heartbeat_s: 5");
    ASSERT_NE(at, std::string::npos);
    config.replace(at, 14, "heartbeat_s: 1");
    WriteAll(a + "/config.yaml", config);
  }
  SetPlainHttpApi(a, true);
  const std::string pass_file = PassFile(a);
  ASSERT_EQ(Fg({"node", "bundle", "--data", a, "--out", P("node.bundle")}).exit_code, 0);
  ASSERT_EQ(Fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", P("node.bundle"),
                "--passphrase-file", pass_file, "--public-url", "http://b.example:8440"})
                .exit_code,
            0);
  const std::string token = FindApiToken(Fg({"token", "create", "--data", a, "--role", "operator"}).out);
  ASSERT_FALSE(token.empty());

  Process serve({Femtoguard(), "serve", "--data", a, "--threads", "2"}, P("serve.log"));
  ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(P("serve.log"));
  auto health = fg::testing::Run({"curl", "-s", url + "/healthz"});
  auto hj = nlohmann::json::parse(health.out, nullptr, false);
  ASSERT_TRUE(hj.is_object()) << health.out;
  EXPECT_EQ(hj["status"], "ok");
  EXPECT_EQ(hj["store"], "ok");
  EXPECT_EQ(hj["node"], NodeId(a));

  // A's heartbeat: up, with its health; B never served: not up.
  nlohmann::json nodes;
  for (int i = 0; i < 100; ++i) {
    nodes = Nodes(a);
    if (nodes.size() == 2 && nodes[0]["state"] == "up") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(nodes.size(), 2u) << nodes.dump();
  EXPECT_EQ(nodes[0]["id"], NodeId(a));  // order 0, joined first
  EXPECT_EQ(nodes[0]["state"], "up") << nodes.dump();
  EXPECT_EQ(nodes[0]["health"]["store"], "ok");
  EXPECT_EQ(nodes[0]["health"]["version"], "0.1.0");
  EXPECT_EQ(nodes[1]["state"], "never");
  auto metrics = fg::testing::Run({"curl", "-s", "-H", "Authorization: Bearer " + token, url + "/metrics"}).out;
  EXPECT_THAT(metrics, HasSubstr("femtoguard_cluster_nodes{state=\"up\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("femtoguard_cluster_nodes{state=\"down\"} 1"));

  // The operator puts B first while serve runs: serve's next certificate
  // (CMP, signed by serve, not the CLI) names B, then A.
  ASSERT_EQ(Fg({"node", "set", NodeId(b), "--data", a, "--url-order", "0"}).exit_code, 0);
  ASSERT_EQ(Fg({"node", "set", NodeId(a), "--data", a, "--url-order", "1"}).exit_code, 0);
  ASSERT_EQ(Fg({"device", "add", "--data", a, "--device", "FG-0000009"}).exit_code, 0);
  auto tok = Fg({"device", "token", "--data", a, "--device", "FG-0000009"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(tok.out, m, std::regex("(tok-[0-9a-f]+) ([0-9a-f]+)"))) << tok.out;
  const std::string ref = m[1], secret = m[2];
  const std::string key = P("dev9.key"), cert = P("dev9.pem");
  ASSERT_EQ(fg::testing::Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key})
                .exit_code,
            0);
  auto cmp = fg::testing::Run({"openssl", "cmp", "-server", Listen(port), "-path", "pkix/", "-cmd", "ir", "-ref", ref, "-secret",
                  "pass:" + secret, "-newkey", key, "-subject", "/CN=FG-0000009", "-certout", cert, "-msg_timeout",
                  "20", "-total_timeout", "30"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.out;
  EXPECT_EQ(OcspUris(cert), (std::vector<std::string>{"http://b.example:8440/ocsp", url + "/ocsp"}));
  EXPECT_EQ(CrlUris(cert), (std::vector<std::string>{"http://b.example:8440/crl", url + "/crl"}));

  // The signed device config lists them too, in the same order.
  WriteAll(P("chain.pem"), Fg({"ca", "cert", "--data", a, "--chain"}).out);
  const std::string der = P("config.der"), doc_path = P("config.json");
  auto fetched = fg::testing::Run({"curl", "-sS", "--max-time", "20", "--cacert", P("chain.pem"), "--cert", cert,
                                   "--key", key, "-o", der,
                                   "https://" + Listen(tls_port) + "/v1/device/config"});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.out;
  auto verified = fg::testing::Run(
      {"openssl", "cms", "-verify", "-inform", "DER", "-in", der, "-CAfile", P("chain.pem"), "-out", doc_path});
  ASSERT_EQ(verified.exit_code, 0) << verified.out;
  auto doc = nlohmann::json::parse(ReadAll(doc_path), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << ReadAll(doc_path);
  EXPECT_EQ(doc["ocsp_urls"], nlohmann::json({"http://b.example:8440/ocsp", url + "/ocsp"}));
  EXPECT_EQ(doc["crl_urls"], nlohmann::json({"http://b.example:8440/crl", url + "/crl"}));
  EXPECT_EQ(doc["cmp_urls"], nlohmann::json({"http://b.example:8440/pkix/", url + "/pkix/"}));
  EXPECT_EQ(doc["ocsp_url"], "http://b.example:8440/ocsp");  // the first, for devices that read only it

  // Stopped, A goes down after 3 silent intervals (1 s each).
  const std::string id_a = NodeId(a);
  serve.Stop();
  bool down = false;
  for (int i = 0; i < 100 && !down; ++i) {
    for (const auto& n : Nodes(a)) down = down || (n["id"] == id_a && n["state"] == "down");
    if (!down) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(down) << Nodes(a).dump();
  EXPECT_THAT(Fg({"node", "list", "--data", a}).out, HasSubstr("down"));
}

TEST_F(ClusterCliTest, ServeRegistersADataDirFromBeforeClusters) {
  const int port = FreePort();
  int tls_port = FreePort();
  while (tls_port == port) tls_port = FreePort();
  const std::string a = P("a"), url = "http://" + Listen(port);
  ASSERT_EQ(Fg({"init", "--data", a, "--listen", Listen(port), "--tls-listen", Listen(tls_port)}).exit_code, 0);
  // As a pre-issue-15 init left it: no node.id, no node row.
  const std::string old_id = NodeId(a);
  ASSERT_EQ(Fg({"node", "remove", old_id, "--data", a}).exit_code, 0);
  std::filesystem::remove(a + "/node.id");
  ASSERT_EQ(Nodes(a).size(), 0u);
  Process serve({Femtoguard(), "serve", "--data", a, "--threads", "2"}, P("serve.log"));
  ASSERT_TRUE(WaitForHttp(url + "/healthz")) << ReadAll(P("serve.log"));
  auto nodes = Nodes(a);
  ASSERT_EQ(nodes.size(), 1u) << nodes.dump();
  EXPECT_EQ(nodes[0]["id"], NodeId(a));
  EXPECT_NE(NodeId(a), old_id);
  EXPECT_EQ(nodes[0]["public_url"], url);
}

// With the issuing CA key in an HSM (SoftHSM2 here; the same token reachable
// from both nodes, as a network HSM is), the key stays in the token: the
// bundle carries its URI and module only, and the joined node signs there.
TEST_F(ClusterCliTest, WithAnHsmTheKeyStaysInTheToken) {
  const char* module = "/usr/lib/softhsm/libsofthsm2.so";
  if (!std::filesystem::exists(module)) GTEST_SKIP() << "softhsm2 not installed";
  std::filesystem::create_directories(P("tokens"));
  WriteAll(P("softhsm2.conf"), "directories.tokendir = " + P("tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n");
  const std::vector<std::string> env = {"SOFTHSM2_CONF=" + P("softhsm2.conf"),
                                        "FEMTOGUARD_CA_PASSPHRASE=hsm cluster passphrase"};
  auto hsm_fg = [&env](std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args, {}, 120, env);
  };
  ASSERT_EQ(fg::testing::Run({"softhsm2-util", "--init-token", "--free", "--label", "fgcluster", "--pin", "1234",
                              "--so-pin", "5678"},
                             {}, 60, env)
                .exit_code,
            0);
  const std::string pin = P("pin");
  WriteAll(pin, "1234\n");
  std::filesystem::permissions(pin, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::create_directories(P("shared"));
  const std::string a = P("a"), b = P("b"), uri = "pkcs11:token=fgcluster;object=fg-issuing";
  auto init = hsm_fg({"init", "--data", a, "--store", "sqlite:" + Shared(), "--public-url", "http://a.example:8440",
                  "--hsm-uri", uri, "--hsm-module", module, "--hsm-pin-file", pin});
  ASSERT_EQ(init.exit_code, 0) << init.out;
  auto made = hsm_fg({"node", "bundle", "--data", a, "--out", P("node.bundle")});
  ASSERT_EQ(made.exit_code, 0) << made.out;
  EXPECT_THAT(made.out, HasSubstr("stays in the HSM"));
  const std::string clear = P("bundle.json");
  ASSERT_EQ(fg::testing::Run({"openssl", "cms", "-decrypt", "-inform", "DER", "-in", P("node.bundle"),
                              "-pwri_password", "hsm cluster passphrase", "-out", clear})
                .exit_code,
            0);
  auto doc = nlohmann::json::parse(ReadAll(clear), nullptr, false);
  std::filesystem::remove(clear);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["issuing_key"], "hsm");
  EXPECT_EQ(doc["hsm"]["uri"], uri);
  EXPECT_EQ(doc["hsm"]["module"], module);
  std::vector<std::string> paths;
  for (const auto& f : doc["files"]) paths.push_back(f["path"]);
  EXPECT_EQ(std::find(paths.begin(), paths.end(), "ca/issuing.key"), paths.end()) << "no key file for the HSM key";
  EXPECT_NE(std::find(paths.begin(), paths.end(), "secrets/service-keys.secret"), paths.end());
  EXPECT_THAT(doc["config"].get<std::string>(), Not(HasSubstr("pin_file")));  // the PIN file is each node's own

  // Without the PIN: bad input, nothing written.
  auto no_pin = hsm_fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", P("node.bundle")});
  EXPECT_EQ(no_pin.exit_code, 2) << no_pin.out;
  EXPECT_THAT(no_pin.out, HasSubstr("--hsm-pin-file"));
  EXPECT_FALSE(std::filesystem::exists(b));
  auto joined = hsm_fg({"node", "join", "--data", b, "--store", "sqlite:" + Shared(), "--bundle", P("node.bundle"),
                    "--hsm-pin-file", pin, "--public-url", "http://b.example:8440"});
  ASSERT_EQ(joined.exit_code, 0) << joined.out;
  EXPECT_FALSE(std::filesystem::exists(b + "/ca/issuing.key"));
  EXPECT_THAT(ReadAll(b + "/config.yaml"), HasSubstr("pin_file: " + pin));
  // B signs through the token: its certificate verifies under A's chain.
  auto add = hsm_fg({"device", "add", "--data", b, "--device", "FG-0000007"});
  ASSERT_EQ(add.exit_code, 0) << add.out;
  ASSERT_EQ(fg::testing::Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                              "-nodes", "-keyout", P("d7.key"), "-subj", "/CN=FG-0000007", "-out", P("d7.csr")})
                .exit_code,
            0);
  auto issued = hsm_fg({"cert", "issue", "--data", b, "--device", "FG-0000007", "--csr", P("d7.csr")});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  WriteAll(P("d7.pem"), issued.out);
  WriteAll(P("chain.pem"), hsm_fg({"ca", "cert", "--data", a, "--chain"}).out);
  auto verify = fg::testing::Run({"openssl", "verify", "-CAfile", P("chain.pem"), P("d7.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
}

}  // namespace
}  // namespace fg::testing
