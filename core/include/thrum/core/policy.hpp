#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::core {

/// A policy file that cannot be used. The message is `<file>:<line>: <problem>` (or
/// `<file>: <problem>` when no line applies); the daemon refuses to start on it.
struct PolicyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The operator policy (SPEC §1 "Operator policy"): which transports may run, where plugins are
/// looked up, and each transport's options.
///
/// ```yaml
/// plugin_dirs: [/usr/local/lib/thrum/plugins]
/// transports:
///   local:   { enabled: true }
///   network: { enabled: true, allowed_subnets: [198.51.100.0/24] }
/// ```
///
/// Decisions where SPEC is silent (also in docs/plugin-sdk.md):
///  - `plugin_dirs` replaces the default directories (the operator's file wins over the user's
///    `$THRUM_PLUGIN_PATH`); relative entries are relative to the policy file's directory.
///  - When the file has a `transports` map, it is an allow-list: a transport it does not name is
///    disabled. Without a `transports` key every transport found is enabled.
///  - A listed transport without `enabled` is enabled.
class Policy {
 public:
  struct Transport {
    bool enabled = true;
    nlohmann::json options = nlohmann::json::object();  ///< every key except `enabled`
    int line = 0;                                       ///< 1-based line of the entry
  };

  /// `$THRUM_POLICY` if set (it must exist), else /etc/thrum/transports.yaml if it exists, else
  /// nullopt (no policy: everything enabled). `etc_path` is injectable for tests.
  static std::optional<std::filesystem::path> locate(
      const std::filesystem::path& etc_path = "/etc/thrum/transports.yaml");

  /// Reads and validates a policy file. Throws PolicyError.
  static Policy load_file(const std::filesystem::path& file);
  /// Validates policy text; `file` is used in messages and to resolve relative plugin_dirs.
  static Policy parse(const std::string& text, const std::filesystem::path& file);

  /// The file in force; empty for "no policy".
  const std::filesystem::path& source() const { return source_; }
  bool has_plugin_dirs() const { return has_plugin_dirs_; }
  const std::vector<std::filesystem::path>& plugin_dirs() const { return plugin_dirs_; }
  bool has_transports() const { return has_transports_; }
  const std::map<std::string, Transport>& transports() const { return transports_; }

  /// Whether a transport may be loaded (see the allow-list rule above).
  bool enabled(const std::string& id) const;
  /// The transport's options (JSON object, possibly empty).
  nlohmann::json options(const std::string& id) const;

 private:
  std::filesystem::path source_;
  bool has_plugin_dirs_ = false;
  std::vector<std::filesystem::path> plugin_dirs_;
  bool has_transports_ = false;
  std::map<std::string, Transport> transports_;
};

}  // namespace thrum::core
