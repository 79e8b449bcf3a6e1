#pragma once
// Routing to proxies (SPEC §6.4): a message addressed to `<prefix>:<agent>` becomes one outbox
// item per peer (the remote names, the reply's id in the peer's numbering when we know it);
// `@everyone` adds one copy per peer, delivered there to local agents only and never forwarded
// further, so there are no loops. Read receipts for messages that came from a peer are queued
// for it. Presence of proxies comes from the peer's last report.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "thrum/core/messaging.hpp"

namespace thrum::core::peers {

class Context;
class Peer;

class PeerRouter {
 public:
  using FindPeer = std::function<std::shared_ptr<Peer>(const std::string& name)>;
  PeerRouter(Context& ctx, FindPeer find);

  /// Throws rpc::Failure when a proxy's peer is gone.
  std::vector<OutboxItem> route(const StoredMessage& m, const std::vector<const Agent*>& proxies,
                                bool broadcast);
  std::optional<std::string> peer_for_prefix(const std::string& prefix) const;
  std::pair<std::string, std::string> proxy_presence(const Agent& proxy) const;
  void messages_read(const std::string& reader, const std::vector<std::string>& ids);

 private:
  Context& ctx_;
  FindPeer find_;
};

}  // namespace thrum::core::peers
