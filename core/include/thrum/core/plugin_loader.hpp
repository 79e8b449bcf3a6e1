#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "thrum/core/transport_registry.hpp"

namespace thrum::core {

/// One loader stage's outcome.
struct StageResult {
  std::string stage;  ///< e.g. "file name", "abi"
  bool ok = false;
  std::string detail;  ///< on success a short fact ("1.0"), on failure the reason
};

/// What the loader found out about one file.
struct LoadReport {
  std::filesystem::path path;
  std::vector<StageResult> stages;  ///< in order; stops at the first failure
  PluginInfo info;                  ///< as much as was read (id from the file name at least)
  ITransportHandle transport;       ///< set when every stage passed and instantiation was asked for

  bool ok() const { return !stages.empty() && stages.back().ok; }
  /// "" when ok, else "refused: <stage>: <detail>".
  std::string refusal() const;
};

/// Loads transport plugins, checking them in stages; the first failing stage refuses the file:
///
///  1. file name      `libthrum_transport_<id>.so`, id `[a-z0-9_]+`
///  2. file mode      regular file, not group/world-writable, owned by root or the current user
///  3. shared library ELF magic, type ET_DYN
///  4. symbol         `thrum_transport_plugin` exported (read from the file, no code runs)
///  5. load           dlopen succeeds (runs the plugin's static initialisers)
///  6. struct size    descriptor at least as large as ABI 1.0's
///  7. abi            major equal, minor not newer than the host's
///  8. toolchain      tag equal to the host's
///  9. id             descriptor id valid, equal to the file name's, not already loaded
/// 10. factory        create/destroy not null
/// 11. create         (when instantiating) the factory returns an object and does not throw
/// 12. configure      (when instantiating) ITransport::configure(options) succeeds
///
/// Loaded libraries are never unloaded (they stay in a process-wide list), whatever the outcome.
/// Each transport gets its own IHost that logs through spdlog as
/// `plugin log id=<id> msg="<message>"`; it lives as long as the process, like the library.
/// Not thread-safe: use from one thread (the daemon loads plugins once, at start).
class PluginLoader {
 public:
  struct Request {
    /// Run stages 11-12 and hand out the transport.
    bool instantiate = true;
    /// Ids already taken (stage 9 refuses them as duplicates), with the path that took them.
    const std::map<std::string, std::filesystem::path>* taken = nullptr;
    /// Options for configure(), JSON object text.
    std::string options_json = "{}";
  };

  LoadReport load(const std::filesystem::path& file, const Request& request) const;
  LoadReport load(const std::filesystem::path& file) const { return load(file, Request{}); }

  /// One line per stage run, as `thrum plugins check` prints them: `✓ <stage>[: <detail>]` or
  /// `✗ <stage>: <detail>`.
  static std::vector<std::string> describe(const LoadReport& report);

  /// The id encoded in a file name (`libthrum_transport_<id>.so`), or nullopt.
  static std::optional<std::string> id_from_file_name(const std::string& file_name);
};

}  // namespace thrum::core
