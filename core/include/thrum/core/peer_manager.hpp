#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "thrum/common/repo.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/transport_registry.hpp"

namespace boost::asio {
class io_context;
}

namespace thrum::core {

class Config;
class EventLoop;
class Store;
struct PeerUpgrade;
namespace rpc {
class Dispatcher;
}

/// The peer layer (SPEC §6–§7): pairing, the registry, links to other daemons, the durable
/// outbox, routing to proxies, presence, who-has, and the `peer.*` methods. Loop thread only.
/// Blocking transport calls (dial, resolve) run on a small worker pool and post back.
class PeerManager final : public Router {
 public:
  /// Finds a transport by id, or nullptr with the reason it is unavailable.
  using TransportLookup = std::function<Transport(const std::string& id, std::string* why)>;

  struct Options {
    RepoPaths paths;
    std::string daemon_id;
    std::string repo_name;
    std::string hostname;
    std::string git_origin_url;
    std::optional<std::string> peers_name;  ///< config peers.name
    int pairing_code_length = 16;
    bool auto_connect = true;
    /// daemon.peer_port: where transports that own a listener listen (network, tailscale).
    /// nullopt ("auto") reuses the port last advertised, else any free port.
    std::optional<unsigned short> peer_port;
  };

  PeerManager(Options opts, boost::asio::io_context& ioc, EventLoop& loop, Store& store,
              Messaging& messaging, TransportLookup transports);
  ~PeerManager() override;
  PeerManager(const PeerManager&) = delete;
  PeerManager& operator=(const PeerManager&) = delete;

  void register_methods(rpc::Dispatcher& d);
  /// Starts background work once the loopback server listens on `ws_port`: dialers connect
  /// (peers.auto_connect) and the housekeeping tick begins.
  void start(unsigned short ws_port);
  /// An upgrade to `/peer` on one of our listeners.
  void handle_upgrade(std::unique_ptr<PeerUpgrade> up);
  /// The transports `ids` became available or unavailable (a SIGHUP policy reload): peers of
  /// one now unavailable lose their link and listener (`peer status` shows `disabled`); peers of
  /// one now available get its listener back and dial again (peers.auto_connect).
  void transports_changed(const std::vector<std::string>& ids);
  /// Closes every link and saves the registry. Idempotent.
  void shutdown();
  /// {connected, total} for `daemon status`.
  nlohmann::json summary() const;
  /// Problems found while loading peers.json (a corrupt file moved aside).
  std::vector<std::string> problems() const;

  // Router
  std::vector<OutboxItem> route(const StoredMessage& m, const std::vector<const Agent*>& proxies,
                                bool broadcast) override;
  void kick(const std::string& peer) override;
  std::optional<std::string> peer_for_prefix(const std::string& prefix) const override;
  std::pair<std::string, std::string> proxy_presence(const Agent& proxy) const override;
  void messages_read(const std::string& reader,
                     const std::vector<std::string>& message_ids) override;
  void agents_changed() override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core
