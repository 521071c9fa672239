#include "node/segw_subscribers.h"

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "segw/vici_segw.h"

namespace fg {
namespace {

class SegwCutOff final : public ChangeSubscriber {
 public:
  SegwCutOff(DeviceRegistry& devices, CertificateLedger& certs, ResponseLedger& responses,
             admission::SessionTerminator& segw)
      : devices_(devices), certs_(certs), responses_(responses), segw_(segw) {}

  std::string_view name() const override { return "segw-cut-off"; }

  Status OnChanges(std::span<const Change> changes) override {
    for (const Change& c : changes) TerminateIfCutOff(c);
    return Status::Ok();
  }

 private:
  void TerminateIfCutOff(const Change& c) {
    std::string device;
    std::string why;
    switch (c.kind) {
      case ChangeKind::kDevice: {
        auto d = devices_.GetDevice(c.key);
        if (d.ok() && d->status != DeviceStatus::kActive) {
          device = d->id;
          why = "device " + std::string(DeviceStatusName(d->status));
        }
        break;
      }
      case ChangeKind::kCertificate: {
        auto cert = certs_.GetCertificate(c.key);
        if (cert.ok() && cert->status != CertStatus::kValid) {
          device = cert->device;
          why = "certificate " + cert->serial + (cert->status == CertStatus::kHold ? " on hold" : " revoked");
        }
        break;
      }
      case ChangeKind::kBlock:
        if (c.key.rfind("device:", 0) == 0) {
          auto blocks = responses_.ListBlocks();
          std::string id = c.key.substr(7);
          if (blocks.ok() && std::any_of(blocks->begin(), blocks->end(),
                                         [&](const Block& b) { return b.kind == "device" && b.value == id; })) {
            device = id;
            why = "blocked";
          }
        }
        break;
      case ChangeKind::kAlert: {
        auto a = responses_.GetAlert(c.key);
        if (a.ok() && std::find(a->actions_done.begin(), a->actions_done.end(), "terminate") != a->actions_done.end()) {
          device = a->device;
          why = "alert " + a->id;
        }
        break;
      }
      default:
        break;
    }
    if (device.empty()) return;
    int n = segw_.TerminateDevice(device, why);
    if (n > 0) spdlog::info("terminated {} session(s) of {}: {}", n, device, why);
  }

  DeviceRegistry& devices_;
  CertificateLedger& certs_;
  ResponseLedger& responses_;
  admission::SessionTerminator& segw_;
};

class SegwOcspFlush final : public ChangeSubscriber {
 public:
  explicit SegwOcspFlush(segw::ViciSegw& vici) : vici_(vici) {}
  std::string_view name() const override { return "segw-ocsp-flush"; }
  Status OnChanges(std::span<const Change> changes) override {
    const bool status_changed = std::any_of(changes.begin(), changes.end(), [](const Change& c) {
      return c.kind == ChangeKind::kCertificate || c.kind == ChangeKind::kDevice;
    });
    if (!status_changed) return Status::Ok();
    return vici_.FlushOcspCache();  // an error: logged and counted by the follower
  }

 private:
  segw::ViciSegw& vici_;
};

}  // namespace

std::unique_ptr<ChangeSubscriber> MakeSegwCutOff(DeviceRegistry& devices, CertificateLedger& certs,
                                                 ResponseLedger& responses, admission::SessionTerminator& segw) {
  return std::make_unique<SegwCutOff>(devices, certs, responses, segw);
}

std::unique_ptr<ChangeSubscriber> MakeSegwOcspFlush(segw::ViciSegw& vici) {
  return std::make_unique<SegwOcspFlush>(vici);
}

}  // namespace fg
