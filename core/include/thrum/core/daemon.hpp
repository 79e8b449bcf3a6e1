#pragma once

#include <filesystem>

#include "thrum/common/repo.hpp"

namespace thrum::core {

struct DaemonOptions {
  RepoPaths paths;
  std::filesystem::path exe_path;  ///< the running thrum-daemon (plugin dirs are found beside it)
  /// Log to var/daemon.log (rotated; `thrum daemon start`) instead of stderr (`daemon run`).
  bool log_to_file = false;
  /// An inherited pipe to write `ready <pid> <port>` to once serving (`daemon start`); -1: none.
  int ready_fd = -1;
};

/// `thrum daemon run`: the daemon in the foreground until SIGTERM/SIGINT (SPEC §3). Returns the
/// process exit code; prints the reason on stderr when it cannot start.
int run_daemon(const DaemonOptions& opts);

}  // namespace thrum::core
