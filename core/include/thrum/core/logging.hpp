#pragma once

#include <filesystem>

namespace thrum::core {

/// Sends spdlog's default logger to `var/daemon.log`, rotating at 10 MiB with 4 old files kept.
/// Level from $THRUM_LOG_LEVEL (trace, debug, info, warn, error; default info). Timestamps are
/// UTC. Nothing logged may contain a pairing code, token or auth key.
void setup_daemon_logging(const std::filesystem::path& log_file);

}  // namespace thrum::core
