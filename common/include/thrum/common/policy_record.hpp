#pragma once
/// @file
/// Which operator policy file a daemon runs with, as the CLI can tell without reading YAML.
///
/// The policy comes from the environment of whoever starts the daemon ($THRUM_POLICY, else
/// /etc/thrum/transports.yaml if it exists, else none), so a `thrum daemon restart` from a shell
/// without THRUM_POLICY would silently change which transports run. The daemon records the file
/// it applies in `var/policy.source`; `daemon start`/`restart` compare it with the one the new
/// daemon will use and warn when they differ.

#include <filesystem>
#include <optional>
#include <string>

#include "thrum/common/policy_lookup.hpp"
#include "thrum/common/repo.hpp"

namespace thrum::core {

/// The recorded policy ("" = the daemon ran with none), nullopt when nothing is recorded.
std::optional<std::string> recorded_policy_source(const RepoPaths& paths);

/// Records the policy the daemon applies ("" for none): `var/policy.source`, 0600, atomic.
/// Throws std::system_error when it cannot be written.
void record_policy_source(const RepoPaths& paths, const std::string& source);

/// The one warning line `daemon start` prints when the policy it is about to use (`upcoming`,
/// "" for none) is not the recorded one; "" when they agree or nothing is recorded.
std::string policy_change_warning(const std::optional<std::string>& recorded,
                                  const std::string& upcoming);

}  // namespace thrum::core
