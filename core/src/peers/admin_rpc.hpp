#pragma once
// The `peer.*` methods of the Unix socket (SPEC §6): start/wait/cancel pairing (listener
// side), join and repair (dialer side), list/status, remove, configure (proxies and the
// prefix), and who_has across peers. Argument checks here; the work in the units.

#include <memory>
#include <string>

#include "thrum/core/json_rpc.hpp"
#include "thrum/core/peer_registry.hpp"

namespace thrum::core::peers {

class Context;
class Connector;
class Credentials;
class Directory;
class ListenerSet;
class PairingSessions;
class WhoHas;

class AdminRpc {
 public:
  AdminRpc(Context& ctx, Directory& peers, PairingSessions& pairing, ListenerSet& listeners,
           Connector& connector, Credentials& credentials, WhoHas& who_has);
  void register_methods(rpc::Dispatcher& d);

 private:
  void start_pairing(const nlohmann::json& p, std::function<bool()> caller_alive,
                     rpc::Respond respond);
  void join(const nlohmann::json& p, rpc::Respond respond);
  void repair(const rpc::Params& params, rpc::Respond respond);
  void list(rpc::Respond respond);
  void remove(const nlohmann::json& p, rpc::Respond respond);
  void configure(const nlohmann::json& p, rpc::Respond respond);
  void who_has(const nlohmann::json& p, rpc::Respond respond);
  /// Stores a new pairing (either side) and brings its Peer up; "" or why not.
  std::string store_paired(const PeerRecord& r);
  PeerRecord& require_peer(const std::string& name);

  Context& ctx_;
  Directory& peers_;
  PairingSessions& pairing_;
  ListenerSet& listeners_;
  Connector& connector_;
  Credentials& credentials_;
  WhoHas& who_has_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~AdminRpc() { *alive_ = false; }
  AdminRpc(const AdminRpc&) = delete;
  AdminRpc& operator=(const AdminRpc&) = delete;
  /// For PairingSessions: the listener side's pair.confirm stores through here.
  std::string store_listener_pairing(const PeerRecord& r) { return store_paired(r); }
};

}  // namespace thrum::core::peers
