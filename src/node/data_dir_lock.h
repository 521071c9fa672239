#pragma once

// One `serve` per data dir: DIR/serve.lock (kServeLockFile), held with
// flock for the life of the process.

#include "common/config.h"
#include "common/status.h"

namespace fg {

// Takes DIR/serve.lock (flock, exclusive, not waiting) and writes our pid
// into it; returns the open fd, which holds the lock until it is closed. A
// second serve on the same data dir gets FailedPrecondition (exit 4) before
// it opens the store or touches the control socket. The lock goes with the
// process, so a crashed serve leaves no stale lock.
Result<int> LockDataDir(const DataDir& dir);

}  // namespace fg
