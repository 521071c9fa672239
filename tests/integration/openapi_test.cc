// docs/openapi.yaml against the node that serves it: every bearer-token route
// serve registers (it logs them at start) is documented, every documented
// route is registered, answers on the TLS listener with a token (never the
// router's own 404 or 405), wants a token (401 without one), and is refused
// on the plain listener (403). A route added without its documentation, or
// documented and then removed, fails here.

#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

struct Route {
  std::string method;  // GET, POST, ...
  std::string path;    // documented: /v1/alerts/{id}/approve; registered: a prefix ends in '/'
  bool operator<(const Route& o) const { return std::tie(method, path) < std::tie(o.method, o.path); }
};

// Does the registered route `served` answer the documented path `doc`?
bool Serves(const Route& served, const Route& doc) {
  if (served.method != doc.method) return false;
  if (served.path == doc.path) return true;
  return served.path.back() == '/' && doc.path.rfind(served.path, 0) == 0;
}

class OpenApiTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    StartNode();
    auto t = Fg({"token", "create", "--data", data_, "--role", "admin", "--label", "openapi-test"});
    ASSERT_EQ(t.exit_code, 0) << t.out;
    admin_ = FindApiToken(t.out);
  }
  static void TearDownTestSuite() { StopNode(); }
  static inline std::string admin_;
};

TEST_F(OpenApiTest, TheDocumentAndTheServedRoutesAgree) {
  YAML::Node doc = YAML::LoadFile(std::string(FG_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
  ASSERT_TRUE(doc["paths"].IsMap());
  const std::set<std::string> roles = {"admin", "operator", "viewer", "segw", "ingest", "payments"};
  std::vector<Route> documented;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      ASSERT_TRUE(method == "get" || method == "post" || method == "put" || method == "delete" || method == "patch")
          << path.first << ": " << method;
      for (char& c : method) c = static_cast<char>(std::toupper(c));
      const std::string where = method + " " + path.first.as<std::string>();
      EXPECT_TRUE(op.second["responses"].IsMap()) << where << " has no responses";
      ASSERT_TRUE(op.second["x-femtoguard-roles"].IsSequence()) << where << " names no role";
      for (const auto& r : op.second["x-femtoguard-roles"]) {
        EXPECT_TRUE(roles.count(r.as<std::string>())) << where << ": unknown role " << r;
      }
      documented.push_back({method, path.first.as<std::string>()});
    }
  }

  // What serve registered, from its start-up log line.
  std::string log = ReadAll(P("serve.log"));
  size_t at = log.find("api: token routes");
  ASSERT_NE(at, std::string::npos) << log;
  std::string line = log.substr(at, log.find('\n', at) - at);
  std::vector<Route> served;
  static const std::regex kRoute(R"((GET|POST|PUT|PATCH|DELETE) (/[^,\s"\\]*))");
  for (std::sregex_iterator it(line.begin(), line.end(), kRoute), end; it != end; ++it) {
    served.push_back({(*it)[1], (*it)[2]});
  }
  ASSERT_GE(served.size(), 5u) << line;

  for (const Route& s : served) {
    bool found = false;
    for (const Route& d : documented) found = found || Serves(s, d);
    EXPECT_TRUE(found) << "serve answers " << s.method << " " << s.path << " but docs/openapi.yaml does not document it";
  }
  for (const Route& d : documented) {
    bool found = false;
    for (const Route& s : served) found = found || Serves(s, d);
    EXPECT_TRUE(found) << "docs/openapi.yaml documents " << d.method << " " << d.path << " but serve does not register it";

    std::string path = std::regex_replace(d.path, std::regex(R"(\{[^}]+\})"), "FG-NO-SUCH-ID");
    const std::string where = d.method + " " + d.path;
    const std::string body = d.method == "GET" ? "" : "{}";
    auto [code, reply] = Api(d.method, path, admin_, body);
    EXPECT_NE(code, "405") << where;
    EXPECT_FALSE(code == "404" && reply.find("\"error\"") == std::string::npos)
        << where << ": the router does not know it: " << reply;
    EXPECT_NE(code, "401") << where << ": an admin token was refused";
    auto [anon, anon_reply] = Api(d.method, path, "", body);
    EXPECT_EQ(anon, "401") << where << " answered without a token: " << anon_reply;
    auto [plain, plain_reply] = Api(d.method, path, admin_, body, url_);
    EXPECT_EQ(plain, "403") << where << " over plain HTTP: " << plain_reply;
  }
}

}  // namespace
}  // namespace fg::testing
