#include "peers/router.hpp"

#include <map>
#include <set>

#include "peers/context.hpp"
#include "peers/peer.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core::peers {

PeerRouter::PeerRouter(Context& ctx, FindPeer find) : ctx_(ctx), find_(std::move(find)) {}

namespace {

/// One peer's share of a message while it is routed.
struct Draft {
  OutboxItem item;
  std::vector<std::string> to;  ///< the recipients' names over there
  bool broadcast = false;
  std::optional<std::string> reply_to;  ///< the peer's id for the message this answers
};

/// `,"key":"value"` (every member but the first).
void member(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
}

/// The peer.deliver params, written field by field in the order nlohmann would sort them, so
/// the bytes are those of the document they replace (without building it: that copied the
/// body twice).
std::string wire(const StoredMessage& m, const std::string& origin_daemon, const Draft& d) {
  std::string out;
  out.reserve(m.body.size() + 256);
  out += "{\"author\":";
  append_json_string(out, m.author_id);
  member(out, "body", m.body);
  out += d.broadcast ? ",\"broadcast\":true" : ",\"broadcast\":false";
  member(out, "created_at", m.created_at);
  member(out, "format", m.format);
  member(out, "message_id", m.message_id);
  member(out, "origin_daemon", origin_daemon);
  if (d.reply_to) member(out, "reply_to", *d.reply_to);
  out += ",\"to\":[";
  for (size_t i = 0; i < d.to.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, d.to[i]);
  }
  out += "]}";
  return out;
}

}  // namespace

std::vector<OutboxItem> PeerRouter::route(const StoredMessage& m,
                                          const std::vector<const Agent*>& proxies,
                                          bool broadcast) {
  std::map<std::string, Draft> drafts;
  auto draft_for = [&](const PeerRecord& rec) -> Draft& {
    auto& d = drafts[rec.name];
    if (d.item.peer.empty()) {
      d.item.peer = rec.name;
      d.item.kind = "deliver";
      d.item.message_id = m.message_id;
      if (m.reply_to) d.reply_to = ctx_.outbox.remote_id(rec.name, *m.reply_to);
    }
    return d;
  };
  for (const Agent* a : proxies) {
    auto* rec = a->peer_name ? ctx_.registry.find(*a->peer_name) : nullptr;
    if (!rec) rpc::fail("@" + a->agent_id + " cannot be reached: its peer was removed");
    auto& d = draft_for(*rec);
    d.to.push_back(a->remote_name.value_or(""));
    d.item.queued_recipients.push_back(a->agent_id);
  }
  if (broadcast) {
    for (const auto& rec : ctx_.registry.peers()) {
      if (!rec.removed_by_peer.empty()) continue;
      auto& d = draft_for(rec);
      d.broadcast = true;
      d.item.queued_recipients.push_back(rec.proxy_prefix + ":*");
    }
  }
  std::vector<OutboxItem> out;
  out.reserve(drafts.size());
  for (auto& [name, d] : drafts) {
    d.item.wire = wire(m, ctx_.opts.daemon_id, d);
    out.push_back(std::move(d.item));
  }
  return out;
}

std::optional<std::string> PeerRouter::peer_for_prefix(const std::string& prefix) const {
  for (const auto& r : ctx_.registry.peers())
    if (r.proxy_prefix == prefix) return r.name;
  return std::nullopt;
}

std::pair<std::string, std::string> PeerRouter::proxy_presence(const Agent& proxy) const {
  if (!proxy.peer_name) return {"unknown", ""};
  auto peer = find_(*proxy.peer_name);
  if (!peer) return {"offline", ""};
  return peer->presence_of(proxy.remote_name.value_or(""));
}

void PeerRouter::messages_read(const std::string& reader, const std::vector<std::string>& ids) {
  auto targets = ctx_.outbox.receipt_targets(ids);
  if (targets.empty()) return;
  const std::string now = now_rfc3339();
  std::vector<store::ReceiptToSend> receipts;
  std::set<std::string> peers;
  for (auto& [peer, remote] : targets) {
    receipts.push_back(store::ReceiptToSend{peer, remote, reader, now});
    peers.insert(peer);
  }
  auto find = find_;
  ctx_.outbox.queue_receipts(std::move(receipts), [find, peers](std::exception_ptr err) {
    if (err) return;
    for (const auto& p : peers)
      if (auto peer = find(p)) peer->kick();
  });
}

}  // namespace thrum::core::peers
