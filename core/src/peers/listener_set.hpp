#pragma once
// The transports' own peer listeners (Capabilities::provides_listener) and where we are
// reachable over each transport (peers.json `local.addresses`, SPEC §7.3):
//  - ensure(): a listener runs on the requested address, else where it last listened, else (for
//    transports that follow host addresses, when that address is gone) on another local address
//    the transport accepts, same /24 first; listen() runs on a worker thread, one at a time per
//    transport, never on the loop (an embedded tailscale node logging in may take seconds);
//  - check(): every few seconds, a listener whose IP left the host is moved;
//  - a changed advertised address is reported (on_moved) so that every peer of the transport
//    is told.
// Accepted connections go through TLS (when the transport needs it) and the HTTP upgrade, then
// to the upgrade handler exactly like the loopback server's.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "thrum/core/transport_registry.hpp"

namespace thrum::core {
struct PeerUpgrade;
}

namespace thrum::core::peers {

class Context;
class Connector;
class Credentials;

class ListenerSet {
 public:
  /// On the loop: the advertised endpoint, or nullopt and why.
  using Ready = std::function<void(std::optional<sdk::Endpoint>, std::string why)>;
  /// Our address for `transport` moved from `before` (non-empty) to `now`.
  using Moved = std::function<void(const std::string& transport, const sdk::Endpoint& now)>;
  using OnUpgrade = std::function<void(std::unique_ptr<PeerUpgrade>)>;

  ListenerSet(Context& ctx, Connector& connector, Credentials& credentials, OnUpgrade on_upgrade,
              Moved on_moved);
  ~ListenerSet();
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  /// Makes sure `id`'s listener runs (transports served on the loopback server only advertise)
  /// and reports the endpoint we advertise. `auth_key`: the call's credential, if any.
  void ensure(const std::string& id, const Transport& t, const std::string& requested_ip,
              Ready ready, const std::optional<std::string>& auth_key = std::nullopt);
  /// At start: listeners for every transport that has peers; addresses recorded and told.
  /// `failed(transport, error)` for each that could not start.
  void start(std::function<void(const std::string&, const std::string&)> failed);
  /// start() for one transport (a SIGHUP reload enabled it).
  void start_one(const std::string& id,
                 std::function<void(const std::string&, const std::string&)> failed);
  /// Closes `id`'s listener (a SIGHUP reload disabled the transport); an attempt in flight is
  /// closed when it comes back.
  void stop(const std::string& id);
  /// Housekeeping: listeners of transports that follow host addresses move when their IP left.
  void check();
  /// Records where we are reachable over `id`; when that moved, reports it (on_moved).
  void advertised(const std::string& id, const sdk::Endpoint& now);
  /// Closes every listener; a listen() in flight finishes first. Idempotent.
  void shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core::peers
