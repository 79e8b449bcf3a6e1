#include "thrum/core/messaging.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <regex>
#include <set>

#include <spdlog/spdlog.h>

#include "peers/protocol.hpp"
#include "thrum/core/config.hpp"
#include "thrum/core/fs_util.hpp"
#include "thrum/core/ids.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core {

using json = nlohmann::json;
using rpc::fail;
using rpc::fail_params;

namespace {

const std::set<std::string> kReserved = {"everyone", "daemon", "system",
                                         "thrum",    "all",    "broadcast"};
constexpr int64_t kDefaultListLimit = 20;
constexpr int64_t kMaxListLimit = 1000;
constexpr int64_t kMaxWaitMs = 6 * 60 * 1000;

std::string preview(const std::string& body) {
  if (body.size() <= 100) return body;
  // Do not cut a UTF-8 sequence in half.
  size_t n = 100;
  while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  return body.substr(0, n);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

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

constexpr const char* kAgentColumns =
    "agent_id, kind, role, module, display, worktree, hostname, agent_pid, intent, session_id, "
    "session_started_at, peer_name, remote_name, registered_at, last_seen_at";

constexpr const char* kMessageColumns =
    "seq, message_id, thread_id, reply_to, author_id, body, format, audience, created_at, "
    "origin_daemon, origin_message_id";

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

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

/// Inside a store job: joins (or starts) the parent's thread, inserts the message and one
/// delivered row per local recipient. Sets m.thread_id and m.seq. Shared by local sends and
/// messages applied from peers.
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
        "audience, created_at, origin_daemon, origin_message_id) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)")
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
      .run();
  m.seq = db.last_insert_rowid();
  auto ins = db.cached(
      "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at) VALUES(?1,?2,?3,?4)");
  for (const auto& r : m.recipients) {
    ins.reset();
    ins.bind(1, r).bind(2, m.seq).bind(3, m.message_id).bind(4, m.created_at).run();
  }
}

}  // namespace

bool Agent::active() const {
  if (!session_id) return false;
  if (agent_pid && *agent_pid > 0) {
    if (::kill(static_cast<pid_t>(*agent_pid), 0) != 0 && errno == ESRCH) return false;
  }
  return true;
}

Messaging::Messaging(Options opts, Store& store, EventLoop& loop)
    : opts_(std::move(opts)), store_(store), loop_(loop) {
  load_agents();
}

Messaging::~Messaging() {
  *alive_ = false;
  for (auto& [agent, w] : waiters_)
    if (w.timer) w.timer->cancel();
}

std::string Messaging::check_agent_name(const std::string& name) {
  static const std::regex re("^[a-z0-9_-]{1,64}$");
  if (!std::regex_match(name, re))
    return "invalid agent name \"" + name + "\": use 1-64 characters from a-z, 0-9, '_' and '-'";
  if (kReserved.count(name)) return "agent name \"" + name + "\" is reserved; choose another";
  return "";
}

void Messaging::load_agents() {
  std::string q = std::string("SELECT ") + kAgentColumns + " FROM agents";
  auto st = store_.reader().prepare(q);
  while (st.step()) {
    Agent a = read_agent(st);
    agents_[a.agent_id] = std::move(a);
  }
}

void Messaging::register_methods(rpc::Dispatcher& d) {
  auto bind = [this](void (Messaging::*fn)(const json&, rpc::Respond)) {
    return [this, fn](const json& p, const rpc::CallContext&, rpc::Respond r) {
      (this->*fn)(p, std::move(r));
    };
  };
  d.add("agent.register", bind(&Messaging::h_register));
  d.add("agent.list", bind(&Messaging::h_list_agents));
  d.add("agent.whoami", bind(&Messaging::h_whoami));
  d.add("team.list", bind(&Messaging::h_team));
  d.add("message.send", bind(&Messaging::h_send));
  d.add("message.get", bind(&Messaging::h_get));
  d.add("message.list", bind(&Messaging::h_list));
  d.add("message.markRead", bind(&Messaging::h_mark_read));
  d.add("message.outbox", bind(&Messaging::h_outbox));
  d.add("message.wait", [this](const json& p, const rpc::CallContext& ctx, rpc::Respond r) {
    h_wait(p, ctx, std::move(r));
  });
}

const Agent& Messaging::require_caller(const json& p) const {
  rpc::Params params(p);
  auto it = p.find("caller_agent_id");
  if (it == p.end() || it->is_null())
    fail_params("caller_agent_id is required (which agent is acting?)");
  std::string caller = params.str("caller_agent_id");
  auto a = agents_.find(caller);
  if (a == agents_.end() || a->second.is_proxy())
    fail("unknown agent \"" + caller + "\": register it first with 'thrum quickstart --name " +
         caller + " --role <role>'");
  return a->second;
}

// ---------------------------------------------------------------------------------------------
// agent.register: create or update a local agent and start a new session for it.

void Messaging::h_register(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  std::string name = params.str("name");
  if (auto err = check_agent_name(name); !err.empty()) fail_params(err);
  std::string role = params.str("role");
  if (role.size() > 64) fail_params("role must be at most 64 characters");
  auto existing = agents_.find(name);
  if (existing != agents_.end() && existing->second.is_proxy())
    fail("\"" + name + "\" is a proxy for a peer's agent; choose another name");

  Agent a = existing != agents_.end() ? existing->second : Agent{};
  const bool is_new = existing == agents_.end();
  const std::string now = now_rfc3339();
  a.agent_id = name;
  a.kind = "agent";
  a.role = role;
  a.module = params.opt_str("module").value_or(a.module);
  a.display = params.opt_str("display").value_or(a.display);
  a.worktree = params.opt_str("worktree").value_or(a.worktree);
  a.hostname = host_name();
  if (auto pid = params.opt_int("agent_pid")) a.agent_pid = *pid;
  a.intent = params.opt_str("intent").value_or(a.intent);
  a.session_id = new_session_id();
  a.session_started_at = now;
  if (is_new) a.registered_at = now;
  a.last_seen_at = now;
  const bool write_identity = params.flag("write_identity", false);

  store_.write(
      [a](sql::Db& db) {
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
      },
      [this, a, is_new, write_identity, respond, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError,
                             "could not register agent: " + describe_exception(err), nullptr});
          return;
        }
        agents_[a.agent_id] = a;
        json result = {{"agent_id", a.agent_id},      {"status", is_new ? "registered" : "updated"},
                       {"session_id", *a.session_id}, {"role", a.role},
                       {"module", a.module},          {"intent", a.intent}};
        if (write_identity) {
          try {
            write_identity_file(a);
            result["identity_file"] = (opts_.paths.identities / (a.agent_id + ".json")).string();
          } catch (const std::exception& e) {
            respond(rpc::Error{
                rpc::kHandlerError,
                std::string("registered, but could not write the identity file: ") + e.what(),
                nullptr});
            return;
          }
        }
        spdlog::info("agent registered agent={} role={} status={}", a.agent_id, a.role,
                     is_new ? "new" : "updated");
        respond(result);
        if (router_) router_->agents_changed();
      });
}

void Messaging::write_identity_file(const Agent& a) {
  ensure_dir(opts_.paths.identities, 0700);
  json doc = {{"version", 5},
              {"repo_id", opts_.paths.root.filename().string()},
              {"agent",
               {{"Kind", "agent"},
                {"Name", a.agent_id},
                {"Role", a.role},
                {"Module", a.module},
                {"Display", a.display}}},
              {"worktree", a.worktree},
              {"intent", a.intent},
              {"session_id", a.session_id.value_or("")},
              {"updated_at", now_rfc3339()}};
  atomic_write_file(opts_.paths.identities / (a.agent_id + ".json"), doc.dump(2) + "\n", 0600);
}

json agent_json(const Agent& a) {
  json j = {{"agent_id", a.agent_id},
            {"kind", a.kind},
            {"role", a.role},
            {"module", a.module},
            {"display", a.display},
            {"worktree", a.worktree},
            {"hostname", a.hostname},
            {"intent", a.intent},
            {"registered_at", a.registered_at},
            {"last_seen_at", a.last_seen_at}};
  j["session_id"] = a.session_id ? json(*a.session_id) : json(nullptr);
  j["session_started_at"] = a.session_started_at ? json(*a.session_started_at) : json(nullptr);
  j["agent_pid"] = a.agent_pid ? json(*a.agent_pid) : json(nullptr);
  if (a.is_proxy()) {
    j["peer_name"] = a.peer_name.value_or("");
    j["remote_name"] = a.remote_name.value_or("");
  }
  return j;
}

void Messaging::h_list_agents(const json&, rpc::Respond respond) {
  json list = json::array();
  for (const auto& [id, a] : agents_) list.push_back(agent_json(a));
  respond(json{{"agents", list}});
}

void Messaging::h_whoami(const json& p, rpc::Respond respond) {
  const Agent& a = require_caller(p);
  json j = agent_json(a);
  j["status"] = a.active() ? "active" : "offline";
  respond(j);
}

void Messaging::h_team(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  const bool include_offline = params.flag("include_offline", false);
  // Unread/total per local agent in one pass.
  std::map<std::string, std::pair<int64_t, int64_t>> counts;
  auto st = store_.reader().cached(
      "SELECT recipient_id, count(*), sum(read_at IS NULL) FROM deliveries GROUP BY recipient_id");
  while (st.step()) counts[st.text(0)] = {st.integer(1), st.integer(2)};
  json members = json::array();
  for (const auto& [id, a] : agents_) {
    json m = agent_json(a);
    std::string status;
    if (a.is_proxy()) {
      status = "unknown";
      if (router_) {
        auto [presence, role] = router_->proxy_presence(a);
        status = presence;
        if (!role.empty()) m["role"] = role;
      }
    } else {
      status = a.active() ? "active" : "offline";
    }
    if (!include_offline && status == "offline" && !a.is_proxy()) continue;
    m["status"] = status;
    m["is_local"] = !a.is_proxy();
    auto c = counts.find(id);
    m["inbox_total"] = c == counts.end() ? 0 : c->second.first;
    m["inbox_unread"] = c == counts.end() ? 0 : c->second.second;
    members.push_back(std::move(m));
  }
  respond(json{{"members", members}});
}

// ---------------------------------------------------------------------------------------------
// message.send

void Messaging::h_send(const json& p, rpc::Respond respond) {
  const Agent& caller = require_caller(p);
  rpc::Params params(p);
  auto content_it = p.find("content");
  if (content_it == p.end() || content_it->is_null()) fail_params("content is required");
  if (!content_it->is_string()) fail_params("content must be a string");
  std::string content = content_it->get<std::string>();
  if (content.empty()) fail_params("content is required (the message is empty)");
  if (opts_.max_body_bytes >= 0 && static_cast<int64_t>(content.size()) > opts_.max_body_bytes)
    throw rpc::Failure(rpc::kInvalidParams,
                       "message body too large: " + std::to_string(content.size()) +
                           " bytes exceeds daemon.max_message_body_bytes (" +
                           std::to_string(opts_.max_body_bytes) + " bytes)");
  std::string format = params.opt_str("format").value_or("markdown");
  if (format != "markdown" && format != "plain" && format != "json")
    fail_params("invalid format: " + format + " (must be 'markdown', 'plain', or 'json')");

  auto to = params.str_list("to");
  if (params.flag("broadcast")) to.push_back("@everyone");
  auto reply_to = params.opt_str("reply_to");

  std::optional<StoredMessage> parent;
  if (reply_to) {
    parent = load_message(*reply_to);
    if (!parent) fail("reply_to message not found: " + *reply_to);
  }
  if (to.empty() && !parent)
    fail_params("missing recipient: pass to (\"@name\", \"@prefix:name\" or \"@everyone\")");

  // Resolve recipients. Nothing is stored unless every recipient resolves.
  std::vector<std::string> recipients;  // local agents: delivered at once
  std::vector<const Agent*> proxies;    // agents on peers: queued for their link
  std::vector<std::string> audience;
  bool broadcast = false;
  std::vector<std::string> unknown;
  for (std::string t : to) {
    if (!t.empty() && t[0] == '@') t.erase(0, 1);
    if (t == "everyone") {
      broadcast = true;
      continue;
    }
    auto a = agents_.find(t);
    if (a == agents_.end() || t.empty()) {
      unknown.push_back("@" + t);
      continue;
    }
    if (a->second.is_proxy())
      proxies.push_back(&a->second);
    else
      recipients.push_back(t);
    audience.push_back("agent:" + t);
  }
  if (!unknown.empty()) {
    std::string msg = "unknown recipient " + join(unknown, ", ");
    const std::string& first = unknown.front();
    if (auto colon = first.find(':'); colon != std::string::npos) {
      const std::string prefix = first.substr(1, colon - 1);
      const std::string name = first.substr(colon + 1);
      auto peer = router_ ? router_->peer_for_prefix(prefix) : std::nullopt;
      if (peer)
        msg += " — register it with: thrum peer configure " + *peer + " add-agent " + name;
      else
        msg += " — no peer uses the prefix \"" + prefix + "\" (see 'thrum peer list')";
    } else {
      msg += " — see 'thrum team --all' for registered agents";
    }
    fail(msg);
  }
  if (broadcast) {
    audience.push_back("broadcast:everyone");
    for (const auto& [id, a] : agents_)
      if (id != caller.agent_id && !a.is_proxy()) recipients.push_back(id);
  }
  if (parent && to.empty()) {
    // A reply goes to the parent's author; the author replying to themself continues the
    // conversation with the parent's recipients.
    std::vector<std::string> targets;
    if (parent->author_id != caller.agent_id) {
      targets.push_back(parent->author_id);
    } else {
      auto st = store_.reader().cached(
          "SELECT recipient_id FROM deliveries WHERE message_id=?1 ORDER BY recipient_id");
      st.bind(1, parent->message_id);
      while (st.step()) targets.push_back(st.text(0));
    }
    for (const auto& t : targets) {
      auto a = agents_.find(t);
      if (a == agents_.end()) continue;  // e.g. a broadcast's per-peer row
      if (a->second.is_proxy())
        proxies.push_back(&a->second);
      else
        recipients.push_back(t);
      audience.push_back("agent:" + t);
    }
    if (recipients.empty() && proxies.empty())
      fail("cannot reply to " + parent->message_id + ": its author @" + parent->author_id +
           " is no longer registered here");
  }
  std::sort(recipients.begin(), recipients.end());
  recipients.erase(std::unique(recipients.begin(), recipients.end()), recipients.end());
  std::sort(proxies.begin(), proxies.end());
  proxies.erase(std::unique(proxies.begin(), proxies.end()), proxies.end());

  auto m = std::make_shared<StoredMessage>();
  m->message_id = new_message_id();
  m->reply_to = reply_to;
  m->author_id = caller.agent_id;
  m->body = std::move(content);
  m->format = format;
  m->audience = broadcast ? "broadcast:everyone" : join(audience, ",");
  m->created_at = now_rfc3339();
  m->recipients = recipients;
  auto outbox = std::make_shared<std::vector<OutboxItem>>();
  if (router_ && (!proxies.empty() || broadcast)) *outbox = router_->route(*m, proxies, broadcast);
  const std::string new_thread = reply_to ? new_thread_id() : std::string();
  // Serialised once, here rather than in the job (the store's writer thread is the sender's
  // busiest), in the form the outbox keeps (see OutboxItem).
  std::vector<std::string> payloads;
  payloads.reserve(outbox->size());
  for (const auto& item : *outbox) {
    std::string wire = item.payload.dump(-1, ' ', false, json::error_handler_t::replace);
    // Escaping can make a body that passed the limit several times larger on the wire (a
    // control character is six bytes there): a row that could never fit a link frame would
    // block that peer's queue, so it is refused now, before anything is stored.
    if (wire.size() > peers::kMaxRowBytes)
      throw rpc::Failure(rpc::kInvalidParams,
                         "message too large for peer \"" + item.peer + "\": it encodes to " +
                             std::to_string(wire.size()) +
                             " bytes on the link (control "
                             "characters are escaped), over the limit of " +
                             std::to_string(peers::kMaxRowBytes) + " bytes; shorten it");
    payloads.push_back(std::move(wire) + "\n" + json(item.queued_recipients).dump());
  }

  store_.write(
      [m, new_thread, outbox, payloads = std::move(payloads)](sql::Db& db) {
        insert_message(db, *m, new_thread);
        auto ins = db.cached(
            "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at) "
            "VALUES(?1,?2,?3,?4)");
        for (size_t i = 0; i < outbox->size(); ++i) {
          const auto& item = (*outbox)[i];
          for (const auto& r : item.queued_recipients) {
            ins.reset();
            ins.bind(1, r).bind(2, m->seq).bind(3, m->message_id).bind_null(4).run();
          }
          db.cached(
                "INSERT INTO outbox(peer, kind, message_id, payload, created_at) "
                "VALUES(?1,?2,?3,?4,?5)")
              .bind(1, item.peer)
              .bind(2, item.kind)
              .bind(3, m->message_id)
              .bind(4, payloads[i])
              .bind(5, m->created_at)
              .run();
        }
      },
      [this, m, outbox, respond, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          spdlog::error("message store failed message={} error=\"{}\"", m->message_id,
                        describe_exception(err));
          respond(rpc::Error{
              rpc::kHandlerError,
              "message not sent: could not store it (" + describe_exception(err) + ")", nullptr});
          return;
        }
        json all = m->recipients;
        json queued = json::array();
        for (const auto& item : *outbox)
          for (const auto& r : item.queued_recipients) {
            all.push_back(r);
            queued.push_back(r);
          }
        json result = {{"message_id", m->message_id},
                       {"created_at", m->created_at},
                       {"recipients", all},
                       {"queued", queued},
                       {"resolved_to", all.size()}};
        result["thread_id"] = m->thread_id ? json(*m->thread_id) : json(nullptr);
        respond(result);
        announce(*m);
        if (router_)
          for (const auto& item : *outbox) router_->kick(item.peer);
      });
}

void Messaging::announce(const StoredMessage& m) {
  for (auto& obs : observers_) obs(m);
  deliver_to_waiters(m);
}

std::optional<StoredMessage> Messaging::load_message(const std::string& id) const {
  static const std::string q =
      std::string("SELECT ") + kMessageColumns + " FROM messages WHERE message_id=?1";
  auto st = store_.reader().prepare(q);
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  StoredMessage m = read_message(st);
  auto rs = store_.reader().cached("SELECT recipient_id FROM deliveries WHERE message_id=?1");
  rs.bind(1, id);
  while (rs.step()) m.recipients.push_back(rs.text(0));
  return m;
}

json Messaging::recipient_states(const std::string& message_id) const {
  json out = json::array();
  auto st = store_.reader().cached(
      "SELECT recipient_id, delivered_at, read_at, failed FROM deliveries WHERE message_id=?1 "
      "ORDER BY recipient_id");
  st.bind(1, message_id);
  while (st.step()) {
    std::string state = !st.is_null(2)   ? "read"
                        : !st.is_null(1) ? "delivered"
                        : !st.is_null(3) ? "failed"
                                         : "queued";
    json r = {{"agent_id", st.text(0)}, {"state", state}};
    r["delivered_at"] = st.is_null(1) ? json(nullptr) : json(st.text(1));
    r["read_at"] = st.is_null(2) ? json(nullptr) : json(st.text(2));
    if (!st.is_null(3)) r["reason"] = st.text(3);
    out.push_back(std::move(r));
  }
  return out;
}

json Messaging::message_json(const StoredMessage& m, const std::string& viewer) const {
  json j = {{"message_id", m.message_id}, {"author", m.author_id},  {"body", m.body},
            {"format", m.format},         {"audience", m.audience}, {"created_at", m.created_at}};
  j["thread_id"] = m.thread_id ? json(*m.thread_id) : json(nullptr);
  j["reply_to"] = m.reply_to ? json(*m.reply_to) : json(nullptr);
  if (m.origin_daemon) j["origin_daemon"] = *m.origin_daemon;
  (void)viewer;
  return j;
}

json Messaging::notification_params(const StoredMessage& m) {
  json j = {{"message_id", m.message_id}, {"author", {{"agent_id", m.author_id}}},
            {"recipients", m.recipients}, {"preview", preview(m.body)},
            {"audience", m.audience},     {"timestamp", m.created_at}};
  j["thread_id"] = m.thread_id ? json(*m.thread_id) : json(nullptr);
  j["reply_to"] = m.reply_to ? json(*m.reply_to) : json(nullptr);
  return j;
}

void Messaging::h_get(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  std::string id = params.str("message_id");
  auto m = load_message(id);
  if (!m) fail("message not found: " + id);
  json j = message_json(*m, "");
  j["recipients"] = recipient_states(id);
  respond(json{{"message", j}});
}

// ---------------------------------------------------------------------------------------------
// message.list (the inbox), message.markRead, message.outbox

void Messaging::h_list(const json& p, rpc::Respond respond) {
  const Agent& caller = require_caller(p);
  rpc::Params params(p);
  const bool unread_only = params.flag("unread");
  const bool mark_read = params.flag("mark_read");
  int64_t limit = params.opt_int("limit").value_or(kDefaultListLimit);
  if (limit < 1 || limit > kMaxListLimit)
    fail_params("limit must be between 1 and " + std::to_string(kMaxListLimit));

  sql::Db& db = store_.reader();
  auto counts = db.cached(
      "SELECT count(*), coalesce(sum(read_at IS NULL), 0) FROM deliveries WHERE recipient_id=?1 "
      "AND delivered_at IS NOT NULL");
  counts.bind(1, caller.agent_id);
  counts.step();
  const int64_t total = counts.integer(0);
  const int64_t unread = counts.integer(1);

  auto st = unread_only ? db.cached(
                              "SELECT d.read_at, m.seq, m.message_id, m.thread_id, m.reply_to, "
                              "m.author_id, m.body, m.format, m.audience, m.created_at, "
                              "m.origin_daemon, m.origin_message_id FROM deliveries d "
                              "JOIN messages m ON m.seq = d.seq WHERE d.recipient_id=?1 AND "
                              "d.read_at IS NULL AND d.delivered_at IS NOT NULL "
                              "ORDER BY d.seq DESC LIMIT ?2")
                        : db.cached(
                              "SELECT d.read_at, m.seq, m.message_id, m.thread_id, m.reply_to, "
                              "m.author_id, m.body, m.format, m.audience, m.created_at, "
                              "m.origin_daemon, m.origin_message_id FROM deliveries d "
                              "JOIN messages m ON m.seq = d.seq WHERE d.recipient_id=?1 AND "
                              "d.delivered_at IS NOT NULL ORDER BY d.seq DESC LIMIT ?2");
  st.bind(1, caller.agent_id).bind(2, limit);
  json messages = json::array();
  std::vector<std::string> to_mark;
  while (st.step()) {
    const bool is_read = !st.is_null(0);
    StoredMessage m = read_message(st, 1);
    json j = message_json(m, caller.agent_id);
    j["is_read"] = is_read;
    if (!is_read) to_mark.push_back(m.message_id);
    messages.push_back(std::move(j));
  }
  json result = {{"messages", messages}, {"total", total}, {"unread", unread}};
  if (!mark_read || to_mark.empty()) {
    respond(result);
    return;
  }
  const std::string agent = caller.agent_id;
  const std::string now = now_rfc3339();
  store_.write(
      [agent, to_mark, now](sql::Db& wdb) {
        auto up = wdb.cached(
            "UPDATE deliveries SET read_at=?1 WHERE message_id=?2 AND recipient_id=?3 AND "
            "read_at IS NULL");
        for (const auto& id : to_mark) {
          up.reset();
          up.bind(1, now).bind(2, id).bind(3, agent).run();
        }
      },
      [this, agent, to_mark, respond, result, alive = alive_](std::exception_ptr err) mutable {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError,
                             "could not mark messages read: " + describe_exception(err), nullptr});
          return;
        }
        result["marked_read"] = to_mark.size();
        respond(result);
        if (router_) router_->messages_read(agent, to_mark);
      });
}

void Messaging::h_mark_read(const json& p, rpc::Respond respond) {
  const Agent& caller = require_caller(p);
  rpc::Params params(p);
  const bool all = params.flag("all");
  auto ids = params.str_list("message_ids");
  if (!all && ids.empty()) fail_params("message_ids is required (or all: true)");
  const std::string agent = caller.agent_id;
  const std::string now = now_rfc3339();
  auto marked = std::make_shared<int64_t>(0);
  auto unknown = std::make_shared<std::vector<std::string>>();
  auto newly_read = std::make_shared<std::vector<std::string>>();
  store_.write(
      [agent, ids, all, now, marked, unknown, newly_read](sql::Db& db) {
        if (all) {
          auto sel = db.cached(
              "SELECT message_id FROM deliveries WHERE recipient_id=?1 AND "
              "read_at IS NULL AND delivered_at IS NOT NULL");
          sel.bind(1, agent);
          while (sel.step()) newly_read->push_back(sel.text(0));
          db.cached(
                "UPDATE deliveries SET read_at=?1 WHERE recipient_id=?2 AND read_at IS NULL "
                "AND delivered_at IS NOT NULL")
              .bind(1, now)
              .bind(2, agent)
              .run();
          *marked = db.changes();
          return;
        }
        auto exists = db.cached("SELECT 1 FROM deliveries WHERE message_id=?1 AND recipient_id=?2");
        auto up = db.cached(
            "UPDATE deliveries SET read_at=?1 WHERE message_id=?2 AND recipient_id=?3 AND "
            "read_at IS NULL");
        for (const auto& id : ids) {
          exists.reset();
          exists.bind(1, id).bind(2, agent);
          if (!exists.step()) {
            unknown->push_back(id);
            continue;
          }
          up.reset();
          up.bind(1, now).bind(2, id).bind(3, agent).run();
          if (db.changes() > 0) {
            *marked += 1;
            newly_read->push_back(id);
          }
        }
      },
      [this, agent, respond, marked, unknown, newly_read, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError,
                             "could not mark messages read: " + describe_exception(err), nullptr});
          return;
        }
        respond(json{{"marked_count", *marked}, {"not_in_inbox", *unknown}});
        if (router_ && !newly_read->empty()) router_->messages_read(agent, *newly_read);
      });
}

void Messaging::h_outbox(const json& p, rpc::Respond respond) {
  const Agent& caller = require_caller(p);
  rpc::Params params(p);
  int64_t limit = params.opt_int("limit").value_or(kDefaultListLimit);
  if (limit < 1 || limit > kMaxListLimit)
    fail_params("limit must be between 1 and " + std::to_string(kMaxListLimit));
  sql::Db& db = store_.reader();
  auto cnt = db.cached("SELECT count(*) FROM messages WHERE author_id=?1");
  cnt.bind(1, caller.agent_id);
  cnt.step();
  const int64_t total = cnt.integer(0);
  static const std::string q = std::string("SELECT ") + kMessageColumns +
                               " FROM messages WHERE author_id=?1 ORDER BY seq DESC LIMIT ?2";
  auto st = db.prepare(q);
  st.bind(1, caller.agent_id).bind(2, limit);
  json messages = json::array();
  while (st.step()) {
    StoredMessage m = read_message(st);
    json j = message_json(m, caller.agent_id);
    j["recipients"] = recipient_states(m.message_id);
    messages.push_back(std::move(j));
  }
  respond(json{{"messages", messages}, {"total", total}});
}

// ---------------------------------------------------------------------------------------------
// message.wait: long-poll until a message for the caller arrives.

void Messaging::h_wait(const json& p, const rpc::CallContext& ctx, rpc::Respond respond) {
  const Agent& caller = require_caller(p);
  rpc::Params params(p);
  int64_t timeout_ms = params.opt_int("timeout_ms").value_or(30000);
  if (timeout_ms < 0 || timeout_ms > kMaxWaitMs)
    fail_params("timeout_ms must be between 0 and " + std::to_string(kMaxWaitMs));
  // Messages that arrived just before the wait started still count (an agent that checked its
  // inbox and then waited must not miss what landed in between).
  std::string after =
      params.opt_str("after").value_or(rfc3339(Clock::now() - std::chrono::seconds(1)));

  auto st = store_.reader().cached(
      "SELECT m.message_id, m.author_id, m.body, m.created_at, m.thread_id FROM deliveries d "
      "JOIN messages m ON m.seq=d.seq WHERE d.recipient_id=?1 AND d.read_at IS NULL AND "
      "d.delivered_at IS NOT NULL AND m.created_at > ?2 ORDER BY d.seq");
  st.bind(1, caller.agent_id).bind(2, after);
  json found = json::array();
  while (st.step())
    found.push_back({{"message_id", st.text(0)},
                     {"author", st.text(1)},
                     {"preview", preview(st.text(2))},
                     {"created_at", st.text(3)}});
  if (!found.empty()) {
    respond(json{{"status", "received"}, {"messages", found}});
    return;
  }
  const uint64_t id = next_waiter_++;
  auto it = waiters_.emplace(caller.agent_id, Waiter{id, after, respond, nullptr});
  auto alive_fn = ctx.alive;
  it->second.timer = loop_.run_after(
      std::chrono::milliseconds(timeout_ms), [this, agent = caller.agent_id, id, alive = alive_] {
        if (!*alive) return;
        auto range = waiters_.equal_range(agent);
        for (auto w = range.first; w != range.second; ++w) {
          if (w->second.id != id) continue;
          auto r = std::move(w->second.respond);
          waiters_.erase(w);
          r(json{{"status", "timeout"}, {"messages", json::array()}});
          return;
        }
      });
}

void Messaging::deliver_to_waiters(const StoredMessage& m) {
  for (const auto& r : m.recipients) {
    auto range = waiters_.equal_range(r);
    std::vector<Waiter> done;
    for (auto w = range.first; w != range.second;) {
      done.push_back(std::move(w->second));
      w = waiters_.erase(w);
    }
    for (auto& w : done) {
      if (w.timer) w.timer->cancel();
      w.respond(json{{"status", "received"},
                     {"messages", json::array({{{"message_id", m.message_id},
                                                {"author", m.author_id},
                                                {"preview", preview(m.body)},
                                                {"created_at", m.created_at}}})}});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Peers: inbound messages and proxies.

void Messaging::apply_inbound(const std::vector<InboundMessage>& batch,
                              std::function<void(std::vector<InboundResult>)> done) {
  /// One message to store: everything decided on the loop before the job runs.
  struct Pending {
    size_t index;  // in `batch` and in the results
    StoredMessage m;
    std::optional<Agent> new_proxy;
    std::string new_thread;
    std::string peer;
    std::string existing;  // set by the job: our id from an earlier delivery
    std::string error;     // set by the job: why this one could not be stored
  };
  auto results = std::make_shared<std::vector<InboundResult>>(batch.size());
  auto work = std::make_shared<std::vector<Pending>>();
  work->reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const InboundMessage& in = batch[i];
    std::vector<std::string> recipients;
    std::string refused;
    // The rules of a local send hold for what a peer sends too.
    if (opts_.max_body_bytes >= 0 && static_cast<int64_t>(in.body.size()) > opts_.max_body_bytes) {
      (*results)[i].refused = "message body too large: " + std::to_string(in.body.size()) +
                              " bytes exceeds this daemon's limit of " +
                              std::to_string(opts_.max_body_bytes) + " bytes";
      continue;
    }
    if (in.broadcast) {
      for (const auto& [id, a] : agents_)
        if (!a.is_proxy()) recipients.push_back(id);
    } else {
      for (std::string t : in.to) {
        if (!t.empty() && t[0] == '@') t.erase(0, 1);
        auto a = agents_.find(t);
        if (a == agents_.end() || a->second.is_proxy()) {
          refused = "no agent named @" + t + " here";
          break;
        }
        recipients.push_back(t);
      }
    }
    if (!refused.empty()) {
      (*results)[i].refused = refused;
      continue;
    }
    std::sort(recipients.begin(), recipients.end());
    recipients.erase(std::unique(recipients.begin(), recipients.end()), recipients.end());

    Pending p;
    p.index = i;
    p.peer = in.peer;
    if (in.reply_to) p.new_thread = new_thread_id();
    // The author shows up here as <our prefix for them>:<name>, a proxy, so that replying to
    // it routes back over the same peer without any configuration. Every message of a new
    // author carries the proxy (the insert is idempotent): the first one may be a redelivery.
    const std::string author_id = in.prefix + ":" + in.author;
    if (!agents_.count(author_id)) {
      Agent a;
      a.agent_id = author_id;
      a.kind = "proxy";
      a.peer_name = in.peer;
      a.remote_name = in.author;
      a.registered_at = a.last_seen_at = now_rfc3339();
      p.new_proxy = a;
    }
    StoredMessage& m = p.m;
    if (in.reply_to) {
      auto st = store_.reader().cached("SELECT 1 FROM messages WHERE message_id=?1");
      st.bind(1, *in.reply_to);
      if (st.step()) m.reply_to = in.reply_to;
    }
    m.message_id = new_message_id();
    m.author_id = author_id;
    m.body = in.body;
    m.format = in.format.empty() ? "markdown" : in.format;
    m.audience = in.broadcast ? "broadcast:everyone" : "";
    if (!in.broadcast)
      for (const auto& r : recipients)
        m.audience += (m.audience.empty() ? "agent:" : ",agent:") + r;
    m.created_at = now_rfc3339();
    m.origin_daemon = in.origin_daemon;
    m.origin_message_id = in.origin_id;
    m.recipients = std::move(recipients);
    work->push_back(std::move(p));
  }
  if (work->empty()) {
    done(std::move(*results));
    return;
  }

  store_.write(
      [work](sql::Db& db) {
        for (auto& p : *work) {
          // Each message in its own savepoint: one that fails is refused alone.
          db.cached("SAVEPOINT inbound").run();
          try {
            // Exactly once: a redelivery after a lost ack finds the message already here.
            auto dup = db.cached(
                "SELECT message_id FROM messages WHERE origin_daemon=?1 AND "
                "origin_message_id=?2");
            dup.bind(1, *p.m.origin_daemon).bind(2, *p.m.origin_message_id);
            if (dup.step()) {
              p.existing = dup.text(0);
            } else {
              if (p.new_proxy) {
                db.cached(
                      "INSERT OR IGNORE INTO agents(agent_id, kind, role, peer_name, "
                      "remote_name, registered_at, last_seen_at) "
                      "VALUES(?1,'proxy','',?2,?3,?4,?4)")
                    .bind(1, p.new_proxy->agent_id)
                    .bind(2, *p.new_proxy->peer_name)
                    .bind(3, *p.new_proxy->remote_name)
                    .bind(4, p.new_proxy->registered_at)
                    .run();
              }
              insert_message(db, p.m, p.new_thread);
              db.cached(
                    "INSERT OR REPLACE INTO message_map(peer, local_id, remote_id) "
                    "VALUES(?1,?2,?3)")
                  .bind(1, p.peer)
                  .bind(2, p.m.message_id)
                  .bind(3, *p.m.origin_message_id)
                  .run();
            }
            db.cached("RELEASE inbound").run();
          } catch (const std::exception& e) {
            p.error = e.what();
            db.cached("ROLLBACK TO inbound").run();
            db.cached("RELEASE inbound").run();
          }
        }
      },
      [this, work, results, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        std::vector<const StoredMessage*> stored;
        for (auto& p : *work) {
          auto& r = (*results)[p.index];
          if (err || !p.error.empty()) {
            r.refused = "could not store the message: " + (err ? describe_exception(err) : p.error);
          } else if (!p.existing.empty()) {
            r.local_id = p.existing;
          } else {
            r.local_id = p.m.message_id;
            if (p.new_proxy && !agents_.count(p.new_proxy->agent_id))
              agents_[p.new_proxy->agent_id] = *p.new_proxy;
            stored.push_back(&p.m);
          }
        }
        done(std::move(*results));
        for (const auto* m : stored) announce(*m);
      });
}

void Messaging::add_proxy(const std::string& peer, const std::string& prefix,
                          const std::string& remote_name, std::function<void(std::string)> done) {
  if (auto err = check_agent_name(remote_name); !err.empty()) {
    done(err);
    return;
  }
  Agent p;
  p.agent_id = prefix + ":" + remote_name;
  p.kind = "proxy";
  p.peer_name = peer;
  p.remote_name = remote_name;
  p.registered_at = p.last_seen_at = now_rfc3339();
  if (auto it = agents_.find(p.agent_id); it != agents_.end()) {
    done("proxy @" + p.agent_id + " is already registered");
    return;
  }
  store_.write(
      [p](sql::Db& db) {
        db.cached(
              "INSERT INTO agents(agent_id, kind, role, peer_name, remote_name, "
              "registered_at, last_seen_at) VALUES(?1,'proxy','',?2,?3,?4,?4)")
            .bind(1, p.agent_id)
            .bind(2, *p.peer_name)
            .bind(3, *p.remote_name)
            .bind(4, p.registered_at)
            .run();
      },
      [this, p, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          done("could not register proxy: " + describe_exception(err));
          return;
        }
        agents_[p.agent_id] = p;
        done("");
      });
}

void Messaging::remove_proxies(const std::string& peer, const std::string& proxy_id,
                               std::function<void(std::string)> done) {
  std::vector<std::string> ids;
  for (const auto& [id, a] : agents_)
    if (a.is_proxy() && a.peer_name == peer && (proxy_id.empty() || id == proxy_id))
      ids.push_back(id);
  if (!proxy_id.empty() && ids.empty()) {
    done("no proxy @" + proxy_id + " is registered");
    return;
  }
  store_.write(
      [ids](sql::Db& db) {
        for (const auto& id : ids)
          db.cached("DELETE FROM agents WHERE agent_id=?1").bind(1, id).run();
      },
      [this, ids, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          done("could not unregister proxies: " + describe_exception(err));
          return;
        }
        for (const auto& id : ids) agents_.erase(id);
        done("");
      });
}

void Messaging::rename_proxies(const std::string& peer, const std::string& old_prefix,
                               const std::string& new_prefix,
                               std::function<void(std::string)> done) {
  std::vector<std::pair<std::string, std::string>> renames;
  for (const auto& [id, a] : agents_) {
    if (!a.is_proxy() || a.peer_name != peer) continue;
    if (id.rfind(old_prefix + ":", 0) != 0) continue;
    std::string to = new_prefix + ":" + id.substr(old_prefix.size() + 1);
    if (agents_.count(to)) {
      done("cannot rename: @" + to + " already exists");
      return;
    }
    renames.emplace_back(id, to);
  }
  store_.write(
      [renames](sql::Db& db) {
        for (const auto& [from, to] : renames)
          db.cached("UPDATE agents SET agent_id=?2 WHERE agent_id=?1")
              .bind(1, from)
              .bind(2, to)
              .run();
      },
      [this, renames, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          done("could not rename proxies: " + describe_exception(err));
          return;
        }
        for (const auto& [from, to] : renames) {
          auto node = agents_.extract(from);
          node.key() = to;
          node.mapped().agent_id = to;
          agents_.insert(std::move(node));
        }
        done("");
      });
}

}  // namespace thrum::core
