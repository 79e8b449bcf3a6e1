#pragma once
// Every SQL statement about messages, deliveries and agents (SPEC §5). Reads take the loop's
// read connection, writes run inside a store job (sql::Db of the writer thread). The messaging
// units (core/src/messaging/) call these; nothing outside store/ writes SQL.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "thrum/core/messaging_types.hpp"

namespace thrum::core::sql {
class Db;
}

namespace thrum::core::store {

// -- agents -----------------------------------------------------------------------------------
std::vector<Agent> load_agents(sql::Db& reader);
/// Creates or updates a local agent and its session (agent.register).
void upsert_agent(sql::Db& db, const Agent& a);
/// Registers a proxy; `if_absent`: an existing row is kept (an inbound author's proxy).
void insert_proxy(sql::Db& db, const Agent& proxy, bool if_absent);
void delete_agent(sql::Db& db, const std::string& agent_id);
void rename_agent(sql::Db& db, const std::string& from, const std::string& to);

// -- messages ---------------------------------------------------------------------------------
/// Joins (or starts, as `new_thread`) the parent's thread, inserts the message and one
/// delivered row per local recipient. Sets m.thread_id and m.seq.
void insert_message(sql::Db& db, StoredMessage& m, const std::string& new_thread);
/// A delivery row queued for a peer (delivered_at NULL until it acknowledges).
void insert_queued_delivery(sql::Db& db, const std::string& recipient, int64_t seq,
                            const std::string& message_id);
/// Our id for a message a peer delivered before (dedup on origin daemon + its id).
std::optional<std::string> find_by_origin(sql::Db& db, const std::string& origin_daemon,
                                          const std::string& origin_id);
bool message_exists(sql::Db& reader, const std::string& message_id);
/// The message with its recipients, or nullopt.
std::optional<StoredMessage> load_message(sql::Db& reader, const std::string& message_id);
/// The recipients of a message's delivery rows, sorted.
std::vector<std::string> delivery_recipients(sql::Db& reader, const std::string& message_id);

/// One recipient's state of a message (SPEC §5, `sent`).
struct RecipientState {
  std::string agent_id;
  std::string state;  ///< queued | delivered | read | failed
  std::optional<std::string> delivered_at, read_at, reason;
};
std::vector<RecipientState> recipient_states(sql::Db& reader, const std::string& message_id);

// -- inboxes ----------------------------------------------------------------------------------
struct InboxCounts {
  int64_t total = 0, unread = 0;
};
/// Delivered messages and unread ones in `agent`'s inbox: one row read, never a count.
InboxCounts inbox_counts(sql::Db& reader, const std::string& agent);
/// {total, unread} per recipient over every delivery row (queued ones too), for `team`.
std::map<std::string, InboxCounts> all_inbox_counts(sql::Db& reader);
struct InboxEntry {
  bool is_read = false;
  StoredMessage message;
};
/// Newest first; with `before_seq`, only deliveries older than it (the next page).
std::vector<InboxEntry> inbox_page(sql::Db& reader, const std::string& agent, bool unread_only,
                                   int64_t limit, std::optional<int64_t> before_seq = {});
/// The seq of `message_id` in `agent`'s inbox (a page cursor), or nullopt if not delivered there.
std::optional<int64_t> delivery_seq(sql::Db& reader, const std::string& agent,
                                    const std::string& message_id);
/// Marks `ids` read for `agent`; `newly_read` gets those that were unread, `unknown` those not in
/// its inbox. Returns how many were marked.
int64_t mark_read(sql::Db& db, const std::string& agent, const std::vector<std::string>& ids,
                  const std::string& now, std::vector<std::string>* newly_read,
                  std::vector<std::string>* unknown);
/// Marks everything delivered to `agent` read; `newly_read` gets the ids.
int64_t mark_all_read(sql::Db& db, const std::string& agent, const std::string& now,
                      std::vector<std::string>* newly_read);
/// `failed_only`: only messages with a recipient in state "failed" (`thrum sent --failed`).
int64_t sent_count(sql::Db& reader, const std::string& author, bool failed_only = false);
/// Newest first.
std::vector<StoredMessage> sent_page(sql::Db& reader, const std::string& author, int64_t limit,
                                     bool failed_only = false);
/// Unread messages delivered to `agent` created after `after` (message.wait), oldest first.
std::vector<StoredMessage> unread_since(sql::Db& reader, const std::string& agent,
                                        const std::string& after);

}  // namespace thrum::core::store
