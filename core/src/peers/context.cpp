#include "peers/context.hpp"

#include "peers/protocol.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core::peers {

Context::Context(PeerManager::Options o, boost::asio::io_context& io, EventLoop& l, Store& s,
                 Messaging& m, PeerManager::TransportLookup lookup)
    : opts(std::move(o)),
      ioc(io),
      loop(l),
      store(s),
      messaging(m),
      registry(opts.paths.peers, opts.daemon_id),
      outbox(s),
      rng(std::random_device{}()),
      lookup_(std::move(lookup)) {}

Transport Context::transport(const std::string& id, std::string& why) const {
  Transport t = lookup_ ? lookup_(id, &why) : Transport{};
  if (!t && why.empty()) why = "no transport plugin \"" + id + "\" is loaded";
  return t;
}

std::string Context::self_name(const std::string& transport_id) const {
  if (opts.peers_name) return *opts.peers_name;
  return transport(transport_id).caps.loopback_only ? opts.repo_name : opts.hostname;
}

json Context::identity(const std::string& transport_id) const {
  return to_json(Identity{opts.daemon_id, self_name(transport_id), opts.repo_name, opts.hostname,
                          opts.paths.root.string(), opts.git_origin_url,
                          own_address(transport_id)});
}

std::string Context::own_address(const std::string& transport_id) const {
  auto t = transport(transport_id);
  if (t && !t.caps.provides_listener) {
    auto adv = t->advertise(sdk::AdvertiseSpec{"", ws_port});
    return adv ? endpoint_text(adv.value()) : "";
  }
  return stored_address(transport_id);
}

std::string Context::stored_address(const std::string& transport_id) const {
  const json& l = const_cast<PeerRegistry&>(registry).local();
  auto a = l.find("addresses");
  if (a == l.end() || !a->is_object()) return "";
  auto it = a->find(transport_id);
  return it != a->end() && it->is_string() ? it->get<std::string>() : "";
}

void Context::touch(PeerRecord& rec, int64_t messages) {
  rec.last_sync = now_rfc3339();
  rec.last_seq += messages;
  registry.mark_dirty();
}

}  // namespace thrum::core::peers
