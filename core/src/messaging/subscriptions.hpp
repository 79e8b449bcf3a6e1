#pragma once
// `message.subscribe` (Unix socket only): connections that asked to be told about one agent's
// new messages. After each commit (MessageService::on_message) every live subscription of a
// recipient gets a `message.received` notification carrying the message in the shape of
// `message.get`. A subscription ends when its connection closes or refuses a push (its queue
// is full: the server disconnects a subscriber that stopped reading). Loop thread only.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "thrum/core/messaging_types.hpp"

namespace thrum::core::messaging {

class Subscriptions {
 public:
  /// Queues one notification line on the subscriber's connection; false when it is gone.
  using Push = std::function<bool(std::string)>;
  using Alive = std::function<bool()>;
  /// The `message` object of a notification (the `message.get` shape).
  using Shape = std::function<nlohmann::json(const StoredMessage&)>;

  explicit Subscriptions(Shape shape) : shape_(std::move(shape)) {}

  /// Adds a subscription for `agent_id`; returns its id. Dead subscriptions are dropped first,
  /// so connections that closed while nothing arrived do not pile up.
  uint64_t add(std::string agent_id, Push push, Alive alive);
  void remove(uint64_t id) { subs_.erase(id); }

  /// Pushes `m` to the subscribers of its recipients (the message is shaped once, only when
  /// someone listens); drops those whose push fails.
  void announce(const StoredMessage& m);

  size_t size() const { return subs_.size(); }

 private:
  struct Sub {
    std::string agent_id;
    Push push;
    Alive alive;
  };
  void prune();

  Shape shape_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Sub> subs_;
};

}  // namespace thrum::core::messaging
