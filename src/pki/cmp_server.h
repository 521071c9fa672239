#pragma once

// CMPv2 (RFC 4210, HTTP transfer RFC 6712) per 3GPP TS 33.310, on OpenSSL's
// server-side CMP API (OSSL_CMP_SRV_CTX): OpenSSL decodes, verifies
// protection and proof of possession, and builds responses; femtoguard
// decides who the sender is and whether it may have a certificate.
//
// Protection accepted:
//   - PBM with a one-time bootstrap token (senderKID = token reference);
//   - signature by a manufacturer certificate chaining to a trusted vendor CA
//     (initial enrolment, once per device and per vendor certificate);
//   - signature by the shared legacy credential (migration, once per device,
//     before the cutoff, from the registered prefix);
//   - signature by the device's current femtoguard certificate (kur, rr, and
//     cr/genm).
// Messages: ir, cr, p10cr, kur, rr, certConf, genm (CA certificates), error.
// Responses are signed by the RA credential (PBM for PBM requests).
//
// Thread-safety: thread-safe. A transaction awaiting certConf keeps its
// OSSL_CMP_SRV_CTX, keyed by transactionID, for at most kTransactionTtl.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pki/enrolment.h"

namespace fg {

class CmpServer {
 public:
  static constexpr size_t kMaxMessageBytes = 64 * 1024;
  static constexpr UnixMillis kTransactionTtlMs = 5 * 60 * 1000;
  static constexpr size_t kMaxOpenTransactions = 10000;

  struct Reply {
    int http_status = 200;
    std::string der;  // a PKIMessage, or empty for an undecodable request (400)
  };

  explicit CmpServer(Enrolment& enrolment);
  ~CmpServer();
  CmpServer(const CmpServer&) = delete;
  CmpServer& operator=(const CmpServer&) = delete;

  Reply Handle(std::string_view request_der, const std::string& source_ip);

  struct Transaction;  // public for the OpenSSL callbacks in the .cc

 private:
  std::shared_ptr<Transaction> NewTransaction(const std::string& source_ip);
  void Authenticate(Transaction& tx, std::string_view request_der);
  void Reap(UnixMillis now);

  Enrolment& enrolment_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Transaction>> open_;  // guarded by mutex_
};

}  // namespace fg
