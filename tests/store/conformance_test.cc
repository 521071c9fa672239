// The Store's behaviour, the same tests on both backends (SQLite and
// PostgreSQL): every test runs once per backend on a fresh store.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "testing/pg_server.h"

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr UnixMillis kT0 = 1'760'000'000'000;  // 2025-10-09, a fixed "now" for certificates

const AuditContext kOperator{"cli:root", "ticket 42"};

Device MakeDevice(const std::string& id, DeviceStatus status = DeviceStatus::kProvisioned) {
  Device d;
  d.id = id;
  d.status = status;
  d.owner = "acct-" + id;
  return d;
}

Certificate MakeCert(const std::string& serial, const std::string& device, const std::string& key,
                     UnixMillis not_after = kT0 + 30 * kMillisPerDay) {
  Certificate c;
  c.serial = serial;
  c.device = device;
  c.key_fp = "sha256:" + key;
  c.cert_fp = "sha256:cert-" + serial;
  c.not_before_ms = kT0;
  c.not_after_ms = not_after;
  c.issued_ms = kT0;
  c.der = std::string("\x30\x82\x00\x00", 4) + serial;  // binary, with a NUL
  return c;
}

// The PostgreSQL server of the whole suite, started on first use (SQLite-only
// runs never start one) and stopped by the environment at the end.
std::unique_ptr<testing::PgServer>& PgServerSlot() {
  static std::unique_ptr<testing::PgServer> server;
  return server;
}
std::mutex g_pg_mutex;
testing::PgServer* SharedPgServer() {
  std::lock_guard lock(g_pg_mutex);
  if (!PgServerSlot()) {
    auto started = testing::PgServer::Start({});
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << started.status().ToString();
      return nullptr;
    }
    PgServerSlot() = std::move(started).value();
  }
  return PgServerSlot().get();
}
class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PgServerSlot().reset(); }
};
[[maybe_unused]] ::testing::Environment* const kPgEnvironment =
    ::testing::AddGlobalTestEnvironment(new PgEnvironment);

// The same tests on every backend: "sqlite" (a file in a temp dir) and
// "postgresql" (a fresh database on the suite's server).
class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fg-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    if (GetParam() == "sqlite") {
      url_ = "sqlite:" + (dir_ / "store.db").string();
    } else {
      testing::PgServer* pg = SharedPgServer();
      ASSERT_NE(pg, nullptr);
      auto db = pg->CreateDatabase("conf");
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      url_ = pg->Url(*db);
    }
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> OpenStore() {
    auto s = Store::Open(url_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  size_t AuditCount() {
    auto a = store_->ListAudit({});
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->size() : 0;
  }
  int64_t ChangeSeq() {
    auto s = store_->LatestChangeSeq();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : -1;
  }
  void Add(const Device& d) { ASSERT_TRUE(store_->AddDevice(d, kOperator).ok()); }
  void Issue(const Certificate& c) {
    auto r = store_->RecordIssuedCertificate(c, kOperator);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  CertStatus StatusOf(const std::string& serial) {
    auto c = store_->GetCertificate(serial);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->status : CertStatus::kValid;
  }
  // Actions of the audit entries about `subject`, oldest first.
  std::vector<std::string> ActionsFor(const std::string& subject) {
    AuditFilter f;
    f.subject = subject;
    auto a = store_->ListAudit(f);
    EXPECT_TRUE(a.ok());
    std::vector<std::string> out;
    if (a.ok()) {
      for (const auto& e : *a) out.push_back(e.action);
    }
    return out;
  }

  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

// ---- devices ----

// The radio identity (issue 17) is kept, replaced by an update (a CSG id
// changed in the registry) and cleared; a device without one reads back empty.
TEST_P(StoreConformanceTest, RadioIdentityIsStoredUpdatedAndCleared) {
  Device a = MakeDevice("FG-0000001", DeviceStatus::kActive);
  a.radio.plmn = "50501";
  a.radio.enb_id = 0xE01;
  a.radio.csg_id = 77;
  a.radio.cells = {0xE0101, 0xE0102};
  Add(a);
  Add(MakeDevice("FG-0000002"));
  auto got = store_->GetDevice("FG-0000001");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->radio, a.radio);
  auto plain = store_->GetDevice("FG-0000002");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->radio.empty());

  Device b = *got;
  b.radio.csg_id = 78;
  ASSERT_TRUE(store_->UpdateDeviceAttributes(b, kOperator).ok());
  auto listed = store_->ListDevices({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].radio.csg_id, std::optional<uint32_t>(78));
  EXPECT_EQ((*listed)[0].radio.enb_id, std::optional<uint32_t>(0xE01));
  EXPECT_TRUE((*listed)[1].radio.empty());

  b.radio = RadioIdentity();
  ASSERT_TRUE(store_->UpdateDeviceAttributes(b, kOperator).ok());
  auto cleared = store_->GetDevice("FG-0000001");
  ASSERT_TRUE(cleared.ok());
  EXPECT_TRUE(cleared->radio.empty());
}

TEST_P(StoreConformanceTest, AddGetListAndFilterDevices) {
  Device a = MakeDevice("FG-0000001", DeviceStatus::kActive);
  a.mode = AccessMode::kHybrid;
  a.site = Site{37.4786, 126.8647, 150};
  a.prefixes = {"211.36.128.0/20", "2001:db8::/32"};
  a.csg = {"imsi:0123456789abcdef01234567"};
  a.cert_fp = "sha256:9f86d0";
  a.max_ues = 8;
  Add(a);
  Add(MakeDevice("FG-0000003"));
  Add(MakeDevice("FG-0000002", DeviceStatus::kSuspended));

  auto got = store_->GetDevice("FG-0000001");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, DeviceStatus::kActive);
  EXPECT_EQ(got->owner, "acct-FG-0000001");
  EXPECT_EQ(got->mode, AccessMode::kHybrid);
  ASSERT_TRUE(got->site.has_value());
  EXPECT_DOUBLE_EQ(got->site->lat, 37.4786);
  EXPECT_DOUBLE_EQ(got->site->lon, 126.8647);
  EXPECT_DOUBLE_EQ(got->site->radius_m, 150);
  EXPECT_EQ(got->prefixes, a.prefixes);
  EXPECT_EQ(got->csg, a.csg);
  EXPECT_EQ(got->cert_fp, "sha256:9f86d0");
  EXPECT_EQ(got->max_ues, 8);
  EXPECT_GT(got->created_ms, 0);
  EXPECT_EQ(got->last_seen_ms, 0);

  auto plain = store_->GetDevice("FG-0000003");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->site.has_value());
  EXPECT_THAT(plain->prefixes, IsEmpty());

  auto missing = store_->GetDevice("FG-404");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());

  auto all = store_->ListDevices({});
  ASSERT_TRUE(all.ok());
  std::vector<std::string> ids;
  for (const auto& d : *all) ids.push_back(d.id);
  EXPECT_THAT(ids, ElementsAre("FG-0000001", "FG-0000002", "FG-0000003"));

  DeviceFilter suspended;
  suspended.status = DeviceStatus::kSuspended;
  auto only = store_->ListDevices(suspended);
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(only->size(), 1u);
  EXPECT_EQ((*only)[0].id, "FG-0000002");

  DeviceFilter limited;
  limited.limit = 2;
  auto two = store_->ListDevices(limited);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
}

TEST_P(StoreConformanceTest, DuplicateDeviceIdIsRefusedAndChangesNothing) {
  Add(MakeDevice("FG-1"));
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();
  Device again = MakeDevice("FG-1");
  again.owner = "someone-else";
  Status s = store_->AddDevice(again, kOperator);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("FG-1"));
  EXPECT_EQ(store_->GetDevice("FG-1")->owner, "acct-FG-1");
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(ChangeSeq(), seq);
}

TEST_P(StoreConformanceTest, InvalidDeviceIdIsRefused) {
  EXPECT_EQ(store_->AddDevice(MakeDevice("bad id/x"), kOperator).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AuditCount(), 0u);
}

TEST_P(StoreConformanceTest, UpdateAttributesNeverChangesStatus) {
  Add(MakeDevice("FG-1"));
  Device d = MakeDevice("FG-1", DeviceStatus::kActive);  // the status must be ignored
  d.owner = "acct-new";
  d.prefixes = {"10.0.0.0/8"};
  ASSERT_TRUE(store_->UpdateDeviceAttributes(d, kOperator).ok());
  auto got = store_->GetDevice("FG-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->owner, "acct-new");
  EXPECT_THAT(got->prefixes, ElementsAre("10.0.0.0/8"));
  EXPECT_EQ(got->status, DeviceStatus::kProvisioned);
  EXPECT_THAT(ActionsFor("FG-1"), ElementsAre("device.add", "device.update"));

  // The same attributes again: nothing changed, nothing recorded.
  const size_t audits = AuditCount();
  ASSERT_TRUE(store_->UpdateDeviceAttributes(d, kOperator).ok());
  EXPECT_EQ(AuditCount(), audits);

  EXPECT_TRUE(store_->UpdateDeviceAttributes(MakeDevice("FG-404"), kOperator).IsNotFound());
}

// ---- lifecycle ----

TEST_P(StoreConformanceTest, AllowedLifecycleTransitions) {
  Add(MakeDevice("FG-1"));
  struct Step {
    DeviceStatus from, to;
  };
  for (Step step : {Step{DeviceStatus::kProvisioned, DeviceStatus::kActive},
                    Step{DeviceStatus::kActive, DeviceStatus::kSuspended},
                    Step{DeviceStatus::kSuspended, DeviceStatus::kActive},
                    Step{DeviceStatus::kActive, DeviceStatus::kDecommissioned}}) {
    auto t = store_->SetDeviceStatus("FG-1", step.to, kOperator);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->from, step.from);
    EXPECT_EQ(t->to, step.to);
    EXPECT_EQ(store_->GetDevice("FG-1")->status, step.to);
  }
  Add(MakeDevice("FG-2"));
  EXPECT_TRUE(store_->SetDeviceStatus("FG-2", DeviceStatus::kDecommissioned, kOperator).ok());
}

TEST_P(StoreConformanceTest, RefusedTransitionsChangeNothing) {
  Add(MakeDevice("FG-P"));
  Add(MakeDevice("FG-A", DeviceStatus::kActive));
  Add(MakeDevice("FG-D", DeviceStatus::kDecommissioned));
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();

  auto same = store_->SetDeviceStatus("FG-A", DeviceStatus::kActive, kOperator);
  EXPECT_EQ(same.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(same.status().message(), HasSubstr("active to active"));
  EXPECT_EQ(store_->SetDeviceStatus("FG-P", DeviceStatus::kSuspended, kOperator).status().code(),
            StatusCode::kFailedPrecondition);
  for (auto to : {DeviceStatus::kProvisioned, DeviceStatus::kActive, DeviceStatus::kSuspended,
                  DeviceStatus::kDecommissioned}) {
    EXPECT_EQ(store_->SetDeviceStatus("FG-D", to, kOperator).status().code(),
              StatusCode::kFailedPrecondition)
        << "decommissioned is terminal, yet -> " << DeviceStatusName(to) << " was allowed";
  }
  EXPECT_EQ(store_->SetDeviceStatus("FG-A", DeviceStatus::kProvisioned, kOperator).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      store_->SetDeviceStatus("FG-404", DeviceStatus::kActive, kOperator).status().IsNotFound());

  EXPECT_EQ(store_->GetDevice("FG-D")->status, DeviceStatus::kDecommissioned);
  EXPECT_EQ(store_->GetDevice("FG-A")->status, DeviceStatus::kActive);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(ChangeSeq(), seq);
}

TEST_P(StoreConformanceTest, SuspendHoldsCertificatesAndReactivateReleasesThem) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));

  auto suspend = store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, kOperator);
  ASSERT_TRUE(suspend.ok()) << suspend.status().ToString();
  EXPECT_THAT(suspend->certs_held, ElementsAre("0A"));
  EXPECT_THAT(suspend->certs_released, IsEmpty());
  auto held = store_->GetCertificate("0A");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->status, CertStatus::kHold);
  EXPECT_EQ(held->reason, RevocationReason::kCertificateHold);
  EXPECT_GT(held->revoked_ms, 0);
  auto crl = store_->ListRevokedCertificates(kT0);
  ASSERT_TRUE(crl.ok());
  ASSERT_EQ(crl->size(), 1u);
  EXPECT_EQ((*crl)[0].serial, "0A");

  auto reactivate = store_->SetDeviceStatus("FG-1", DeviceStatus::kActive, kOperator);
  ASSERT_TRUE(reactivate.ok()) << reactivate.status().ToString();
  EXPECT_THAT(reactivate->certs_released, ElementsAre("0A"));
  auto valid = store_->GetCertificate("0A");
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(valid->status, CertStatus::kValid);
  EXPECT_EQ(valid->revoked_ms, 0);
  EXPECT_THAT(*store_->ListRevokedCertificates(kT0), IsEmpty());
  EXPECT_THAT(ActionsFor("0A"), ElementsAre("cert.issue", "cert.hold", "cert.release"));
}

TEST_P(StoreConformanceTest, DecommissionRevokesValidAndHeldCertificates) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, kOperator).ok());
  auto t = store_->SetDeviceStatus("FG-1", DeviceStatus::kDecommissioned, kOperator);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_THAT(t->certs_revoked, ElementsAre("0A"));
  auto c = store_->GetCertificate("0A");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, CertStatus::kRevoked);
  EXPECT_EQ(c->reason, RevocationReason::kCessationOfOperation);

  Add(MakeDevice("FG-2"));
  Issue(MakeCert("0B", "FG-2", "k2"));
  auto direct = store_->SetDeviceStatus("FG-2", DeviceStatus::kDecommissioned, kOperator);
  ASSERT_TRUE(direct.ok());
  EXPECT_THAT(direct->certs_revoked, ElementsAre("0B"));
  EXPECT_EQ(StatusOf("0B"), CertStatus::kRevoked);
}

TEST_P(StoreConformanceTest, TouchDeviceOnlyMovesForwardAndIsNotAudited) {
  Add(MakeDevice("FG-1"));
  const size_t audits = AuditCount();
  ASSERT_TRUE(store_->TouchDevice("FG-1", kT0).ok());
  ASSERT_TRUE(store_->TouchDevice("FG-1", kT0 - 1000).ok());
  EXPECT_EQ(store_->GetDevice("FG-1")->last_seen_ms, kT0);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_TRUE(store_->TouchDevice("FG-404", kT0).IsNotFound());
}

TEST_P(StoreConformanceTest, TouchDevicesWritesManyInOneGoAndSkipsUnknownIds) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  ASSERT_TRUE(store_->TouchDevice("FG-2", kT0 + 5000).ok());
  const size_t audits = AuditCount();
  auto n = store_->TouchDevices({{"FG-1", kT0}, {"FG-404", kT0}, {"FG-2", kT0 + 1000}});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(store_->GetDevice("FG-1")->last_seen_ms, kT0);
  EXPECT_EQ(store_->GetDevice("FG-2")->last_seen_ms, kT0 + 5000) << "an older time must not move last_seen back";
  EXPECT_EQ(AuditCount(), audits);
}

// ---- issuance ----

TEST_P(StoreConformanceTest, IssuanceActivatesProvisionedDevice) {
  Add(MakeDevice("FG-1"));
  auto superseded = store_->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator);
  ASSERT_TRUE(superseded.ok()) << superseded.status().ToString();
  EXPECT_THAT(*superseded, IsEmpty());

  auto d = store_->GetDevice("FG-1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status, DeviceStatus::kActive);
  EXPECT_EQ(d->last_seen_ms, kT0);

  auto c = store_->GetCertificate("0A");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->device, "FG-1");
  EXPECT_EQ(c->key_fp, "sha256:k1");
  EXPECT_EQ(c->status, CertStatus::kValid);
  EXPECT_EQ(c->der, MakeCert("0A", "FG-1", "k1").der);
  EXPECT_EQ(*store_->FindKeyOwner("sha256:k1"), std::optional<std::string>("FG-1"));
  EXPECT_EQ(*store_->FindKeyOwner("sha256:never"), std::nullopt);

  AuditFilter f;
  f.subject = "FG-1";
  auto audit = store_->ListAudit(f);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[1].action, "device.status");
  EXPECT_EQ((*audit)[1].reason, "first certificate issued");
  EXPECT_EQ((*audit)[1].actor, "cli:root");
  auto detail = nlohmann::json::parse((*audit)[1].detail);
  EXPECT_EQ(detail["from"], "provisioned");
  EXPECT_EQ(detail["to"], "active");
}

TEST_P(StoreConformanceTest, NewCertificateSupersedesThePreviousOne) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  Certificate renewal = MakeCert("0B", "FG-1", "k2");
  renewal.issued_ms = kT0 + 1000;
  auto superseded = store_->RecordIssuedCertificate(renewal, kOperator);
  ASSERT_TRUE(superseded.ok()) << superseded.status().ToString();
  EXPECT_THAT(*superseded, ElementsAre("0A"));
  auto old = store_->GetCertificate("0A");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->status, CertStatus::kRevoked);
  EXPECT_EQ(old->reason, RevocationReason::kSuperseded);
  EXPECT_EQ(StatusOf("0B"), CertStatus::kValid);
  EXPECT_THAT(ActionsFor("0A"), ElementsAre("cert.issue", "cert.supersede"));

  auto certs = store_->ListCertificates("FG-1");
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ((*certs)[0].serial, "0A");  // oldest first
  EXPECT_EQ((*certs)[1].serial, "0B");
  EXPECT_EQ(store_->ListCertificates(std::nullopt)->size(), 2u);
  EXPECT_THAT(*store_->ListCertificates("FG-404"), IsEmpty());
}

TEST_P(StoreConformanceTest, KeyBoundToAnotherDeviceIsRefused) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  Issue(MakeCert("0A", "FG-1", "shared"));
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();

  auto r = store_->RecordIssuedCertificate(MakeCert("0B", "FG-2", "shared"), kOperator);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("FG-1"));
  // Nothing partial: FG-2 is still provisioned and has no certificate.
  EXPECT_EQ(store_->GetDevice("FG-2")->status, DeviceStatus::kProvisioned);
  EXPECT_TRUE(store_->GetCertificate("0B").status().IsNotFound());
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(ChangeSeq(), seq);
}

TEST_P(StoreConformanceTest, KeyOfAnEarlierCertificateIsRefusedEvenAfterRevocation) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0, kOperator).ok());
  const size_t audits = AuditCount();

  auto r = store_->RecordIssuedCertificate(MakeCert("0B", "FG-1", "k1"), kOperator);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("0A"));
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(*store_->FindKeyOwner("sha256:k1"), std::optional<std::string>("FG-1"));
}

TEST_P(StoreConformanceTest, DuplicateSerialIsRefused) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  auto r = store_->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k2"), kOperator);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("serial 0A"));
  EXPECT_EQ(*store_->FindKeyOwner("sha256:k2"), std::nullopt);
}

TEST_P(StoreConformanceTest, InactiveOrUnknownDevicesGetNoCertificate) {
  Add(MakeDevice("FG-S", DeviceStatus::kSuspended));
  Add(MakeDevice("FG-D", DeviceStatus::kDecommissioned));
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();
  int n = 0;
  for (const char* device : {"FG-S", "FG-D", "FG-404"}) {
    const std::string i = std::to_string(++n);
    auto r = store_->RecordIssuedCertificate(MakeCert("0" + i, device, "k" + i), kOperator);
    ASSERT_FALSE(r.ok()) << device;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << device;
    EXPECT_THAT(r.status().message(), HasSubstr(device));
  }
  EXPECT_THAT(*store_->ListCertificates(std::nullopt), IsEmpty());
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(ChangeSeq(), seq);
}

// ---- revocation ----

TEST_P(StoreConformanceTest, RevocationRules) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  EXPECT_TRUE(store_->RevokeCertificate("FF", RevocationReason::kKeyCompromise, kT0, kOperator)
                  .IsNotFound());

  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kCertificateHold, kT0, kOperator).ok());
  EXPECT_EQ(StatusOf("0A"), CertStatus::kHold);
  EXPECT_EQ(
      store_->RevokeCertificate("0A", RevocationReason::kCertificateHold, kT0, kOperator).code(),
      StatusCode::kFailedPrecondition);

  // hold -> revoked, with the new reason and time.
  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0 + 5, kOperator).ok());
  auto c = store_->GetCertificate("0A");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, CertStatus::kRevoked);
  EXPECT_EQ(c->reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(c->revoked_ms, kT0 + 5);

  const size_t audits = AuditCount();
  Status again = store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0, kOperator);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      store_->RevokeCertificate("0A", RevocationReason::kCertificateHold, kT0, kOperator).code(),
      StatusCode::kFailedPrecondition);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_THAT(ActionsFor("0A"), ElementsAre("cert.issue", "cert.hold", "cert.revoke"));
}

TEST_P(StoreConformanceTest, RevokedListExcludesExpiredCertificates) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  Issue(MakeCert("0A", "FG-1", "k1", kT0 + kMillisPerDay));
  Issue(MakeCert("0B", "FG-2", "k2", kT0 + 10 * kMillisPerDay));
  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0, kOperator).ok());
  ASSERT_TRUE(
      store_->RevokeCertificate("0B", RevocationReason::kCertificateHold, kT0, kOperator).ok());

  auto serials = [&](UnixMillis now) {
    auto listed = store_->ListRevokedCertificates(now);
    EXPECT_TRUE(listed.ok());
    std::vector<std::string> out;
    for (const auto& c : *listed) out.push_back(c.serial);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_THAT(serials(kT0), ElementsAre("0A", "0B"));
  EXPECT_THAT(serials(kT0 + kMillisPerDay), ElementsAre("0A", "0B"));  // notAfter is inclusive
  EXPECT_THAT(serials(kT0 + 2 * kMillisPerDay), ElementsAre("0B"));
  EXPECT_THAT(serials(kT0 + 11 * kMillisPerDay), IsEmpty());
}

// ---- audit and change feed ----

// `device token list` with and without a device (the NULL parameter must be
// typed on PostgreSQL: it was refused there with "could not determine data
// type of parameter $1"); revocation is once, of an unused token only.
TEST_P(StoreConformanceTest, BootstrapTokensListedForAllOrOneDeviceAndRevokedOnce) {
  Add(MakeDevice("FG-0000001"));
  Add(MakeDevice("FG-0000002"));
  const UnixMillis now = NowMillis();
  for (const auto& [ref, device] : std::vector<std::pair<std::string, std::string>>{
           {"tok-a", "FG-0000001"}, {"tok-b", "FG-0000002"}, {"tok-c", "FG-0000001"}}) {
    BootstrapToken t;
    t.ref = ref;
    t.device = device;
    t.created_ms = now;
    t.expires_ms = now + 3600000;
    ASSERT_TRUE(store_->AddBootstrapToken(t, kOperator).ok());
  }
  auto all = store_->ListBootstrapTokens(std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 3u);
  auto one = store_->ListBootstrapTokens(std::string_view("FG-0000001"));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 2u);
  for (const BootstrapToken& t : *one) EXPECT_EQ(t.device, "FG-0000001");
  ASSERT_TRUE(store_->RevokeBootstrapToken("tok-a", kOperator).ok());
  EXPECT_EQ(store_->RevokeBootstrapToken("tok-a", kOperator).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RevokeBootstrapToken("tok-zz", kOperator).code(), StatusCode::kNotFound);
  auto a = store_->GetBootstrapToken("tok-a");
  ASSERT_TRUE(a.ok());
  EXPECT_NE(a->revoked_ms, 0);
}

TEST_P(StoreConformanceTest, AuditRecordsWhoAndWhy) {
  Add(MakeDevice("FG-1"));
  ASSERT_TRUE(
      store_->SetDeviceStatus("FG-1", DeviceStatus::kActive, {"api:alice", "site survey passed"})
          .ok());
  AuditFilter f;
  f.subject = "FG-1";
  auto entries = store_->ListAudit(f);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  const AuditEntry& add = (*entries)[0];
  EXPECT_EQ(add.action, "device.add");
  EXPECT_EQ(add.actor, "cli:root");
  EXPECT_EQ(add.reason, "ticket 42");
  const AuditEntry& status = (*entries)[1];
  EXPECT_GT(status.seq, add.seq);
  EXPECT_EQ(status.action, "device.status");
  EXPECT_EQ(status.actor, "api:alice");
  EXPECT_EQ(status.reason, "site survey passed");
  EXPECT_GT(status.ts_ms, 0);
  auto detail = nlohmann::json::parse(status.detail);
  EXPECT_EQ(detail, nlohmann::json({{"from", "provisioned"}, {"to", "active"}}));

  // With a limit: the newest first.
  f.limit = 1;
  auto newest = store_->ListAudit(f);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].seq, status.seq);
}

TEST_P(StoreConformanceTest, AppendAuditIsNotAChange) {
  const int64_t seq = ChangeSeq();
  AuditEntry e;
  e.actor = "segw";
  e.action = "admission.deny";
  e.subject = "FG-9";
  e.reason = "unknown device";
  e.detail = R"({"src_ip":"192.0.2.1"})";
  ASSERT_TRUE(store_->AppendAudit(e).ok());
  EXPECT_THAT(ActionsFor("FG-9"), ElementsAre("admission.deny"));
  EXPECT_EQ(ChangeSeq(), seq);
}

TEST_P(StoreConformanceTest, ChangeFeedIsOrdered) {
  EXPECT_EQ(ChangeSeq(), 0);
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  ASSERT_TRUE(store_->SetDeviceStatus("FG-1", DeviceStatus::kSuspended, kOperator).ok());

  auto all = store_->ChangesSince(0, 0);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> feed;
  for (size_t i = 0; i < all->size(); ++i) {
    const Change& c = (*all)[i];
    if (i > 0) {
      EXPECT_GT(c.seq, (*all)[i - 1].seq);
    }
    feed.push_back((c.kind == ChangeKind::kDevice ? "device:" : "cert:") + c.key);
  }
  EXPECT_THAT(feed, ElementsAre("device:FG-1",               // added
                                "device:FG-1", "cert:0A",    // issued, device activated
                                "device:FG-1", "cert:0A"));  // suspended, cert held
  EXPECT_EQ(ChangeSeq(), all->back().seq);

  auto tail = store_->ChangesSince((*all)[2].seq, 0);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].seq, (*all)[3].seq);
  auto page = store_->ChangesSince(0, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[1].seq, (*all)[1].seq);
  EXPECT_THAT(*store_->ChangesSince(all->back().seq, 10), IsEmpty());
}

// ---- persistence and sharing ----

TEST_P(StoreConformanceTest, DataPersistsAcrossReopen) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  ASSERT_EQ(*store_->NextCounter("crl"), 1);
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();

  // Opening again re-runs the migration step, which must find nothing to do.
  for (int i = 0; i < 2; ++i) {
    store_.reset();
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive);
    EXPECT_EQ(StatusOf("0A"), CertStatus::kValid);
    EXPECT_EQ(AuditCount(), audits);
    EXPECT_EQ(ChangeSeq(), seq);
  }
  EXPECT_EQ(*store_->NextCounter("crl"), 2);
  EXPECT_EQ(
      store_->RecordIssuedCertificate(MakeCert("0B", "FG-1", "k1"), kOperator).status().code(),
      StatusCode::kAlreadyExists);
}

TEST_P(StoreConformanceTest, TwoInstancesOnOneFileSeeEachOthersWrites) {
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  Add(MakeDevice("FG-1"));
  auto seen = other->GetDevice("FG-1");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();

  auto issued = other->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive);
  EXPECT_EQ(*store_->FindKeyOwner("sha256:k1"), std::optional<std::string>("FG-1"));
  // The key guard holds across instances too.
  Add(MakeDevice("FG-2"));
  EXPECT_EQ(
      store_->RecordIssuedCertificate(MakeCert("0B", "FG-2", "k1"), kOperator).status().code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(*other->LatestChangeSeq(), ChangeSeq());
}

// ---- counters ----

TEST_P(StoreConformanceTest, NextCounterIncrementsPerName) {
  EXPECT_EQ(*store_->NextCounter("crl"), 1);
  EXPECT_EQ(*store_->NextCounter("crl"), 2);
  EXPECT_EQ(*store_->NextCounter("delta-crl"), 1);
  EXPECT_EQ(*store_->NextCounter("crl"), 3);
  EXPECT_EQ(store_->NextCounter("").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, ConcurrentCountersAcrossInstancesNeverRepeat) {
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  constexpr int kPerThread = 50;
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    Store* s = t % 2 == 0 ? store_.get() : other.get();
    threads.emplace_back([s, &out = got[t]] {
      for (int i = 0; i < kPerThread; ++i) {
        auto v = s->NextCounter("crl");
        if (v.ok()) out.push_back(*v);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 4u * kPerThread);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), 4 * kPerThread);
}

// ---- enrolment authorizations ----



EnrolmentAuthorization Auth(EnrolmentKind kind, std::string credential,
                            std::string source_ip = "") {
  EnrolmentAuthorization a;
  a.kind = kind;
  a.credential = std::move(credential);
  a.source_ip = std::move(source_ip);
  return a;
}

// A certificate that is still valid by the wall clock (renewal checks expiry
// against now, not against the fixed kT0 of MakeCert).
Certificate MakeCurrentCert(const std::string& serial, const std::string& device,
                            const std::string& key) {
  return MakeCert(serial, device, key, NowMillis() + 30 * kMillisPerDay);
}

class EnrolmentConformanceTest : public StoreConformanceTest {
 protected:
  void AddToken(const std::string& ref, const std::string& device,
                UnixMillis expires = NowMillis() + kMillisPerDay) {
    BootstrapToken t;
    t.ref = ref;
    t.device = device;
    t.expires_ms = expires;
    if (expires <= NowMillis()) t.created_ms = expires - kMillisPerDay;
    Status s = store_->AddBootstrapToken(t, kOperator);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void AddLegacy(const std::string& fp, UnixMillis cutoff) {
    LegacyCredential l;
    l.fp = fp;
    l.subject = "CN=femto-shared";
    l.pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    l.cutoff_ms = cutoff;
    Status s = store_->AddLegacyCredential(l, kOperator);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // The latest audit entry's detail, parsed.
  nlohmann::json LastDetail(const std::string& subject) {
    AuditFilter f;
    f.subject = subject;
    f.limit = 1;
    auto a = store_->ListAudit(f);
    EXPECT_TRUE(a.ok());
    if (!a.ok() || a->empty()) return nullptr;
    return nlohmann::json::parse((*a)[0].detail);
  }

  // Snapshot of everything a refused issuance must leave alone.
  struct Snapshot {
    size_t audits;
    int64_t seq;
    size_t certs;
  };
  Snapshot Snap() {
    return {AuditCount(), ChangeSeq(), store_->ListCertificates(std::nullopt)->size()};
  }
  void ExpectUnchanged(const Snapshot& before) {
    EXPECT_EQ(AuditCount(), before.audits);
    EXPECT_EQ(ChangeSeq(), before.seq);
    EXPECT_EQ(store_->ListCertificates(std::nullopt)->size(), before.certs);
  }
  void ExpectRefused(const Certificate& cert, const EnrolmentAuthorization& auth, StatusCode code,
                     const std::string& message_part = "") {
    const Snapshot before = Snap();
    const auto key_owner = *store_->FindKeyOwner(cert.key_fp);
    auto existing = store_->GetCertificate(cert.serial);
    const std::string existing_device = existing.ok() ? existing->device : "";
    auto r = store_->RecordIssuedCertificate(cert, kOperator, auth);
    ASSERT_FALSE(r.ok()) << cert.serial;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    if (!message_part.empty()) {
      EXPECT_THAT(r.status().message(), HasSubstr(message_part));
    }
    // The key and the serial are as they were: absent, or someone else's.
    EXPECT_EQ(*store_->FindKeyOwner(cert.key_fp), key_owner);
    auto after = store_->GetCertificate(cert.serial);
    EXPECT_EQ(after.ok() ? after->device : "", existing_device);
    ExpectUnchanged(before);
  }
};

TEST_P(EnrolmentConformanceTest, TwoArgumentFormIsAnOperatorIssuance) {
  Add(MakeDevice("FG-1"));
  auto r = store_->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto detail = LastDetail("0A");
  EXPECT_EQ(detail["auth"], "operator");
  EXPECT_FALSE(detail.contains("credential"));
  EXPECT_FALSE(detail.contains("source_ip"));
}

TEST_P(EnrolmentConformanceTest, CredentialIsRequiredExceptForTheOperator) {
  Add(MakeDevice("FG-1"));
  for (auto kind : {EnrolmentKind::kBootstrapToken, EnrolmentKind::kVendorCertificate,
                    EnrolmentKind::kLegacyCredential, EnrolmentKind::kRenewal}) {
    ExpectRefused(MakeCert("0A", "FG-1", "k1"), Auth(kind, ""), StatusCode::kInvalidArgument);
  }
}

// ---- bootstrap tokens ----

TEST_P(EnrolmentConformanceTest, AddAndGetBootstrapToken) {
  Add(MakeDevice("FG-1"));
  const int64_t seq = ChangeSeq();
  const UnixMillis expires = NowMillis() + kMillisPerDay;
  AddToken("tok-1", "FG-1", expires);
  EXPECT_EQ(ChangeSeq(), seq);  // a token is no change-feed kind

  auto t = store_->GetBootstrapToken("tok-1");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->ref, "tok-1");
  EXPECT_EQ(t->device, "FG-1");
  EXPECT_GT(t->created_ms, 0);
  EXPECT_EQ(t->expires_ms, expires);
  EXPECT_EQ(t->used_ms, 0);
  EXPECT_TRUE(store_->GetBootstrapToken("tok-404").status().IsNotFound());

  EXPECT_THAT(ActionsFor("FG-1"), ElementsAre("device.add", "token.create"));
  auto detail = LastDetail("FG-1");
  EXPECT_EQ(detail, nlohmann::json({{"ref", "tok-1"}, {"expires", FormatRfc3339(expires)}}));

  // Duplicate ref, unknown device, no expiry: refused, nothing written.
  const size_t audits = AuditCount();
  BootstrapToken dup;
  dup.ref = "tok-1";
  dup.device = "FG-1";
  dup.expires_ms = expires;
  EXPECT_EQ(store_->AddBootstrapToken(dup, kOperator).code(), StatusCode::kAlreadyExists);
  BootstrapToken unknown = dup;
  unknown.ref = "tok-2";
  unknown.device = "FG-404";
  EXPECT_EQ(store_->AddBootstrapToken(unknown, kOperator).code(), StatusCode::kNotFound);
  BootstrapToken forever = dup;
  forever.ref = "tok-3";
  forever.expires_ms = 0;
  EXPECT_EQ(store_->AddBootstrapToken(forever, kOperator).code(), StatusCode::kInvalidArgument);
  BootstrapToken noref = dup;
  noref.ref = "";
  EXPECT_EQ(store_->AddBootstrapToken(noref, kOperator).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_TRUE(store_->GetBootstrapToken("tok-2").status().IsNotFound());
}

TEST_P(EnrolmentConformanceTest, BootstrapTokenIsConsumedWithTheIssuance) {
  Add(MakeDevice("FG-1"));
  AddToken("tok-1", "FG-1");
  const UnixMillis before = NowMillis();
  auto r = store_->RecordIssuedCertificate(
      MakeCert("0A", "FG-1", "k1"), {"cmp:FG-1", "ir"},
      Auth(EnrolmentKind::kBootstrapToken, "tok-1", "198.51.100.7"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kActive);
  auto t = store_->GetBootstrapToken("tok-1");
  ASSERT_TRUE(t.ok());
  EXPECT_GE(t->used_ms, before);

  auto detail = LastDetail("0A");
  EXPECT_EQ(detail["auth"], "bootstrap_token");
  EXPECT_EQ(detail["credential"], "tok-1");
  EXPECT_EQ(detail["source_ip"], "198.51.100.7");
  EXPECT_EQ(detail["serial"], "0A");
}

TEST_P(EnrolmentConformanceTest, BootstrapTokenIsSingleUse) {
  Add(MakeDevice("FG-1"));
  AddToken("tok-1", "FG-1");
  ASSERT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator,
                                            Auth(EnrolmentKind::kBootstrapToken, "tok-1"))
                  .ok());
  const UnixMillis used = store_->GetBootstrapToken("tok-1")->used_ms;
  ExpectRefused(MakeCert("0B", "FG-1", "k2"), Auth(EnrolmentKind::kBootstrapToken, "tok-1"),
                StatusCode::kPermissionDenied, "already used");
  EXPECT_EQ(store_->GetBootstrapToken("tok-1")->used_ms, used);
  EXPECT_EQ(StatusOf("0A"), CertStatus::kValid);  // not superseded by the refused one
}

TEST_P(EnrolmentConformanceTest, ExpiredUnknownOrForeignTokensAreRefused) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  AddToken("old", "FG-1", NowMillis() - 1000);
  AddToken("tok-2", "FG-2");
  ExpectRefused(MakeCert("0A", "FG-1", "k1"), Auth(EnrolmentKind::kBootstrapToken, "old"),
                StatusCode::kPermissionDenied, "expired");
  ExpectRefused(MakeCert("0A", "FG-1", "k1"), Auth(EnrolmentKind::kBootstrapToken, "tok-2"),
                StatusCode::kPermissionDenied, "FG-1");
  ExpectRefused(MakeCert("0A", "FG-1", "k1"), Auth(EnrolmentKind::kBootstrapToken, "nope"),
                StatusCode::kPermissionDenied, "not known");
  EXPECT_EQ(store_->GetBootstrapToken("old")->used_ms, 0);
  EXPECT_EQ(store_->GetBootstrapToken("tok-2")->used_ms, 0);
  EXPECT_EQ(store_->GetDevice("FG-1")->status, DeviceStatus::kProvisioned);
  // FG-2's token still works for FG-2.
  EXPECT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0B", "FG-2", "k2"), kOperator,
                                            Auth(EnrolmentKind::kBootstrapToken, "tok-2"))
                  .ok());
}

TEST_P(EnrolmentConformanceTest, RefusedIssuanceLeavesTheTokenUnused) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  Add(MakeDevice("FG-S", DeviceStatus::kSuspended));
  Issue(MakeCert("0A", "FG-2", "taken"));
  AddToken("tok-1", "FG-1");
  AddToken("tok-s", "FG-S");
  // The key is bound elsewhere: refused after the token check passed.
  ExpectRefused(MakeCert("0B", "FG-1", "taken"), Auth(EnrolmentKind::kBootstrapToken, "tok-1"),
                StatusCode::kAlreadyExists);
  // Duplicate serial.
  ExpectRefused(MakeCert("0A", "FG-1", "fresh"), Auth(EnrolmentKind::kBootstrapToken, "tok-1"),
                StatusCode::kAlreadyExists);
  // The device may not get a certificate.
  ExpectRefused(MakeCert("0C", "FG-S", "k3"), Auth(EnrolmentKind::kBootstrapToken, "tok-s"),
                StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetBootstrapToken("tok-1")->used_ms, 0);
  EXPECT_EQ(store_->GetBootstrapToken("tok-s")->used_ms, 0);
  EXPECT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0D", "FG-1", "k4"), kOperator,
                                            Auth(EnrolmentKind::kBootstrapToken, "tok-1"))
                  .ok());
}

TEST_P(EnrolmentConformanceTest, ConcurrentIssuanceWithOneTokenSucceedsOnce) {
  constexpr int kThreads = 4;
  for (int round = 0; round < 5; ++round) {
    const std::string device = "FG-R" + std::to_string(round);
    const std::string ref = "tok-" + std::to_string(round);
    Add(MakeDevice(device));
    AddToken(ref, device);
    std::vector<std::unique_ptr<Store>> stores;
    for (int t = 0; t < kThreads; ++t) {
      stores.push_back(OpenStore());  // one connection each: real cross-connection races
      ASSERT_NE(stores.back(), nullptr);
    }
    std::vector<StatusCode> codes(kThreads, StatusCode::kInternal);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string i = std::to_string(round) + "-" + std::to_string(t);
        auto r = stores[t]->RecordIssuedCertificate(
            MakeCert("C" + std::to_string(round * 10 + t), device, "k" + i), kOperator,
            Auth(EnrolmentKind::kBootstrapToken, ref));
        codes[t] = r.ok() ? StatusCode::kOk : r.status().code();
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(std::count(codes.begin(), codes.end(), StatusCode::kOk), 1) << "round " << round;
    EXPECT_EQ(std::count(codes.begin(), codes.end(), StatusCode::kPermissionDenied), kThreads - 1)
        << "round " << round;
    EXPECT_EQ(store_->ListCertificates(device)->size(), 1u);
    EXPECT_GT(store_->GetBootstrapToken(ref)->used_ms, 0);
  }
}

// ---- vendor certificates ----

TEST_P(EnrolmentConformanceTest, VendorCertificateEnrolsOneDeviceOnce) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  EXPECT_EQ(*store_->FindVendorCertificateUse("sha256:v1"), std::nullopt);
  auto r = store_->RecordIssuedCertificate(
      MakeCert("0A", "FG-1", "k1"), kOperator,
      Auth(EnrolmentKind::kVendorCertificate, "sha256:v1", "203.0.113.9"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*store_->FindVendorCertificateUse("sha256:v1"), std::optional<std::string>("FG-1"));
  auto detail = LastDetail("0A");
  EXPECT_EQ(detail["auth"], "vendor_certificate");
  EXPECT_EQ(detail["credential"], "sha256:v1");
  EXPECT_EQ(detail["source_ip"], "203.0.113.9");

  // The same vendor certificate for another device: a clone.
  ExpectRefused(MakeCert("0B", "FG-2", "k2"), Auth(EnrolmentKind::kVendorCertificate, "sha256:v1"),
                StatusCode::kAlreadyExists, "sha256:v1");
  // An enrolled device cannot re-enrol with a vendor certificate, even a new one.
  ExpectRefused(MakeCert("0C", "FG-1", "k3"), Auth(EnrolmentKind::kVendorCertificate, "sha256:v2"),
                StatusCode::kFailedPrecondition, "already enrolled");
  EXPECT_EQ(*store_->FindVendorCertificateUse("sha256:v2"), std::nullopt);
  EXPECT_EQ(StatusOf("0A"), CertStatus::kValid);
}

TEST_P(EnrolmentConformanceTest, VendorEnrolmentAfterRevocationIsStillRefused) {
  // "never had a certificate": a revoked one counts.
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0, kOperator).ok());
  ExpectRefused(MakeCert("0B", "FG-1", "k2"), Auth(EnrolmentKind::kVendorCertificate, "sha256:v"),
                StatusCode::kFailedPrecondition);
}

// ---- legacy credentials ----

TEST_P(EnrolmentConformanceTest, LegacyCredentialMigratesEachDeviceOnceBeforeItsCutoff) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  AddLegacy("sha256:shared", NowMillis() + kMillisPerDay);
  AddLegacy("sha256:expired", NowMillis() - 1);

  ExpectRefused(MakeCert("0A", "FG-1", "k1"),
                Auth(EnrolmentKind::kLegacyCredential, "sha256:unregistered"),
                StatusCode::kPermissionDenied, "not registered");
  ExpectRefused(MakeCert("0A", "FG-1", "k1"),
                Auth(EnrolmentKind::kLegacyCredential, "sha256:expired"),
                StatusCode::kPermissionDenied, "cutoff");
  EXPECT_FALSE(*store_->LegacyCredentialUsed("sha256:expired", "FG-1"));

  EXPECT_FALSE(*store_->LegacyCredentialUsed("sha256:shared", "FG-1"));
  ASSERT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator,
                                            Auth(EnrolmentKind::kLegacyCredential, "sha256:shared"))
                  .ok());
  EXPECT_TRUE(*store_->LegacyCredentialUsed("sha256:shared", "FG-1"));
  EXPECT_FALSE(*store_->LegacyCredentialUsed("sha256:shared", "FG-2"));
  EXPECT_EQ(LastDetail("0A")["auth"], "legacy_credential");

  // Same device again: refused, the first certificate untouched.
  ExpectRefused(MakeCert("0B", "FG-1", "k2"),
                Auth(EnrolmentKind::kLegacyCredential, "sha256:shared"), StatusCode::kAlreadyExists,
                "0A");
  EXPECT_EQ(StatusOf("0A"), CertStatus::kValid);

  // Another device may use the same shared credential.
  ASSERT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0C", "FG-2", "k3"), kOperator,
                                            Auth(EnrolmentKind::kLegacyCredential, "sha256:shared"))
                  .ok());
  EXPECT_TRUE(*store_->LegacyCredentialUsed("sha256:shared", "FG-2"));
  EXPECT_EQ(*store_->FindVendorCertificateUse("sha256:shared"), std::nullopt);
}

TEST_P(EnrolmentConformanceTest, AddAndListLegacyCredentials) {
  const UnixMillis cutoff = NowMillis() + kMillisPerDay;
  AddLegacy("sha256:b", cutoff);
  AddLegacy("sha256:a", cutoff + 1);
  auto list = store_->ListLegacyCredentials();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  std::set<std::string> fps;
  for (const auto& l : *list) {
    fps.insert(l.fp);
    EXPECT_EQ(l.subject, "CN=femto-shared");
    EXPECT_THAT(l.pem, HasSubstr("BEGIN CERTIFICATE"));
    EXPECT_GT(l.added_ms, 0);
    EXPECT_EQ(l.cutoff_ms, l.fp == "sha256:b" ? cutoff : cutoff + 1);
  }
  EXPECT_THAT(fps, ElementsAre("sha256:a", "sha256:b"));
  EXPECT_THAT(ActionsFor("sha256:b"), ElementsAre("legacy.add"));
  auto detail = LastDetail("sha256:b");
  EXPECT_EQ(detail["cutoff"], FormatRfc3339(cutoff));
  EXPECT_EQ(detail["subject"], "CN=femto-shared");

  const size_t audits = AuditCount();
  LegacyCredential dup = (*list)[0];
  EXPECT_EQ(store_->AddLegacyCredential(dup, kOperator).code(), StatusCode::kAlreadyExists);
  LegacyCredential nocutoff = dup;
  nocutoff.fp = "sha256:c";
  nocutoff.cutoff_ms = 0;
  EXPECT_EQ(store_->AddLegacyCredential(nocutoff, kOperator).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AuditCount(), audits);
}

// ---- renewal ----

TEST_P(EnrolmentConformanceTest, RenewalSupersedesTheAuthenticatingCertificate) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCurrentCert("0A", "FG-1", "k1"));
  auto r = store_->RecordIssuedCertificate(MakeCurrentCert("0B", "FG-1", "k2"), kOperator,
                                           Auth(EnrolmentKind::kRenewal, "0A", "192.0.2.10"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre("0A"));
  auto old = store_->GetCertificate("0A");
  EXPECT_EQ(old->status, CertStatus::kRevoked);
  EXPECT_EQ(old->reason, RevocationReason::kSuperseded);
  EXPECT_EQ(StatusOf("0B"), CertStatus::kValid);
  auto detail = LastDetail("0B");
  EXPECT_EQ(detail["auth"], "renewal");
  EXPECT_EQ(detail["credential"], "0A");
  EXPECT_EQ(detail["superseded"], nlohmann::json::array({"0A"}));

  // The superseded certificate cannot renew again.
  ExpectRefused(MakeCurrentCert("0C", "FG-1", "k3"), Auth(EnrolmentKind::kRenewal, "0A"),
                StatusCode::kPermissionDenied, "revoked");
}

TEST_P(EnrolmentConformanceTest, RenewalWithAnUnusableCertificateIsRefused) {
  Add(MakeDevice("FG-1"));
  Add(MakeDevice("FG-2"));
  Add(MakeDevice("FG-3"));
  Add(MakeDevice("FG-4"));
  Issue(MakeCurrentCert("0A", "FG-1", "k1"));
  Issue(MakeCurrentCert("0B", "FG-2", "k2"));
  Issue(MakeCert("0C", "FG-3", "k3", NowMillis() - 1000));  // expired
  Issue(MakeCurrentCert("0D", "FG-4", "k4"));
  ASSERT_TRUE(
      store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, kT0, kOperator).ok());
  ASSERT_TRUE(
      store_->RevokeCertificate("0D", RevocationReason::kCertificateHold, kT0, kOperator).ok());

  ExpectRefused(MakeCurrentCert("1A", "FG-1", "n1"), Auth(EnrolmentKind::kRenewal, "0A"),
                StatusCode::kPermissionDenied, "revoked");
  ExpectRefused(MakeCurrentCert("1C", "FG-3", "n3"), Auth(EnrolmentKind::kRenewal, "0C"),
                StatusCode::kPermissionDenied, "expired");
  // Another device's (valid) certificate.
  ExpectRefused(MakeCurrentCert("1X", "FG-1", "n5"), Auth(EnrolmentKind::kRenewal, "0B"),
                StatusCode::kPermissionDenied, "FG-1");
  ExpectRefused(MakeCurrentCert("1Y", "FG-1", "n6"), Auth(EnrolmentKind::kRenewal, "FFFF"),
                StatusCode::kPermissionDenied, "not known");
  // A held certificate (FG-4 is still active: a per-certificate hold).
  ExpectRefused(MakeCurrentCert("1D", "FG-4", "n4"), Auth(EnrolmentKind::kRenewal, "0D"),
                StatusCode::kPermissionDenied, "hold");
  EXPECT_EQ(StatusOf("0B"), CertStatus::kValid);
  EXPECT_EQ(StatusOf("0D"), CertStatus::kHold);
}

// ---- vendor CAs ----

TEST_P(EnrolmentConformanceTest, VendorCaAddListRemove) {
  VendorCa ca;
  ca.fp = "sha256:ca1";
  ca.subject = "CN=Acme Femto Root";
  ca.pem = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
  ASSERT_TRUE(store_->AddVendorCa(ca, kOperator).ok());
  VendorCa other = ca;
  other.fp = "sha256:ca2";
  other.subject = "CN=Other";
  ASSERT_TRUE(store_->AddVendorCa(other, kOperator).ok());
  EXPECT_EQ(store_->AddVendorCa(ca, kOperator).code(), StatusCode::kAlreadyExists);
  VendorCa nopem = ca;
  nopem.fp = "sha256:ca3";
  nopem.pem = "";
  EXPECT_EQ(store_->AddVendorCa(nopem, kOperator).code(), StatusCode::kInvalidArgument);

  auto list = store_->ListVendorCas();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  std::set<std::string> fps;
  for (const auto& v : *list) {
    fps.insert(v.fp);
    EXPECT_EQ(v.pem, ca.pem);
    EXPECT_GT(v.added_ms, 0);
  }
  EXPECT_THAT(fps, ElementsAre("sha256:ca1", "sha256:ca2"));

  const int64_t seq = ChangeSeq();
  ASSERT_TRUE(store_->RemoveVendorCa("sha256:ca1", {"cli:root", "vendor key leaked"}).ok());
  EXPECT_TRUE(store_->RemoveVendorCa("sha256:ca1", kOperator).IsNotFound());
  ASSERT_EQ(store_->ListVendorCas()->size(), 1u);
  EXPECT_EQ((*store_->ListVendorCas())[0].fp, "sha256:ca2");
  EXPECT_THAT(ActionsFor("sha256:ca1"), ElementsAre("vendor_ca.add", "vendor_ca.remove"));
  EXPECT_EQ(LastDetail("sha256:ca1")["subject"], "CN=Acme Femto Root");
  EXPECT_EQ(ChangeSeq(), seq);
}

// ---- endpoints ----

TEST_P(EnrolmentConformanceTest, EndpointLifecycleWritesAuditAndChanges) {
  const int64_t start = ChangeSeq();
  Endpoint e;
  e.address = "segw1.example.net:4500";
  ASSERT_TRUE(store_->AddEndpoint(e, kOperator).ok());
  Endpoint e2;
  e2.address = "segw2.example.net:4500";
  ASSERT_TRUE(store_->AddEndpoint(e2, kOperator).ok());
  EXPECT_EQ(store_->AddEndpoint(e, kOperator).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->AddEndpoint(Endpoint{}, kOperator).code(), StatusCode::kInvalidArgument);

  const std::string a = e.address;
  ASSERT_TRUE(store_->SetEndpointStatus(a, EndpointStatus::kDraining, kOperator).ok());
  ASSERT_TRUE(store_->SetEndpointStatus(a, EndpointStatus::kActive, kOperator).ok());  // un-drain
  ASSERT_TRUE(store_->SetEndpointStatus(a, EndpointStatus::kDraining, kOperator).ok());
  ASSERT_TRUE(store_->SetEndpointStatus(a, EndpointStatus::kRetired, {"cli:root", "order 7"}).ok());
  ASSERT_TRUE(store_->SetEndpointStatus(e2.address, EndpointStatus::kRetired, kOperator).ok());

  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();
  // retired is terminal; same status is no transition; unknown address.
  for (auto to : {EndpointStatus::kActive, EndpointStatus::kDraining, EndpointStatus::kRetired}) {
    EXPECT_EQ(store_->SetEndpointStatus(a, to, kOperator).code(), StatusCode::kFailedPrecondition);
  }
  Endpoint e3;
  e3.address = "segw3.example.net:4500";
  ASSERT_TRUE(store_->AddEndpoint(e3, kOperator).ok());
  EXPECT_EQ(store_->SetEndpointStatus(e3.address, EndpointStatus::kActive, kOperator).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->SetEndpointStatus(e3.address, EndpointStatus::kDraining, kOperator).ok());
  EXPECT_EQ(store_->SetEndpointStatus(e3.address, EndpointStatus::kDraining, kOperator).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      store_->SetEndpointStatus("nowhere:1", EndpointStatus::kRetired, kOperator).IsNotFound());
  EXPECT_EQ(AuditCount(), audits + 2);  // e3's add and drain only
  EXPECT_EQ(ChangeSeq(), seq + 2);

  auto list = store_->ListEndpoints();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].address, a);
  EXPECT_EQ((*list)[0].status, EndpointStatus::kRetired);
  EXPECT_GE((*list)[0].updated_ms, (*list)[0].created_ms);
  EXPECT_GT((*list)[0].created_ms, 0);
  EXPECT_EQ((*list)[1].status, EndpointStatus::kRetired);
  EXPECT_EQ((*list)[2].status, EndpointStatus::kDraining);

  EXPECT_THAT(ActionsFor(a), ElementsAre("endpoint.add", "endpoint.status", "endpoint.status",
                                         "endpoint.status", "endpoint.status"));
  AuditFilter f;
  f.subject = a;
  auto entries = store_->ListAudit(f);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(nlohmann::json::parse((*entries)[0].detail), nlohmann::json({{"status", "active"}}));
  EXPECT_EQ(nlohmann::json::parse((*entries)[2].detail),
            nlohmann::json({{"from", "draining"}, {"to", "active"}}));
  EXPECT_EQ(nlohmann::json::parse((*entries)[4].detail),
            nlohmann::json({{"from", "draining"}, {"to", "retired"}}));
  EXPECT_EQ((*entries)[4].reason, "order 7");

  auto changes = store_->ChangesSince(start, 0);
  ASSERT_TRUE(changes.ok());
  std::vector<std::string> feed;
  for (const auto& c : *changes) {
    EXPECT_EQ(c.kind, ChangeKind::kEndpoint);
    feed.push_back(c.key);
  }
  EXPECT_THAT(feed, ElementsAre(a, e2.address, a, a, a, a, e2.address, e3.address, e3.address));
}

TEST_P(EnrolmentConformanceTest, EndpointMayBeAddedWithAStatus) {
  Endpoint e;
  e.address = "203.0.113.1:500";
  e.status = EndpointStatus::kRetired;  // recording an address already taken out of service
  e.created_ms = kT0;
  ASSERT_TRUE(store_->AddEndpoint(e, kOperator).ok());
  auto list = store_->ListEndpoints();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, EndpointStatus::kRetired);
  EXPECT_EQ((*list)[0].created_ms, kT0);
  EXPECT_EQ(store_->SetEndpointStatus(e.address, EndpointStatus::kActive, kOperator).code(),
            StatusCode::kFailedPrecondition);
}

TEST_P(EnrolmentConformanceTest, EnrolmentStatePersistsAcrossReopen) {
  Add(MakeDevice("FG-1"));
  AddToken("tok-1", "FG-1");
  ASSERT_TRUE(store_
                  ->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k1"), kOperator,
                                            Auth(EnrolmentKind::kBootstrapToken, "tok-1"))
                  .ok());
  Endpoint e;
  e.address = "segw1:4500";
  ASSERT_TRUE(store_->AddEndpoint(e, kOperator).ok());
  const int64_t seq = ChangeSeq();
  store_.reset();
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_GT(store_->GetBootstrapToken("tok-1")->used_ms, 0);
  EXPECT_EQ(store_->ListEndpoints()->size(), 1u);
  EXPECT_EQ(ChangeSeq(), seq);
  EXPECT_EQ(store_
                ->RecordIssuedCertificate(MakeCert("0B", "FG-1", "k2"), kOperator,
                                          Auth(EnrolmentKind::kBootstrapToken, "tok-1"))
                .status()
                .code(),
            StatusCode::kPermissionDenied);
}

// ---- schema v3: API tokens, blocks, alerts ----

TEST_P(StoreConformanceTest, ApiTokensAreFoundByHashUntilRevoked) {
  ApiToken t;
  t.id = "tk_1";
  t.role = ApiRole::kSegw;
  t.hash = std::string(64, 'a');
  t.label = "segw-1";
  ASSERT_TRUE(store_->AddApiToken(t, kOperator).ok());
  EXPECT_TRUE(store_->AddApiToken(t, kOperator).IsAlreadyExists());

  auto found = store_->FindApiTokenByHash(t.hash);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->role, ApiRole::kSegw);
  auto other = store_->FindApiTokenByHash(std::string(64, 'b'));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());

  ASSERT_TRUE(store_->RevokeApiToken("tk_1", kOperator).ok());
  found = store_->FindApiTokenByHash(t.hash);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value()) << "a revoked token must not authenticate";
  EXPECT_TRUE(store_->RevokeApiToken("tk_1", kOperator).IsNotFound());
  EXPECT_THAT(ActionsFor("tk_1"), ::testing::ElementsAre("api_token.create", "api_token.revoke"));
}

// Schema v8 (SQLite) / v2 (PostgreSQL), issue 18: the console's read-only
// role is stored and found like the others.
TEST_P(StoreConformanceTest, AViewerTokenIsStoredWithItsRole) {
  ApiToken t;
  t.id = "tk_viewer";
  t.role = ApiRole::kViewer;
  t.hash = std::string(64, 'c');
  ASSERT_TRUE(store_->AddApiToken(t, kOperator).ok());
  auto found = store_->FindApiTokenByHash(t.hash);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->role, ApiRole::kViewer);
  EXPECT_EQ(ParseApiRole("viewer").value(), ApiRole::kViewer);
  EXPECT_FALSE(ParseApiRole("watcher").ok());
}


TEST_P(StoreConformanceTest, BlocksAreIdempotentAndOnTheChangeFeed) {
  Block b{"device", "FG-1", "alert-1", "cert.clone", 0};
  const int64_t before = ChangeSeq();
  ASSERT_TRUE(store_->AddBlock(b, kOperator).ok());
  const int64_t after_first = ChangeSeq();
  EXPECT_EQ(after_first, before + 1);
  ASSERT_TRUE(store_->AddBlock(b, kOperator).ok());
  EXPECT_EQ(ChangeSeq(), after_first) << "a repeated block must change nothing";
  EXPECT_TRUE(store_->AddBlock(Block{"planet", "x"}, kOperator).code() == StatusCode::kInvalidArgument);

  auto blocks = store_->ListBlocks();
  ASSERT_TRUE(blocks.ok());
  ASSERT_EQ(blocks->size(), 1u);
  EXPECT_EQ((*blocks)[0].alert_id, "alert-1");

  auto changes = store_->ChangesSince(before, 0);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].kind, ChangeKind::kBlock);
  EXPECT_EQ((*changes)[0].key, "device:FG-1");

  ASSERT_TRUE(store_->RemoveBlock("device", "FG-1", kOperator).ok());
  EXPECT_TRUE(store_->RemoveBlock("device", "FG-1", kOperator).IsNotFound());
  blocks = store_->ListBlocks();
  ASSERT_TRUE(blocks.ok());
  EXPECT_TRUE(blocks->empty());
}

TEST_P(StoreConformanceTest, AlertsAreInsertedOnceByIdAndUpdatable) {
  StoredAlert a;
  a.id = "a1";
  a.ts_ms = 1000;
  a.rule = "cert.clone";
  a.severity = "critical";
  a.device = "FG-1";
  a.json = R"({"rule":"cert.clone"})";
  a.actions_pending = {"revoke"};
  a.state = AlertState::kPendingApproval;
  auto first = store_->AddAlert(a, kOperator);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  auto again = store_->AddAlert(a, kOperator);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "the same alert id must not be inserted (or acted on) twice";

  a.state = AlertState::kActed;
  a.actions_done = {"revoke"};
  a.actions_pending.clear();
  ASSERT_TRUE(store_->UpdateAlert(a, kOperator).ok());
  auto got = store_->GetAlert("a1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, AlertState::kActed);
  EXPECT_THAT(got->actions_done, ::testing::ElementsAre("revoke"));
  EXPECT_TRUE(got->actions_pending.empty());
  EXPECT_TRUE(store_->GetAlert("nope").status().IsNotFound());

  StoredAlert b = a;
  b.id = "a2";
  b.ts_ms = 2000;
  b.rule = "device.unknown";
  ASSERT_TRUE(store_->AddAlert(b, kOperator).ok());
  AlertFilter f;
  auto all = store_->ListAlerts(f);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "a2") << "newest first";
  f.rule = "cert.clone";
  auto clones = store_->ListAlerts(f);
  ASSERT_TRUE(clones.ok());
  ASSERT_EQ(clones->size(), 1u);
  EXPECT_EQ((*clones)[0].id, "a1");
}

// ---- nodes (NodeRegistry) ----

NodeInfo MakeNode(const std::string& id, const std::string& url, int order) {
  NodeInfo n;
  n.id = id;
  n.public_url = url;
  n.url_order = order;
  return n;
}

TEST_P(StoreConformanceTest, NodesAreListedByOrderAndAuditedWithChanges) {
  const int64_t seq0 = ChangeSeq();
  ASSERT_TRUE(store_->UpsertNode(MakeNode("node-b", "https://b.example", 2), kOperator).ok());
  ASSERT_TRUE(store_->UpsertNode(MakeNode("node-a", "https://a.example", 1), kOperator).ok());
  auto nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].id, "node-a");
  EXPECT_EQ((*nodes)[1].id, "node-b");
  EXPECT_GT((*nodes)[0].joined_ms, 0);
  EXPECT_EQ((*nodes)[0].heartbeat_ms, 0);
  // Re-registering moves the node and is an update, not a second join.
  ASSERT_TRUE(store_->UpsertNode(MakeNode("node-b", "https://b2.example", 0), kOperator).ok());
  nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].id, "node-b");
  EXPECT_EQ((*nodes)[0].public_url, "https://b2.example");
  EXPECT_THAT(ActionsFor("node-b"), ElementsAre("node.join", "node.update"));
  auto changes = store_->ChangesSince(seq0, 0);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 3u);
  for (const Change& c : *changes) EXPECT_EQ(c.kind, ChangeKind::kNode);
  EXPECT_EQ((*changes)[2].key, "node-b");
}

TEST_P(StoreConformanceTest, HeartbeatIsNeitherAuditedNorAChange) {
  ASSERT_TRUE(store_->UpsertNode(MakeNode("node-a", "https://a.example", 0), kOperator).ok());
  const size_t audits = AuditCount();
  const int64_t seq = ChangeSeq();
  ASSERT_TRUE(store_->HeartbeatNode("node-a", kT0, R"({"store":"up"})").ok());
  auto nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].heartbeat_ms, kT0);
  EXPECT_EQ((*nodes)[0].health, R"({"store":"up"})");
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(ChangeSeq(), seq);
  EXPECT_EQ(store_->HeartbeatNode("node-x", kT0, "{}").code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, RemoveNodeIsAuditedAndUnknownIsNotFound) {
  ASSERT_TRUE(store_->UpsertNode(MakeNode("node-a", "https://a.example", 0), kOperator).ok());
  ASSERT_TRUE(store_->RemoveNode("node-a", kOperator).ok());
  auto nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_THAT(*nodes, IsEmpty());
  EXPECT_THAT(ActionsFor("node-a"), ElementsAre("node.join", "node.remove"));
  const size_t audits = AuditCount();
  EXPECT_EQ(store_->RemoveNode("node-a", kOperator).code(), StatusCode::kNotFound);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_EQ(store_->UpsertNode(MakeNode("", "https://a.example", 0), kOperator).code(),
            StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, BackendNameAndHealth) {
  EXPECT_EQ(store_->backend(), GetParam());
  StoreHealth h = store_->Health();
  EXPECT_TRUE(h.writable);
  EXPECT_EQ(h.detail, "");
}

// ---- two Store objects on one database (two nodes), racing ----

TEST_P(EnrolmentConformanceTest, OneTokenRacedFromTwoStoresPaysForOneCertificate) {
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  constexpr int kRounds = 10;
  for (int i = 0; i < kRounds; ++i) {
    const std::string dev = "FG-R" + std::to_string(i);
    Add(MakeDevice(dev));
    AddToken("tok-" + std::to_string(i), dev);
  }
  for (int i = 0; i < kRounds; ++i) {
    const std::string dev = "FG-R" + std::to_string(i);
    const auto auth = Auth(EnrolmentKind::kBootstrapToken, "tok-" + std::to_string(i));
    std::vector<Status> results(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      Store* s = t % 2 == 0 ? store_.get() : other.get();
      threads.emplace_back([&results, s, t, i, dev, auth] {
        Certificate c = MakeCurrentCert("R" + std::to_string(i) + "-" + std::to_string(t), dev,
                                        "rk" + std::to_string(i) + "-" + std::to_string(t));
        results[t] = s->RecordIssuedCertificate(c, kOperator, auth).status();
      });
    }
    for (auto& th : threads) th.join();
    int ok = 0;
    for (const Status& st : results) {
      if (st.ok()) {
        ++ok;
      } else {
        EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.ToString();
      }
    }
    EXPECT_EQ(ok, 1) << "round " << i;
    auto certs = other->ListCertificates(dev);
    ASSERT_TRUE(certs.ok());
    EXPECT_EQ(certs->size(), 1u) << "round " << i;
  }
}

TEST_P(StoreConformanceTest, OneKeyRacedFromTwoStoresIsBoundOnce) {
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  for (int d = 0; d < 4; ++d) Add(MakeDevice("FG-K" + std::to_string(d)));
  constexpr int kRounds = 10;
  for (int i = 0; i < kRounds; ++i) {
    std::vector<Status> results(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      Store* s = t % 2 == 0 ? store_.get() : other.get();
      threads.emplace_back([&results, s, t, i] {
        Certificate c = MakeCert("K" + std::to_string(i) + "-" + std::to_string(t), "FG-K" + std::to_string(t),
                                 "shared-" + std::to_string(i));
        results[t] = s->RecordIssuedCertificate(c, kOperator).status();
      });
    }
    for (auto& th : threads) th.join();
    int ok = 0;
    for (const Status& st : results) {
      if (st.ok()) {
        ++ok;
      } else {
        EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.ToString();
      }
    }
    EXPECT_EQ(ok, 1) << "round " << i;
  }
  auto certs = store_->ListCertificates(std::nullopt);
  ASSERT_TRUE(certs.ok());
  EXPECT_EQ(certs->size(), static_cast<size_t>(kRounds));
  std::set<std::string> keys;
  for (const Certificate& c : *certs) keys.insert(c.key_fp);
  EXPECT_EQ(keys.size(), static_cast<size_t>(kRounds));
}

TEST_P(StoreConformanceTest, PollerSeesEveryChangeOnceAndInOrderWhileFourWritersWrite) {
  std::unique_ptr<Store> reader = OpenStore();
  ASSERT_NE(reader, nullptr);
  std::vector<std::unique_ptr<Store>> writers;
  for (int w = 0; w < 4; ++w) {
    writers.push_back(w % 2 == 0 ? nullptr : OpenStore());
  }
  const int64_t start = ChangeSeq();
  constexpr int kPerWriter = 40;
  std::atomic<bool> done{false};
  std::vector<int64_t> seen;
  std::thread poller([&] {
    int64_t last = start;
    for (;;) {
      const bool finished = done.load();
      auto changes = reader->ChangesSince(last, 7);
      ASSERT_TRUE(changes.ok()) << changes.status().ToString();
      for (const Change& c : *changes) {
        seen.push_back(c.seq);
        last = c.seq;
      }
      if (finished && changes->empty()) return;
    }
  });
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    Store* s = writers[w] ? writers[w].get() : store_.get();
    threads.emplace_back([s, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        Block b;
        b.kind = "line";
        b.value = "10." + std::to_string(w) + "." + std::to_string(i) + ".0/24";
        b.created_ms = kT0;
        EXPECT_TRUE(s->AddBlock(b, kOperator).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  poller.join();
  auto all = store_->ChangesSince(start, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<size_t>(4 * kPerWriter));
  std::vector<int64_t> expected;
  for (const Change& c : *all) expected.push_back(c.seq);
  // Exactly once each, in increasing order: none skipped by a poller that
  // moved past it before it committed.
  EXPECT_EQ(seen, expected);
}

TEST_P(StoreConformanceTest, RevocationOnOneStoreIsSeenByTheOtherAtOnce) {
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  auto before = other->GetCertificate("0A");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->status, CertStatus::kValid);
  ASSERT_TRUE(store_->RevokeCertificate("0A", RevocationReason::kKeyCompromise, 0, kOperator).ok());
  auto after = other->GetCertificate("0A");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, CertStatus::kRevoked);
  EXPECT_EQ(after->reason, RevocationReason::kKeyCompromise);
  auto revoked = other->ListRevokedCertificates(kT0);
  ASSERT_TRUE(revoked.ok());
  ASSERT_EQ(revoked->size(), 1u);
  EXPECT_EQ((*revoked)[0].serial, "0A");
}

TEST_P(EnrolmentConformanceTest, ConcurrentIssuancesOfDifferentDevicesAllCommitWithTheirOwnOutcome) {
  // Under group commit, refused issuances share a transaction with accepted
  // ones: each gets its own answer and leaves nothing behind.
  constexpr int kDevices = 16;
  for (int i = 0; i < kDevices; ++i) {
    Add(MakeDevice("FG-G" + std::to_string(i)));
    AddToken("gt-" + std::to_string(i), "FG-G" + std::to_string(i));
  }
  std::vector<Status> results(kDevices);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDevices; ++i) {
    threads.emplace_back([this, &results, i] {
      // Odd devices present a token of another device: refused.
      const int tok = i % 2 == 0 ? i : (i + 1) % kDevices;
      Certificate c = MakeCurrentCert("G" + std::to_string(i), "FG-G" + std::to_string(i), "gk" + std::to_string(i));
      results[i] = store_->RecordIssuedCertificate(c, kOperator, Auth(EnrolmentKind::kBootstrapToken,
                                                                      "gt-" + std::to_string(tok))).status();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kDevices; ++i) {
    auto token = store_->GetBootstrapToken("gt-" + std::to_string(i));
    ASSERT_TRUE(token.ok());
    auto cert = store_->GetCertificate("G" + std::to_string(i));
    if (i % 2 == 0) {
      EXPECT_TRUE(results[i].ok()) << results[i].ToString();
      EXPECT_TRUE(cert.ok());
      EXPECT_NE(token->used_ms, 0) << i;
    } else {
      EXPECT_EQ(results[i].code(), StatusCode::kPermissionDenied) << results[i].ToString();
      EXPECT_EQ(cert.status().code(), StatusCode::kNotFound);
      auto dev = store_->GetDevice("FG-G" + std::to_string(i));
      ASSERT_TRUE(dev.ok());
      EXPECT_EQ(dev->status, DeviceStatus::kProvisioned);
    }
  }
}

TEST_P(StoreConformanceTest, WaitForChangeWakesOnAChangeFromAnotherStore) {
  // PostgreSQL wakes the waiter (LISTEN/NOTIFY); SQLite has no
  // notification: its WaitForChange sleeps for the timeout and never longer,
  // and the caller then reads the change.
  const bool notifies = GetParam() == "postgresql";
  const int timeout_ms = notifies ? 10000 : 300;
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  const int64_t seq = ChangeSeq();
  other->WaitForChange(seq, 50);  // the first call only sets up the listener
  std::atomic<bool> written{false};
  std::thread writer([&] {
    // Written while the waiter waits: poll until it is waiting is not
    // observable, so write repeatedly until the waiter returns.
    for (int i = 0; i < 200 && !written.load(); ++i) {
      Add(MakeDevice("FG-W" + std::to_string(i)));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  other->WaitForChange(seq, timeout_ms);
  const auto waited = std::chrono::steady_clock::now() - t0;
  written = true;
  writer.join();
  if (notifies) {
    EXPECT_LT(waited, std::chrono::seconds(5));
  } else {
    EXPECT_GE(waited, std::chrono::milliseconds(timeout_ms - 50));
    EXPECT_LT(waited, std::chrono::seconds(3));
  }
  auto latest = other->LatestChangeSeq();
  ASSERT_TRUE(latest.ok());
  EXPECT_GT(*latest, seq);
}

TEST_P(StoreConformanceTest, FourProcessesOpeningAFreshStoreAtOnceMigrateItOnce) {
  // Four stores (as four nodes starting together) open a store nobody has
  // migrated yet: every one opens, and the schema is applied once.
  std::string url;
  if (GetParam() == "sqlite") {
    url = "sqlite:" + (dir_ / "fresh.db").string();
  } else {
    auto db = SharedPgServer()->CreateDatabase("fresh");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    url = SharedPgServer()->Url(*db);
  }
  std::vector<Status> opened(4);
  std::vector<std::unique_ptr<Store>> stores(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&opened, &stores, &url, i] {
      auto s = Store::Open(url);
      opened[i] = s.status();
      if (s.ok()) stores[i] = std::move(s).value();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(opened[i].ok()) << opened[i].ToString();
  ASSERT_TRUE(stores[0]->AddDevice(MakeDevice("FG-1"), kOperator).ok());
  auto seen = stores[3]->GetDevice("FG-1");
  EXPECT_TRUE(seen.ok()) << seen.status().ToString();
  auto changes = stores[2]->ChangesSince(0, 0);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].seq, 1);
}

std::string BackendName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }
INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values("sqlite", "postgresql"), BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, EnrolmentConformanceTest, ::testing::Values("sqlite", "postgresql"), BackendName);

}  // namespace
}  // namespace fg
