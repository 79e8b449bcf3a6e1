#pragma once
// An ITransport for unit tests of the peer layer: no sockets; resolve() answers what the test set,
// validate_address_change() follows a rule the test picks.

#include <functional>
#include <memory>
#include <string>

#include "thrum/core/peer_manager.hpp"
#include "thrum/core/transport_registry.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::test {

class FakeTransport final : public sdk::ITransport {
 public:
  std::string_view id() const noexcept override { return "t1"; }
  sdk::Capabilities capabilities() const noexcept override { return caps; }
  sdk::Status configure(std::string_view) noexcept override { return sdk::Status::success(); }
  sdk::Result<std::unique_ptr<sdk::IListener>> listen(const sdk::ListenSpec&) noexcept override {
    return sdk::Status::error(sdk::Errc::kUnsupported, "no listener in unit tests");
  }
  sdk::Result<int> dial(const sdk::Endpoint&, std::chrono::milliseconds) noexcept override {
    return sdk::Status::error(sdk::Errc::kUnsupported, "no dialing in unit tests");
  }
  sdk::Result<sdk::Endpoint> advertise(const sdk::AdvertiseSpec&) noexcept override {
    return sdk::Endpoint{"127.0.0.1", 4100};
  }
  sdk::Result<sdk::Endpoint> resolve(const sdk::PeerRecordView& p) noexcept override {
    return p.address;
  }
  sdk::Status validate_address_change(const sdk::Endpoint& from,
                                      const sdk::Endpoint& to) noexcept override {
    if (same_host_only && from.ip != to.ip)
      return sdk::Status::error(sdk::Errc::kRejected, "the host may not change");
    return sdk::Status::success();
  }

  sdk::Capabilities caps;
  bool same_host_only = false;
};

/// A TransportLookup that knows one FakeTransport as "t1" while `enabled`.
inline core::PeerManager::TransportLookup lookup_of(std::shared_ptr<FakeTransport> t,
                                                    std::shared_ptr<bool> enabled) {
  return [t, enabled](const std::string& id, std::string* why) {
    if (id != "t1" || !*enabled) {
      if (why) *why = "disabled by the test";
      return core::Transport{};
    }
    return core::Transport::of(t, 1);
  };
}

}  // namespace thrum::test
