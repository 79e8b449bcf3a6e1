#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "thrum/core/plugin_loader.hpp"
#include "thrum/core/policy.hpp"
#include "thrum/core/transport_registry.hpp"

namespace thrum::core {

namespace rpc {
class Dispatcher;
}

/// Everything the daemon needs from plugins: reads the operator policy, scans the plugin
/// directories, loads the enabled plugins into a TransportRegistry and remembers why the others
/// are not available. Built once at daemon start, on one thread; changed afterwards only by
/// reload_policy() on the loop thread.
class PluginHost {
 public:
  struct Options {
    std::filesystem::path exe_dir;  ///< directory of the running thrum binary
    /// Where the system policy lives; tests point it elsewhere. $THRUM_POLICY wins over it.
    std::filesystem::path etc_policy = "/etc/thrum/transports.yaml";
  };

  /// Reads the policy, scans the plugin dirs, loads enabled plugins. Throws PolicyError
  /// ("<file>:<line>: <problem>"). Plugin failures never throw: they end up in list_json().
  static std::unique_ptr<PluginHost> load(const Options& opts);

  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  /// One entry per plugin file found (and per transport the policy names but no file provides):
  /// {"id","version","abi","path","status"}; status is "enabled", "disabled by policy (<file>)",
  /// "refused: <stage>: <detail>" or "not found in <dirs>".
  nlohmann::json list_json() const;

  /// The transport for `peer add/join --type <id>`, or nullptr with `*why_not` (if given) set to
  /// "disabled by policy (<file>)", "refused: <stage>: <detail>" or "no plugin found in <dirs>".
  ITransportHandle find(const std::string& id, std::string* why_not) const;
  /// The same with what the core decides by (capabilities, profile); empty when unavailable.
  Transport transport(const std::string& id, std::string* why_not) const;

  /// Every transport this daemon knows of, for `peer add|join` without --type and type checks:
  /// [{"id", "available", "why" (when not), "help", "needs_address", "needs_repo_path",
  ///   "provides_listener", "loopback_only", "credential": {"name","env","prompt"} (when one)}],
  /// sorted by id; `repair` is not a transport and is not listed.
  nlohmann::json transports_json() const;

  /// SIGHUP: reads the policy file again (the same lookup as load()) and applies which
  /// transports are enabled: a newly disabled one leaves the registry, a newly enabled one is
  /// loaded from the file found at start. Returns the ids whose availability changed. Throws
  /// PolicyError (`<file>:<line>: <problem>`) and then changes nothing. `plugin_dirs` and the
  /// options of a transport that stays enabled take effect at the next start (logged).
  std::vector<std::string> reload_policy();

  TransportRegistry& registry() { return registry_; }
  const TransportRegistry& registry() const { return registry_; }

  /// Path of the policy file in force, or "" if none.
  std::string policy_source() const;
  /// The policy's options for `id` (JSON object; empty when none).
  nlohmann::json transport_options(const std::string& id) const;
  /// The directories scanned, in order.
  const std::vector<std::filesystem::path>& plugin_dirs() const { return dirs_; }

  /// The default plugin directories: `<exe_dir>/../<libdir>/thrum/plugins` (libdir as installed,
  /// usually `lib`; plain `lib` is also tried, for the build tree), then `$THRUM_PLUGIN_PATH`.
  static std::vector<std::filesystem::path> default_plugin_dirs(
      const std::filesystem::path& exe_dir);

 private:
  PluginHost() = default;

  struct Entry {
    std::string id;
    std::string version;
    std::string abi;
    std::filesystem::path path;
    std::string status;
  };
  /// Loads one enabled plugin file into the registry; fills `e`.
  void load_one(const std::filesystem::path& file, Entry& e);
  void drop_from_registry(const std::string& id);

  Options opts_;
  std::map<std::string, std::filesystem::path> taken_;  ///< id -> file it was loaded from
  Policy policy_;
  std::vector<std::filesystem::path> dirs_;
  std::vector<Entry> entries_;
  TransportRegistry registry_;
};

/// Registers `plugins.list` (result: {"plugins": list_json(), "policy": "<file or empty>"}).
/// Defined in plugin_rpc.cpp, part of thrum_core.
void register_plugin_methods(rpc::Dispatcher& dispatcher, PluginHost& host);

}  // namespace thrum::core
