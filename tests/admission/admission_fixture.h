#pragma once

// Fixtures for the admission tests: a real SQLite store and CA in a temp dir
// (certificates issued by the real issuance policy), devices, endpoints, and
// an Engine built on them; a Store wrapper that fails on demand.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "admission/engine.h"
#include "common/config.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "pki/issuance.h"
#include "store/store.h"
#include "testing/harness.h"

namespace fg::admission {

// Delegates to `inner`; every method fails with Unavailable while `fail` is set.
class FailingStore final : public Store {
 public:
  explicit FailingStore(Store& s) : inner(s) {}
  Store& inner;
  std::atomic<bool> fail{false};
  using CertificateLedger::RecordIssuedCertificate;

  Status AddDevice(const Device& device, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddDevice(device, audit);
  }
  Status UpdateDeviceAttributes(const Device& device, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.UpdateDeviceAttributes(device, audit);
  }
  Status ImportDevices(const std::vector<DeviceImport>& plan, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ImportDevices(plan, audit);
  }
  Result<Device> GetDevice(std::string_view id) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.GetDevice(id);
  }
  Result<std::vector<Device>> ListDevices(const DeviceFilter& filter) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListDevices(filter);
  }
  Result<DeviceTransition> SetDeviceStatus(std::string_view id, DeviceStatus to, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.SetDeviceStatus(id, to, audit);
  }
  Status TouchDevice(std::string_view id, UnixMillis when) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.TouchDevice(id, when);
  }
  Result<size_t> TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.TouchDevices(seen);
  }
  Result<std::optional<std::string>> FindKeyOwner(std::string_view key_fp) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.FindKeyOwner(key_fp);
  }
  Result<std::vector<std::string>> RecordIssuedCertificate( const Certificate& cert, const AuditContext& audit, const EnrolmentAuthorization& auth) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RecordIssuedCertificate(cert, audit, auth);
  }
  Result<Certificate> GetCertificate(std::string_view serial) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.GetCertificate(serial);
  }
  Result<std::vector<Certificate>> ListCertificates(std::optional<std::string_view> device) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListCertificates(device);
  }
  Status RevokeCertificate(std::string_view serial, RevocationReason reason, UnixMillis when, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RevokeCertificate(serial, reason, when, audit);
  }
  Result<std::vector<Certificate>> ListRevokedCertificates(UnixMillis now) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListRevokedCertificates(now);
  }
  Status AddBootstrapToken(const BootstrapToken& token, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddBootstrapToken(token, audit);
  }
  Result<BootstrapToken> GetBootstrapToken(std::string_view ref) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.GetBootstrapToken(ref);
  }
  Result<std::optional<std::string>> FindVendorCertificateUse(std::string_view vendor_cert_fp) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.FindVendorCertificateUse(vendor_cert_fp);
  }
  Status AddVendorCa(const VendorCa& ca, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddVendorCa(ca, audit);
  }
  Status RemoveVendorCa(std::string_view fp, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RemoveVendorCa(fp, audit);
  }
  Result<std::vector<VendorCa>> ListVendorCas() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListVendorCas();
  }
  Status AddLegacyCredential(const LegacyCredential& cred, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddLegacyCredential(cred, audit);
  }
  Result<std::vector<LegacyCredential>> ListLegacyCredentials() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListLegacyCredentials();
  }
  Result<bool> LegacyCredentialUsed(std::string_view fp, std::string_view device) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.LegacyCredentialUsed(fp, device);
  }
  Status AddEndpoint(const Endpoint& endpoint, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddEndpoint(endpoint, audit);
  }
  Status SetEndpointStatus(std::string_view address, EndpointStatus status, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.SetEndpointStatus(address, status, audit);
  }
  Result<std::vector<Endpoint>> ListEndpoints() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListEndpoints();
  }
  Status AddApiToken(const ApiToken& token, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddApiToken(token, audit);
  }
  Result<std::optional<ApiToken>> FindApiTokenByHash(std::string_view hash) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.FindApiTokenByHash(hash);
  }
  Result<std::vector<ApiToken>> ListApiTokens() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListApiTokens();
  }
  Status RevokeApiToken(std::string_view id, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RevokeApiToken(id, audit);
  }
  Status AddBlock(const Block& block, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddBlock(block, audit);
  }
  Status RemoveBlock(std::string_view kind, std::string_view value, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RemoveBlock(kind, value, audit);
  }
  Result<std::vector<Block>> ListBlocks() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListBlocks();
  }
  Result<bool> AddAlert(const StoredAlert& alert, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AddAlert(alert, audit);
  }
  Result<StoredAlert> GetAlert(std::string_view id) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.GetAlert(id);
  }
  Result<std::vector<StoredAlert>> ListAlerts(const AlertFilter& filter) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListAlerts(filter);
  }
  Status UpdateAlert(const StoredAlert& alert, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.UpdateAlert(alert, audit);
  }
  Status AppendAudit(const AuditEntry& entry) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.AppendAudit(entry);
  }
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListAudit(filter);
  }
  Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ChangesSince(after, limit);
  }
  Result<int64_t> LatestChangeSeq() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.LatestChangeSeq();
  }
  Result<int64_t> NextCounter(std::string_view name) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.NextCounter(name);
  }
  Status UpsertNode(const NodeInfo& node, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.UpsertNode(node, audit);
  }
  Status HeartbeatNode(std::string_view id, UnixMillis when, std::string_view health) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.HeartbeatNode(id, when, health);
  }
  Result<std::vector<NodeInfo>> ListNodes() override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.ListNodes();
  }
  Status RemoveNode(std::string_view id, const AuditContext& audit) override {
    if (fail) return Status::Unavailable("store down (test)");
    return inner.RemoveNode(id, audit);
  }
  std::string_view backend() const override { return "failing"; }
  StoreHealth Health() override {
    if (fail) return StoreHealth{false, "store down (test)"};
    return inner.Health();
  }
};

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<DataDir>(tmp_.path());
    CertificateAuthority::UseFastKdfForTest(true);  // a CA per test: scrypt would cost ~1 s each
    ASSERT_TRUE(CertificateAuthority::Create(*dir_, config_, "test-passphrase").ok());
    auto ca = CertificateAuthority::Load(*dir_, config_, "test-passphrase");
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::move(ca).value();
    auto store = Store::Open("sqlite:" + (tmp_.path() / "store.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    issuance_ = std::make_unique<IssuancePolicy>(*store_, *ca_);
    policy_.time_budget_ms = 0;  // no timing in functional tests (sanitizers, loaded CI)
  }

  // An active device with a certificate (a provisioned one becomes active
  // when its first certificate is issued).
  Certificate AddActiveDevice(const std::string& id, std::vector<std::string> prefixes = {},
                              std::optional<Site> site = std::nullopt) {
    Device d;
    d.id = id;
    d.status = DeviceStatus::kProvisioned;
    d.owner = "acct-" + id;
    d.prefixes = std::move(prefixes);
    d.site = site;
    EXPECT_TRUE(store_->AddDevice(d, {"test", "setup"}).ok());
    return Issue(id);
  }

  void AddDevice(const std::string& id, DeviceStatus status) {
    Device d;
    d.id = id;
    d.status = status;
    EXPECT_TRUE(store_->AddDevice(d, {"test", "setup"}).ok());
  }

  Certificate Issue(const std::string& id) {
    IssueRequest r;
    r.device = id;
    r.audit = {"test", "issue"};
    auto key = ossl::GenerateP256Key();
    EXPECT_TRUE(key.ok());
    auto issued = issuance_->IssueForKey(r, key->get());
    EXPECT_TRUE(issued.ok()) << issued.status().ToString();
    return issued.ok() ? issued->record : Certificate{};
  }

  void AddEndpoint(const std::string& address, EndpointStatus status = EndpointStatus::kActive) {
    Endpoint e;
    e.address = address;
    e.status = EndpointStatus::kActive;
    e.created_ms = e.updated_ms = NowMillis();
    ASSERT_TRUE(store_->AddEndpoint(e, {"test", "setup"}).ok());
    if (status != EndpointStatus::kActive) {
      ASSERT_TRUE(store_->SetEndpointStatus(address, status, {"test", "setup"}).ok());
    }
  }

  std::string LogPath() const { return (tmp_.path() / "log" / "admission.jsonl").string(); }

  std::unique_ptr<Engine> MakeEngine(Store* store = nullptr, EngineOptions options = {}) {
    if (options.decision_log_path.empty()) options.decision_log_path = LogPath();
    auto e = Engine::Create(store ? *store : *store_, policy_, std::move(options));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return nullptr;
    last_seq_ = LatestSeq();
    return std::move(e).value();
  }

  int64_t LatestSeq() {
    auto s = store_->LatestChangeSeq();
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : 0;
  }

  // What the node does: every change-feed row since the last call goes to Apply.
  void Feed(Engine& engine) {
    auto changes = store_->ChangesSince(last_seq_, 100000);
    ASSERT_TRUE(changes.ok()) << changes.status().ToString();
    for (const Change& c : *changes) {
      EXPECT_TRUE(engine.Apply(c).ok()) << c.key;
      last_seq_ = c.seq;
    }
  }

  static AdmissionRequest Request(const std::string& device, const Certificate& cert, const std::string& src_ip,
                                  const std::string& session = "1", const std::string& endpoint = "segw1.example.net:4500") {
    AdmissionRequest r;
    r.device = device;
    r.session = session;
    r.serial = cert.serial;
    r.cert_fp = cert.cert_fp;
    r.src_ip = src_ip;
    r.endpoint = endpoint;
    r.segw = "segw-a";
    return r;
  }

  static std::string Evidence(const Decision& d, const std::string& key) {
    for (const auto& [k, v] : d.evidence) {
      if (k == key) return v;
    }
    return "<absent>";
  }

  testing::TempDir tmp_;
  Config config_;
  std::unique_ptr<DataDir> dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<IssuancePolicy> issuance_;
  AdmissionPolicy policy_;
  int64_t last_seq_ = 0;
};

}  // namespace fg::admission
