#pragma once
// What every unit of the peer layer shares (core/src/peers/, composed by PeerManager): the
// daemon's options and identity, the loop, the store, the registry, the transports. One object,
// owned by PeerManager, outliving every unit; loop thread only.

#include <functional>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "store/outbox.hpp"
#include "thrum/core/peer_manager.hpp"
#include "thrum/core/peer_registry.hpp"
#include "thrum/core/timing.hpp"

namespace boost::asio {
class io_context;
}

namespace thrum::core {
class EventLoop;
class Store;
class Messaging;
}  // namespace thrum::core

namespace thrum::core::peers {

using json = nlohmann::json;

class Context {
 public:
  Context(PeerManager::Options o, boost::asio::io_context& ioc, EventLoop& loop, Store& store,
          Messaging& messaging, PeerManager::TransportLookup lookup);

  PeerManager::Options opts;
  boost::asio::io_context& ioc;
  EventLoop& loop;
  Store& store;
  Messaging& messaging;
  PeerRegistry registry;
  store::Outbox outbox;
  unsigned short ws_port = 0;  ///< the loopback server's port, once it listens
  bool stopping = false;
  std::mt19937_64 rng;

  /// The transport, or an empty one with `why` saying why it is not available.
  Transport transport(const std::string& id, std::string& why) const;
  Transport transport(const std::string& id) const {
    std::string why;
    return transport(id, why);
  }
  const timing::Constants& tc() const { return timing::constants(); }

  /// Our peer name towards peers of `transport_id` (SPEC §1 peers.name): the repo's name for
  /// transports that stay on this host, the host's name otherwise.
  std::string self_name(const std::string& transport_id) const;
  /// What we say about ourselves in pairing, hello and repair.
  json identity(const std::string& transport_id) const;
  /// Where peers reach us over `transport_id`: the loopback server's address for transports
  /// served there, else what we last advertised for the transport's own listener ("" if none).
  std::string own_address(const std::string& transport_id) const;
  /// What we last advertised for a transport (peers.json `local.addresses`).
  std::string stored_address(const std::string& transport_id) const;
  bool needs_tls(const std::string& transport_id) const {
    return transport(transport_id).caps.needs_tls;
  }
  /// Proofs on `transport_id`'s connections are bound to their TCP endpoints
  /// (channel_binding.hpp): loopback-only transports, where nothing translates addresses.
  bool binds_endpoints(const std::string& transport_id) const {
    return transport(transport_id).caps.loopback_only;
  }
  /// Marks `rec` as just seen: last_sync now, `messages` more for last_seq (saved lazily).
  void touch(PeerRecord& rec, int64_t messages = 0);

 private:
  PeerManager::TransportLookup lookup_;
};

}  // namespace thrum::core::peers
