#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace thrum::core {
namespace rpc {
class Dispatcher;
}

/// The CLI API: newline-delimited JSON-RPC 2.0 on `var/thrum.sock` (mode 0600). One request per
/// line, answered in order; a connection carries any number of requests. Lines over 8 MiB are
/// refused and the connection closed. Runs on the daemon's single I/O thread (the io_context's
/// implicit strand), so handlers need no locking.
///
/// At most `max_connections` connections are open at once (a newcomer beyond it is hung up on
/// at once, logged rate-limited); a connection that sends no request for `idle_timeout` is
/// closed, never while one of its requests is being answered (a long-poll is not idle).
class UnixRpcServer {
 public:
  struct Options {
    std::size_t max_connections = 256;
    std::chrono::milliseconds idle_timeout = std::chrono::minutes(10);  ///< 0: never
  };
  UnixRpcServer(boost::asio::io_context& ioc, std::filesystem::path socket_path,
                const rpc::Dispatcher& dispatcher, Options options);
  ~UnixRpcServer();
  UnixRpcServer(const UnixRpcServer&) = delete;
  UnixRpcServer& operator=(const UnixRpcServer&) = delete;

  /// Removes a stale socket file (the caller holds the daemon lock, so it is ours), binds,
  /// sets mode 0600 and starts accepting. Throws std::system_error.
  void start();
  /// Stops accepting, closes every connection (long-polls included) and unlinks the socket.
  void stop();

  static constexpr std::size_t kMaxLineBytes = 8u << 20;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core
