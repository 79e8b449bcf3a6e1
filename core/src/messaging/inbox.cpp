#include "messaging/inbox.hpp"

#include <algorithm>

#include "error_text.hpp"

#include "store/messages.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::messaging {

using json = nlohmann::json;

namespace {
json opt(const std::optional<std::string>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

json Inbox::message_json(const StoredMessage& m) {
  json j = {{"message_id", m.message_id}, {"author", m.author_id},  {"body", m.body},
            {"format", m.format},         {"audience", m.audience}, {"created_at", m.created_at}};
  j["thread_id"] = opt(m.thread_id);
  j["reply_to"] = opt(m.reply_to);
  if (m.origin_daemon) j["origin_daemon"] = *m.origin_daemon;
  return j;
}

json Inbox::recipient_states(const std::string& message_id) {
  json out = json::array();
  for (auto& r : store::recipient_states(store_.reader(), message_id)) {
    json j = {{"agent_id", r.agent_id}, {"state", r.state}};
    j["delivered_at"] = opt(r.delivered_at);
    j["read_at"] = opt(r.read_at);
    if (r.reason) j["reason"] = *r.reason;
    out.push_back(std::move(j));
  }
  return out;
}

void Inbox::get(const std::string& message_id, const std::string& reader, rpc::Respond respond) {
  auto m = store::load_message(store_.reader(), message_id);
  if (!m) rpc::fail("message not found: " + message_id);
  json recipients = recipient_states(message_id);
  if (!reader.empty() && m->author_id != reader) {
    const bool received = std::any_of(recipients.begin(), recipients.end(),
                                      [&](const json& r) { return r["agent_id"] == reader; });
    if (!received) rpc::fail("message not found: " + message_id);
  }
  json j = message_json(*m);
  j["recipients"] = std::move(recipients);
  respond(json{{"message", j}});
}

void Inbox::list(const std::string& agent, bool unread_only, bool mark_read, int64_t limit,
                 const std::optional<std::string>& before, rpc::Respond respond) {
  std::optional<int64_t> before_seq;
  if (before) {
    before_seq = store::delivery_seq(store_.reader(), agent, *before);
    if (!before_seq)
      rpc::fail_params("before: " + *before + " is not in @" + agent +
                       "'s inbox; pass the next_before of the previous page");
  }
  const auto counts = store::inbox_counts(store_.reader(), agent);
  json messages = json::array();
  std::vector<std::string> to_mark;
  auto page = store::inbox_page(store_.reader(), agent, unread_only, limit, before_seq);
  for (auto& e : page) {
    json j = message_json(e.message);
    j["is_read"] = e.is_read;
    if (!e.is_read) to_mark.push_back(e.message.message_id);
    messages.push_back(std::move(j));
  }
  json result = {{"messages", messages}, {"total", counts.total}, {"unread", counts.unread}};
  // A full page may have more below it: its last id is the cursor of the next one.
  if (limit > 0 && static_cast<int64_t>(page.size()) == limit)
    result["next_before"] = page.back().message.message_id;
  if (!mark_read || to_mark.empty()) {
    respond(result);
    return;
  }
  const std::string now = now_rfc3339();
  store_.write(
      [agent, to_mark, now](sql::Db& db) {
        store::mark_read(db, agent, to_mark, now, nullptr, nullptr);
      },
      [this, agent, to_mark, respond, result, alive = alive_](std::exception_ptr err) mutable {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError, "could not mark messages read: " + describe(err),
                             nullptr});
          return;
        }
        result["marked_read"] = to_mark.size();
        respond(result);
        if (router_) router_->messages_read(agent, to_mark);
      });
}

void Inbox::mark_read(const std::string& agent, const std::vector<std::string>& ids, bool all,
                      rpc::Respond respond) {
  const std::string now = now_rfc3339();
  auto marked = std::make_shared<int64_t>(0);
  auto unknown = std::make_shared<std::vector<std::string>>();
  auto newly_read = std::make_shared<std::vector<std::string>>();
  store_.write(
      [agent, ids, all, now, marked, unknown, newly_read](sql::Db& db) {
        *marked = all ? store::mark_all_read(db, agent, now, newly_read.get())
                      : store::mark_read(db, agent, ids, now, newly_read.get(), unknown.get());
      },
      [this, agent, respond, marked, unknown, newly_read, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError, "could not mark messages read: " + describe(err),
                             nullptr});
          return;
        }
        respond(json{{"marked_count", *marked}, {"not_in_inbox", *unknown}});
        if (router_ && !newly_read->empty()) router_->messages_read(agent, *newly_read);
      });
}

void Inbox::sent(const std::string& author, int64_t limit, bool failed_only, rpc::Respond respond) {
  const int64_t total = store::sent_count(store_.reader(), author, failed_only);
  json messages = json::array();
  for (const auto& m : store::sent_page(store_.reader(), author, limit, failed_only)) {
    json j = message_json(m);
    j["recipients"] = recipient_states(m.message_id);
    messages.push_back(std::move(j));
  }
  respond(json{{"messages", messages}, {"total", total}});
}

}  // namespace thrum::core::messaging
