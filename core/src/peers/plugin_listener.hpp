#pragma once
// Internal to the core: serves `/peer` on a listener that a transport plugin owns
// (Capabilities::provides_listener). Accepted connections are wrapped in TLS when the transport
// asks for it, their HTTP upgrade request is read, and the result goes to the peer layer exactly
// like an upgrade on the loopback server.

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "peers/peer_link.hpp"
#include "thrum/core/transport_registry.hpp"

namespace boost::asio::ssl {
class context;
}

namespace thrum::core {

class PluginListener : public std::enable_shared_from_this<PluginListener> {
 public:
  using OnUpgrade = std::function<void(std::unique_ptr<PeerUpgrade>)>;

  /// `tls` is null for transports that do not need TLS.
  PluginListener(boost::asio::io_context& ioc, std::string transport, ITransportHandle keep_alive,
                 std::unique_ptr<sdk::IListener> listener,
                 std::shared_ptr<boost::asio::ssl::context> tls, OnUpgrade on_upgrade);
  ~PluginListener();
  PluginListener(const PluginListener&) = delete;
  PluginListener& operator=(const PluginListener&) = delete;

  /// Starts accepting. Throws boost::system::system_error when the fd cannot be watched.
  void start();
  /// Stops accepting and closes the plugin's listener. Idempotent.
  void close();
  sdk::Endpoint local_endpoint() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core
