#pragma once

#include <memory>
#include <optional>
#include <string>

#include "thrum/common/repo.hpp"

namespace thrum::core {

/// `var/thrum.pid`: {pid, repo_path, started_at, socket_path}.
struct PidInfo {
  int pid = 0;
  std::string repo_path;
  std::string started_at;
};
std::optional<PidInfo> read_pid_file(const RepoPaths& paths);
bool pid_alive(int pid);

/// One daemon per repo: an flock on `var/thrum.lock`, held for the daemon's life. The kernel
/// drops it when the process dies, even by SIGKILL, so a stale pid file or socket left behind
/// never blocks the next start.
class DaemonLock {
 public:
  /// Takes the lock, or returns nullptr when another process holds it.
  static std::unique_ptr<DaemonLock> try_acquire(const RepoPaths& paths);
  ~DaemonLock();
  DaemonLock(const DaemonLock&) = delete;
  DaemonLock& operator=(const DaemonLock&) = delete;

  /// Writes this process's pid file atomically. It is removed again when the lock is released
  /// (before the flock is dropped), however the daemon exits.
  void write_pid_file(const std::string& started_at);
  void remove_pid_file();

 private:
  DaemonLock(RepoPaths paths, int fd) : paths_(std::move(paths)), fd_(fd) {}
  RepoPaths paths_;
  int fd_;
  bool wrote_pid_ = false;
};

/// The pid of the daemon holding the repo's lock, if one is running (0 when the lock is held
/// but the pid file cannot be read yet), nullopt when none is.
std::optional<int> running_daemon(const RepoPaths& paths);

}  // namespace thrum::core
