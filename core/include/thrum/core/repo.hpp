#pragma once

#include <filesystem>
#include <optional>

namespace thrum::core {

/// Every path under `<repo>/.thrum/` that Thrum reads or writes, in one place (SPEC §1).
struct RepoPaths {
  std::filesystem::path root;          ///< the repository directory
  std::filesystem::path thrum;         ///< <root>/.thrum
  std::filesystem::path config;        ///< .thrum/config.json
  std::filesystem::path identities;    ///< .thrum/identities
  std::filesystem::path env_file;      ///< .thrum/.env (tailscale auth key)
  std::filesystem::path var;           ///< .thrum/var
  std::filesystem::path sock;          ///< var/thrum.sock
  std::filesystem::path pid;           ///< var/thrum.pid
  std::filesystem::path lock;          ///< var/thrum.lock
  std::filesystem::path ws_port;       ///< var/ws.port (present only while the daemon runs)
  std::filesystem::path ws_port_last;  ///< var/ws.port.last (the port `auto` tries to reuse)
  std::filesystem::path db;            ///< var/thrum.db
  std::filesystem::path peers;         ///< var/peers.json
  std::filesystem::path log;           ///< var/daemon.log
  std::filesystem::path tls;           ///< var/tls
  std::filesystem::path tsnet;         ///< var/tsnet

  static RepoPaths for_root(const std::filesystem::path& root);
};

/// The repository Thrum should act on: an explicit `--repo`, else the nearest ancestor of
/// `start` that holds `.thrum/`, else `$THRUM_HOME`. nullopt when none applies.
std::optional<std::filesystem::path> find_repo_root(
    const std::optional<std::filesystem::path>& explicit_repo, const std::filesystem::path& start);

/// Reads a port file ("<port>\n"). nullopt when missing or not a port in 1..65535.
std::optional<unsigned short> read_port_file(const std::filesystem::path& path);

}  // namespace thrum::core
