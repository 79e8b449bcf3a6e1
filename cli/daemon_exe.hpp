#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace thrum::cli {

/// The `thrum-daemon` executable: the one in the same directory as this `thrum` (resolved via
/// /proc/self/exe, so symlinks to `thrum` work). Throws Error naming the expected path when it
/// is missing or not executable. The thin CLI links none of the core; everything that needs it
/// (running the daemon, loading plugins) goes through this program.
std::filesystem::path daemon_exe();

/// Replaces this process with `thrum-daemon args...`: same pid, stdio, environment and exit
/// code. Throws Error if the exec fails.
[[noreturn]] void exec_daemon(const std::vector<std::string>& args);

/// Runs `thrum-daemon args... --result-fd 3` with this process's stdio and returns the JSON
/// document it wrote on fd 3. Throws Error when it cannot be run or wrote no document.
std::string run_daemon_tool(const std::vector<std::string>& args);

}  // namespace thrum::cli
