#pragma once

// A PostgreSQL 15 server (optionally with a synchronous streaming standby)
// started by a test for itself: initdb in a temp dir owned by the `postgres`
// user (initdb refuses root), listening on 127.0.0.1 on a free port, its
// unix socket in the temp dir, fsync on, trust auth on loopback only. Tests
// never touch a PostgreSQL they did not start (not the system cluster on 5432).
//
// Every server it started is stopped by its postmaster's PID on destruction,
// and the temp dir removed.

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace fg::testing {

class PgServer {
 public:
  struct Options {
    bool standby = false;  // standby: a streaming replica, synchronous
  };
  static Result<std::unique_ptr<PgServer>> Start(Options o);
  ~PgServer();  // stops everything it started (by pid), rm -rf
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // A libpq URL of database `db`; multi-host (primary, standby) with
  // target_session_attrs=read-write when there is a standby.
  std::string Url(const std::string& db) const;
  // The URL of the current primary alone.
  std::string PrimaryUrl(const std::string& db) const;
  // The current primary over its unix socket (the socket file is in the
  // temp dir): for a client inside a network namespace, where the host's
  // 127.0.0.1 is not reachable but the file system is.
  std::string SocketUrl(const std::string& db) const;
  // Creates a fresh database on the current primary; returns its name.
  Result<std::string> CreateDatabase(const std::string& prefix);
  Status KillPrimary();     // SIGKILL the primary's postmaster
  Status PromoteStandby();  // pg_ctl promote, wait until it accepts writes

 private:
  PgServer() = default;
  // Runs SQL on the server at `port` with psql; returns its unaligned output.
  Result<std::string> Psql(int port, const std::string& sql) const;
  Status StartCluster(const std::string& data_dir, const std::string& log, int port, pid_t* pid);

  std::string dir_;
  int primary_port_ = 0;
  int standby_port_ = 0;  // 0: no standby
  pid_t primary_pid_ = -1;
  pid_t standby_pid_ = -1;
  bool promoted_ = false;  // the standby is now the primary
  std::mutex mutex_;
  int next_db_ = 0;  // guarded by mutex_
};

}  // namespace fg::testing
