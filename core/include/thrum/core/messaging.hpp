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

#include "thrum/core/event_loop.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/repo.hpp"

namespace thrum::core {

class Store;

/// A registered agent (local, or a proxy for an agent on a peer).
struct Agent {
  std::string agent_id;
  std::string kind = "agent";  ///< "agent" | "proxy"
  std::string role;
  std::string module;
  std::string display;
  std::string worktree;
  std::string hostname;
  std::optional<int64_t> agent_pid;
  std::string intent;
  std::optional<std::string> session_id;
  std::optional<std::string> session_started_at;
  std::optional<std::string> peer_name;    ///< proxies only: the peer they live on
  std::optional<std::string> remote_name;  ///< proxies only
  std::string registered_at;
  std::string last_seen_at;

  bool is_proxy() const { return kind == "proxy"; }
  /// Local agents: active while their session is open and their process (if known) lives.
  bool active() const;
};

/// A message as stored and as shown to callers.
struct StoredMessage {
  int64_t seq = 0;
  std::string message_id;
  std::optional<std::string> thread_id;
  std::optional<std::string> reply_to;
  std::string author_id;
  std::string body;
  std::string format;
  std::string audience;  ///< "agent:<id>[,agent:<id>...]" or "broadcast:everyone"
  std::string created_at;
  std::optional<std::string> origin_daemon;
  std::optional<std::string> origin_message_id;
  std::vector<std::string> recipients;
};

/// What must cross a peer link for one message, stored with it in the same transaction. The
/// outbox row's payload is the params serialised once, as they go on the wire, then a newline
/// and the queued recipients as a JSON array (a serialised JSON value never contains a raw
/// newline); receipts store the params alone.
struct OutboxItem {
  std::string peer;
  std::string kind;  ///< "deliver" | "receipt"
  std::string message_id;
  nlohmann::json payload;  ///< the peer.deliver params for this message
  /// Delivery rows created queued (delivered_at NULL) until the peer acknowledges.
  std::vector<std::string> queued_recipients;
};

/// A message that arrived over a peer link, to be stored for local agents.
struct InboundMessage {
  std::string peer;           ///< our name for the sending daemon
  std::string prefix;         ///< our proxy prefix for it
  std::string origin_daemon;  ///< its daemon id
  std::string origin_id;      ///< its id for the message
  std::string author;         ///< the sending agent's name over there
  std::vector<std::string> to;
  bool broadcast = false;
  std::string body;
  std::string format = "markdown";
  std::string created_at;
  std::optional<std::string> reply_to;  ///< our id for the parent, when the sender knew it
};

/// What became of one InboundMessage.
struct InboundResult {
  std::string local_id;  ///< our id for it (new, or the one it got the first time it came)
  std::string refused;   ///< why it cannot be stored here; empty when local_id is set
};

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
/// and `message.*`. Loop-thread only; durable state lives in the Store and every mutation is
/// acknowledged after its commit.
class Messaging {
 public:
  struct Options {
    RepoPaths paths;
    std::string daemon_id;
    int64_t max_body_bytes = 1048576;  ///< negative: unlimited
  };
  Messaging(Options opts, Store& store, EventLoop& loop);
  ~Messaging();

  void register_methods(rpc::Dispatcher& d);

  /// Called on the loop after a message is durably stored, for every message (local sends and
  /// those applied from peers). Used for `/ws` notifications and the peer router.
  using MessageObserver = std::function<void(const StoredMessage&)>;
  void on_message(MessageObserver fn) { observers_.push_back(std::move(fn)); }

  /// The `notification.message` params for a message.
  static nlohmann::json notification_params(const StoredMessage& m);

  const std::map<std::string, Agent>& agents() const { return agents_; }

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
  void h_register(const nlohmann::json& p, rpc::Respond r);
  void h_list_agents(const nlohmann::json& p, rpc::Respond r);
  void h_whoami(const nlohmann::json& p, rpc::Respond r);
  void h_team(const nlohmann::json& p, rpc::Respond r);
  void h_send(const nlohmann::json& p, rpc::Respond r);
  void h_get(const nlohmann::json& p, rpc::Respond r);
  void h_list(const nlohmann::json& p, rpc::Respond r);
  void h_mark_read(const nlohmann::json& p, rpc::Respond r);
  void h_outbox(const nlohmann::json& p, rpc::Respond r);
  void h_wait(const nlohmann::json& p, const rpc::CallContext& ctx, rpc::Respond r);

  const Agent& require_caller(const nlohmann::json& p) const;
  void load_agents();
  void write_identity_file(const Agent& a);
  void deliver_to_waiters(const StoredMessage& m);
  void announce(const StoredMessage& m);
  std::optional<StoredMessage> load_message(const std::string& id) const;
  nlohmann::json message_json(const StoredMessage& m, const std::string& viewer) const;
  nlohmann::json recipient_states(const std::string& message_id) const;

  Options opts_;
  Store& store_;
  EventLoop& loop_;
  std::map<std::string, Agent> agents_;
  std::vector<MessageObserver> observers_;
  Router* router_ = nullptr;

  struct Waiter {
    uint64_t id;
    std::string after;
    rpc::Respond respond;
    std::shared_ptr<EventLoop::Timer> timer;
  };
  std::multimap<std::string, Waiter> waiters_;  // by agent id
  uint64_t next_waiter_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core
