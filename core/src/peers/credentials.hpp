#pragma once
// Credentials transports declare (TransportProfile::credential, e.g. tailscale's auth key): the
// one the user gave with this call, else the daemon's environment variable, else the line saved
// in `.thrum/.env` (0600) — saved only after a listener came up with it, so a mistyped key is
// never kept. Never logged. Loop thread only.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "thrum/core/transport_registry.hpp"

namespace thrum::core::peers {

class Credentials {
 public:
  Credentials(std::filesystem::path env_file, std::filesystem::path var_dir)
      : env_file_(std::move(env_file)), var_dir_(std::move(var_dir)) {}

  /// What the daemon holds for `t` ("" when none, or when `t` declares no credential).
  std::string held(const Transport& t);
  /// A listener of `t` came up with `given` (the call's --auth-key): keep and save it.
  void worked(const Transport& t, const std::optional<std::string>& given);
  /// ListenSpec::options_json's reserved `host` object for `t`: its state directory under
  /// .thrum/var/, and the credential (the call's, else the held one) when it declares one.
  nlohmann::json listen_options(const Transport& t, const std::optional<std::string>& given);

 private:
  std::filesystem::path env_file_, var_dir_;
  std::map<std::string, std::string> cache_;  // by environment variable
};

/// Sets `name=value` in a KEY=VALUE file, keeping its other lines; atomic, mode 0600.
void save_env_value(const std::filesystem::path& file, const std::string& name,
                    const std::string& value);

}  // namespace thrum::core::peers
