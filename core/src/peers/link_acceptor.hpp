#pragma once
// Every `/peer` upgrade that arrives — on the loopback server or on a transport's own listener —
// goes through here first (link_auth.hpp, pairing_session.hpp):
//  - `Authorization: Bearer` (an older thrum, token in the clear): refused, saying what to do;
//  - `Thrum-Link`: find the pairing by token id, check that the connection matches how it was
//    paired (transport, TLS, pinned certificate, daemon id), prove we hold the token in the 101,
//    and accept nothing until the other side's link.auth proof is good (10 s at most);
//  - otherwise a pairing connection, accepted only while a session is open.

#include <functional>
#include <memory>
#include <string>

#include "peers/link.hpp"

namespace thrum::core {
struct PeerUpgrade;
}

namespace thrum::core::peers {

class Context;
class Connector;
class PairingSessions;

class LinkAcceptor {
 public:
  /// A link the other side opened to us and proved itself on, for peer `name`.
  using Authenticated = std::function<void(const std::string& name, std::shared_ptr<Link> link,
                                           const std::string& remote)>;

  LinkAcceptor(Context& ctx, Connector& connector, PairingSessions& pairing, Authenticated on_link);
  ~LinkAcceptor() { *alive_ = false; }
  LinkAcceptor(const LinkAcceptor&) = delete;
  LinkAcceptor& operator=(const LinkAcceptor&) = delete;
  void on_upgrade(std::unique_ptr<PeerUpgrade> up);

 private:
  void accept_pairing(std::unique_ptr<PeerUpgrade> up);
  void accept_link(std::unique_ptr<PeerUpgrade> up);
  /// Whether an upgrade on `up`'s listener may be for `transport_id`: a plugin's listener serves
  /// its own transport; the loopback server every transport without a listener of its own.
  bool arrived_over(const PeerUpgrade& up, const std::string& transport_id) const;

  Context& ctx_;
  Connector& connector_;
  PairingSessions& pairing_;
  Authenticated on_link_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core::peers
