#pragma once

// Helpers for tests that drive real processes: the femtoguard binary and
// real peers (openssl, curl). Processes get argv vectors, never shell
// strings; every process a test starts is stopped by its PID.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace fg::testing {

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;     // stdout and stderr, interleaved
};

// Runs argv to completion (at most timeout_s), stdin from `input`.
RunResult Run(const std::vector<std::string>& argv, const std::string& input = {}, int timeout_s = 60,
              const std::vector<std::string>& extra_env = {});

// The bearer token `femtoguard token create` printed in `out`; empty if none.
std::string FindApiToken(const std::string& out);

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// A background process (e.g. `femtoguard serve`), SIGTERM then SIGKILL by
// PID on Stop() or destruction. Output goes to a log file.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path,
          const std::vector<std::string>& extra_env = {});
  ~Process();
  pid_t pid() const { return pid_; }
  bool Running();
  // Returns the exit status (or -1), also of a process that had already
  // exited (and been reaped by Running()).
  int Stop();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;   // Running() saw it exit
  int exit_status_ = -1;
};

// Polls GET url until it answers 200 (via curl) or timeout. True on success.
bool WaitForHttp(const std::string& url, int timeout_ms = 10000);

std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data);

// Path of the femtoguard binary under test.
std::string Femtoguard();

}  // namespace fg::testing
