#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "tailnet.hpp"
#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"
#include "tsnet_node.hpp"

namespace thrum::transport::tailscale {

/// Peers over a Tailscale tailnet (docs/tailscale.md).
///
/// Mode `embedded` (the default) runs a tsnet node inside the daemon through libtailscale's C
/// API, loaded at run time with Boost.DLL: listen() brings the node up (state in the daemon's
/// `host.state_dir`, auth key from `host.auth_key` unless the state is already authorised) and
/// listens on the tailnet; dial() dials through the node. Mode `system` uses the host's
/// tailscaled: it listens on the host's 100.64.0.0/10 interface address and dials through the
/// OS. Either way WireGuard encrypts the traffic, so the core adds no TLS; its bearer token and
/// pairing HMAC still apply. An address change must stay inside 100.64.0.0/10.
///
/// Policy options (configure): `mode` ("embedded" | "system"), `library` (absolute path to
/// libtailscale.so). Listen options add the daemon's `host` object:
/// `{"host": {"state_dir": "<repo>/.thrum/var/tsnet", "auth_key": "<key or empty>"}}`.
/// Environment: THRUM_LIBTAILSCALE (library path, tried first), THRUM_TS_HOSTNAME (default
/// `<hostname>-thrum`), THRUM_TS_CONTROL_URL / THRUM_TAILSCALE_CONTROL_URL (Headscale),
/// THRUM_TS_UP_TIMEOUT_MS (how long listen() waits for the node, default 60000).
class TailscaleTransport final : public sdk::ITransport {
 public:
  enum class Mode { kEmbedded, kSystem };

  explicit TailscaleTransport(sdk::IHost* host);
  /// Releases the node (tailscale_close) and stops logging through the host.
  ~TailscaleTransport() override;

  std::string_view id() const noexcept override { return "tailscale"; }
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

  Mode mode() const { return mode_; }

 private:
  sdk::Result<std::unique_ptr<sdk::IListener>> listen_embedded(const sdk::ListenSpec& spec);
  sdk::Result<std::unique_ptr<sdk::IListener>> listen_system(const sdk::ListenSpec& spec);
  sdk::Result<std::shared_ptr<TsnetNode>> ensure_node(const std::string& state_dir,
                                                      const std::string& auth_key);
  std::shared_ptr<TsnetNode> node() const;
  /// This host's tailnet IPv4 (the node's, or tailscaled's interface address), or a Status.
  sdk::Result<std::string> local_tailnet_ip() const;

  std::shared_ptr<HostLog> log_;
  Mode mode_ = Mode::kEmbedded;
  std::string library_;  ///< the policy's `library`, may be empty

  std::mutex start_mu_;    ///< serialises node starts (they may take seconds)
  mutable std::mutex mu_;  ///< guards node_
  std::shared_ptr<TsnetNode> node_;
};

}  // namespace thrum::transport::tailscale
