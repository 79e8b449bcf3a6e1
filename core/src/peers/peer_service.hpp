#pragma once
// What an authenticated peer may ask of us over its link (SPEC §7.1): hello/repair, deliveries
// and read receipts (decoded, checked by the rules of a local send, applied in order and
// answered one result per item after the commit), presence, who-has, address changes (under
// the transport's rule), and peer.removed. Who is asking is the link's peer, never what a frame
// claims. Also the control calls served on a short link a listener opens to its dialer.

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "peers/link.hpp"
#include "thrum/core/json_rpc.hpp"

namespace thrum::core {
struct PeerRecord;
}

namespace thrum::core::peers {

class Context;
class Peer;
class WhoHas;

class PeerService {
 public:
  using FindPeer = std::function<std::shared_ptr<Peer>(const std::string& name)>;

  PeerService(Context& ctx, FindPeer find, WhoHas& who_has);

  /// A request on `name`'s link.
  void serve(const std::string& name, const std::string& method, const nlohmann::json& params,
             rpc::Respond respond);
  /// A link the other side opened although we are its dialer: it carries one control call (its
  /// address changed, or it reconciles) and is then closed by the caller.
  void serve_control(const std::string& name, const std::shared_ptr<Link>& link);
  /// Inbound roaming (SPEC §7.3): a dialer that authenticated from a new source IP inside the
  /// transport's rule has moved; its listener port stays what it last told us.
  void roamed(PeerRecord& rec, const std::string& remote);

 private:
  void deliver(const PeerRecord& rec, const nlohmann::json& params, rpc::Respond respond);
  void receipts(const PeerRecord& rec, const nlohmann::json& params, rpc::Respond respond);
  void address_changed(const std::string& name, const nlohmann::json& params, rpc::Respond respond);
  void hello(const std::string& name, const nlohmann::json& params, rpc::Respond respond,
             bool control);

  Context& ctx_;
  FindPeer find_;
  WhoHas& who_has_;
};

}  // namespace thrum::core::peers
