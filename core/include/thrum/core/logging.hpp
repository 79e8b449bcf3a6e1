#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace thrum::core {

/// When the log file rotates and how many old files stay: `daemon.log_max_bytes` and
/// `daemon.log_files` in `.thrum/config.json` (core/src/server_limits.cpp decodes them).
struct LogRotation {
  std::size_t max_bytes = 10 * 1024 * 1024;  ///< the file rotates before a line would pass it
  int keep_files = 4;                        ///< daemon.log.1 .. daemon.log.<keep_files>

  // Below 64 KiB a busy daemon would rotate several times a second and lose its history; above
  // 1 GiB one file is more than an operator can page through.
  static constexpr std::size_t kMinMaxBytes = 64 * 1024;
  static constexpr std::size_t kMaxMaxBytes = 1024 * 1024 * 1024;
  static constexpr int kMinKeepFiles = 1;
  static constexpr int kMaxKeepFiles = 100;
};

/// Where the daemon logs. Every line has the same format either way:
/// `<UTC timestamp> <level> <message with key=value fields>`.
///  - A file (`thrum daemon start`: `var/daemon.log`): rotated at 10 MiB with 4 old files kept
///    (`daemon.log.1` .. `.4`) unless set_log_rotation() says otherwise; the process's stderr is
///    pointed at the current file too, so a crash message lands next to the last log lines.
///  - stderr (`thrum daemon run`, the foreground daemon): a service manager's journal gets it.
/// Level from $THRUM_LOG_LEVEL (trace, debug, info, warn, error; default info). Nothing logged
/// may contain a pairing code, token or auth key.
void setup_daemon_logging(const std::filesystem::path& log_file);
void setup_stderr_logging();

/// Rotation of the log file from now on (no-op on stderr). Until it is called (the daemon logs
/// before its config is read) the LogRotation defaults apply.
void set_log_rotation(const LogRotation& rotation);

/// Reopens the log file by name (SIGHUP, after logrotate moved it away). No-op on stderr.
void reopen_daemon_log();

/// "stderr" or the log file's path, for `daemon status`.
std::string daemon_log_target();

}  // namespace thrum::core
