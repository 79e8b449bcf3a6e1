#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "thrum/common/repo.hpp"
#include "thrum/core/event_loop.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/messaging_types.hpp"

namespace thrum::core {

class Store;
namespace messaging {
class AgentDirectory;
class Inbox;
class MessageService;
class Subscriptions;
class Waiters;
}  // namespace messaging

/// The peer layer as Messaging sees it (implemented by PeerManager). Loop thread only.
class Router {
 public:
  virtual ~Router() = default;
  /// Outbox items for a message addressed to `proxies` (and to every peer when `broadcast`).
  /// Throws rpc::Failure when a proxy's peer is gone.
  virtual std::vector<OutboxItem> route(const StoredMessage& m,
                                        const std::vector<const Agent*>& proxies,
                                        bool broadcast) = 0;
  /// After the commit of queued items: deliver them.
  virtual void kick(const std::string& peer) = 0;
  /// The peer that owns `prefix`, for error hints.
  virtual std::optional<std::string> peer_for_prefix(const std::string& prefix) const = 0;
  /// {"active"|"offline"|"unknown", role} of a proxy, from the live link.
  virtual std::pair<std::string, std::string> proxy_presence(const Agent& proxy) const = 0;
  /// A local agent read these messages (after the commit): send read receipts.
  virtual void messages_read(const std::string& reader,
                             const std::vector<std::string>& message_ids) = 0;
  /// Local agents changed: re-announce presence.
  virtual void agents_changed() = 0;
};

/// Agents and messages on this daemon (SPEC §5): the JSON-RPC methods `agent.*`, `team.list`
/// and `message.*`. A facade over the units in core/src/messaging/ (agent directory,
/// recipients, message service, inbox, waiters) with the RPC edge in messaging_rpc.cpp. Loop-thread
/// only; durable state lives in the Store and every mutation is acknowledged after its commit.
class Messaging {
 public:
  struct Options {
    RepoPaths paths;
    std::string daemon_id;
    int64_t max_body_bytes = 1048576;  ///< negative: unlimited
  };
  Messaging(Options opts, Store& store, EventLoop& loop);
  ~Messaging();
  Messaging(const Messaging&) = delete;
  Messaging& operator=(const Messaging&) = delete;

  void register_methods(rpc::Dispatcher& d);

  /// Called on the loop after a message is durably stored, for every message (local sends and
  /// those applied from peers). Used for `/ws` notifications and the peer router.
  using MessageObserver = std::function<void(const StoredMessage&)>;
  void on_message(MessageObserver fn);

  /// The `notification.message` params for a message.
  static nlohmann::json notification_params(const StoredMessage& m);

  const std::map<std::string, Agent>& agents() const;

  void set_router(Router* r) { router_ = r; }
  /// Stores messages from a peer, in order, in one store job (idempotent on origin daemon +
  /// id: a redelivery answers the id the message got the first time). `done` gets one result
  /// per message, in order, after the commit; a message that cannot be delivered here (no such
  /// agent, or the store failed) is refused with the reason. Loop thread.
  void apply_inbound(const std::vector<InboundMessage>& batch,
                     std::function<void(std::vector<InboundResult>)> done);
  /// Registers the proxy `<prefix>:<remote_name>` for `peer`. `done("")` or an error.
  void add_proxy(const std::string& peer, const std::string& prefix, const std::string& remote_name,
                 std::function<void(std::string error)> done);
  /// Unregisters proxies: one (`proxy_id`), or all of `peer`'s when proxy_id is empty.
  void remove_proxies(const std::string& peer, const std::string& proxy_id,
                      std::function<void(std::string error)> done);
  /// Renames every proxy of `peer` from `old_prefix:` to `new_prefix:`.
  void rename_proxies(const std::string& peer, const std::string& old_prefix,
                      const std::string& new_prefix, std::function<void(std::string error)> done);
  /// Validates an agent name (SPEC §5); returns an error message or "".
  static std::string check_agent_name(const std::string& name);

 private:
  Options opts_;
  Store& store_;
  EventLoop& loop_;
  Router* router_ = nullptr;
  // The units (core/src/messaging/); declared here only, defined there.
  std::unique_ptr<messaging::AgentDirectory> agents_;
  std::unique_ptr<messaging::Waiters> waiters_;
  std::unique_ptr<messaging::MessageService> service_;
  std::unique_ptr<messaging::Inbox> inbox_;
  std::unique_ptr<messaging::Subscriptions> subscriptions_;
};

}  // namespace thrum::core
