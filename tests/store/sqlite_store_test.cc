#include "store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

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

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fg-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    url_ = "sqlite:" + (dir_ / "store.db").string();
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

// ---- names and the factory ----

TEST(StoreNamesTest, RevocationReasonNamesRoundTrip) {
  for (auto r : {RevocationReason::kUnspecified, RevocationReason::kKeyCompromise,
                 RevocationReason::kCaCompromise, RevocationReason::kAffiliationChanged,
                 RevocationReason::kSuperseded, RevocationReason::kCessationOfOperation,
                 RevocationReason::kCertificateHold, RevocationReason::kPrivilegeWithdrawn,
                 RevocationReason::kAaCompromise}) {
    auto parsed = ParseRevocationReason(RevocationReasonName(r));
    ASSERT_TRUE(parsed.ok()) << RevocationReasonName(r);
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(RevocationReasonName(RevocationReason::kKeyCompromise), "keyCompromise");
}

TEST(StoreNamesTest, ParseRevocationReasonAcceptsCaseVariants) {
  for (const char* s : {"keyCompromise", "key-compromise", "key_compromise", "KEY_COMPROMISE"}) {
    auto r = ParseRevocationReason(s);
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(*r, RevocationReason::kKeyCompromise) << s;
  }
  EXPECT_EQ(*ParseRevocationReason("hold"), RevocationReason::kCertificateHold);
  EXPECT_EQ(*ParseRevocationReason("certificate-hold"), RevocationReason::kCertificateHold);
  EXPECT_EQ(*ParseRevocationReason("cessation_of_operation"),
            RevocationReason::kCessationOfOperation);
  EXPECT_EQ(*ParseRevocationReason("ca-compromise"), RevocationReason::kCaCompromise);
  auto bad = ParseRevocationReason("stolen");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("keyCompromise"));
  EXPECT_FALSE(ParseRevocationReason("").ok());
}

TEST(StoreNamesTest, CertStatusNames) {
  EXPECT_EQ(CertStatusName(CertStatus::kValid), "valid");
  EXPECT_EQ(CertStatusName(CertStatus::kHold), "hold");
  EXPECT_EQ(CertStatusName(CertStatus::kRevoked), "revoked");
}

TEST(StoreOpenTest, UnsupportedSchemesAreRefusedWithoutEchoingCredentials) {
  auto pg = Store::Open("postgres://admin:s3cret@db.example/fg");
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(pg.status().message(), HasSubstr("sqlite:"));
  EXPECT_THAT(pg.status().message(), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_FALSE(Store::Open("/tmp/x.db").ok());
  EXPECT_FALSE(Store::Open("sqlite:").ok());
}

TEST(StoreOpenTest, MissingDirectoryIsAnError) {
  auto s = Store::Open("sqlite:/nonexistent-fg-dir/sub/store.db");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("/nonexistent-fg-dir/sub/store.db"));
}

// ---- devices ----

TEST_F(SqliteStoreTest, AddGetListAndFilterDevices) {
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

TEST_F(SqliteStoreTest, DuplicateDeviceIdIsRefusedAndChangesNothing) {
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

TEST_F(SqliteStoreTest, InvalidDeviceIdIsRefused) {
  EXPECT_EQ(store_->AddDevice(MakeDevice("bad id/x"), kOperator).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AuditCount(), 0u);
}

TEST_F(SqliteStoreTest, UpdateAttributesNeverChangesStatus) {
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

TEST_F(SqliteStoreTest, AllowedLifecycleTransitions) {
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

TEST_F(SqliteStoreTest, RefusedTransitionsChangeNothing) {
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

TEST_F(SqliteStoreTest, SuspendHoldsCertificatesAndReactivateReleasesThem) {
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

TEST_F(SqliteStoreTest, DecommissionRevokesValidAndHeldCertificates) {
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

TEST_F(SqliteStoreTest, TouchDeviceOnlyMovesForwardAndIsNotAudited) {
  Add(MakeDevice("FG-1"));
  const size_t audits = AuditCount();
  ASSERT_TRUE(store_->TouchDevice("FG-1", kT0).ok());
  ASSERT_TRUE(store_->TouchDevice("FG-1", kT0 - 1000).ok());
  EXPECT_EQ(store_->GetDevice("FG-1")->last_seen_ms, kT0);
  EXPECT_EQ(AuditCount(), audits);
  EXPECT_TRUE(store_->TouchDevice("FG-404", kT0).IsNotFound());
}

// ---- issuance ----

TEST_F(SqliteStoreTest, IssuanceActivatesProvisionedDevice) {
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

TEST_F(SqliteStoreTest, NewCertificateSupersedesThePreviousOne) {
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

TEST_F(SqliteStoreTest, KeyBoundToAnotherDeviceIsRefused) {
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

TEST_F(SqliteStoreTest, KeyOfAnEarlierCertificateIsRefusedEvenAfterRevocation) {
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

TEST_F(SqliteStoreTest, DuplicateSerialIsRefused) {
  Add(MakeDevice("FG-1"));
  Issue(MakeCert("0A", "FG-1", "k1"));
  auto r = store_->RecordIssuedCertificate(MakeCert("0A", "FG-1", "k2"), kOperator);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("serial 0A"));
  EXPECT_EQ(*store_->FindKeyOwner("sha256:k2"), std::nullopt);
}

TEST_F(SqliteStoreTest, InactiveOrUnknownDevicesGetNoCertificate) {
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

TEST_F(SqliteStoreTest, RevocationRules) {
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

TEST_F(SqliteStoreTest, RevokedListExcludesExpiredCertificates) {
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

TEST_F(SqliteStoreTest, AuditRecordsWhoAndWhy) {
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

TEST_F(SqliteStoreTest, AppendAuditIsNotAChange) {
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

TEST_F(SqliteStoreTest, ChangeFeedIsOrdered) {
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

TEST_F(SqliteStoreTest, DataPersistsAcrossReopen) {
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

TEST_F(SqliteStoreTest, TwoInstancesOnOneFileSeeEachOthersWrites) {
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

TEST_F(SqliteStoreTest, NextCounterIncrementsPerName) {
  EXPECT_EQ(*store_->NextCounter("crl"), 1);
  EXPECT_EQ(*store_->NextCounter("crl"), 2);
  EXPECT_EQ(*store_->NextCounter("delta-crl"), 1);
  EXPECT_EQ(*store_->NextCounter("crl"), 3);
  EXPECT_EQ(store_->NextCounter("").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, ConcurrentCountersAcrossInstancesNeverRepeat) {
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

}  // namespace
}  // namespace fg
