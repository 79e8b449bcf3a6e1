#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace thrum::core {

/// One running daemon as its registry entry says (`thrum daemon list`).
struct DaemonEntry {
  int pid = 0;
  std::string repo_path;
  unsigned short ws_port = 0;
  std::string started_at;  ///< RFC 3339, UTC
  std::string log;         ///< the log file, or "stderr"
};

/// The per-user list of running daemons: one JSON file per daemon under
/// `$XDG_RUNTIME_DIR/thrum/daemons/`, or `/tmp/thrum-<uid>/daemons/` without it (0700, and
/// refused when another user owns it). A daemon registers once it serves and unregisters on a
/// clean exit; an entry whose process died (kill -9) or no longer holds its repo's lock is stale
/// and dropped by whoever lists. Standard library only: the CLI reads it.
class DaemonRegistry {
 public:
  /// The directory for this user (not created).
  static std::filesystem::path default_dir();
  explicit DaemonRegistry(std::filesystem::path dir = default_dir()) : dir_(std::move(dir)) {}

  /// Writes (atomically) the entry of the daemon serving `e.repo_path`. Throws on I/O errors.
  void add(const DaemonEntry& e) const;
  /// Removes the entry of `repo_path` if it is `pid`'s.
  void remove(const std::string& repo_path, int pid) const;
  /// Live entries sorted by repo path; stale and unreadable entries are deleted.
  std::vector<DaemonEntry> list() const;

  const std::filesystem::path& dir() const { return dir_; }
  /// The file that holds `repo_path`'s entry.
  std::filesystem::path file_for(const std::string& repo_path) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace thrum::core
