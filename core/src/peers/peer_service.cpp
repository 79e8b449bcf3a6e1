#include "peers/peer_service.hpp"
#include "error_text.hpp"

#include <spdlog/spdlog.h>

#include "peers/context.hpp"
#include "peers/peer.hpp"
#include "peers/protocol.hpp"
#include "peers/who_has.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/messaging.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;

PeerService::PeerService(Context& ctx, FindPeer find, WhoHas& who_has)
    : ctx_(ctx), find_(std::move(find)), who_has_(who_has) {}

void PeerService::serve(const std::string& name, const std::string& method, const json& p,
                        rpc::Respond respond) {
  auto* rec = ctx_.registry.find(name);
  auto peer = find_(name);
  if (!rec || !peer) {
    respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
    return;
  }
  if (method == "peer.address_changed") return address_changed(name, p, std::move(respond));
  if (method == "peer.hello" || method == "peer.repair")
    return hello(name, p, std::move(respond), false);
  if (method == "peer.deliver") return deliver(*rec, p, std::move(respond));
  if (method == "peer.receipt") return receipts(*rec, p, std::move(respond));
  if (method == "peer.presence") {
    auto agents = decode_presence(p);
    if (!agents) {
      respond(rpc::Error{rpc::kInvalidParams, agents.error(), nullptr});
      return;
    }
    peer->set_presence(std::move(agents).value());
    respond(json{{"ok", true}});
    return;
  }
  if (method == "peer.who_has") {
    auto file = decode_who_has(p);
    if (!file) {
      respond(rpc::Error{rpc::kInvalidParams, file.error(), nullptr});
      return;
    }
    who_has_.local(file.value(), [respond](std::vector<std::string> agents) {
      respond(json{{"agents", agents}});
    });
    return;
  }
  if (method == "peer.removed") {
    respond(json{{"ok", true}});
    peer->removed_by_peer();
    return;
  }
  respond(rpc::Error{rpc::kMethodNotFound, "method '" + method + "' is not registered", nullptr});
}

void PeerService::hello(const std::string& name, const json& p, rpc::Respond respond,
                        bool control) {
  auto id = decode_identity(p, "params");
  if (!id) {
    respond(rpc::Error{rpc::kInvalidParams, id.error(), nullptr});
    return;
  }
  auto peer = find_(name);
  auto* rec = ctx_.registry.find(name);
  if (!peer || !rec) {
    respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
    return;
  }
  peer->heard_identity(id.value());
  if (!control) ctx_.touch(*rec);
  respond(ctx_.identity(rec->transport));
  if (control) {
    // They could reach us, so our own link to them is worth trying now.
    if (peer->wanted() && !peer->linked() && !peer->dialing()) peer->connect_now();
    return;
  }
  if (peer->linked()) {
    peer->send_presence();
    peer->kick();
  }
}

void PeerService::deliver(const PeerRecord& rec, const json& p, rpc::Respond respond) {
  auto req = decode_deliver(p);
  if (!req) {
    spdlog::warn("peer delivery refused peer={} reason=\"{}\"", rec.name, req.error());
    respond(rpc::Error{rpc::kInvalidParams, req.error(), nullptr});
    return;
  }
  const bool batch = req.value().batched;
  auto& items = req.value().items;
  std::vector<InboundMessage> ins;
  std::vector<size_t> slot;  // ins[k] answers items[slot[k]]
  auto results = std::make_shared<json>(json::array());
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i]) {
      spdlog::warn("peer delivery refused peer={} reason=\"{}\"", rec.name, items[i].error());
      results->push_back(json{{"refused", "malformed delivery: " + items[i].error()}});
      continue;
    }
    DeliverItem& d = items[i].value();
    InboundMessage in;
    in.peer = rec.name;
    in.prefix = rec.proxy_prefix;
    in.origin_daemon = rec.daemon_id;  // identity from the link, not the frame
    in.origin_id = std::move(d.message_id);
    in.author = std::move(d.author);
    in.to = std::move(d.to);
    in.broadcast = d.broadcast;
    in.body = std::move(d.body);
    in.format = std::move(d.format);
    in.created_at = std::move(d.created_at);
    in.reply_to = std::move(d.reply_to);
    results->push_back(nullptr);
    slot.push_back(i);
    ins.push_back(std::move(in));
  }
  const std::string name = rec.name;
  Context* ctx = &ctx_;
  ctx_.messaging.apply_inbound(
      ins, [ctx, name, respond, batch, results, slot](std::vector<InboundResult> rs) {
        int64_t stored = 0;
        for (size_t k = 0; k < rs.size(); ++k) {
          if (!rs[k].refused.empty()) {
            spdlog::warn("peer delivery refused peer={} reason=\"{}\"", name, rs[k].refused);
            (*results)[slot[k]] = json{{"refused", rs[k].refused}};
          } else {
            (*results)[slot[k]] = json{{"message_id", rs[k].local_id}};
            ++stored;
          }
        }
        if (auto* r = ctx->registry.find(name); r && stored > 0) ctx->touch(*r, stored);
        if (batch)
          respond(json{{"results", std::move(*results)}});
        else
          respond(std::move((*results)[0]));
      });
}

void PeerService::receipts(const PeerRecord& rec, const json& p, rpc::Respond respond) {
  auto req = decode_receipt(p);
  if (!req) {
    respond(rpc::Error{rpc::kInvalidParams, req.error(), nullptr});
    return;
  }
  std::vector<store::ReceiptFromPeer> receipts;
  auto results = std::make_shared<json>(json::array());
  const std::string now = now_rfc3339();
  for (auto& r : req.value().items) {
    if (!r) {
      results->push_back(json{{"refused", r.error()}});
      continue;
    }
    results->push_back(json{{"ok", true}});
    // Only this peer's own proxies' delivery rows: "<its prefix>:<reader>".
    receipts.push_back(store::ReceiptFromPeer{r.value().message_id,
                                              rec.proxy_prefix + ":" + r.value().reader,
                                              r.value().read_at.empty() ? now : r.value().read_at});
  }
  const bool batch = req.value().batched;
  ctx_.outbox.apply_receipts(std::move(receipts),
                             [respond, batch, results](std::exception_ptr err) {
                               if (err) {
                                 respond(rpc::Error{rpc::kHandlerError, describe(err), nullptr});
                                 return;
                               }
                               if (!batch) {
                                 respond(std::move((*results)[0]));
                                 return;
                               }
                               respond(json{{"results", std::move(*results)}});
                             });
}

void PeerService::address_changed(const std::string& name, const json& p, rpc::Respond respond) {
  auto* rec = ctx_.registry.find(name);
  auto peer = find_(name);
  if (!rec || !peer) {
    respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
    return;
  }
  auto change = decode_address_change(p);
  if (!change) {
    respond(rpc::Error{rpc::kInvalidParams, change.error(), nullptr});
    return;
  }
  const sdk::Endpoint next = change.value();
  const sdk::Endpoint old = parse_endpoint(rec->address).value_or(sdk::Endpoint{});
  if (old == next) {
    respond(json{{"ok", true}, {"address", rec->address}});
    return;
  }
  std::string why;
  auto t = ctx_.transport(rec->transport, why);
  sdk::Status verdict =
      t ? t->validate_address_change(old, next)
        : sdk::Status::error(sdk::Errc::kUnavailable, "transport not available: " + why);
  if (!verdict) {
    peer->set_address_rejected(verdict.message);
    spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", name,
                 rec->address, endpoint_text(next), verdict.message);
    respond(rpc::Error{rpc::kHandlerError, "address change rejected: " + verdict.message, nullptr});
    return;
  }
  spdlog::info("peer address changed peer={} from={} to={}", name, rec->address,
               endpoint_text(next));
  rec->address = endpoint_text(next);
  peer->set_address_rejected("");
  ctx_.registry.save();
  respond(json{{"ok", true}, {"address", rec->address}});
  // Stop waiting out a backoff towards the old address.
  if (rec->role == "dialer" && peer->wanted() && !peer->linked()) peer->connect_now();
}

void PeerService::serve_control(const std::string& name, const std::shared_ptr<Link>& link) {
  link->set_handlers(
      [this, name](const std::string& method, const json& params, rpc::Respond respond) {
        if (!ctx_.registry.find(name) || !find_(name)) {
          respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
          return;
        }
        if (method == "peer.address_changed") return address_changed(name, params, respond);
        if (method == "peer.repair" || method == "peer.hello")
          return hello(name, params, respond, true);
        respond(rpc::Error{rpc::kMethodNotFound,
                           "method '" + method + "' is not served on a control link", nullptr});
      },
      [](const std::string&) {});
}

void PeerService::roamed(PeerRecord& rec, const std::string& remote) {
  auto from = parse_endpoint(remote);
  auto stored = parse_endpoint(rec.address);
  if (rec.role != "listener" || !from || !stored || from->ip == stored->ip) return;
  auto t = ctx_.transport(rec.transport);
  if (!t) return;
  sdk::Endpoint moved{from->ip, stored->port};
  auto peer = find_(rec.name);
  auto ok = t->validate_address_change(*stored, moved);
  if (!ok) {
    spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", rec.name,
                 rec.address, endpoint_text(moved), ok.message);
    if (peer) peer->set_address_rejected(ok.message);
    return;
  }
  spdlog::info("peer roamed peer={} from={} to={}", rec.name, rec.address, endpoint_text(moved));
  rec.address = endpoint_text(moved);
  if (peer) peer->set_address_rejected("");
  ctx_.registry.save();
}

}  // namespace thrum::core::peers
