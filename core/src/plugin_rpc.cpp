#include "thrum/core/json_rpc.hpp"
#include "thrum/core/plugin_host.hpp"

namespace thrum::core {

void register_plugin_methods(rpc::Dispatcher& dispatcher, PluginHost& host) {
  dispatcher.add("plugins.list", [&host](const rpc::json& /*params*/,
                                         const rpc::CallContext& /*ctx*/, rpc::Respond respond) {
    respond(rpc::json{{"plugins", host.list_json()}, {"policy", host.policy_source()}});
  });
  dispatcher.add("peer.transports",
                 [&host](const rpc::json&, const rpc::CallContext&, rpc::Respond respond) {
                   respond(rpc::json{{"transports", host.transports_json()}});
                 });
}

}  // namespace thrum::core
