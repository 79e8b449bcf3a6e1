#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::transport::network {

/// An IPv4 network, e.g. 198.51.100.0/24.
struct Subnet {
  std::uint32_t base = 0;  ///< host byte order, already masked
  int prefix = 0;
  bool contains(std::uint32_t ip) const;
  static bool parse(const std::string& cidr, Subnet& out);
};

/// The network transport's options (the policy's `transports.network` entry).
struct NetworkOptions {
  std::vector<Subnet> allowed_subnets;  ///< empty: no subnet rule
};

/// Decodes the options JSON: depth- and size-bounded, an object whose keys are all known
/// (`allowed_subnets`, plus `enabled` and the daemon's `host`); anything else is refused with a
/// message naming the key and the known ones.
sdk::Result<NetworkOptions> parse_network_options(std::string_view options_json);

/// Direct TCP between machines of one LAN, without Tailscale. The core wraps every connection
/// in TLS 1.3 with the peer's certificate pinned at pairing (capabilities().needs_tls), so this
/// plugin only moves bytes. The address a daemon listens on must be one of this machine's
/// interface addresses — not loopback, not link-local, not the tailnet range 100.64.0.0/10 —
/// and inside the operator's `allowed_subnets` when the policy sets them. An address change
/// must stay in the same /24.
class NetworkTransport final : public sdk::ITransport {
 public:
  explicit NetworkTransport(sdk::IHost* host) : host_(host) {}

  std::string_view id() const noexcept override { return "network"; }
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

  /// Why `ip` cannot be used as this machine's peer address, or "" when it can.
  std::string check_local_address(const std::string& ip) const;

 private:
  sdk::IHost* host_;
  std::vector<Subnet> allowed_;
};

}  // namespace thrum::transport::network
