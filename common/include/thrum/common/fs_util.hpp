#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace thrum::core {

/// How far a replaced file must survive.
enum class Durability {
  kDurable,  ///< also a power loss: the file and the rename are fsynced
  kRuntime,  ///< a process crash only: files that describe a running daemon (pid, ports,
             ///< the /ws secret), rewritten at every start and meaningless after a reboot
};

/// Replaces `path` with `data` so that a reader (or a crash) sees either the old file or the
/// new one, never a mix: write a temp file in the same directory, fsync it, rename it over
/// `path`, fsync the directory. The file gets `mode`. Throws std::system_error on failure,
/// leaving `path` untouched. With Durability::kRuntime the two fsyncs are skipped: readers
/// still never see a partial file, but after a power loss the file may be empty (its readers
/// treat that as "no daemon").
void atomic_write_file(const std::filesystem::path& path, std::string_view data, mode_t mode = 0600,
                       Durability durability = Durability::kDurable);

/// The whole file, or nullopt when it does not exist. Throws std::system_error otherwise.
std::optional<std::string> read_file(const std::filesystem::path& path);
/// The whole file, or nullopt when it is missing *or* cannot be read (permissions, EMFILE, a
/// directory): for files whose absence and unreadability mean the same thing to the caller
/// (port, pid and socket records, `.git` links). Never throws std::system_error.
std::optional<std::string> read_file_or_nothing(const std::filesystem::path& path);

/// Creates `dir` (and parents) if missing and sets its mode through an O_NOFOLLOW descriptor.
/// When `dir` is a symlink its target is never chmodded: the link is accepted if the target is
/// a directory owned by this user with no group/other access, and refused (std::runtime_error
/// saying what to do) otherwise. Throws std::system_error on other failures.
void ensure_dir(const std::filesystem::path& dir, mode_t mode = 0700);

/// Sets a regular file's mode to `mode` through an O_NOFOLLOW descriptor (a symlink, or a
/// missing file, is left alone). Returns true when the mode was changed.
bool tighten_mode(const std::filesystem::path& file, mode_t mode = 0600);

/// Moves a file that failed to parse to `<name>.corrupt-<UTC timestamp>` (mode 0600) beside it
/// and returns the new path. The content is kept for the user to inspect; it is never overwritten.
std::filesystem::path move_aside_corrupt(const std::filesystem::path& path);

/// Copies `from` to `to` (mode 0600, fsynced) only if `to` does not exist yet. Returns true
/// when a copy was made. Used for the backup-once files (`*.pre-identity-bak`, ...).
bool copy_file_once(const std::filesystem::path& from, const std::filesystem::path& to);

/// fsync a directory so that a rename or unlink inside it is durable.
void fsync_dir(const std::filesystem::path& dir);

}  // namespace thrum::core
