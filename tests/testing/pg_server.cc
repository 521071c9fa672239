#include "testing/pg_server.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "testing/harness.h"

namespace fg::testing {
namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";

// Runs a PostgreSQL server binary as the `postgres` user: initdb and the
// postmaster refuse to run as root.
RunResult RunAsPostgres(std::vector<std::string> argv, int timeout_s = 120) {
  std::vector<std::string> full = {"runuser", "-u", "postgres", "--"};
  argv[0] = std::string(kBin) + argv[0];
  full.insert(full.end(), argv.begin(), argv.end());
  return Run(full, {}, timeout_s);
}

Status ChownToPostgres(const std::string& path) {
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr)
    return Status::FailedPrecondition(
        "no 'postgres' user (is postgresql-15 installed? scripts/setup)");
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return Status::Internal("chown " + path + " failed");
  return Status::Ok();
}

void AppendFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::app);
  f << text;
}

// The postmaster's PID: the first line of postmaster.pid.
pid_t PostmasterPid(const std::string& data_dir) {
  std::ifstream f(data_dir + "/postmaster.pid");
  long pid = -1;
  f >> pid;
  return f ? static_cast<pid_t>(pid) : -1;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<std::unique_ptr<PgServer>> PgServer::Start(Options o) {
  if (access((std::string(kBin) + "initdb").c_str(), X_OK) != 0) {
    return Status::FailedPrecondition(std::string(kBin) +
                                      "initdb is missing: install postgresql-15 (scripts/setup)");
  }
  std::unique_ptr<PgServer> s(new PgServer());
  std::string tmpl = "/tmp/fg-pg-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return Status::Internal("mkdtemp failed");
  s->dir_ = tmpl;
  chmod(s->dir_.c_str(), 0755);
  FG_RETURN_IF_ERROR(ChownToPostgres(s->dir_));

  const std::string primary = s->dir_ + "/primary";
  RunResult init = RunAsPostgres({"initdb", "-D", primary, "-U", "postgres", "-A", "trust", "-E",
                                  "UTF8", "--locale=C", "--no-sync"});
  if (init.exit_code != 0) return Status::Internal("initdb failed: " + init.out);
  // Trust on loopback only (no unix-socket or remote entries but ours).
  std::ofstream(primary + "/pg_hba.conf", std::ios::trunc)
      << "local all all trust\n"
         "host all all 127.0.0.1/32 trust\n"
         "local replication all trust\n"
         "host replication all 127.0.0.1/32 trust\n";
  s->primary_port_ = FreePort();
  AppendFile(primary + "/postgresql.conf",
             "listen_addresses = '127.0.0.1'\n"
             "unix_socket_directories = '" +
                 s->dir_ +
                 "'\n"
                 "fsync = on\n"
                 "max_connections = 300\n"
                 "wal_level = replica\n"
                 "max_wal_senders = 5\n"
                 "shared_buffers = 32MB\n"
                 "log_min_messages = warning\n" +
                 std::string(o.standby ? "synchronous_standby_names = '*'\n" : ""));
  FG_RETURN_IF_ERROR(
      s->StartCluster(primary, s->dir_ + "/primary.log", s->primary_port_, &s->primary_pid_));

  if (o.standby) {
    const std::string standby = s->dir_ + "/standby";
    RunResult bb =
        RunAsPostgres({"pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(s->primary_port_),
                       "-U", "postgres", "-D", standby, "-R", "-X", "stream", "--no-sync"});
    if (bb.exit_code != 0) return Status::Internal("pg_basebackup failed: " + bb.out);
    s->standby_port_ = FreePort();
    // Once promoted, the standby has no standby of its own: it must not
    // wait for one at every commit.
    AppendFile(standby + "/postgresql.conf", "synchronous_standby_names = ''\n");
    FG_RETURN_IF_ERROR(
        s->StartCluster(standby, s->dir_ + "/standby.log", s->standby_port_, &s->standby_pid_));
    // Synchronous from here on: poll until the primary reports it so.
    for (int i = 0;; ++i) {
      auto state = s->Psql(s->primary_port_, "SELECT sync_state FROM pg_stat_replication");
      if (state.ok() && Trim(*state) == "sync") break;
      if (i > 300) return Status::Internal("the standby never became synchronous");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return s;
}

Status PgServer::StartCluster(const std::string& data_dir, const std::string& log, int port,
                              pid_t* pid) {
  RunResult r = RunAsPostgres({"pg_ctl", "start", "-w", "-t", "60", "-D", data_dir, "-l", log, "-o",
                               "-p " + std::to_string(port)});
  if (r.exit_code != 0) {
    return Status::Internal("pg_ctl start failed: " + r.out + "\n" + ReadAll(log));
  }
  *pid = PostmasterPid(data_dir);
  if (*pid <= 0) return Status::Internal("no postmaster.pid in " + data_dir);
  return Status::Ok();
}

PgServer::~PgServer() {
  for (pid_t pid : {primary_pid_, standby_pid_}) {
    if (pid <= 0) continue;
    // Immediate shutdown (SIGQUIT), then SIGKILL if it lingers.
    kill(pid, SIGQUIT);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (kill(pid, 0) == 0) kill(pid, SIGKILL);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PgServer::Url(const std::string& db) const {
  if (standby_port_ == 0) return PrimaryUrl(db);
  return "postgresql://127.0.0.1:" + std::to_string(primary_port_) +
         ",127.0.0.1:" + std::to_string(standby_port_) + "/" + db +
         "?user=postgres&target_session_attrs=read-write&connect_timeout=2";
}

std::string PgServer::PrimaryUrl(const std::string& db) const {
  const int port = promoted_ ? standby_port_ : primary_port_;
  return "postgresql://127.0.0.1:" + std::to_string(port) + "/" + db +
         "?user=postgres&connect_timeout=2";
}

std::string PgServer::SocketUrl(const std::string& db) const {
  const int port = promoted_ ? standby_port_ : primary_port_;
  return "postgresql:///" + db + "?host=" + dir_ + "&port=" + std::to_string(port) +
         "&user=postgres&connect_timeout=2";
}

Result<std::string> PgServer::Psql(int port, const std::string& sql) const {
  RunResult r =
      Run({std::string(kBin) + "psql", "-X", "-h", "127.0.0.1", "-p", std::to_string(port), "-U",
           "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atc", sql},
          {}, 60);
  if (r.exit_code != 0) return Status::Internal("psql failed: " + r.out);
  return r.out;
}

Result<std::string> PgServer::CreateDatabase(const std::string& prefix) {
  std::string name;
  {
    std::lock_guard lock(mutex_);
    name = prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(next_db_++);
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  FG_ASSIGN_OR_RETURN(std::string out,
                      Psql(promoted_ ? standby_port_ : primary_port_, "CREATE DATABASE " + name));
  (void)out;
  return name;
}

Status PgServer::KillPrimary() {
  if (primary_pid_ <= 0) return Status::FailedPrecondition("no primary running");
  if (kill(primary_pid_, SIGKILL) != 0) return Status::Internal("kill failed");
  for (int i = 0; i < 500 && kill(primary_pid_, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  primary_pid_ = -1;
  return Status::Ok();
}

Status PgServer::PromoteStandby() {
  if (standby_port_ == 0) return Status::FailedPrecondition("no standby to promote");
  RunResult r = RunAsPostgres({"pg_ctl", "promote", "-w", "-t", "60", "-D", dir_ + "/standby"});
  if (r.exit_code != 0) return Status::Internal("pg_ctl promote failed: " + r.out);
  for (int i = 0;; ++i) {
    auto rec = Psql(standby_port_, "SELECT pg_is_in_recovery()");
    if (rec.ok() && Trim(*rec) == "f") break;
    if (i > 600) return Status::Internal("the promoted standby never accepted writes");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  promoted_ = true;
  return Status::Ok();
}

}  // namespace fg::testing
