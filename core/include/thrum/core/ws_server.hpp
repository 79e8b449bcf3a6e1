#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace boost::asio {
class io_context;
}

namespace thrum::core {
namespace rpc {
class Dispatcher;
}
struct PeerUpgrade;  // core/src/peer_link.hpp

/// The loopback WebSocket server on 127.0.0.1:<ws.port>. `/ws` serves the daemon's own OS user's
/// programs the same JSON-RPC methods as the Unix socket (one request per text frame) plus
/// pushed notifications; `/peer` is handed to the peer layer. Single I/O thread; one write in
/// flight per connection with a bounded queue behind it (a client that stops reading is
/// disconnected, not silently starved of notifications).
///
/// A `/ws` upgrade must carry `Thrum-Client-Secret: <contents of var/ws.secret>` (401 without)
/// and `Thrum-Agent: <agent>` (400 without): the session acts as that agent only and is pushed
/// only that agent's notifications. An `Origin` header, when present, must be exactly
/// http(s)://{localhost|127.0.0.1|[::1]}:<ws port> (403 otherwise), on every path.
class WsServer {
 public:
  struct Options {
    std::string client_secret;          ///< required of every `/ws` client; never logged
    std::size_t max_connections = 256;  ///< open connections (any path); more are hung up on
  };
  WsServer(boost::asio::io_context& ioc, const rpc::Dispatcher& dispatcher, Options options);
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  /// Binds 127.0.0.1. `required` must be bound exactly (else std::system_error naming it);
  /// otherwise `preferred` is tried first and an ephemeral port used if it is taken. Returns
  /// the bound port.
  unsigned short listen(std::optional<unsigned short> required,
                        std::optional<unsigned short> preferred);
  /// Pushes a JSON-RPC notification to the open `/ws` sessions authenticated as one of `agents`.
  void notify_agents(const std::string& method, const nlohmann::json& params,
                     const std::vector<std::string>& agents);
  /// Receives every WebSocket upgrade to `/peer` (authentication is the peer layer's job).
  /// Without a handler such requests get 404.
  void set_peer_handler(std::function<void(std::unique_ptr<PeerUpgrade>)> handler);
  /// Number of open `/ws` connections.
  std::size_t client_count() const;
  /// Stops accepting and closes every connection.
  void stop();

  static constexpr std::size_t kMaxFrameBytes = 8u << 20;
  static constexpr std::size_t kMaxQueuedFrames = 1024;
  static constexpr const char* kSecretHeader = "Thrum-Client-Secret";
  static constexpr const char* kAgentHeader = "Thrum-Agent";

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core
