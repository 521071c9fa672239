#pragma once

// The PostgreSQL Store backend (issue 15), opened by
// Store::Open("postgresql://...") or ("postgres://..."). The logic is the
// shared SqlStore (sql_store.h); the driver, with its concurrency, failover
// and group-commit rules, is pg_driver.cc.

namespace fg {

// Benchmarks only: PostgreSQL stores opened after SetPgGroupCommitForTest(false)
// run each RecordIssuedCertificate in its own transaction, so that group
// commit's gain is measured in the same run. femtoguard itself never calls it.
void SetPgGroupCommitForTest(bool on);

}  // namespace fg
