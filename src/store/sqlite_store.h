#pragma once

// The embedded Store backend: one SQLite file in the data dir (DESIGN.md §4),
// opened by Store::Open("sqlite:/path/store.db"). The logic is the shared
// SqlStore (sql_store.h); the driver is sqlite_driver.cc.
//
// Several processes open the same file (the CLI writes while `femtoguard
// serve` reads), so the file runs in WAL mode and every write is one
// `BEGIN IMMEDIATE` transaction: the write lock is taken before anything is
// read, and the invariants checked inside the transaction (key never bound,
// device active, ...) still hold when it commits. The schema is migrated
// in order on Open, in one transaction. Schema versions 2, 3 and 7 rebuild
// the changes table (its CHECK gains kinds), keeping every seq and the
// AUTOINCREMENT high-water mark.

namespace fg {

// Benchmarks only: SQLite stores opened after SetSqliteSynchronousNormalForTest(true)
// use synchronous=NORMAL (the setting before issue 13, under which a power loss
// can roll back an acknowledged write) instead of FULL, so that FULL's cost is
// measured against it in the same run. femtoguard itself never calls it.
void SetSqliteSynchronousNormalForTest(bool normal);

}  // namespace fg
