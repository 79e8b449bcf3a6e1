// The peer layer, composed (docs/design-decisions.md "Layout"): PeerManager owns one of each
// unit in core/src/peers/ and wires them together; the units do the work.
#include "thrum/core/peer_manager.hpp"

#include <set>

#include <spdlog/spdlog.h>

#include "peers/admin_rpc.hpp"
#include "peers/boot_plan.hpp"
#include "peers/connector.hpp"
#include "peers/context.hpp"
#include "peers/credentials.hpp"
#include "peers/directory.hpp"
#include "peers/link_acceptor.hpp"
#include "peers/listener_set.hpp"
#include "peers/pairing_session.hpp"
#include "peers/peer.hpp"
#include "peers/peer_link.hpp"
#include "peers/peer_service.hpp"
#include "peers/router.hpp"
#include "peers/who_has.hpp"
#include "thrum/core/event_loop.hpp"

namespace thrum::core {

using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

struct PeerManager::Impl {
  Impl(Options o, boost::asio::io_context& ioc, EventLoop& loop, Store& store, Messaging& messaging,
       TransportLookup lookup)
      : ctx(std::move(o), ioc, loop, store, messaging, std::move(lookup)),
        credentials(ctx.opts.paths.env_file, ctx.opts.paths.var),
        connector(ctx),
        who_has(ctx),
        peers([this, alive = alive](const std::string& name) {
          return std::make_shared<peers::Peer>(
              name, ctx, connector,
              [this, alive](const std::string& peer, const std::string& method, const json& p,
                            rpc::Respond respond) {
                if (!*alive) return;
                service.serve(peer, method, p, std::move(respond));
              });
        }),
        service(ctx, finder(), who_has),
        router(ctx, finder()),
        pairing(
            ctx, [this](const std::string& t) { return connector.own_fingerprint(t); },
            [this](const PeerRecord& r) { return admin.store_listener_pairing(r); }),
        acceptor(ctx, connector, pairing,
                 [this, alive = alive](const std::string& name, std::shared_ptr<peers::Link> link,
                                       const std::string& remote) {
                   if (*alive) linked(name, std::move(link), remote);
                 }),
        listeners(
            ctx, connector, credentials,
            [this, alive = alive](std::unique_ptr<PeerUpgrade> up) {
              if (*alive) acceptor.on_upgrade(std::move(up));
            },
            [this, alive = alive](const std::string& transport, const sdk::Endpoint& now) {
              if (*alive) moved(transport, now);
            }),
        admin(ctx, peers, pairing, listeners, connector, credentials, who_has) {}

  ~Impl() { *alive = false; }

  std::shared_ptr<bool> alive = std::make_shared<bool>(true);  // first: the lambdas copy it
  peers::Context ctx;
  peers::Credentials credentials;
  peers::Connector connector;
  peers::WhoHas who_has;
  peers::Directory peers;
  peers::PeerService service;
  peers::PeerRouter router;
  peers::PairingSessions pairing;
  peers::LinkAcceptor acceptor;
  peers::ListenerSet listeners;
  peers::AdminRpc admin;
  std::shared_ptr<EventLoop::Timer> tick_timer, boot_timer;
  Steady::time_point last_flush, last_presence, last_address_check;

  std::function<std::shared_ptr<peers::Peer>(const std::string&)> finder() {
    return [this, alive = alive](const std::string& name) -> std::shared_ptr<peers::Peer> {
      return *alive ? peers.find(name) : nullptr;
    };
  }

  /// A link the other side opened and proved itself on.
  void linked(const std::string& name, std::shared_ptr<peers::Link> link,
              const std::string& remote) {
    auto* rec = ctx.registry.find(name);
    auto peer = peers.find(name);
    if (!rec || !peer) {
      link->close("peer removed");
      return;
    }
    if (!ctx.binds_endpoints(rec->transport)) service.roamed(*rec, remote);
    if (rec->role == "dialer") {  // we dial them: this is a one-off call
      service.serve_control(name, link);
      return;
    }
    peer->attach(std::move(link));
  }

  /// Our address for `transport` moved: every peer of it is told (SPEC §7.3).
  void moved(const std::string& transport, const sdk::Endpoint& now) {
    for (const auto& rec : ctx.registry.peers())
      if (rec.transport == transport && rec.removed_by_peer.empty())
        peers.get(rec.name)->announce(now);
  }

  void tick() {
    if (ctx.stopping) return;
    tick_timer = ctx.loop.run_after(ctx.tc().port_file_poll, [this, alive = alive] {
      if (!*alive || ctx.stopping) return;
      on_tick();
      tick();
    });
  }

  void on_tick() {
    for (const auto& [name, peer] : peers.all()) peer->poll_resolve();
    const auto now = ctx.loop.now();
    if (now - last_address_check >= std::chrono::seconds(3)) {
      last_address_check = now;
      listeners.check();
    }
    if (now - last_flush >= ctx.tc().registry_flush) {
      ctx.registry.flush_if_dirty();
      last_flush = now;
    }
    if (now - last_presence >= std::chrono::seconds(10)) {
      last_presence = now;
      for (const auto& [name, peer] : peers.all()) peer->send_presence();
    }
  }

  /// 2 s after start every peer without a link is reconciled, 4 at a time (SPEC §7.3).
  void boot_reconcile() {
    if (!ctx.opts.auto_connect) {
      // Nothing dials by itself: repair connects on demand. Said at the moment the reconcile
      // would have run, so an operator (or a test) sees that the daemon chose not to dial.
      boot_timer = ctx.loop.run_after(ctx.tc().boot_reconcile_delay, [this, alive = alive] {
        if (!*alive || ctx.stopping) return;
        std::size_t waiting = 0;
        for (const auto& rec : ctx.registry.peers())
          if (auto p = peers.find(rec.name); p && !p->linked()) ++waiting;
        spdlog::info(
            "peer boot reconcile skipped: peers.auto_connect is false; {} peer(s) without a "
            "link wait for 'thrum peer join --type repair <name>'",
            waiting);
      });
      return;
    }
    boot_timer = ctx.loop.run_after(ctx.tc().boot_reconcile_delay, [this, alive = alive] {
      if (!*alive || ctx.stopping) return;
      std::vector<peers::BootCandidate> candidates;
      for (const auto& rec : ctx.registry.peers()) {
        auto peer = peers.find(rec.name);
        if (!peer) continue;
        candidates.push_back({rec.name, peer->linked(), peer->dialing(),
                              !rec.removed_by_peer.empty(),
                              rec.reconcile_status == "drift_reconcile_failed"});
      }
      for (const auto& start : peers::plan_boot_reconcile(candidates, ctx.tc())) {
        std::weak_ptr<peers::Peer> weak = peers.find(start.name);
        ctx.loop.run_after(start.after, [this, alive, weak] {
          if (!*alive || ctx.stopping) return;
          if (auto p = weak.lock()) p->boot_reconcile();
        });
      }
    });
  }

  /// Peers of `id` get its listener (or the loopback address) and dial again.
  void transport_enabled(const std::string& id, const Transport& t) {
    if (t.caps.provides_listener) {
      listeners.start_one(id, [this](const std::string& transport, const std::string& error) {
        for (const auto& rec : ctx.registry.peers())
          if (rec.transport == transport)
            if (auto p = peers.find(rec.name)) p->set_last_error("no listener: " + error);
      });
    } else if (auto adv = t->advertise(sdk::AdvertiseSpec{"", ctx.ws_port})) {
      listeners.advertised(id, adv.value());
    }
    for (const auto& rec : ctx.registry.peers()) {
      if (rec.transport != id) continue;
      auto peer = peers.get(rec.name);
      if (ctx.opts.auto_connect && rec.role == "dialer") peer->connect();
    }
  }

  void transports_changed(const std::vector<std::string>& ids) {
    if (ctx.stopping) return;
    for (const auto& id : ids) {
      if (auto t = ctx.transport(id)) {
        spdlog::info("transport enabled id={}", id);
        transport_enabled(id, t);
        continue;
      }
      spdlog::info("transport disabled id={}: closing its links and listener", id);
      listeners.stop(id);
      // A fresh Peer object replaces each (made again on first use): links, dials and timers
      // go, the record and its outbox stay for when the transport comes back.
      for (const auto& rec : ctx.registry.peers())
        if (rec.transport == id) peers.erase(rec.name, "transport " + id + " disabled by policy");
    }
  }

  void start(unsigned short ws_port) {
    ctx.ws_port = ws_port;
    last_flush = last_presence = last_address_check = ctx.loop.now();
    // Proxies named in peers.json exist as agents (e.g. after a database was moved aside).
    for (const auto& rec : ctx.registry.peers()) {
      peers.get(rec.name);
      for (const auto& a : rec.remote_agents)
        if (!ctx.messaging.agents().count(rec.proxy_prefix + ":" + a))
          ctx.messaging.add_proxy(rec.name, rec.proxy_prefix, a, [](std::string) {});
    }
    listeners.start([this](const std::string& transport, const std::string& error) {
      for (const auto& rec : ctx.registry.peers())
        if (rec.transport == transport)
          if (auto p = peers.find(rec.name)) p->set_last_error("no listener: " + error);
    });
    // Transports served on the loopback server: our address there is this start's ws port.
    std::set<std::string> used;
    for (const auto& rec : ctx.registry.peers()) used.insert(rec.transport);
    for (const auto& id : used) {
      auto t = ctx.transport(id);
      if (!t || t.caps.provides_listener) continue;
      if (auto adv = t->advertise(sdk::AdvertiseSpec{"", ws_port}))
        listeners.advertised(id, adv.value());
    }
    if (ctx.opts.auto_connect)
      for (const auto& rec : ctx.registry.peers())
        if (rec.role == "dialer") peers.get(rec.name)->connect();
    boot_reconcile();
    tick();
  }

  void shutdown() {
    if (ctx.stopping) return;
    ctx.stopping = true;
    if (tick_timer) tick_timer->cancel();
    if (boot_timer) boot_timer->cancel();
    peers.shutdown_all("daemon shutting down");
    listeners.shutdown();
    ctx.registry.flush_if_dirty();
    connector.shutdown();
    who_has.shutdown();
  }
};

// -------------------------------------------------------------------------------------------------

PeerManager::PeerManager(Options opts, boost::asio::io_context& ioc, EventLoop& loop, Store& store,
                         Messaging& messaging, TransportLookup transports)
    : impl_(std::make_shared<Impl>(std::move(opts), ioc, loop, store, messaging,
                                   std::move(transports))) {}

PeerManager::~PeerManager() {
  shutdown();
}

void PeerManager::register_methods(rpc::Dispatcher& d) {
  impl_->admin.register_methods(d);
}

void PeerManager::start(unsigned short ws_port) {
  impl_->start(ws_port);
}

void PeerManager::transports_changed(const std::vector<std::string>& ids) {
  impl_->transports_changed(ids);
}

void PeerManager::handle_upgrade(std::unique_ptr<PeerUpgrade> up) {
  impl_->acceptor.on_upgrade(std::move(up));
}

void PeerManager::shutdown() {
  if (impl_) impl_->shutdown();
}

json PeerManager::summary() const {
  int connected = 0;
  for (const auto& [n, p] : impl_->peers.all())
    if (p->linked()) ++connected;
  return {{"connected", connected}, {"total", impl_->ctx.registry.peers().size()}};
}

std::vector<std::string> PeerManager::problems() const {
  return impl_->ctx.registry.problems();
}

std::vector<OutboxItem> PeerManager::route(const StoredMessage& m,
                                           const std::vector<const Agent*>& proxies,
                                           bool broadcast) {
  return impl_->router.route(m, proxies, broadcast);
}

void PeerManager::kick(const std::string& peer) {
  if (auto p = impl_->peers.find(peer)) p->kick();
}

std::optional<std::string> PeerManager::peer_for_prefix(const std::string& prefix) const {
  return impl_->router.peer_for_prefix(prefix);
}

std::pair<std::string, std::string> PeerManager::proxy_presence(const Agent& proxy) const {
  return impl_->router.proxy_presence(proxy);
}

void PeerManager::messages_read(const std::string& reader, const std::vector<std::string>& ids) {
  impl_->router.messages_read(reader, ids);
}

void PeerManager::agents_changed() {
  for (const auto& [name, p] : impl_->peers.all()) p->send_presence();
}

}  // namespace thrum::core
