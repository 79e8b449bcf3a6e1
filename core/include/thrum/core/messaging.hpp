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
  std::optional<std::string> peer_daemon_id;  ///< proxies only
  std::optional<std::string> remote_name;     ///< proxies only
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
  std::optional<StoredMessage> load_message(const std::string& id) const;
  nlohmann::json message_json(const StoredMessage& m, const std::string& viewer) const;
  nlohmann::json recipient_states(const std::string& message_id) const;

  Options opts_;
  Store& store_;
  EventLoop& loop_;
  std::map<std::string, Agent> agents_;
  std::vector<MessageObserver> observers_;

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
