#pragma once
/// @file
/// The per-daemon `/ws` client secret: 32 random bytes as 64 lowercase hex characters in
/// `.thrum/var/ws.secret` (mode 0600, in the 0700 var directory), made anew at every start.
/// Only the daemon's own OS user can read it, so presenting it proves a `/ws` client is that
/// user's program (docs/design-decisions.md, "/ws client authentication").

#include <filesystem>
#include <string>
#include <string_view>

namespace thrum::core {

/// Writes a fresh secret to `path` atomically (0600) and returns it. Throws std::system_error.
std::string create_client_secret(const std::filesystem::path& path);

/// Constant-time comparison of a presented secret with the daemon's.
bool client_secret_matches(std::string_view presented, std::string_view secret);

}  // namespace thrum::core
