// thrum-daemon: the Thrum daemon executable. The user-facing commands, their wording and exit
// codes all live in the thin `thrum` CLI (cli/); this program is what it execs for the parts that
// need the core:
//
//   thrum-daemon run --repo DIR [--log-file] [--ready-fd N]
//                                       the daemon in the foreground until SIGTERM/SIGINT,
//                                       logging to stderr (`thrum daemon run`, systemd), or
//                                       with --log-file to var/daemon.log, rotated (`thrum
//                                       daemon start`, after forking and pointing stdio at it);
//                                       --ready-fd: write `ready <pid> <port>` there once serving
//   thrum-daemon plugins-list [--result-fd N]
//   thrum-daemon plugins-check PATH [--result-fd N]
//                                       the plugin scans behind `thrum plugins list|check`: one
//                                       JSON document on fd N (default stdout), see
//                                       plugins_tool.cpp
//   thrum-daemon --version
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "thrum/common/repo.hpp"
#include "thrum/core/daemon.hpp"

namespace thrum::daemon_exe {
#ifdef THRUM_HAVE_PLUGINS_TOOL
int plugins_list(int result_fd);
int plugins_check(const std::string& path, int result_fd);
#endif
}  // namespace thrum::daemon_exe

namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: thrum-daemon run --repo DIR [--log-file] [--ready-fd N]\n"
    "       thrum-daemon plugins-list [--result-fd N]\n"
    "       thrum-daemon plugins-check PATH [--result-fd N]\n"
    "       thrum-daemon --version\n"
    "thrum-daemon is started by the thrum CLI; run 'thrum --help' instead.\n";

fs::path self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("thrum-daemon") : p;
}

int usage_error(const std::string& what) {
  std::cerr << "thrum-daemon: " << what << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("missing command");
  const std::string cmd = args.front();
  if (cmd == "--version") {
    std::cout << THRUM_VERSION << "\n";
    return 0;
  }
  if (cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return 0;
  }

  std::optional<std::string> repo;
  std::vector<std::string> positional;
  int result_fd = 1;
  int ready_fd = -1;
  bool log_file = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--repo" && i + 1 < args.size()) {
      repo = args[++i];
    } else if (args[i] == "--result-fd" && i + 1 < args.size()) {
      result_fd = std::atoi(args[++i].c_str());
      if (result_fd < 1) return usage_error("--result-fd expects a file descriptor number");
    } else if (args[i] == "--ready-fd" && i + 1 < args.size()) {
      ready_fd = std::atoi(args[++i].c_str());
      if (ready_fd < 3) return usage_error("--ready-fd expects a file descriptor number >= 3");
    } else if (args[i] == "--log-file") {
      log_file = true;
    } else if (args[i].rfind("--", 0) == 0) {
      return usage_error("unknown option " + args[i]);
    } else {
      positional.push_back(args[i]);
    }
  }

  try {
    if (cmd == "run") {
      if (!repo || !positional.empty()) return usage_error("run takes exactly --repo DIR");
      thrum::core::DaemonOptions opts{thrum::core::RepoPaths::for_root(*repo), self_exe()};
      opts.log_to_file = log_file;
      opts.ready_fd = ready_fd;
      return thrum::core::run_daemon(opts);
    }
#ifdef THRUM_HAVE_PLUGINS_TOOL
    if (cmd == "plugins-list") {
      if (!positional.empty()) return usage_error("plugins-list takes no arguments");
      return thrum::daemon_exe::plugins_list(result_fd);
    }
    if (cmd == "plugins-check") {
      if (positional.size() != 1) return usage_error("plugins-check takes one PATH");
      return thrum::daemon_exe::plugins_check(positional.front(), result_fd);
    }
#endif
  } catch (const std::exception& e) {
    // Same wording as the CLI: `thrum daemon start` shows the `Error:` lines of the log.
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  return usage_error("unknown command " + cmd);
}
