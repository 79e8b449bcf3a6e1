#pragma once
// `message.wait` (SPEC §2 `thrum wait`): a long poll per agent, answered by the next message
// stored for it, or at its timeout. Messages that arrived up to a second before the wait
// started still count, so an agent that read its inbox and then waited misses nothing.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "thrum/core/event_loop.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/messaging_types.hpp"

namespace thrum::core {
class Store;
}

namespace thrum::core::messaging {

class Waiters {
 public:
  Waiters(EventLoop& loop, Store& store) : loop_(loop), store_(store) {}
  ~Waiters();
  Waiters(const Waiters&) = delete;
  Waiters& operator=(const Waiters&) = delete;

  /// Answers at once with what is unread since `after`, else when a message for `agent` is
  /// stored, else after `timeout_ms` with status "timeout".
  void wait(const std::string& agent, int64_t timeout_ms, const std::string& after,
            rpc::Respond respond);
  /// A message was stored: its recipients' waits are answered.
  void delivered(const StoredMessage& m);
  size_t size() const { return waiters_.size(); }

 private:
  struct Waiter {
    uint64_t id;
    rpc::Respond respond;
    std::shared_ptr<EventLoop::Timer> timer;
  };
  EventLoop& loop_;
  Store& store_;
  std::multimap<std::string, Waiter> waiters_;  // by agent id
  uint64_t next_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The first 100 bytes of a body, never cutting a UTF-8 sequence.
std::string preview(const std::string& body);

}  // namespace thrum::core::messaging
