#pragma once
// Sends one peer's outbox over its link (design-decisions.md "Outbox pump"): consecutive rows of
// one kind per frame (≤ 256 rows, ~1 MiB), one frame in flight, so that rows committed while a
// frame is out leave together with the next — under load frames grow and the receiver commits
// once for many messages, while a lone message still leaves at once. A committed send, a receipt
// or a link coming up kicks it; however many kicks arrive in one loop turn, it pumps once. An
// answer settles its rows (store/outbox); a row that can never fit a frame is failed with its
// reason instead of being retried. Loop thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "peers/link.hpp"
#include "store/outbox.hpp"
#include "thrum/core/event_loop.hpp"

namespace thrum::core::peers {

struct DeliverOutcome;

class OutboxPump {
 public:
  /// `on_delivered(n)`: n deliver rows were acknowledged (for last_seq).
  OutboxPump(std::string peer, EventLoop& loop, store::Outbox& outbox,
             std::function<void(int64_t)> on_delivered);
  ~OutboxPump();
  OutboxPump(const OutboxPump&) = delete;
  OutboxPump& operator=(const OutboxPump&) = delete;

  /// Rows go over `link` from the start of the queue (a new link resends what was unanswered).
  void link_up(std::shared_ptr<Link> link);
  /// The link is gone: answers still to come for it are ignored; nothing is sent until the next.
  void link_down();
  /// New rows may be waiting: pump once in this loop turn.
  void kick();

  /// Frames sent and not yet answered (at most one).
  int in_flight() const { return inflight_; }

  static constexpr int64_t kMaxRows = 256;

 private:
  void schedule();
  void pump_now();
  void send(const std::string& kind, const std::string& items, std::vector<store::OutboxRow> rows);
  void answered(uint64_t generation, const std::vector<store::OutboxRow>& rows, rpc::Outcome o);
  void settle(const std::vector<store::OutboxRow>& rows,
              const std::vector<DeliverOutcome>& outcomes);

  std::string peer_;
  EventLoop& loop_;
  store::Outbox& outbox_;
  std::function<void(int64_t)> on_delivered_;
  std::shared_ptr<Link> link_;
  uint64_t generation_ = 0;  // bumped per link, so a late answer for an old link is ignored
  int inflight_ = 0;
  int64_t cursor_ = 0;   // the last row sent on this link
  bool backlog_ = true;  // rows may wait past the cursor
  bool posted_ = false;  // a pump_now() is queued on the loop
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core::peers
