#pragma once
/// @file
/// Limits of the daemon's client-facing servers and of its log file, from `.thrum/config.json`:
///
///   "daemon": { "max_connections": 256, "unix_idle_timeout_seconds": 600,
///               "log_max_bytes": 10485760, "log_files": 4 }
///
/// `max_connections` caps each listener (the Unix socket and the loopback WebSocket server)
/// separately; `unix_idle_timeout_seconds` closes a Unix-socket connection that has sent no
/// request for that long (never one whose request is still being answered); 0 disables it.
/// `log_max_bytes` (64 KiB .. 1 GiB) and `log_files` (1 .. 100) rotate var/daemon.log.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace thrum::core {

class Config;
struct LogRotation;

struct ServerLimits {
  std::size_t max_connections = 256;
  std::chrono::seconds unix_idle_timeout{600};

  static constexpr std::size_t kMaxConnectionsCeiling = 65536;
};

/// The limits from `config`, defaults for absent keys. A present but unusable value adds an
/// error naming the key and what to do to `errors` (the daemon then refuses to start).
ServerLimits server_limits(const Config& config, std::vector<std::string>& errors);

/// The log rotation from `config` (daemon.log_max_bytes, daemon.log_files), the same way.
LogRotation log_rotation(const Config& config, std::vector<std::string>& errors);

}  // namespace thrum::core
