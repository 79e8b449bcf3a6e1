#include "store/messages.hpp"

#include <cstdint>
#include <limits>

#include "thrum/core/sqlite.hpp"

namespace thrum::core::store {

namespace {

constexpr const char* kMessageColumns =
    "seq, message_id, thread_id, reply_to, author_id, body, format, audience, created_at, "
    "origin_daemon, origin_message_id";

Agent read_agent(const sql::Stmt& st) {
  Agent a;
  a.agent_id = st.text(0);
  a.kind = st.text(1);
  a.role = st.text(2);
  a.module = st.text(3);
  a.display = st.text(4);
  a.worktree = st.text(5);
  a.hostname = st.text(6);
  if (!st.is_null(7)) a.agent_pid = st.integer(7);
  a.intent = st.text(8);
  a.session_id = st.opt_text(9);
  a.session_started_at = st.opt_text(10);
  a.peer_name = st.opt_text(11);
  a.remote_name = st.opt_text(12);
  a.registered_at = st.text(13);
  a.last_seen_at = st.text(14);
  return a;
}

StoredMessage read_message(const sql::Stmt& st, int off = 0) {
  StoredMessage m;
  m.seq = st.integer(off + 0);
  m.message_id = st.text(off + 1);
  m.thread_id = st.opt_text(off + 2);
  m.reply_to = st.opt_text(off + 3);
  m.author_id = st.text(off + 4);
  m.body = st.text(off + 5);
  m.format = st.text(off + 6);
  m.audience = st.text(off + 7);
  m.created_at = st.text(off + 8);
  m.origin_daemon = st.opt_text(off + 9);
  m.origin_message_id = st.opt_text(off + 10);
  return m;
}

}  // namespace

std::vector<Agent> load_agents(sql::Db& reader) {
  std::vector<Agent> out;
  auto st = reader.prepare(
      "SELECT agent_id, kind, role, module, display, worktree, hostname, agent_pid, intent, "
      "session_id, session_started_at, peer_name, remote_name, registered_at, last_seen_at FROM "
      "agents");
  while (st.step()) out.push_back(read_agent(st));
  return out;
}

void upsert_agent(sql::Db& db, const Agent& a) {
  auto st = db.cached(
      "INSERT INTO agents(agent_id, kind, role, module, display, worktree, hostname, "
      "agent_pid, intent, session_id, session_started_at, registered_at, last_seen_at) "
      "VALUES(?1,'agent',?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12) "
      "ON CONFLICT(agent_id) DO UPDATE SET kind='agent', role=?2, module=?3, display=?4, "
      "worktree=?5, hostname=?6, agent_pid=?7, intent=?8, session_id=?9, "
      "session_started_at=?10, last_seen_at=?12");
  st.bind(1, a.agent_id)
      .bind(2, a.role)
      .bind(3, a.module)
      .bind(4, a.display)
      .bind(5, a.worktree)
      .bind(6, a.hostname)
      .bind(8, a.intent)
      .bind(9, a.session_id)
      .bind(10, a.session_started_at)
      .bind(11, a.registered_at)
      .bind(12, a.last_seen_at);
  if (a.agent_pid)
    st.bind(7, *a.agent_pid);
  else
    st.bind_null(7);
  st.run();
}

void insert_proxy(sql::Db& db, const Agent& p, bool if_absent) {
  auto st = if_absent ? db.cached(
                            "INSERT OR IGNORE INTO agents(agent_id, kind, role, peer_name, "
                            "remote_name, registered_at, last_seen_at) "
                            "VALUES(?1,'proxy','',?2,?3,?4,?4)")
                      : db.cached(
                            "INSERT INTO agents(agent_id, kind, role, peer_name, remote_name, "
                            "registered_at, last_seen_at) VALUES(?1,'proxy','',?2,?3,?4,?4)");
  st.bind(1, p.agent_id)
      .bind(2, p.peer_name.value_or(""))
      .bind(3, p.remote_name.value_or(""))
      .bind(4, p.registered_at)
      .run();
}

void delete_agent(sql::Db& db, const std::string& agent_id) {
  db.cached("DELETE FROM agents WHERE agent_id=?1").bind(1, agent_id).run();
}

void rename_agent(sql::Db& db, const std::string& from, const std::string& to) {
  db.cached("UPDATE agents SET agent_id=?2 WHERE agent_id=?1").bind(1, from).bind(2, to).run();
}

void insert_message(sql::Db& db, StoredMessage& m, const std::string& new_thread) {
  if (m.reply_to) {
    db.cached("UPDATE messages SET thread_id=COALESCE(thread_id, ?1) WHERE message_id=?2")
        .bind(1, new_thread)
        .bind(2, *m.reply_to)
        .run();
    auto st = db.cached("SELECT thread_id FROM messages WHERE message_id=?1");
    st.bind(1, *m.reply_to);
    if (st.step()) m.thread_id = st.opt_text(0);
  }
  db.cached(
        "INSERT INTO messages(message_id, thread_id, reply_to, author_id, body, format, "
        "audience, created_at, origin_daemon, origin_message_id, origin_peer) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)")
      .bind(1, m.message_id)
      .bind(2, m.thread_id)
      .bind(3, m.reply_to)
      .bind(4, m.author_id)
      .bind(5, m.body)
      .bind(6, m.format)
      .bind(7, m.audience)
      .bind(8, m.created_at)
      .bind(9, m.origin_daemon)
      .bind(10, m.origin_message_id)
      .bind(11, m.origin_peer)
      .run();
  m.seq = db.last_insert_rowid();
  auto ins = db.cached(
      "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at) VALUES(?1,?2,?3,?4)");
  for (const auto& r : m.recipients) {
    ins.reset();
    ins.bind(1, r).bind(2, m.seq).bind(3, m.message_id).bind(4, m.created_at).run();
  }
}

void insert_queued_delivery(sql::Db& db, const std::string& recipient, int64_t seq,
                            const std::string& message_id) {
  db.cached(
        "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at) VALUES(?1,?2,?3,?4)")
      .bind(1, recipient)
      .bind(2, seq)
      .bind(3, message_id)
      .bind_null(4)
      .run();
}

std::optional<std::string> find_by_origin(sql::Db& db, const std::string& origin_daemon,
                                          const std::string& origin_id) {
  auto dup =
      db.cached("SELECT message_id FROM messages WHERE origin_daemon=?1 AND origin_message_id=?2");
  dup.bind(1, origin_daemon).bind(2, origin_id);
  if (dup.step()) return dup.text(0);
  return std::nullopt;
}

bool message_exists(sql::Db& reader, const std::string& message_id) {
  auto st = reader.cached("SELECT 1 FROM messages WHERE message_id=?1");
  st.bind(1, message_id);
  return st.step();
}

std::optional<StoredMessage> load_message(sql::Db& reader, const std::string& id) {
  static const std::string q =
      std::string("SELECT ") + kMessageColumns + " FROM messages WHERE message_id=?1";
  auto st = reader.prepare(q);
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  StoredMessage m = read_message(st);
  auto rs = reader.cached("SELECT recipient_id FROM deliveries WHERE message_id=?1");
  rs.bind(1, id);
  while (rs.step()) m.recipients.push_back(rs.text(0));
  return m;
}

std::vector<std::string> delivery_recipients(sql::Db& reader, const std::string& message_id) {
  std::vector<std::string> out;
  auto st = reader.cached(
      "SELECT recipient_id FROM deliveries WHERE message_id=?1 ORDER BY recipient_id");
  st.bind(1, message_id);
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::vector<RecipientState> recipient_states(sql::Db& reader, const std::string& message_id) {
  std::vector<RecipientState> out;
  auto st = reader.cached(
      "SELECT recipient_id, delivered_at, read_at, failed FROM deliveries WHERE message_id=?1 "
      "ORDER BY recipient_id");
  st.bind(1, message_id);
  while (st.step()) {
    RecipientState r;
    r.agent_id = st.text(0);
    r.state = !st.is_null(2)   ? "read"
              : !st.is_null(1) ? "delivered"
              : !st.is_null(3) ? "failed"
                               : "queued";
    r.delivered_at = st.opt_text(1);
    r.read_at = st.opt_text(2);
    r.reason = st.opt_text(3);
    out.push_back(std::move(r));
  }
  return out;
}

InboxCounts inbox_counts(sql::Db& reader, const std::string& agent) {
  // One row of the counts the triggers keep (schema v2), never a scan of the inbox.
  auto c = reader.cached("SELECT inbox, inbox_unread FROM inbox_counts WHERE recipient_id=?1");
  c.bind(1, agent);
  if (!c.step()) return {};
  return {c.integer(0), c.integer(1)};
}

std::map<std::string, InboxCounts> all_inbox_counts(sql::Db& reader) {
  std::map<std::string, InboxCounts> out;
  auto st =
      reader.cached("SELECT recipient_id, rows, rows_unread FROM inbox_counts WHERE rows > 0");
  while (st.step()) out[st.text(0)] = {st.integer(1), st.integer(2)};
  return out;
}

std::vector<InboxEntry> inbox_page(sql::Db& reader, const std::string& agent, bool unread_only,
                                   int64_t limit, std::optional<int64_t> before_seq) {
  // Keyset pagination: the next page starts below the last seq shown, one index range on
  // deliveries' primary key (recipient_id, seq) whatever the page number.
  auto st = unread_only ? reader.cached(
                              "SELECT d.read_at, m.seq, m.message_id, m.thread_id, m.reply_to, "
                              "m.author_id, m.body, m.format, m.audience, m.created_at, "
                              "m.origin_daemon, m.origin_message_id FROM deliveries d "
                              "JOIN messages m ON m.seq = d.seq WHERE d.recipient_id=?1 AND "
                              "d.seq < ?3 AND d.read_at IS NULL AND d.delivered_at IS NOT NULL "
                              "ORDER BY d.seq DESC LIMIT ?2")
                        : reader.cached(
                              "SELECT d.read_at, m.seq, m.message_id, m.thread_id, m.reply_to, "
                              "m.author_id, m.body, m.format, m.audience, m.created_at, "
                              "m.origin_daemon, m.origin_message_id FROM deliveries d "
                              "JOIN messages m ON m.seq = d.seq WHERE d.recipient_id=?1 AND "
                              "d.seq < ?3 AND d.delivered_at IS NOT NULL "
                              "ORDER BY d.seq DESC LIMIT ?2");
  st.bind(1, agent).bind(2, limit).bind(3,
                                        before_seq.value_or(std::numeric_limits<int64_t>::max()));
  std::vector<InboxEntry> out;
  while (st.step()) out.push_back(InboxEntry{!st.is_null(0), read_message(st, 1)});
  return out;
}

std::optional<int64_t> delivery_seq(sql::Db& reader, const std::string& agent,
                                    const std::string& message_id) {
  auto st = reader.cached("SELECT seq FROM deliveries WHERE message_id=?1 AND recipient_id=?2");
  st.bind(1, message_id).bind(2, agent);
  if (!st.step()) return std::nullopt;
  return st.integer(0);
}

int64_t mark_read(sql::Db& db, const std::string& agent, const std::vector<std::string>& ids,
                  const std::string& now, std::vector<std::string>* newly_read,
                  std::vector<std::string>* unknown) {
  int64_t marked = 0;
  auto exists = db.cached("SELECT 1 FROM deliveries WHERE message_id=?1 AND recipient_id=?2");
  auto up = db.cached(
      "UPDATE deliveries SET read_at=?1 WHERE message_id=?2 AND recipient_id=?3 AND "
      "read_at IS NULL");
  for (const auto& id : ids) {
    if (unknown) {
      exists.reset();
      exists.bind(1, id).bind(2, agent);
      if (!exists.step()) {
        unknown->push_back(id);
        continue;
      }
    }
    up.reset();
    up.bind(1, now).bind(2, id).bind(3, agent).run();
    if (db.changes() > 0) {
      ++marked;
      if (newly_read) newly_read->push_back(id);
    }
  }
  return marked;
}

int64_t mark_all_read(sql::Db& db, const std::string& agent, const std::string& now,
                      std::vector<std::string>* newly_read) {
  auto sel = db.cached(
      "SELECT message_id FROM deliveries WHERE recipient_id=?1 AND read_at IS NULL AND "
      "delivered_at IS NOT NULL");
  sel.bind(1, agent);
  while (sel.step())
    if (newly_read) newly_read->push_back(sel.text(0));
  db.cached(
        "UPDATE deliveries SET read_at=?1 WHERE recipient_id=?2 AND read_at IS NULL AND "
        "delivered_at IS NOT NULL")
      .bind(1, now)
      .bind(2, agent)
      .run();
  return db.changes();
}

namespace {
// A delivery in state "failed" (recipient_states' order of precedence: read, delivered, failed).
constexpr const char* kFailedFilter =
    " AND (?3=0 OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id=messages.message_id AND "
    "d.failed IS NOT NULL AND d.delivered_at IS NULL AND d.read_at IS NULL))";
}  // namespace

int64_t sent_count(sql::Db& reader, const std::string& author, bool failed_only) {
  static const std::string q =
      std::string("SELECT count(*) FROM messages WHERE author_id=?1") + kFailedFilter;
  auto c = reader.cached(q.c_str());
  c.bind(1, author).bind(3, failed_only ? 1 : 0);
  c.step();
  return c.integer(0);
}

std::vector<StoredMessage> sent_page(sql::Db& reader, const std::string& author, int64_t limit,
                                     bool failed_only) {
  static const std::string q = std::string("SELECT ") + kMessageColumns +
                               " FROM messages WHERE author_id=?1" + kFailedFilter +
                               " ORDER BY seq DESC LIMIT ?2";
  auto st = reader.prepare(q);
  st.bind(1, author).bind(2, limit).bind(3, failed_only ? 1 : 0);
  std::vector<StoredMessage> out;
  while (st.step()) out.push_back(read_message(st));
  return out;
}

std::vector<StoredMessage> unread_since(sql::Db& reader, const std::string& agent,
                                        const std::string& after) {
  auto st = reader.cached(
      "SELECT m.seq, m.message_id, m.thread_id, m.reply_to, m.author_id, m.body, m.format, "
      "m.audience, m.created_at, m.origin_daemon, m.origin_message_id FROM deliveries d JOIN "
      "messages m ON m.seq=d.seq WHERE d.recipient_id=?1 AND d.read_at IS NULL AND "
      "d.delivered_at IS NOT NULL AND m.created_at > ?2 ORDER BY d.seq");
  st.bind(1, agent).bind(2, after);
  std::vector<StoredMessage> out;
  while (st.step()) out.push_back(read_message(st));
  return out;
}

}  // namespace thrum::core::store
