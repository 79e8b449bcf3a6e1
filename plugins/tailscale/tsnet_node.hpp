#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "libtailscale_api.hpp"
#include "tailnet.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::transport::tailscale {

/// How to bring an embedded node up.
struct NodeConfig {
  std::string state_dir;    ///< tsnet's Dir: keys and node state live here (created 0700)
  std::string auth_key;     ///< may be empty when state_dir holds an authorised node's state
  std::string hostname;     ///< the node's name in the tailnet
  std::string control_url;  ///< empty = Tailscale's default control server
  std::chrono::milliseconds up_timeout{60000};
};

/// One tsnet server inside this process (libtailscale's `tailscale` handle), up and holding a
/// tailnet IPv4 address. Its listeners and connections are libtailscale's: listener fds are one
/// end of a socketpair that becomes readable when a connection is pending, connections are
/// stream sockets the caller owns.
///
/// Thread-safety: every method may be called from any thread; dial() concurrently.
class TsnetNode {
 public:
  /// Creates the server, configures it and waits (up to cfg.up_timeout) for tailscale_up.
  /// The library's log lines go to `log` at debug level (see LogPump in the .cpp).
  static sdk::Result<std::shared_ptr<TsnetNode>> start(const LibTailscale* lib,
                                                       const NodeConfig& cfg,
                                                       std::shared_ptr<HostLog> log);
  ~TsnetNode();
  TsnetNode(const TsnetNode&) = delete;
  TsnetNode& operator=(const TsnetNode&) = delete;

  /// The node's first tailnet IPv4 address.
  const std::string& ipv4() const { return ipv4_; }
  const std::string& state_dir() const { return state_dir_; }
  const LibTailscale* library() const { return lib_; }
  bool running() const { return !closed_.load(); }

  /// tailscale_listen on ":<port>"; port 0 picks a free port (tsnet does not pick one itself).
  sdk::Result<std::unique_ptr<sdk::IListener>> listen(std::uint16_t port);
  /// tailscale_dial to ip:port, abandoned (kTimeout) after `timeout`; a connection that arrives
  /// after that is closed.
  sdk::Result<int> dial(const sdk::Endpoint& to, std::chrono::milliseconds timeout);
  /// tailscale_close. Idempotent. Listeners already handed out see end-of-file and fail accept().
  void close() noexcept;

 private:
  TsnetNode(const LibTailscale* lib, int sd, std::shared_ptr<HostLog> log);

  const LibTailscale* lib_;
  const int sd_;
  std::shared_ptr<HostLog> log_;
  std::string ipv4_;
  std::string state_dir_;
  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
};

/// Whether `dir` holds a node state saved by an earlier run: a non-empty regular file whose
/// name ends in `.state` (tsnet's `tailscaled.state`). Without it and without an auth key, tsnet
/// would wait for an interactive login that never comes.
bool has_saved_state(const std::string& dir);

}  // namespace thrum::transport::tailscale
