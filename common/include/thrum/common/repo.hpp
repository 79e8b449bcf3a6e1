#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace thrum::core {

/// Every path under `<repo>/.thrum/` that Thrum reads or writes, in one place (SPEC §1).
struct RepoPaths {
  std::filesystem::path root;        ///< the repository directory
  std::filesystem::path thrum;       ///< <root>/.thrum
  std::filesystem::path config;      ///< .thrum/config.json
  std::filesystem::path identities;  ///< .thrum/identities
  std::filesystem::path env_file;    ///< .thrum/.env (tailscale auth key)
  std::filesystem::path var;         ///< .thrum/var
  /// var/thrum.sock, or — when that path would not fit in sockaddr_un.sun_path (deep repo
  /// paths) — `$XDG_RUNTIME_DIR/thrum/<hash>.sock` or `/tmp/thrum-<uid>/<hash>.sock`, named by a
  /// hash of the repo path; the daemon records the one it serves in `sock_record`.
  std::filesystem::path sock;
  std::filesystem::path sock_record;    ///< var/sock.path (only while the socket lives elsewhere)
  std::filesystem::path pid;            ///< var/thrum.pid
  std::filesystem::path lock;           ///< var/thrum.lock
  std::filesystem::path ws_port;        ///< var/ws.port (present only while the daemon runs)
  std::filesystem::path ws_port_last;   ///< var/ws.port.last (the port `auto` tries to reuse)
  std::filesystem::path db;             ///< var/thrum.db
  std::filesystem::path peers;          ///< var/peers.json
  std::filesystem::path log;            ///< var/daemon.log
  std::filesystem::path policy_source;  ///< var/policy.source (the policy the daemon last used)
  std::filesystem::path tls;            ///< var/tls
  std::filesystem::path tsnet;          ///< var/tsnet

  static RepoPaths for_root(const std::filesystem::path& root);
  /// Whether the socket lives outside var/ (its path there would be too long).
  bool socket_relocated() const { return sock.parent_path() != var; }
};

/// Where the socket of a repo whose var/thrum.sock is too long goes (the daemon binds here and
/// records it; clients read the record, and compute the same path without one).
std::filesystem::path relocated_socket_path(const std::filesystem::path& root);

/// Longest socket path a sockaddr_un holds.
std::size_t max_socket_path();

/// For a relocated socket: creates its directory (0700) if needed and checks that it is a
/// real directory owned by us and closed to others. "" when ready, else what is wrong and
/// what to do. Nothing to do (and "") when the socket is in var/.
std::string prepare_socket_dir(const RepoPaths& paths);

/// The repository Thrum should act on: an explicit `--repo`, else the nearest ancestor of
/// `start` that holds `.thrum/` — or is a linked git worktree whose main worktree holds it —,
/// else `$THRUM_HOME`. nullopt when none applies.
std::optional<std::filesystem::path> find_repo_root(
    const std::optional<std::filesystem::path>& explicit_repo, const std::filesystem::path& start);

/// The daemon id recorded in `<root>/.thrum/config.json` (identity.daemon_id), "" when the
/// file, or the id, is missing or unreadable. Read-only: another repo's file is never written.
std::string recorded_daemon_id(const std::filesystem::path& root);

/// The main worktree of `dir` when `dir` is a linked git worktree (its `.git` is a file
/// pointing into the main repository's `.git/worktrees/`), else nullopt.
std::optional<std::filesystem::path> main_worktree_of(const std::filesystem::path& dir);

/// Reads a port file ("<port>\n"). nullopt when missing or not a port in 1..65535.
std::optional<unsigned short> read_port_file(const std::filesystem::path& path);

}  // namespace thrum::core
