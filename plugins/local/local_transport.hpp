#pragma once

#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::transport::local {

/// Same machine, different repos. Everything stays on 127.0.0.1: the listener is the daemon's
/// own loopback WebSocket server, and the dial target is read from the other repo's
/// `.thrum/var/ws.port` at every connect, so a daemon restarting on a new port is followed
/// without any message between the two.
class LocalTransport final : public sdk::ITransport {
 public:
  explicit LocalTransport(sdk::IHost* host) : host_(host) {}

  std::string_view id() const noexcept override { return "local"; }
  sdk::Capabilities capabilities() const noexcept override;
  sdk::TransportProfile profile() const noexcept override;
  sdk::Status configure(std::string_view options_json) noexcept override;
  sdk::Result<std::unique_ptr<sdk::IListener>> listen(
      const sdk::ListenSpec& spec) noexcept override;
  sdk::Result<int> dial(const sdk::Endpoint& to,
                        std::chrono::milliseconds timeout) noexcept override;
  sdk::Result<sdk::Endpoint> advertise(const sdk::AdvertiseSpec& spec) noexcept override;
  sdk::Result<sdk::Endpoint> resolve(const sdk::PeerRecordView& peer) noexcept override;
  sdk::Status validate_address_change(const sdk::Endpoint& old_address,
                                      const sdk::Endpoint& new_address) noexcept override;

 private:
  sdk::IHost* host_;
};

}  // namespace thrum::transport::local
