#include "store/store.h"

#include <array>
#include <cctype>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "store/sql_driver.h"
#include "store/sql_store.h"

namespace fg {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite:";
constexpr std::string_view kPostgresqlScheme = "postgresql://";
constexpr std::string_view kPostgresScheme = "postgres://";

constexpr std::array<std::pair<RevocationReason, std::string_view>, 9> kReasonNames = {{
    {RevocationReason::kUnspecified, "unspecified"},
    {RevocationReason::kKeyCompromise, "keyCompromise"},
    {RevocationReason::kCaCompromise, "cACompromise"},
    {RevocationReason::kAffiliationChanged, "affiliationChanged"},
    {RevocationReason::kSuperseded, "superseded"},
    {RevocationReason::kCessationOfOperation, "cessationOfOperation"},
    {RevocationReason::kCertificateHold, "certificateHold"},
    {RevocationReason::kPrivilegeWithdrawn, "privilegeWithdrawn"},
    {RevocationReason::kAaCompromise, "aACompromise"},
}};

// Folds the spellings we accept onto one key: "keyCompromise",
// "key-compromise", "key_compromise" and "KEY_COMPROMISE" all become
// "keycompromise".
std::string FoldReasonName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '-' || c == '_') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

void ChangeFeed::WaitForChange(int64_t after, int timeout_ms) {
  (void)after;
  if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
}

Result<std::unique_ptr<Store>> Store::Open(std::string_view url) {
  if (url.starts_with(kSqliteScheme)) {
    std::string path(url.substr(kSqliteScheme.size()));
    if (path.empty()) {
      return Status::InvalidArgument(
          "store URL 'sqlite:' needs a file path (sqlite:/path/store.db)");
    }
    FG_ASSIGN_OR_RETURN(std::unique_ptr<sql::Pool> pool, sql::OpenSqlitePool(path));
    return std::unique_ptr<Store>(new SqlStore(std::move(pool)));
  }
  if (url.starts_with(kPostgresqlScheme) || url.starts_with(kPostgresScheme)) {
    FG_ASSIGN_OR_RETURN(std::unique_ptr<sql::Pool> pool, sql::OpenPgPool(std::string(url)));
    return std::unique_ptr<Store>(new SqlStore(std::move(pool)));
  }
  // Only the scheme is echoed: a database URL may carry credentials.
  std::string_view scheme = url.substr(0, url.find(':'));
  if (scheme.size() == url.size() || scheme.size() > 32) scheme = "(none)";
  return Status::InvalidArgument("unsupported store URL scheme '" + std::string(scheme) +
                                 "': supported schemes are sqlite:<path>");
}

std::string_view RevocationReasonName(RevocationReason r) {
  for (const auto& [reason, name] : kReasonNames) {
    if (reason == r) return name;
  }
  return "unknown";
}

Result<RevocationReason> ParseRevocationReason(std::string_view s) {
  const std::string folded = FoldReasonName(s);
  // Operators say "hold" for what RFC 5280 calls certificateHold.
  if (folded == "hold") return RevocationReason::kCertificateHold;
  for (const auto& [reason, name] : kReasonNames) {
    if (FoldReasonName(name) == folded) return reason;
  }
  std::string known;
  for (const auto& [reason, name] : kReasonNames) {
    if (!known.empty()) known += ", ";
    known += name;
  }
  return Status::InvalidArgument("unknown revocation reason '" + std::string(s.substr(0, 64)) +
                                 "' (one of: " + known + ", hold)");
}

std::string_view CertStatusName(CertStatus s) {
  switch (s) {
    case CertStatus::kValid:
      return "valid";
    case CertStatus::kHold:
      return "hold";
    case CertStatus::kRevoked:
      return "revoked";
  }
  return "unknown";
}

std::string_view EnrolmentKindName(EnrolmentKind k) {
  switch (k) {
    case EnrolmentKind::kOperator:
      return "operator";
    case EnrolmentKind::kBootstrapToken:
      return "bootstrap_token";
    case EnrolmentKind::kVendorCertificate:
      return "vendor_certificate";
    case EnrolmentKind::kLegacyCredential:
      return "legacy_credential";
    case EnrolmentKind::kRenewal:
      return "renewal";
  }
  return "unknown";
}

std::string_view ApiRoleName(ApiRole r) {
  switch (r) {
    case ApiRole::kAdmin:
      return "admin";
    case ApiRole::kOperator:
      return "operator";
    case ApiRole::kSegw:
      return "segw";
    case ApiRole::kIngest:
      return "ingest";
    case ApiRole::kPayments:
      return "payments";
    case ApiRole::kViewer:
      return "viewer";
  }
  return "unknown";
}

Result<ApiRole> ParseApiRole(std::string_view s) {
  for (ApiRole r : {ApiRole::kAdmin, ApiRole::kOperator, ApiRole::kSegw, ApiRole::kIngest, ApiRole::kPayments,
                    ApiRole::kViewer}) {
    if (ApiRoleName(r) == s) return r;
  }
  return Status::InvalidArgument("unknown role '" + std::string(s) +
                                 "' (expected admin, operator, viewer, segw, ingest or payments)");
}

std::string_view AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kOpen:
      return "open";
    case AlertState::kPendingApproval:
      return "pending_approval";
    case AlertState::kActed:
      return "acted";
    case AlertState::kDismissed:
      return "dismissed";
  }
  return "unknown";
}

std::string_view EndpointStatusName(EndpointStatus s) {
  switch (s) {
    case EndpointStatus::kActive:
      return "active";
    case EndpointStatus::kDraining:
      return "draining";
    case EndpointStatus::kRetired:
      return "retired";
  }
  return "unknown";
}

Result<EndpointStatus> ParseEndpointStatus(std::string_view s) {
  std::string folded;
  folded.reserve(s.size());
  for (char c : s) folded += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto status :
       {EndpointStatus::kActive, EndpointStatus::kDraining, EndpointStatus::kRetired}) {
    if (folded == EndpointStatusName(status)) return status;
  }
  return Status::InvalidArgument("unknown endpoint status '" + std::string(s.substr(0, 64)) +
                                 "' (one of: active, draining, retired)");
}

}  // namespace fg
