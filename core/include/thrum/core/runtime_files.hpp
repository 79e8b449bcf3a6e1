#pragma once

#include "thrum/common/repo.hpp"

namespace thrum::core {

/// The files that say "a daemon serves this repo here": `var/ws.port`, the socket and the pid
/// file. Peers and clients trust them only while they are true, so they go on every exit path
/// that runs code: the destructor (normal return, an exception unwinding run_daemon) and, once
/// install_crash_cleanup() ran, a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT).
/// kill -9 runs nothing; local peers check that the pid file's process holds the repo lock
/// before trusting a port file (plugins/local/daemon_liveness.hpp).
///
/// Construct it right after taking the daemon lock: it removes a port file left by a daemon
/// that died, before anything else, so nobody dials a stale port while we start.
class RuntimeFiles {
 public:
  explicit RuntimeFiles(const RepoPaths& paths);
  ~RuntimeFiles();
  RuntimeFiles(const RuntimeFiles&) = delete;
  RuntimeFiles& operator=(const RuntimeFiles&) = delete;

  /// Unlinks the files from a fatal-signal handler too (async-signal-safe: unlink only), then
  /// re-raises the signal with its default action. Not under AddressSanitizer, whose own
  /// handlers must report the crash.
  void install_crash_cleanup();
};

/// Removes the sockets in `dir` (a relocated-socket directory shared by this user's repos)
/// that nobody serves any more: connecting is refused, so their daemon is gone.
void clean_stale_sockets(const std::filesystem::path& dir);

}  // namespace thrum::core
