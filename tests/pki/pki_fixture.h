#pragma once

// A CA and a SQLite store in a temp dir, for pki unit tests.

#include <gtest/gtest.h>

#include <memory>

#include "common/config.h"
#include "common/ossl.h"
#include "pki/ca.h"
#include "pki/issuance.h"
#include "store/store.h"
#include "testing/harness.h"

namespace fg {

class PkiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<DataDir>(tmp_.path());
    config_.cert_default_validity_days = 30;
    config_.cert_max_validity_days = 90;
    CertificateAuthority::UseFastKdfForTest(true);  // a CA per test: scrypt would cost ~1 s each
    ASSERT_TRUE(CertificateAuthority::Create(*dir_, config_, "test-passphrase").ok());
    auto ca = CertificateAuthority::Load(*dir_, config_, "test-passphrase");
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::move(ca).value();
    auto store = Store::Open("sqlite:" + (tmp_.path() / "store.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    policy_ = std::make_unique<IssuancePolicy>(*store_, *ca_);
  }

  void AddDevice(const std::string& id, DeviceStatus status = DeviceStatus::kActive) {
    Device d;
    d.id = id;
    d.status = status;
    ASSERT_TRUE(store_->AddDevice(d, {"test", "setup"}).ok());
  }

  static ossl::EvpPkeyPtr NewKey() { return std::move(ossl::GenerateP256Key()).value(); }

  IssueRequest Request(const std::string& device, int days = 0) {
    IssueRequest r;
    r.device = device;
    r.validity_days = days;
    r.audit = {"test", "unit test"};
    return r;
  }

  testing::TempDir tmp_;
  Config config_;
  std::unique_ptr<DataDir> dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<IssuancePolicy> policy_;
};

}  // namespace fg
