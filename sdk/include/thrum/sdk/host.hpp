#pragma once
/// @file
/// The services the host (the Thrum daemon) offers to a plugin.

#include <string_view>

#include "thrum/sdk/types.hpp"

namespace thrum::sdk {

/// Implemented by the host, called by the plugin. New methods are only ever appended, so a
/// plugin built against an older SDK minor keeps working with a newer host.
class IHost {
 public:
  /// Logs one line in the daemon's log on the plugin's behalf, tagged with the plugin id.
  /// Plugins never write to stdout/stderr or use a logging library of their own.
  /// Thread-safety: may be called from any thread, concurrently.
  /// Ownership: `message` is copied before the call returns. An empty message is ignored.
  /// Must never contain a secret (token, pairing code, auth key).
  virtual void log(LogLevel level, std::string_view message) noexcept = 0;

 protected:
  ~IHost() = default;  // the host owns it; plugins never delete it
};

}  // namespace thrum::sdk
