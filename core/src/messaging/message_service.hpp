#pragma once
// Storing messages (SPEC §5, §6.4): a local send (recipients resolved, outbox items for peers
// in the same transaction, acknowledged after the commit) and messages applied from peers (in
// order, one store job, idempotent on the sending daemon + its id). After each commit the
// message is announced: observers (the /ws push, subscriptions) and waiting `thrum wait`s.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "thrum/core/json_rpc.hpp"
#include "thrum/core/messaging_types.hpp"

namespace thrum::core {
class Router;
class Store;
}  // namespace thrum::core

namespace thrum::core::messaging {

class AgentDirectory;
class Waiters;

class MessageService {
 public:
  using Observer = std::function<void(const StoredMessage&)>;

  /// `router` is read at each call (it is set after construction and cleared at shutdown).
  MessageService(Store& store, AgentDirectory& agents, Waiters& waiters, Router* const& router,
                 int64_t max_body_bytes);
  ~MessageService();
  MessageService(const MessageService&) = delete;
  MessageService& operator=(const MessageService&) = delete;

  struct Send {
    const Agent* caller = nullptr;
    std::string content;
    std::string format = "markdown";
    std::vector<std::string> to;
    std::optional<std::string> reply_to;
  };
  /// Validates, resolves and stores; `respond` after the commit (throws rpc::Failure for bad
  /// input, before anything is stored).
  void send(Send s, rpc::Respond respond);
  /// Stores messages from a peer (see Messaging::apply_inbound).
  void apply_inbound(const std::vector<InboundMessage>& batch,
                     std::function<void(std::vector<InboundResult>)> done);
  void on_message(Observer fn) { observers_.push_back(std::move(fn)); }

 private:
  void announce(const StoredMessage& m);

  Store& store_;
  AgentDirectory& agents_;
  Waiters& waiters_;
  Router* const& router_;
  int64_t max_body_bytes_;
  std::vector<Observer> observers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core::messaging
