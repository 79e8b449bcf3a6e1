#pragma once
// A transport over Unix-domain stream sockets in a shared directory: two daemons on one host, or
// in containers that share a volume, reach each other without any network.
//
// Addressing: an Endpoint {ip, port} is the socket `<dir>/thrum-<port>.sock`. The ip carries no
// information (a container's 127.0.0.1 is its own) and is always "127.0.0.1", so that peercodes
// (`name:ip:port:code`) keep their usual shape.
//
// Options (operator policy, `transports.uds`):
//   dir          directory holding the sockets; default $XDG_RUNTIME_DIR/thrum-uds, else
//                /tmp/thrum-uds-<uid>. Created (0700, or 0770 with socket_mode 0660) if missing.
//   socket_mode  permissions of the socket files, "0600" (default) or "0660" (containers that run
//                as different users of one group).

#include <sys/types.h>

#include <string>

#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::transport::uds {

inline constexpr const char* kLoopbackIp = "127.0.0.1";

class UdsTransport final : public sdk::ITransport {
 public:
  explicit UdsTransport(sdk::IHost* host);

  std::string_view id() const noexcept override { return "uds"; }
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

  /// The socket path for `port`.
  std::string socket_path(std::uint16_t port) const;

 private:
  sdk::IHost* host_;
  std::string dir_;
  mode_t socket_mode_ = 0600;
};

}  // namespace thrum::transport::uds
