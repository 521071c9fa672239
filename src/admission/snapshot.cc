#include "admission/snapshot.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace fg::admission {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool IsNormalSerial(std::string_view s) {
  if (s.empty() || (s[0] == '0' && s.size() > 1)) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

bool IsNormalFingerprint(std::string_view s) {
  if (s.size() <= 7 || s.substr(0, 7) != "sha256:") return false;
  for (char c : s.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NormalizeSerial(std::string_view serial) {
  std::string out;
  out.reserve(serial.size());
  if (serial.size() > 2 && serial[0] == '0' && (serial[1] == 'x' || serial[1] == 'X')) serial.remove_prefix(2);
  for (char c : serial) {
    if (c == ':' || c == ' ') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  size_t nz = out.find_first_not_of('0');
  if (nz == std::string::npos) return out.empty() ? out : "0";
  return out.substr(nz);
}

std::string NormalizeFingerprint(std::string_view fp) {
  std::string s = Lower(fp);
  if (s.rfind("sha256:", 0) != 0) s = "sha256:" + s;
  s.erase(std::remove(s.begin() + 7, s.end(), ':'), s.end());
  return s;
}

Result<std::unique_ptr<Snapshot>> Snapshot::Load(SnapshotSources store) {
  auto snap = std::make_unique<Snapshot>();
  FG_ASSIGN_OR_RETURN(std::vector<Device> devices, store.devices.ListDevices({}));
  snap->devices_.reserve(devices.size());
  for (const Device& d : devices) snap->PutDevice(d);
  devices.clear();
  devices.shrink_to_fit();
  FG_ASSIGN_OR_RETURN(std::vector<Certificate> certs, store.certs.ListCertificates(std::nullopt));
  snap->certs_by_serial_.reserve(certs.size());
  for (const Certificate& c : certs) snap->PutCert(c);
  FG_ASSIGN_OR_RETURN(std::vector<Endpoint> endpoints, store.endpoints.ListEndpoints());
  snap->SetEndpoints(endpoints);
  FG_ASSIGN_OR_RETURN(std::vector<Block> blocks, store.blocks.ListBlocks());
  snap->SetBlocks(blocks);
  return snap;
}

void Snapshot::PutDevice(const Device& d) {
  auto v = std::make_unique<DeviceView>();
  v->id = d.id;
  v->status = d.status;
  v->site = d.site;
  for (const std::string& p : d.prefixes) {
    if (auto prefix = ParseIpPrefix(p)) {
      v->prefixes.push_back(*prefix);
      v->prefix_text.push_back(p);
    }
  }
  v->cert_fp = d.cert_fp.empty() ? std::string() : NormalizeFingerprint(d.cert_fp);
  v->created_ms = d.created_ms;
  v->store_seen_ms.store(d.last_seen_ms, std::memory_order_relaxed);
  v->seen_ms.store(std::max(d.last_seen_ms, d.created_ms), std::memory_order_relaxed);
  auto it = devices_.find(d.id);
  if (it != devices_.end()) {
    UnixMillis old_seen = it->second->seen_ms.load(std::memory_order_relaxed);
    if (old_seen > v->seen_ms.load(std::memory_order_relaxed)) v->seen_ms.store(old_seen, std::memory_order_relaxed);
    const std::string& old_fp = it->second->cert_fp;
    if (!old_fp.empty()) {
      auto owner = registered_fp_owner_.find(old_fp);
      if (owner != registered_fp_owner_.end() && owner->second == d.id) registered_fp_owner_.erase(owner);
    }
    it->second = std::move(v);
  } else {
    it = devices_.emplace(d.id, std::move(v)).first;
  }
  if (!it->second->cert_fp.empty()) registered_fp_owner_[it->second->cert_fp] = d.id;
}

void Snapshot::PutCert(const Certificate& c) {
  CertView v;
  v.serial = NormalizeSerial(c.serial);
  v.device = c.device;
  v.cert_fp = NormalizeFingerprint(c.cert_fp);
  v.status = c.status;
  v.not_before_ms = c.not_before_ms;
  v.not_after_ms = c.not_after_ms;
  std::string fp = v.cert_fp;
  CertView& slot = certs_by_serial_[v.serial];
  if (!slot.cert_fp.empty() && slot.cert_fp != fp) cert_by_fp_.erase(slot.cert_fp);
  slot = std::move(v);
  cert_by_fp_[fp] = &slot;
}

void Snapshot::SetEndpoints(const std::vector<Endpoint>& eps) {
  endpoints_.clear();
  for (const Endpoint& e : eps) endpoints_.push_back({e.address, ParseEndpointKey(e.address), e.status});
}

void Snapshot::SetBlocks(const std::vector<Block>& blocks) {
  device_blocks_.clear();
  line_blocks_.clear();
  for (const Block& b : blocks) {
    BlockView v{b.kind, b.value, b.alert_id, std::nullopt};
    if (b.kind == "device") {
      device_blocks_[b.value] = std::move(v);
    } else if (b.kind == "line") {
      v.line = ParseIpPrefix(b.value);
      if (v.line) line_blocks_.push_back(std::move(v));
    }
  }
}

Status Snapshot::ApplyDevice(DeviceRegistry& devices, CertificateLedger& certs_ledger, std::string_view id) {
  auto d = devices.GetDevice(id);
  if (!d.ok() && !d.status().IsNotFound()) {
    stale_devices_.emplace(id);
    return d.status();
  }
  auto certs = certs_ledger.ListCertificates(id);
  if (!certs.ok()) {
    stale_devices_.emplace(id);
    return certs.status();
  }
  if (d.ok()) {
    PutDevice(*d);
  } else if (auto it = devices_.find(id); it != devices_.end()) {
    auto owner = registered_fp_owner_.find(it->second->cert_fp);
    if (owner != registered_fp_owner_.end() && owner->second == id) registered_fp_owner_.erase(owner);
    devices_.erase(it);
  }
  for (const Certificate& c : *certs) PutCert(c);
  if (auto it = stale_devices_.find(id); it != stale_devices_.end()) stale_devices_.erase(it);
  return Status::Ok();
}

Status Snapshot::ApplyCertificate(CertificateLedger& store, std::string_view serial) {
  std::string key = NormalizeSerial(serial);
  auto c = store.GetCertificate(serial);
  if (!c.ok()) {
    if (c.status().IsNotFound()) {
      if (auto it = certs_by_serial_.find(key); it != certs_by_serial_.end()) {
        cert_by_fp_.erase(it->second.cert_fp);
        certs_by_serial_.erase(it);
      }
      stale_certs_.erase(key);
      return Status::Ok();
    }
    stale_certs_.insert(key);
    return c.status();
  }
  PutCert(*c);
  stale_certs_.erase(key);
  return Status::Ok();
}

Status Snapshot::ReloadEndpoints(EndpointRegistry& store) {
  auto eps = store.ListEndpoints();
  if (!eps.ok()) {
    endpoints_stale_ = true;
    return eps.status();
  }
  SetEndpoints(*eps);
  endpoints_stale_ = false;
  return Status::Ok();
}

Status Snapshot::ReloadBlocks(ResponseLedger& store) {
  auto blocks = store.ListBlocks();
  if (!blocks.ok()) {
    blocks_stale_ = true;
    return blocks.status();
  }
  SetBlocks(*blocks);
  blocks_stale_ = false;
  return Status::Ok();
}

const DeviceView* Snapshot::FindDevice(std::string_view id) const {
  auto it = devices_.find(id);
  return it == devices_.end() ? nullptr : it->second.get();
}

const CertView* Snapshot::FindCertBySerial(std::string_view serial) const {
  auto it = certs_by_serial_.find(serial);
  return it == certs_by_serial_.end() ? nullptr : &it->second;
}

const CertView* Snapshot::FindCertByFp(std::string_view fp) const {
  auto it = cert_by_fp_.find(fp);
  return it == cert_by_fp_.end() ? nullptr : it->second;
}

const std::string* Snapshot::RegisteredFpOwner(std::string_view fp) const {
  auto it = registered_fp_owner_.find(fp);
  return it == registered_fp_owner_.end() ? nullptr : &it->second;
}

const BlockView* Snapshot::DeviceBlock(std::string_view device) const {
  auto it = device_blocks_.find(device);
  if (it != device_blocks_.end()) return &it->second;
  if (pending_device_blocks_.empty()) return nullptr;
  it = pending_device_blocks_.find(device);
  return it == pending_device_blocks_.end() ? nullptr : &it->second;
}

const BlockView* Snapshot::LineBlock(const IpAddr& ip) const {
  for (const BlockView& b : line_blocks_) {
    if (b.line->Contains(ip)) return &b;
  }
  return nullptr;
}

}  // namespace fg::admission
