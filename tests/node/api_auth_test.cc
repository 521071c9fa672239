// ApiAuth while the store is unreachable (issue 15, database failover): a
// token the store confirmed before keeps working, one it never confirmed
// does not, and a token the store said was revoked stays refused.

#include "node/api_auth.h"

#include <gtest/gtest.h>

#include <map>

namespace fg {
namespace {

// The token role of a store that can be switched off (Unavailable, as the
// PostgreSQL backend answers during a failover).
class SwitchableTokens final : public ApiTokenStore {
 public:
  bool down = false;
  std::map<std::string, ApiToken> by_hash;

  Status AddApiToken(const ApiToken& token, const AuditContext&) override {
    if (down) return Status::Unavailable("store unreachable (test)");
    by_hash[token.hash] = token;
    return Status::Ok();
  }
  Result<std::optional<ApiToken>> FindApiTokenByHash(std::string_view hash) override {
    if (down) return Status::Unavailable("store unreachable (test)");
    auto it = by_hash.find(std::string(hash));
    if (it == by_hash.end() || it->second.revoked_ms != 0) return std::optional<ApiToken>();
    return std::optional<ApiToken>(it->second);
  }
  Result<std::vector<ApiToken>> ListApiTokens() override { return std::vector<ApiToken>{}; }
  Status RevokeApiToken(std::string_view id, const AuditContext&) override {
    if (down) return Status::Unavailable("store unreachable (test)");
    for (auto& [hash, t] : by_hash) {
      if (t.id == id) t.revoked_ms = 1;
    }
    return Status::Ok();
  }
};

HttpRequest WithToken(const std::string& token) {
  HttpRequest r;
  r.method = "POST";
  r.path = r.target = "/v1/admission";
  r.headers.emplace_back("Authorization", "Bearer " + token);
  return r;
}

class ApiAuthFailoverTest : public ::testing::Test {
 protected:
  std::string Create(ApiRole role) {
    std::string id;
    auto token = CreateApiToken(store_, role, "test", AuditContext{"test", ""}, &id);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    ids_[*token] = id;
    return token.ok() ? *token : "";
  }
  int StatusOf(const std::string& token) {
    auto refused = auth_.Check(WithToken(token), {ApiRole::kSegw});
    return refused ? refused->status : 200;
  }

  SwitchableTokens store_;
  ApiAuth auth_{store_};
  std::map<std::string, std::string> ids_;
};

TEST_F(ApiAuthFailoverTest, AConfirmedTokenKeepsWorkingWhileTheStoreIsUnreachable) {
  const std::string segw = Create(ApiRole::kSegw);
  ASSERT_EQ(StatusOf(segw), 200);  // confirmed by the store
  auth_.Invalidate();              // the node synced: re-confirm before trusting
  store_.down = true;
  EXPECT_EQ(StatusOf(segw), 200) << "the SeGW must keep being answered during a failover";
  // The role still counts: the last known role, not "anything".
  auto refused = auth_.Check(WithToken(segw), {ApiRole::kOperator});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
}

TEST_F(ApiAuthFailoverTest, ATokenNeverConfirmedIsRefusedWhileTheStoreIsUnreachable) {
  const std::string segw = Create(ApiRole::kSegw);
  store_.down = true;
  EXPECT_EQ(StatusOf(segw), 503);
}

TEST_F(ApiAuthFailoverTest, ARevokedTokenStaysRefusedWhenTheStoreGoesAway) {
  const std::string segw = Create(ApiRole::kSegw);
  ASSERT_EQ(StatusOf(segw), 200);
  ASSERT_TRUE(store_.RevokeApiToken(ids_[segw], AuditContext{"test", ""}).ok());
  auth_.Invalidate();  // `token revoke` pokes the node
  EXPECT_EQ(StatusOf(segw), 401);
  store_.down = true;
  EXPECT_EQ(StatusOf(segw), 503) << "a revoked token must not come back as the last known answer";
}

TEST_F(ApiAuthFailoverTest, AfterInvalidateTheStoreIsAskedAgain) {
  const std::string segw = Create(ApiRole::kSegw);
  ASSERT_EQ(StatusOf(segw), 200);
  ASSERT_TRUE(store_.RevokeApiToken(ids_[segw], AuditContext{"test", ""}).ok());
  auth_.Invalidate();
  EXPECT_EQ(StatusOf(segw), 401) << "an invalidated entry must not be trusted while the store answers";
}

}  // namespace
}  // namespace fg
