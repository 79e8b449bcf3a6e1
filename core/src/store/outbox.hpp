#pragma once
// The durable per-peer queue of what still has to cross a link (SPEC §6.4), which id a peer
// gave each message (kept on the rows themselves since schema v3: messages.origin_peer for what
// came from a peer, deliveries.peer/remote_id for what went to one) and the read state peers
// report back: every SQL statement about them, and the outbox row codec. The peer layer calls
// these; nothing outside store/ touches the outbox or those columns.

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace thrum::core {
class Store;
namespace sql {
class Db;
}
}  // namespace thrum::core

namespace thrum::core::store {

/// One outbox row as a link sends it.
struct OutboxRow {
  int64_t id = 0;
  std::string kind;                 ///< "deliver" | "receipt"
  std::string message_id;           ///< ours (deliver) or the peer's (receipt)
  std::string wire;                 ///< the request params, serialised once, as they go out
  std::vector<std::string> queued;  ///< delivery rows it settles (deliver rows)
};

/// What became of a row the peer answered (or that can never be sent).
struct Settlement {
  int64_t row_id = 0;
  bool deliver = false;
  std::string message_id;               ///< ours
  std::string remote_id;                ///< the peer's id for it, when stored there
  std::string refused;                  ///< why not, when refused (or too large)
  std::vector<std::string> recipients;  ///< the delivery rows to settle
};

/// A read receipt to queue for a peer.
struct ReceiptToSend {
  std::string peer;
  std::string remote_id;  ///< the peer's id for the message that was read
  std::string reader;
  std::string read_at;
};

/// A read a peer reported: its agent `reader` (as our proxy `recipient`) read our `message_id`.
struct ReceiptFromPeer {
  std::string message_id;
  std::string recipient;
  std::string read_at;
};

class Outbox {
 public:
  using Done = std::function<void(std::exception_ptr)>;

  explicit Outbox(Store& store) : store_(store) {}

  /// Up to `limit` rows of `peer` after row `after_id`, in order (loop thread, read connection).
  std::vector<OutboxRow> page(const std::string& peer, int64_t after_id, int64_t limit);
  /// Deletes the rows, marks their delivery rows delivered (or failed with the reason) and
  /// records the peer's ids on them, in one store job that does not wait for an fsync: if a power
  /// cut loses it the rows are sent again, and the peer answers a redelivery with the id it gave
  /// the first time.
  void settle(const std::string& peer, std::vector<Settlement> rows, Done done);
  /// Deliver rows queued for `peer`.
  int64_t queued(const std::string& peer);
  /// Drops `peer`'s queue and what tied our messages to its ids, and fails its undelivered proxies'
  /// delivery rows (peer remove). `done(dropped deliver rows, error)`.
  void drop(const std::string& peer, const std::string& prefix,
            std::function<void(int64_t, std::exception_ptr)> done);
  /// Queues read receipts (one durable job).
  void queue_receipts(std::vector<ReceiptToSend> receipts, Done done);
  /// For local reads of `message_ids`: (peer, the peer's id) of each that came from a peer and
  /// was addressed to one agent (broadcast copies send no receipt).
  std::vector<std::pair<std::string, std::string>> receipt_targets(
      const std::vector<std::string>& message_ids);
  /// Applies reads a peer reported, only to its own proxies' delivery rows (one durable job).
  void apply_receipts(std::vector<ReceiptFromPeer> receipts, Done done);
  /// The peer's id for our message `local_id` (reply threading).
  std::optional<std::string> remote_id(const std::string& peer, const std::string& local_id);

  /// Inside a send job: one outbox row.
  static void insert(sql::Db& db, const std::string& peer, const std::string& kind,
                     const std::string& message_id, const std::string& payload,
                     const std::string& created_at);
  /// A deliver row's payload: "<wire params>\n<queued recipients as a JSON array>" (a
  /// serialised JSON value never contains a raw newline).
  static std::string encode(const std::string& wire, const std::vector<std::string>& queued);
  /// The reverse; rows queued by older builds (one JSON object with "queued_recipients" inside)
  /// are still read.
  static OutboxRow decode(int64_t id, std::string kind, std::string message_id,
                          std::string payload);

 private:
  Store& store_;
};

}  // namespace thrum::core::store
