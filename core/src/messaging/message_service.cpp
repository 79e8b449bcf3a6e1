#include "messaging/message_service.hpp"
#include "error_text.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "messaging/agent_directory.hpp"
#include "messaging/recipients.hpp"
#include "messaging/waiters.hpp"
#include "peers/protocol.hpp"
#include "store/messages.hpp"
#include "store/outbox.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::messaging {

using json = nlohmann::json;
using rpc::fail;
using rpc::fail_params;

namespace {
std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}
}  // namespace

MessageService::MessageService(Store& store, AgentDirectory& agents, Waiters& waiters,
                               Router* const& router, int64_t max_body_bytes)
    : store_(store),
      agents_(agents),
      waiters_(waiters),
      router_(router),
      max_body_bytes_(max_body_bytes) {}

MessageService::~MessageService() {
  *alive_ = false;
}

void MessageService::announce(const StoredMessage& m) {
  for (auto& obs : observers_) obs(m);
  waiters_.delivered(m);
}

void MessageService::send(Send s, rpc::Respond respond) {
  const Agent& caller = *s.caller;
  if (s.content.empty()) fail_params("content is required (the message is empty)");
  if (max_body_bytes_ >= 0 && static_cast<int64_t>(s.content.size()) > max_body_bytes_)
    throw rpc::Failure(rpc::kInvalidParams,
                       "message body too large: " + std::to_string(s.content.size()) +
                           " bytes exceeds daemon.max_message_body_bytes (" +
                           std::to_string(max_body_bytes_) + " bytes)");
  if (s.format != "markdown" && s.format != "plain" && s.format != "json")
    fail_params("invalid format: " + s.format + " (must be 'markdown', 'plain', or 'json')");
  std::optional<StoredMessage> parent;
  if (s.reply_to) {
    parent = store::load_message(store_.reader(), *s.reply_to);
    if (!parent) fail("reply_to message not found: " + *s.reply_to);
  }
  if (s.to.empty() && !parent)
    fail_params("missing recipient: pass to (\"@name\", \"@prefix:name\" or \"@everyone\")");
  // Nothing is stored unless every recipient resolves.
  Recipients r = resolve_recipients(agents_, caller, s.to, parent, store_.reader(), router_);

  auto m = std::make_shared<StoredMessage>();
  m->message_id = new_message_id();
  m->reply_to = s.reply_to;
  m->author_id = caller.agent_id;
  m->body = std::move(s.content);
  m->format = s.format;
  m->audience = r.broadcast ? "broadcast:everyone" : join(r.audience, ",");
  m->created_at = now_rfc3339();
  m->recipients = r.locals;
  auto outbox = std::make_shared<std::vector<OutboxItem>>();
  if (router_ && (!r.proxies.empty() || r.broadcast))
    *outbox = router_->route(*m, r.proxies, r.broadcast);
  const std::string new_thread = s.reply_to ? new_thread_id() : std::string();
  // Serialised once, here rather than in the job (the store's writer thread is the sender's
  // busiest), in the form the outbox keeps (store/outbox.hpp).
  std::vector<std::string> payloads;
  payloads.reserve(outbox->size());
  for (const auto& item : *outbox) {
    const std::string& wire = item.wire;
    // Escaping can make a body that passed the limit several times larger on the wire (a
    // control character is six bytes there): a row that could never fit a link frame would
    // block that peer's queue, so it is refused now, before anything is stored.
    if (wire.size() > peers::kMaxRowBytes)
      throw rpc::Failure(rpc::kInvalidParams,
                         "message too large for peer \"" + item.peer + "\": it encodes to " +
                             std::to_string(wire.size()) +
                             " bytes on the link (control characters are escaped), over the "
                             "limit of " +
                             std::to_string(peers::kMaxRowBytes) + " bytes; shorten it");
    payloads.push_back(store::Outbox::encode(wire, item.queued_recipients));
  }
  store_.write(
      [m, new_thread, outbox, payloads = std::move(payloads)](sql::Db& db) {
        store::insert_message(db, *m, new_thread);
        for (size_t i = 0; i < outbox->size(); ++i) {
          const auto& item = (*outbox)[i];
          for (const auto& rcp : item.queued_recipients)
            store::insert_queued_delivery(db, rcp, m->seq, m->message_id);
          store::Outbox::insert(db, item.peer, item.kind, m->message_id, payloads[i],
                                m->created_at);
        }
      },
      [this, m, outbox, respond, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          spdlog::error("message store failed message={} error=\"{}\"", m->message_id,
                        describe(err));
          respond(rpc::Error{rpc::kHandlerError,
                             "message not sent: could not store it (" + describe(err) + ")",
                             nullptr});
          return;
        }
        json all = m->recipients;
        json queued = json::array();
        for (const auto& item : *outbox)
          for (const auto& rcp : item.queued_recipients) {
            all.push_back(rcp);
            queued.push_back(rcp);
          }
        json result = json::object();  // member by member: no copies of the arrays
        result["message_id"] = m->message_id;
        result["created_at"] = m->created_at;
        result["resolved_to"] = all.size();
        result["recipients"] = std::move(all);
        result["queued"] = std::move(queued);
        result["thread_id"] = m->thread_id ? json(*m->thread_id) : json(nullptr);
        respond(result);
        announce(*m);
        if (router_)
          for (const auto& item : *outbox) router_->kick(item.peer);
      });
}

void MessageService::apply_inbound(const std::vector<InboundMessage>& batch,
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
    if (max_body_bytes_ >= 0 && static_cast<int64_t>(in.body.size()) > max_body_bytes_) {
      (*results)[i].refused = "message body too large: " + std::to_string(in.body.size()) +
                              " bytes exceeds this daemon's limit of " +
                              std::to_string(max_body_bytes_) + " bytes";
      continue;
    }
    if (in.broadcast) {
      for (const auto& [id, a] : agents_.agents())
        if (!a.is_proxy()) recipients.push_back(id);
    } else {
      for (std::string t : in.to) {
        if (!t.empty() && t[0] == '@') t.erase(0, 1);
        const Agent* a = agents_.find(t);
        if (!a || a->is_proxy()) {
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
    p.new_proxy = agents_.author_proxy(in.peer, in.prefix, in.author);
    StoredMessage& m = p.m;
    if (in.reply_to && store::message_exists(store_.reader(), *in.reply_to))
      m.reply_to = in.reply_to;
    m.message_id = new_message_id();
    m.author_id = in.prefix + ":" + in.author;
    m.body = in.body;
    m.format = in.format.empty() ? "markdown" : in.format;
    m.audience = in.broadcast ? "broadcast:everyone" : "";
    if (!in.broadcast)
      for (const auto& r : recipients)
        m.audience += (m.audience.empty() ? "agent:" : ",agent:") + r;
    m.created_at = now_rfc3339();
    m.origin_daemon = in.origin_daemon;
    m.origin_message_id = in.origin_id;
    m.origin_peer = in.peer;
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
            if (auto dup = store::find_by_origin(db, *p.m.origin_daemon, *p.m.origin_message_id)) {
              p.existing = *dup;
            } else {
              if (p.new_proxy) store::insert_proxy(db, *p.new_proxy, true);
              store::insert_message(db, p.m, p.new_thread);
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
            r.refused = "could not store the message: " + (err ? describe(err) : p.error);
          } else if (!p.existing.empty()) {
            r.local_id = p.existing;
          } else {
            r.local_id = p.m.message_id;
            if (p.new_proxy) agents_.adopt(*p.new_proxy);
            stored.push_back(&p.m);
          }
        }
        // The recipients first: their notification is what the message's latency is, while
        // the answer only lets the sender settle its outbox.
        for (const auto* m : stored) announce(*m);
        done(std::move(*results));
      });
}

}  // namespace thrum::core::messaging
