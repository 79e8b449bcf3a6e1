#pragma once
// Reading (SPEC §5): an agent's inbox newest first (marking what it showed as read, after the
// marks are durable), marking read, what it sent with per-recipient state, one message by id.
// Marks of messages that came from a peer are reported to the router (read receipts).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "thrum/core/json_rpc.hpp"
#include "thrum/core/messaging_types.hpp"

namespace thrum::core {
class Router;
class Store;
}  // namespace thrum::core

namespace thrum::core::messaging {

class Inbox {
 public:
  Inbox(Store& store, Router* const& router) : store_(store), router_(router) {}
  ~Inbox() { *alive_ = false; }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  /// Newest first; `before` (a message id from `next_before`) starts below it (keyset paging).
  void list(const std::string& agent, bool unread_only, bool mark_read, int64_t limit,
            const std::optional<std::string>& before, rpc::Respond respond);
  /// `ids` (or everything when `all`) read for `agent`.
  void mark_read(const std::string& agent, const std::vector<std::string>& ids, bool all,
                 rpc::Respond respond);
  /// Newest first; `failed_only` keeps messages with a failed delivery, filtered in the query
  /// so that the page is full however old the failures are.
  void sent(const std::string& author, int64_t limit, bool failed_only, rpc::Respond respond);
  /// One message with its recipients. `reader`, when not empty (a `/ws` session bound to an
  /// agent), limits it to messages that agent wrote or received: anything else is "not found",
  /// so that a session cannot learn that a message exists, let alone read it.
  void get(const std::string& message_id, const std::string& reader, rpc::Respond respond);

  static nlohmann::json message_json(const StoredMessage& m);
  nlohmann::json recipient_states(const std::string& message_id);

 private:
  Store& store_;
  Router* const& router_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core::messaging
