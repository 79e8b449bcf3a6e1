#include "peers/router.hpp"

#include <map>
#include <set>

#include "peers/context.hpp"
#include "peers/peer.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;

PeerRouter::PeerRouter(Context& ctx, FindPeer find) : ctx_(ctx), find_(std::move(find)) {}

std::vector<OutboxItem> PeerRouter::route(const StoredMessage& m,
                                          const std::vector<const Agent*>& proxies,
                                          bool broadcast) {
  std::map<std::string, OutboxItem> items;
  auto item_for = [&](const PeerRecord& rec) -> OutboxItem& {
    auto& it = items[rec.name];
    if (it.peer.empty()) {
      it.peer = rec.name;
      it.kind = "deliver";
      it.message_id = m.message_id;
      // Member by member: an initializer list builds each value and then copies it (the
      // body included) into the object.
      json& p = it.payload;
      p = json::object();
      p["message_id"] = m.message_id;
      p["origin_daemon"] = ctx_.opts.daemon_id;
      p["author"] = m.author_id;
      p["to"] = json::array();
      p["broadcast"] = false;
      p["body"] = m.body;
      p["format"] = m.format;
      p["created_at"] = m.created_at;
      if (m.reply_to)
        if (auto remote = ctx_.outbox.remote_id(rec.name, *m.reply_to))
          it.payload["reply_to"] = *remote;
    }
    return it;
  };
  for (const Agent* a : proxies) {
    auto* rec = a->peer_name ? ctx_.registry.find(*a->peer_name) : nullptr;
    if (!rec) rpc::fail("@" + a->agent_id + " cannot be reached: its peer was removed");
    auto& it = item_for(*rec);
    it.payload["to"].push_back(a->remote_name.value_or(""));
    it.queued_recipients.push_back(a->agent_id);
  }
  if (broadcast) {
    for (const auto& rec : ctx_.registry.peers()) {
      if (!rec.removed_by_peer.empty()) continue;
      auto& it = item_for(rec);
      it.payload["broadcast"] = true;
      it.queued_recipients.push_back(rec.proxy_prefix + ":*");
    }
  }
  std::vector<OutboxItem> out;
  for (auto& [name, it] : items) out.push_back(std::move(it));
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
