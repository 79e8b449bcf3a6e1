#pragma once

#include <filesystem>
#include <string>

namespace thrum::core {

/// Where the daemon logs. Every line has the same format either way:
/// `<UTC timestamp> <level> <message with key=value fields>`.
///  - A file (`thrum daemon start`: `var/daemon.log`): rotated at 10 MiB with 4 old files kept
///    (`daemon.log.1` .. `.4`); the process's stderr is pointed at the current file too, so a
///    crash message lands next to the last log lines.
///  - stderr (`thrum daemon run`, the foreground daemon): a service manager's journal gets it.
/// Level from $THRUM_LOG_LEVEL (trace, debug, info, warn, error; default info). Nothing logged
/// may contain a pairing code, token or auth key.
void setup_daemon_logging(const std::filesystem::path& log_file);
void setup_stderr_logging();

/// Reopens the log file by name (SIGHUP, after logrotate moved it away). No-op on stderr.
void reopen_daemon_log();

/// "stderr" or the log file's path, for `daemon status`.
std::string daemon_log_target();

}  // namespace thrum::core
