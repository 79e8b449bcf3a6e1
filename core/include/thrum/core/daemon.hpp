#pragma once

#include <filesystem>

#include "thrum/core/repo.hpp"

namespace thrum::core {

struct DaemonOptions {
  RepoPaths paths;
  std::filesystem::path exe_path;  ///< the running thrum-daemon (plugin dirs are found beside it)
};

/// `thrum daemon run`: the daemon in the foreground until SIGTERM/SIGINT (SPEC §3). Returns the
/// process exit code; prints the reason on stderr when it cannot start.
int run_daemon(const DaemonOptions& opts);

}  // namespace thrum::core
