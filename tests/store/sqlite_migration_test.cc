// Schema migration of the SQLite store: a data dir written by a binary that
// only knew schema version 1 opens, and migrates, without losing anything
// its change-feed readers have seen.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite_store.h"
#include "store/store.h"

namespace fg {
namespace {

using ::testing::ElementsAre;

// Schema version 1 exactly as released (sqlite_store.cc, kMigrations[0]).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL, applied_ms INTEGER NOT NULL);
CREATE TABLE devices (
  id            TEXT PRIMARY KEY NOT NULL,
  status        TEXT NOT NULL
                CHECK (status IN ('provisioned', 'active', 'suspended', 'decommissioned')),
  owner         TEXT NOT NULL DEFAULT '',
  mode          TEXT NOT NULL CHECK (mode IN ('closed', 'hybrid', 'open')),
  site_lat      REAL,
  site_lon      REAL,
  site_radius_m REAL,
  prefixes      TEXT NOT NULL DEFAULT '[]',
  csg           TEXT NOT NULL DEFAULT '[]',
  cert_fp       TEXT NOT NULL DEFAULT '',
  max_ues       INTEGER NOT NULL DEFAULT 0,
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL DEFAULT 0,
  CHECK ((site_lat IS NULL) = (site_lon IS NULL))
);
CREATE TABLE certificates (
  serial        TEXT PRIMARY KEY NOT NULL,
  device        TEXT NOT NULL REFERENCES devices (id),
  key_fp        TEXT NOT NULL,
  cert_fp       TEXT NOT NULL,
  not_before_ms INTEGER NOT NULL,
  not_after_ms  INTEGER NOT NULL,
  issued_ms     INTEGER NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('valid', 'hold', 'revoked')),
  reason        INTEGER NOT NULL DEFAULT 0,
  revoked_ms    INTEGER NOT NULL DEFAULT 0,
  der           BLOB NOT NULL
);
CREATE UNIQUE INDEX certificates_key_fp ON certificates (key_fp);
CREATE INDEX certificates_device ON certificates (device, issued_ms);
CREATE INDEX certificates_status ON certificates (status, not_after_ms);
CREATE TABLE audit (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms   INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT NOT NULL,
  reason  TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit (subject, seq);
CREATE TABLE changes (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('device', 'certificate')),
  key  TEXT NOT NULL
);
CREATE TABLE counters (
  name  TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
);
INSERT INTO schema_version VALUES (1, 1);
INSERT INTO devices (id, status, mode, created_ms, updated_ms) VALUES ('FG-1', 'active', 'closed', 1, 1);
INSERT INTO changes (kind, key) VALUES ('device', 'FG-1');
INSERT INTO changes (kind, key) VALUES ('certificate', '0A');
INSERT INTO changes (kind, key) VALUES ('device', 'FG-1');
INSERT INTO changes (kind, key) VALUES ('device', 'FG-gone');
-- The last seq was handed out once: it must never be handed out again.
DELETE FROM changes WHERE seq = 4;
)sql";

class SqliteMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fg-migrate-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "store.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void ExecRaw(const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }
  std::vector<int64_t> SchemaVersions() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT version FROM schema_version ORDER BY version", -1,
                                 &stmt, nullptr),
              SQLITE_OK);
    std::vector<int64_t> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteMigrationTest, VersionOneStoreKeepsItsChangeFeed) {
  ExecRaw(kSchemaV1);
  {
    auto opened = Store::Open("sqlite:" + path_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<Store> store = std::move(opened).value();

    auto changes = store->ChangesSince(0, 0);
    ASSERT_TRUE(changes.ok()) << changes.status().ToString();
    std::vector<std::string> feed;
    for (const auto& c : *changes) {
      feed.push_back(std::to_string(c.seq) + ":" + c.key);
    }
    EXPECT_THAT(feed, ElementsAre("1:FG-1", "2:0A", "3:FG-1"));
    EXPECT_EQ((*changes)[1].kind, ChangeKind::kCertificate);

    // New kinds work, and seqs continue after the high-water mark (4), not
    // after the highest surviving row (3).
    Endpoint e;
    e.address = "segw1:4500";
    const AuditContext ctx{"cli:root", "migration test"};
    ASSERT_TRUE(store->AddEndpoint(e, ctx).ok());
    auto tail = store->ChangesSince(3, 0);
    ASSERT_TRUE(tail.ok());
    ASSERT_EQ(tail->size(), 1u);
    EXPECT_EQ((*tail)[0].seq, 5);
    EXPECT_EQ((*tail)[0].kind, ChangeKind::kEndpoint);
    EXPECT_EQ((*tail)[0].key, "segw1:4500");

    BootstrapToken t;
    t.ref = "tok-1";
    t.device = "FG-1";
    t.expires_ms = NowMillis() + kMillisPerDay;
    EXPECT_TRUE(store->AddBootstrapToken(t, ctx).ok());
    EXPECT_TRUE(store->ListVendorCas().ok());
    EXPECT_TRUE(store->ListLegacyCredentials().ok());
  }
  EXPECT_THAT(SchemaVersions(), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
  // Opening again finds nothing to migrate.
  auto again = Store::Open("sqlite:" + path_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*(*again)->LatestChangeSeq(), 5);
  EXPECT_THAT(SchemaVersions(), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
}

TEST_F(SqliteMigrationTest, FreshStoreStartsTheFeedAtOne) {
  auto opened = Store::Open("sqlite:" + path_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();
  EXPECT_EQ(*store->LatestChangeSeq(), 0);
  Endpoint e;
  e.address = "segw1:4500";
  ASSERT_TRUE(store->AddEndpoint(e, {"cli:root", ""}).ok());
  EXPECT_EQ(*store->LatestChangeSeq(), 1);
  EXPECT_THAT(SchemaVersions(), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
}

}  // namespace
}  // namespace fg
