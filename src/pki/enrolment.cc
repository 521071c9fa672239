#include "pki/enrolment.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/net.h"
#include "common/security_log.h"

namespace fg {

std::string_view RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kUntrusted:
      return "untrusted";
    case RefusalReason::kProtection:
      return "protection";
    case RefusalReason::kTokenUnknown:
      return "token_unknown";
    case RefusalReason::kTokenUsed:
      return "token_used";
    case RefusalReason::kTokenExpired:
      return "token_expired";
    case RefusalReason::kTokenRevoked:
      return "token_revoked";
    case RefusalReason::kTokenSecret:
      return "token_secret";
    case RefusalReason::kBadIdentifier:
      return "bad_identifier";
    case RefusalReason::kCertRefused:
      return "cert_refused";
    case RefusalReason::kSubjectMismatch:
      return "subject_mismatch";
    case RefusalReason::kPolicy:
      return "policy";
    case RefusalReason::kClientError:
      return "client_error";
    case RefusalReason::kMalformed:
      return "malformed";
    case RefusalReason::kRateLimited:
      return "rate_limited";
    case RefusalReason::kSecurityEvent:
      return "security_event";
    case RefusalReason::kOther:
      return "other";
  }
  return "other";
}

namespace {

// The aggregation key of a source address: IPv4 as is, IPv6 by its /64 (one
// subscriber line gets a whole /64, and rotating within it must not buy a
// fresh budget). Anything unparsable is its own (escaped, bounded) key.
std::string SourceKey(const std::string& ip) {
  if (ip.empty()) return "unknown";
  unsigned char buf[16];
  if (ip.find(':') != std::string::npos && inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char out[INET6_ADDRSTRLEN];
    if (std::memcmp(buf, kMapped, sizeof kMapped) == 0) {
      inet_ntop(AF_INET, buf + 12, out, sizeof out);
      return out;
    }
    std::memset(buf + 8, 0, 8);
    inet_ntop(AF_INET6, buf, out, sizeof out);
    return std::string(out) + "/64";
  }
  return Printable(ip, 64);
}

constexpr UnixMillis kMinuteMs = 60 * 1000;
constexpr size_t kDevicesKept = 5;

}  // namespace

// The per-source, per-minute aggregation of refusals (see enrolment.h).
// Thread-safe: state under mu_; store writes by one flusher at a time
// (flush_mu_), outside mu_, so a throttled request never waits on SQLite.
class Enrolment::RefusalLog {
 public:
  explicit RefusalLog(Store& store) : store_(store) {}
  ~RefusalLog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    Flush();
  }

  void SetClock(std::function<UnixMillis()> clock) {
    std::lock_guard lock(mu_);
    clock_ = std::move(clock);
  }

  // Counts one refusal; true when it may have its own alert row.
  bool Add(RefusalReason reason, bool security_event, const std::string& device,
           const std::string& why, const std::string& protocol, const std::string& source_ip) {
    bool own_row = false;
    {
      std::lock_guard lock(mu_);
      Window& w = WindowFor(source_ip);
      Count(w, reason, protocol, device, why);
      if (security_event) {
        if (w.alert_rows < kAlertRowsPerMinute) {
          ++w.alert_rows;
          own_row = true;
        } else {
          ++w.alerts_folded;
        }
      }
      EnsureFlusher();
    }
    cv_.notify_all();
    return own_row;
  }

  // False (and counted) when the source is over its budget this minute.
  bool Allow(const std::string& source_ip, const std::string& protocol) {
    {
      std::lock_guard lock(mu_);
      Window& w = WindowFor(source_ip);
      if (w.count < kRefusalsPerMinute) return true;
      Count(w, RefusalReason::kRateLimited, protocol, {}, {});
      EnsureFlusher();
    }
    cv_.notify_all();
    return false;
  }

  int RetryAfterSeconds() {
    std::lock_guard lock(mu_);
    UnixMillis now = clock_();
    return static_cast<int>((kMinuteMs - now % kMinuteMs + 999) / 1000);
  }

  void Flush() {
    std::lock_guard flush_lock(flush_mu_);
    struct Pending {
      std::string key;  // empty for a closed window
      int64_t minute;
      AuditEntry entry;
      uint64_t count;
      std::optional<Window> closed;  // kept to retry it
    };
    std::vector<Pending> pending;
    {
      std::lock_guard lock(mu_);
      for (Window& w : closed_) pending.push_back({{}, -1, Entry(w), w.count, w});
      closed_.clear();
      for (auto& [key, w] : windows_) {
        if (w.count == w.written) continue;
        pending.push_back({key, w.minute, Entry(w), w.count, std::nullopt});
        w.written = w.count;
      }
    }
    for (Pending& p : pending) {
      auto seq = store_.UpsertAggregateAudit(p.entry);
      if (!seq.ok() && p.entry.seq != 0 && seq.status().IsNotFound()) {
        p.entry.seq = 0;  // the row is gone (a restored store): write it anew
        seq = store_.UpsertAggregateAudit(p.entry);
      }
      std::lock_guard lock(mu_);
      auto it = p.key.empty() ? windows_.end() : windows_.find(p.key);
      bool same = it != windows_.end() && it->second.minute == p.minute;
      if (!seq.ok()) {
        Metrics::Global()
            .GetCounter("femtoguard_enrolment_refusal_audit_errors_total", {},
                        "Aggregated refusal rows that could not be written (retried)")
            .Inc();
        if (same) it->second.written = 0;  // retried by the next flush
        if (p.closed) PushClosed(std::move(*p.closed));
        continue;
      }
      if (*seq == 0) continue;
      if (same) {
        it->second.seq = *seq;
      } else {
        // The minute ended while this row was being written: its final
        // count must update this row, not start a second one.
        for (Window& c : closed_) {
          if (c.key == p.key && c.minute == p.minute && c.seq == 0) c.seq = *seq;
        }
      }
    }
  }

 private:
  struct Window {
    std::string key;
    int64_t minute = -1;
    int64_t seq = 0;  // its audit row, 0 = not written yet
    uint64_t count = 0;
    uint64_t written = 0;  // count as last written
    uint32_t alert_rows = 0;
    uint64_t alerts_folded = 0;
    UnixMillis first_ms = 0;
    UnixMillis last_ms = 0;
    std::map<std::string, uint64_t> reasons;    // RefusalReasonName keys only
    std::map<std::string, uint64_t> protocols;  // our protocol names only
    std::vector<std::string> devices;           // Printable, the first kDevicesKept
    std::string last_why;                       // Printable, bounded
  };

  Window& WindowFor(const std::string& source_ip) {
    const UnixMillis now = clock_();
    const int64_t minute = now / kMinuteMs;
    std::string key = SourceKey(source_ip);
    auto it = windows_.find(key);
    if (it == windows_.end()) {
      if (windows_.size() >= kMaxSources) Evict(minute);
      if (windows_.size() >= kMaxSources) key = "other";
      it = windows_.try_emplace(key).first;
      it->second.key = key;
    }
    Window& w = it->second;
    if (w.minute != minute) {
      if (w.count != w.written) PushClosed(w);  // its final count
      w = Window();
      w.key = key;
      w.minute = minute;
      w.first_ms = now;
    }
    w.last_ms = now;
    return w;
  }

  // A finished window whose final count is still to be written. Bounded: a
  // store that stays unwritable must not make this grow without end.
  void PushClosed(Window w) {
    if (closed_.size() >= kMaxSources) {
      Metrics::Global()
          .GetCounter("femtoguard_enrolment_refusal_audit_dropped_total", {},
                      "Aggregated refusal rows given up after the store refused them")
          .Inc();
      return;
    }
    closed_.push_back(std::move(w));
  }

  // Drops windows of past minutes whose rows are up to date.
  void Evict(int64_t minute) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      if (it->second.minute < minute && it->second.count == it->second.written) {
        it = windows_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Count(Window& w, RefusalReason reason, const std::string& protocol,
             const std::string& device, const std::string& why) {
    ++w.count;
    ++w.reasons[std::string(RefusalReasonName(reason))];
    ++w.protocols[protocol];
    if (!device.empty() && w.devices.size() < kDevicesKept) {
      std::string d = Printable(device, 64);
      if (std::find(w.devices.begin(), w.devices.end(), d) == w.devices.end())
        w.devices.push_back(d);
    }
    if (!why.empty()) w.last_why = Printable(why, 200);
    Metrics::Global()
        .GetCounter("femtoguard_enrolment_refused_total",
                    "reason=\"" + std::string(RefusalReasonName(reason)) + "\"",
                    "Enrolment attempts (CMP, EST) refused, by reason")
        .Inc();
  }

  AuditEntry Entry(const Window& w) const {
    AuditEntry e;
    e.seq = w.seq;
    e.ts_ms = w.first_ms;
    e.actor = "enrolment";
    e.action = "enrol.refused";
    e.subject = w.key;
    e.reason = std::to_string(w.count) + " refused enrolment attempt" + (w.count == 1 ? "" : "s") +
               " from " + w.key + " in the minute from " + FormatRfc3339(w.minute * kMinuteMs) +
               (w.last_why.empty() ? "" : "; last: " + w.last_why);
    nlohmann::json d = {{"count", w.count},
                        {"source", w.key},
                        {"minute", FormatRfc3339(w.minute * kMinuteMs)},
                        {"last_ms", w.last_ms},
                        {"reasons", w.reasons},
                        {"protocols", w.protocols},
                        {"devices", w.devices}};
    if (w.alerts_folded != 0) d["alerts_folded"] = w.alerts_folded;
    e.detail = d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return e;
  }

  // Called with mu_ held.
  void EnsureFlusher() {
    if (flusher_.joinable() || stopping_) return;
    flusher_ = std::thread([this] { FlushLoop(); });
  }

  // Writes the first row of a new window at once (woken by Add) and then
  // brings counts up to date at most once a second.
  void FlushLoop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || HasUnwritten(); });
      if (stopping_) return;  // the destructor flushes what is left
      lock.unlock();
      Flush();
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }
  bool HasUnwritten() const {
    if (!closed_.empty()) return true;
    for (const auto& [key, w] : windows_) {
      if (w.count != w.written) return true;
    }
    return false;
  }

  Store& store_;
  std::mutex flush_mu_;  // one flush at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<UnixMillis()> clock_ = [] { return NowMillis(); };  // guarded by mu_
  std::unordered_map<std::string, Window> windows_;                 // guarded by mu_
  std::vector<Window> closed_;  // finished windows with unwritten counts; guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread flusher_;
};

TokenSecrets::~TokenSecrets() { OPENSSL_cleanse(key_.data(), key_.size()); }

std::string TokenSecrets::SecretFor(std::string_view ref) const {
  std::string msg = "femtoguard-bootstrap-token:" + std::string(ref);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  std::string out = ossl::HexLower(md, 16);
  OPENSSL_cleanse(md, sizeof md);
  return out;
}

std::string TokenSecrets::NewRef() {
  unsigned char raw[8];
  RAND_bytes(raw, sizeof raw);
  return "tok-" + ossl::HexLower(raw, sizeof raw);
}

std::string CommonName(const X509_NAME* name) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string DeviceIdFromName(const X509_NAME* name) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
  if (idx >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n > 0) {
      std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
      return out;
    }
  }
  return CommonName(name);
}

Enrolment::Enrolment(Store& store, const CertificateAuthority& ca, IssuancePolicy& policy,
                     TokenSecrets secrets, std::function<void()> on_change)
    : store_(store),
      ca_(ca),
      policy_(policy),
      secrets_(std::move(secrets)),
      on_change_(std::move(on_change)),
      refusals_(std::make_unique<RefusalLog>(store)) {}

Enrolment::~Enrolment() = default;  // RefusalLog's destructor writes what is pending

PresentedCredential Enrolment::FromToken(std::string_view ref) {
  PresentedCredential c;
  c.kind = EnrolmentKind::kBootstrapToken;
  if (!IsValidIdentifier(IdKind::kToken, ref, 64)) {
    // Never looked up, never stored, never echoed: docs/identifiers.md.
    c.refusal = "bootstrap token reference is not a valid reference (docs/identifiers.md)";
    c.refusal_reason = RefusalReason::kBadIdentifier;
    return c;
  }
  c.credential = std::string(ref);
  auto token = store_.GetBootstrapToken(ref);
  if (!token.ok()) {
    c.refusal = token.status().IsNotFound() ? "unknown bootstrap token" : token.status().ToString();
    c.refusal_reason =
        token.status().IsNotFound() ? RefusalReason::kTokenUnknown : RefusalReason::kOther;
    return c;
  }
  c.device = token->device;
  if (token->revoked_ms != 0) {
    c.refusal = "bootstrap token revoked";
    c.refusal_reason = RefusalReason::kTokenRevoked;
  } else if (token->used_ms != 0) {
    c.refusal = "bootstrap token already used";
    c.refusal_reason = RefusalReason::kTokenUsed;
  } else if (token->expires_ms <= NowMillis()) {
    c.refusal = "bootstrap token expired";
    c.refusal_reason = RefusalReason::kTokenExpired;
  }
  return c;
}

namespace {

// Verifies `leaf` against `anchors` (+ `intermediates`) at the current time.
int VerifyChain(X509* leaf, const std::vector<X509*>& anchors, const std::vector<X509*>& intermediates) {
  ossl::X509StorePtr store(X509_STORE_new());
  for (X509* a : anchors) X509_STORE_add_cert(store.get(), a);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (X509* i : intermediates) sk_X509_push(untrusted, i);
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  int err = X509_V_ERR_UNSPECIFIED;
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted) == 1) {
    err = X509_verify_cert(ctx.get()) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  }
  sk_X509_free(untrusted);
  ERR_clear_error();
  return err;
}

}  // namespace

PresentedCredential Enrolment::FromCertificate(X509* leaf, const std::vector<X509*>& chain) {
  PresentedCredential c;
  if (leaf == nullptr) return c;
  std::string fp = ossl::CertFingerprint(leaf);
  UnixMillis now = NowMillis();

  // 1. The shared legacy credential: trusted by exact fingerprint only.
  if (auto legacy = store_.ListLegacyCredentials(); legacy.ok()) {
    for (const LegacyCredential& l : *legacy) {
      if (l.fp != fp) continue;
      c.kind = EnrolmentKind::kLegacyCredential;
      c.credential = fp;
      if (now >= l.cutoff_ms) {
        c.refusal = "legacy shared credential used after its cutoff (" + FormatRfc3339(l.cutoff_ms) + ")";
        c.refusal_rule = "cert.legacy";
        c.refusal_reason = RefusalReason::kSecurityEvent;
      }
      return c;
    }
  }

  // 2. One of our own device certificates: renewal / revocation requests.
  // After `ca rotate`, certificates of the retired CA too (cross-over): a
  // renewal gets a certificate of the current CA.
  if (int by = ca_.IssuerIndexOf(leaf); by >= 0) {
    c.kind = EnrolmentKind::kRenewal;
    std::string serial = ossl::SerialToHex(X509_get0_serialNumber(leaf));
    c.credential = serial;
    int err = VerifyChain(leaf, {ca_.root_cert()}, {ca_.issuers()[static_cast<size_t>(by)].cert});
    auto rec = store_.GetCertificate(serial);
    if (!rec.ok()) {
      c.refusal = "certificate " + serial + " is not known to this CA's store";
      c.refusal_rule = "device.unknown";
      c.refusal_reason = RefusalReason::kSecurityEvent;
      return c;
    }
    c.device = rec->device;
    if (rec->cert_fp != fp) {
      c.refusal = "certificate does not match the issued one (serial reuse)";
      c.refusal_rule = "cert.clone";
      c.refusal_reason = RefusalReason::kSecurityEvent;
    } else if (rec->status == CertStatus::kRevoked) {
      c.refusal = "certificate " + serial + " is revoked (" + std::string(RevocationReasonName(rec->reason)) + ")";
    } else if (rec->status == CertStatus::kHold) {
      c.refusal = "certificate " + serial + " is on hold (device suspended)";
    } else if (err != X509_V_OK) {
      c.refusal = std::string("certificate does not verify: ") + X509_verify_cert_error_string(err);
    }
    if (!c.refusal.empty() && c.refusal_rule.empty())
      c.refusal_reason = RefusalReason::kCertRefused;
    return c;
  }

  // 3. A manufacturer certificate (TS 33.310 initial enrolment).
  auto vendors = store_.ListVendorCas();
  if (!vendors.ok()) return c;
  std::vector<ossl::X509Ptr> anchors_owned;
  std::vector<X509*> anchors;
  for (const VendorCa& v : *vendors) {
    auto cert = ossl::CertFromPem(v.pem);
    if (cert.ok()) {
      anchors.push_back(cert->get());
      anchors_owned.push_back(std::move(cert).value());
    }
  }
  if (anchors.empty() || VerifyChain(leaf, anchors, chain) != X509_V_OK) return c;  // untrusted
  c.kind = EnrolmentKind::kVendorCertificate;
  c.credential = fp;
  c.device = DeviceIdFromName(X509_get_subject_name(leaf));
  if (!IsValidIdentifier(IdKind::kDeviceId, c.device)) {
    // A serialNumber / CN outside the device id alphabet names no device:
    // refused before any lookup, and never echoed (docs/identifiers.md).
    CountBadIdentifier("enrolment", "subject");
    c.device.clear();
    c.refusal =
        "the vendor certificate's serialNumber (or CN) is not a valid device id "
        "(docs/identifiers.md)";
    c.refusal_reason = RefusalReason::kBadIdentifier;
    return c;
  }
  c.refusal_reason = RefusalReason::kSecurityEvent;  // every refusal below raises a rule
  auto device = store_.GetDevice(c.device);
  if (!device.ok()) {
    c.refusal = "device '" + c.device + "' named by the vendor certificate is not pre-registered";
    c.refusal_rule = "device.unknown";
    return c;
  }
  if (auto used = store_.FindVendorCertificateUse(fp); used.ok() && used->has_value()) {
    c.refusal = "vendor certificate already used to enrol device " + **used + "; a second box carries it";
    c.refusal_rule = "cert.clone";
    return c;
  }
  if (auto certs = store_.ListCertificates(std::string_view(c.device)); certs.ok() && !certs->empty()) {
    c.refusal = "device " + c.device + " has already enrolled; vendor bootstrap is for the first enrolment only";
    c.refusal_rule = "cert.clone";
  }
  return c;
}

void Enrolment::RecordRefusal(RefusalReason reason, const std::string& rule,
                              const std::string& device, const std::string& why,
                              const std::string& protocol, const std::string& source_ip) {
  const bool security_event = !rule.empty();
  if (security_event) reason = RefusalReason::kSecurityEvent;
  seclog::EnrolmentRefused(protocol, device, RefusalReasonName(reason), why, source_ip);  // every refusal, unaggregated
  if (!refusals_->Add(reason, security_event, device, why, protocol, source_ip)) return;
  Metrics::Global()
      .GetCounter("femtoguard_enrolment_alerts_total", "rule=\"" + rule + "\"",
                  "Refused enrolments that raise a rule (cert.clone, cert.legacy, device.unknown)")
      .Inc();
  // A security event keeps its own row (bounded per source by RefusalLog):
  // subject = the device, so `audit list --subject` finds it.
  AuditEntry e;
  e.ts_ms = NowMillis();
  e.actor = protocol;
  e.action = "alert";
  e.subject = IsValidIdentifier(IdKind::kDeviceId, device) ? device : Printable(device, 64);
  e.reason = Printable(why, 512);
  nlohmann::json detail = {{"protocol", protocol}, {"rule", rule}};
  if (!source_ip.empty()) detail["source_ip"] = Printable(source_ip, 64);
  e.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  (void)store_.AppendAudit(e);
}

void Enrolment::RecordAlert(const std::string& rule, const std::string& device,
                            const std::string& why, const std::string& protocol,
                            const std::string& source_ip) {
  RecordRefusal(rule.empty() ? RefusalReason::kOther : RefusalReason::kSecurityEvent, rule, device,
                why, protocol, source_ip);
}

bool Enrolment::AllowSource(const std::string& source_ip, const std::string& protocol) {
  return refusals_->Allow(source_ip, protocol);
}

int Enrolment::RetryAfterSeconds() const { return refusals_->RetryAfterSeconds(); }

void Enrolment::FlushRefusals() { refusals_->Flush(); }

void Enrolment::SetClockForTest(std::function<UnixMillis()> clock) {
  refusals_->SetClock(std::move(clock));
}

std::optional<IssuedCertificate> Enrolment::Redeliver(const PresentedCredential& cred,
                                                      const std::string& device_from_request,
                                                      EVP_PKEY* public_key,
                                                      std::string_view spki_der,
                                                      const std::string& protocol,
                                                      const std::string& source_ip) {
  const int window_s = retry_window_s_.load();
  const UnixMillis window_ms = static_cast<UnixMillis>(window_s) * kMillisPerSecond;
  if (window_ms == 0 || public_key == nullptr) return std::nullopt;
  auto token = store_.GetBootstrapToken(cred.credential);
  if (!token.ok() || token->used_ms == 0 || token->device != cred.device) return std::nullopt;
  const UnixMillis now = NowMillis();
  if (now > token->used_ms + window_ms) return std::nullopt;
  if (!device_from_request.empty() && device_from_request != token->device) return std::nullopt;
  std::string spki_owned;
  if (spki_der.empty()) {
    auto der = ossl::SpkiDer(public_key);
    if (!der.ok()) return std::nullopt;
    spki_owned = std::move(der).value();
    spki_der = spki_owned;
  }
  const std::string key_fp = ossl::SpkiFingerprint(spki_der);
  auto certs = store_.ListCertificates(std::string_view(token->device));
  if (!certs.ok()) return std::nullopt;
  // A key is bound to one certificate for good, so at most one matches; it
  // is the token's own when it was recorded in the token's transaction
  // (issued_ms is taken just before signing, used_ms when recording).
  constexpr UnixMillis kSameIssuanceMs = 60 * kMillisPerSecond;
  for (const Certificate& c : *certs) {
    if (c.key_fp != key_fp) continue;
    if (c.status != CertStatus::kValid || c.not_after_ms <= now) return std::nullopt;
    if (c.issued_ms > token->used_ms || token->used_ms - c.issued_ms > kSameIssuanceMs) {
      return std::nullopt;
    }
    auto x509 = ossl::CertFromDer(c.der);
    if (!x509.ok()) return std::nullopt;
    {
      constexpr int kMaxRedeliveries = 3;
      std::lock_guard lock(redelivered_mu_);
      if (redelivered_.size() > 100000) redelivered_.clear();  // bounded; a forgotten count only allows 3 more
      if (++redelivered_[cred.credential] > kMaxRedeliveries) return std::nullopt;
    }
    IssuedCertificate out;
    out.record = c;
    out.pem = ossl::CertToPem(x509->get());
    out.cert = std::shared_ptr<X509>(x509->release(), X509_free);
    AuditEntry e;
    e.ts_ms = now;
    e.actor = protocol + ":" + c.device;
    e.action = "cert.redeliver";
    e.subject = c.serial;  // as cert.issue: `audit list --subject SERIAL` shows both
    e.reason = "bootstrap token retried with the same key within " +
               std::to_string(window_s) +
               " s of its use: the certificate it produced is sent again";
    nlohmann::json detail = {{"device", c.device},
                             {"credential", cred.credential},
                             {"protocol", protocol},
                             {"key_fp", c.key_fp}};
    if (!source_ip.empty()) detail["source_ip"] = Printable(source_ip, 64);
    e.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (Status s = store_.AppendAudit(e); !s.ok()) {
      // An unaudited re-delivery would be a silent change of what a device holds.
      return std::nullopt;
    }
    Metrics::Global()
        .GetCounter("femtoguard_enrolment_redelivered_total", "protocol=\"" + protocol + "\"",
                    "Certificates sent again to a bootstrap token retried with the same key")
        .Inc();
    return out;
  }
  return std::nullopt;
}

Result<IssuedCertificate> Enrolment::Issue(const PresentedCredential& cred, std::string device_from_request,
                                           EVP_PKEY* public_key, int validity_days, const std::string& source_ip,
                                           const std::string& protocol, std::string_view spki_der) {
  RefusalReason reason = RefusalReason::kPolicy;
  auto refuse = [&](Status s, const std::string& rule, const std::string& device) -> Status {
    RecordRefusal(reason, rule, device, s.message(), protocol, source_ip);
    return s;
  };
  if (!device_from_request.empty() && !IsValidIdentifier(IdKind::kDeviceId, device_from_request)) {
    // The requested subject CN: checked before it names anything, never echoed.
    CountBadIdentifier(protocol == "est" ? "est" : "cmp", "subject");
    reason = RefusalReason::kBadIdentifier;
    return refuse(Status::InvalidArgument(
                      "the requested subject CN is not a valid device id (docs/identifiers.md)"),
                  "", "");
  }
  if (cred.kind == EnrolmentKind::kOperator) {
    reason = RefusalReason::kUntrusted;
    return refuse(Status::PermissionDenied("no trusted credential (unknown signer, vendor CA not trusted)"), "",
                  device_from_request);
  }
  if (cred.kind == EnrolmentKind::kBootstrapToken &&
      cred.refusal_reason == RefusalReason::kTokenUsed) {
    if (auto again = Redeliver(cred, device_from_request, public_key, spki_der, protocol,
                               source_ip)) {
      return std::move(*again);
    }
  }
  if (!cred.refusal.empty()) {
    reason = cred.refusal_reason;
    return refuse(Status::PermissionDenied(cred.refusal), cred.refusal_rule,
                  cred.device.empty() ? device_from_request : cred.device);
  }
  std::string device = cred.device;
  if (cred.kind == EnrolmentKind::kLegacyCredential) {
    device = device_from_request;
    if (device.empty()) {
      return refuse(Status::InvalidArgument("a legacy-credential enrolment must name its device in the subject CN"),
                    "cert.legacy", "");
    }
    auto d = store_.GetDevice(device);
    if (!d.ok()) {
      return refuse(Status::PermissionDenied("device '" + device + "' is not pre-registered"), "device.unknown",
                    device);
    }
    auto used = store_.LegacyCredentialUsed(cred.credential, device);
    if (!used.ok()) return used.status();
    if (*used) {
      return refuse(Status::AlreadyExists("the legacy credential was already used once for device " + device +
                                          "; a second use means a copy"),
                    "cert.clone", device);
    }
    if (!d->prefixes.empty() && !IpInAnyPrefix(source_ip, d->prefixes)) {
      return refuse(Status::PermissionDenied("legacy credential used for " + device + " from " +
                                             (source_ip.empty() ? std::string("an unknown address") : source_ip) +
                                             ", outside its registered prefixes"),
                    "cert.legacy", device);
    }
  } else if (!device_from_request.empty() && device_from_request != device) {
    reason = RefusalReason::kSubjectMismatch;
    return refuse(Status::InvalidArgument("requested subject '" + device_from_request +
                                          "' does not match the credential's device '" + device + "'"),
                  "", device);
  }

  IssueRequest request;
  request.device = device;
  request.validity_days = validity_days;
  request.audit = {protocol + ":" + device, std::string("enrolment (") + std::string(EnrolmentKindName(cred.kind)) + ")"};
  request.auth = {cred.kind, cred.credential, source_ip};
  auto issued = policy_.IssueForKey(request, public_key, spki_der);
  if (!issued.ok()) {
    std::string rule;
    if (issued.status().IsAlreadyExists() && cred.kind == EnrolmentKind::kVendorCertificate) rule = "cert.clone";
    if (issued.status().IsAlreadyExists() && cred.kind == EnrolmentKind::kLegacyCredential) rule = "cert.clone";
    return refuse(issued.status(), rule, device);
  }
  seclog::EnrolmentIssued(protocol, device, issued->record.serial, source_ip);
  for (const std::string& old : issued->superseded) seclog::CertificateRevoked(old, device, "superseded", request.audit.actor);
  NotifyChanged();
  return issued;
}

}  // namespace fg
