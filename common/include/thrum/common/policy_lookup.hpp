#pragma once
/// @file
/// The one lookup of the operator policy file, shared by the daemon (Policy::locate) and the
/// CLI (which cannot link the YAML-reading policy code). Header-only so that the plugin host
/// and the fuzz units use it without linking thrum::common.

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

namespace thrum::core {

inline constexpr const char* kEtcPolicyPath = "/etc/thrum/transports.yaml";

/// The policy file a daemon started now, from this environment, uses: $THRUM_POLICY if set and
/// not empty (it must exist: loading says so if it does not), made absolute against the current
/// directory because `daemon status` and var/policy.source show it to shells elsewhere; else
/// `etc_path` if it exists; else nullopt (no policy: every transport enabled).
inline std::optional<std::filesystem::path> policy_file_for_start(
    const std::filesystem::path& etc_path = kEtcPolicyPath) {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("THRUM_POLICY"); env != nullptr && *env != '\0') {
    std::error_code ec;
    fs::path abs = fs::absolute(env, ec);
    return ec ? fs::path(env) : abs.lexically_normal();
  }
  std::error_code ec;
  if (fs::exists(etc_path, ec)) return etc_path;
  return std::nullopt;
}

}  // namespace thrum::core
