#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "thrum/common/repo.hpp"

namespace thrum::core {

/// `.thrum/config.json` (SPEC §1). Keys Thrum does not know are kept verbatim and written back
/// in their original order, so hand edits and newer versions' keys survive a save.
class Config {
 public:
  /// Loads config.json. A missing file means all defaults. A file that is not a JSON object
  /// (syntax, nesting deeper than kMaxJsonDepth, invalid UTF-8) is
  /// moved aside as `config.json.corrupt-<ts>` (never overwritten) and defaults are used;
  /// the move is recorded in problems() for the log and `daemon status`.
  static Config load(const RepoPaths& paths);

  /// Writes config.json atomically with mode 0600.
  void save(const RepoPaths& paths) const;

  /// Ensures the `identity` block exists and is current (daemon_id, repo_name, hostname,
  /// repo_path, git_origin_url, init_at). Before daemon_id is first created in an existing
  /// file, or rotated, the file is copied once to `config.json.pre-identity-bak`.
  /// Returns true when the document changed and should be saved.
  bool bootstrap_identity(const RepoPaths& paths);

  /// Replaces the daemon id (e.g. an operator rotating it); backs up once like bootstrap.
  void rotate_daemon_id(const RepoPaths& paths);

  /// Values that are present but unusable, each naming the key and what to do. The daemon
  /// refuses to start while this is non-empty.
  std::vector<std::string> validate() const;

  std::string daemon_id() const;
  std::string repo_name() const;
  std::string hostname() const;
  std::string git_origin_url() const;
  std::string init_at() const;
  /// nullopt means "auto".
  std::optional<unsigned short> ws_port() const;
  std::optional<unsigned short> peer_port() const;
  int64_t max_message_body_bytes() const;
  bool auto_connect() const;
  int pairing_code_length() const;
  std::optional<std::string> peers_name() const;

  const nlohmann::ordered_json& doc() const { return doc_; }
  nlohmann::ordered_json& doc() { return doc_; }
  /// Things that went wrong while loading (a corrupt file moved aside), for log and status.
  const std::vector<std::string>& problems() const { return problems_; }

  static constexpr int64_t kDefaultMaxBodyBytes = 1048576;
  static constexpr int kDefaultPairingCodeLength = 16;

 private:
  const nlohmann::ordered_json* find(const char* section, const char* key) const;
  /// identity.<key> when it is a string (validate() reports it otherwise), else `fallback`.
  std::string identity_text(const char* key, std::string fallback = "") const;
  nlohmann::ordered_json doc_ = nlohmann::ordered_json::object();
  std::vector<std::string> problems_;
};

/// Parses config.json text (depth-bounded, UTF-8 checked) and checks it is an object. nullopt
/// with `error` saying what was wrong (never quoting the content) otherwise. Field types are
/// checked by Config::validate() and by each accessor.
std::optional<nlohmann::ordered_json> decode_config(std::string_view text, std::string& error);

/// `git config --get remote.origin.url` in `dir`, or "" when unset or git is missing.
std::string git_origin_url(const std::filesystem::path& dir);
/// The machine's host name.
std::string host_name();

}  // namespace thrum::core
