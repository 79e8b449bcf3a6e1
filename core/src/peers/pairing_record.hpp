#pragma once
// Which record a finished pairing stores (issue 13 items 1 and 3), on either side: a daemon
// already in peers.json (same remote daemon_id) keeps its record — same name, proxy prefix and
// proxies, a new token — instead of gaining a `name-2` beside the dead one; a new daemon gets a
// unique name and either the prefix asked for with --prefix or a slug of its name.

#include <string>

#include "thrum/core/peer_registry.hpp"

namespace thrum::core::peers {

/// "" when `prefix` is a valid proxy prefix (the agent-name alphabet: 1-64 characters from
/// a-z, 0-9, '_' and '-'), else the error naming it and what to use.
std::string check_prefix(const std::string& prefix);

/// Fills `r.name`, `r.proxy_prefix` and `r.remote_agents` for a pairing with the daemon
/// `r.daemon_id` that called itself `offered_name`. `wanted_prefix` is the --prefix given
/// ("" for none). Returns "" or why the pairing cannot be stored (the prefix is another
/// peer's).
std::string settle_pairing_record(const PeerRegistry& registry, PeerRecord& r,
                                  const std::string& offered_name,
                                  const std::string& wanted_prefix);

/// Whether storing `r` replaces a record (re-pairing the same daemon).
bool replaces_record(const PeerRegistry& registry, const PeerRecord& r);

}  // namespace thrum::core::peers
