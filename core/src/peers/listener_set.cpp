#include "peers/listener_set.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "peers/connector.hpp"
#include "peers/context.hpp"
#include "peers/credentials.hpp"
#include "peers/plugin_listener.hpp"
#include "peers/protocol.hpp"
#include "peers/tls.hpp"

namespace thrum::core::peers {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

/// This host's IPv4 addresses (not loopback), for finding where a moved listener went.
std::vector<std::string> local_ipv4s() {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    std::string ip = buf;
    if (ip.rfind("127.", 0) != 0) out.push_back(ip);
  }
  ::freeifaddrs(ifs);
  return out;
}

/// One listen attempt over the candidate addresses, run on the listen pool: the first address
/// the transport accepts and can bind wins.
struct Attempt {
  std::unique_ptr<sdk::IListener> listener;
  sdk::Endpoint advertised;
  std::string first_error;

  void listen(sdk::ITransport& t, const std::string& id, const std::vector<std::string>& candidates,
              std::uint16_t port, bool fixed_port, const std::string& options) {
    for (const auto& candidate : candidates) {
      // Validate the address the transport's way before binding anything on it.
      if (!candidate.empty()) {
        auto probe = t.advertise(sdk::AdvertiseSpec{candidate, 1});
        if (!probe) {
          skipped(id, candidate, probe.status().message);
          continue;
        }
      }
      sdk::ListenSpec spec{candidate, port, options};
      auto l = t.listen(spec);
      if (!l && port != 0 && !fixed_port &&
          l.status().code == static_cast<int>(sdk::Errc::kUnavailable)) {
        spec.port = 0;  // the old port is taken: any port, and peers are told
        l = t.listen(spec);
      }
      if (!l) {
        skipped(id, candidate, l.status().message);
        continue;
      }
      auto bound = l.value()->local_endpoint();
      auto adv =
          t.advertise(sdk::AdvertiseSpec{candidate.empty() ? bound.ip : candidate, bound.port});
      if (!adv) {
        l.value()->close();
        skipped(id, candidate, adv.status().message);
        continue;
      }
      listener = std::move(l.value());
      advertised = adv.value();
      return;
    }
  }
  void skipped(const std::string& id, const std::string& candidate, const std::string& why) {
    if (first_error.empty()) first_error = why;
    spdlog::debug("listener address skipped transport={} ip={} reason=\"{}\"", id, candidate, why);
  }
};

}  // namespace

struct ListenerSet::Impl : std::enable_shared_from_this<ListenerSet::Impl> {
  Impl(Context& c, Connector& conn, Credentials& cred, OnUpgrade u, Moved m)
      : ctx(c),
        connector(conn),
        credentials(cred),
        on_upgrade(std::move(u)),
        on_moved(std::move(m)),
        pool(1) {}

  Context& ctx;
  Connector& connector;
  Credentials& credentials;
  OnUpgrade on_upgrade;
  Moved on_moved;
  asio::thread_pool pool;  // transports' listen(), one at a time
  std::map<std::string, std::shared_ptr<PluginListener>> listeners;  // by transport id
  std::map<std::string, std::string> errors;                         // last failure, by id
  struct InFlight {
    std::shared_ptr<Attempt> got;
    std::vector<std::function<void()>> waiting;  // calls that came in meanwhile
  };
  std::map<std::string, InFlight> in_flight;
  bool stopped = false;

  json& addresses() {
    json& l = ctx.registry.local();
    if (!l.contains("addresses") || !l["addresses"].is_object()) l["addresses"] = json::object();
    return l["addresses"];
  }

  void ensure(const std::string& id, const Transport& t, const std::string& requested_ip,
              Ready ready, const std::optional<std::string>& auth_key) {
    auto report = [&ready](const sdk::Result<sdk::Endpoint>& adv) {
      if (adv)
        ready(adv.value(), "");
      else
        ready(std::nullopt, adv.status().message);
    };
    if (!t.caps.provides_listener) {
      report(t->advertise(sdk::AdvertiseSpec{requested_ip, ctx.ws_port}));
      return;
    }
    if (auto pending = in_flight.find(id); pending != in_flight.end()) {
      std::weak_ptr<Impl> weak = shared_from_this();
      pending->second.waiting.push_back([weak, id, t, requested_ip, ready, auth_key] {
        if (auto self = weak.lock()) self->ensure(id, t, requested_ip, ready, auth_key);
      });
      return;
    }
    const sdk::Endpoint last = parse_endpoint(ctx.stored_address(id)).value_or(sdk::Endpoint{});
    std::vector<std::string> candidates;
    if (!requested_ip.empty()) {
      candidates.push_back(requested_ip);
    } else if (t.caps.needs_address) {
      if (!last.ip.empty()) candidates.push_back(last.ip);
      // The stored address may be gone (a laptop on another network): try the others, same
      // /24 first, and let the transport's own rules (allowed_subnets, not loopback) decide.
      auto ips = local_ipv4s();
      auto prefix24 = [](const std::string& ip) { return ip.substr(0, ip.rfind('.')); };
      std::stable_partition(ips.begin(), ips.end(), [&](const std::string& ip) {
        return !last.ip.empty() && prefix24(ip) == prefix24(last.ip);
      });
      for (auto& ip : ips)
        if (ip != last.ip) candidates.push_back(ip);
      if (candidates.empty()) {
        ready(std::nullopt, "--type " + id + " requires --address <ip>");
        return;
      }
    } else {
      candidates.push_back("");
    }
    if (auto it = listeners.find(id); it != listeners.end()) {
      auto ep = it->second->local_endpoint();
      if (requested_ip.empty() || ep.ip == requested_ip || ep.ip.empty()) {
        report(
            t->advertise(sdk::AdvertiseSpec{requested_ip.empty() ? ep.ip : requested_ip, ep.port}));
        return;
      }
      it->second->close();
      listeners.erase(it);
    }
    auto got = std::make_shared<Attempt>();
    in_flight[id].got = got;
    const std::uint16_t port = ctx.opts.peer_port.value_or(last.port);
    const bool fixed_port = ctx.opts.peer_port.has_value();
    const std::string options = credentials.listen_options(t, auth_key).dump();
    std::weak_ptr<Impl> weak = shared_from_this();
    asio::post(pool, [weak, id, t, candidates, port, fixed_port, options, got, ready] {
      got->listen(*t.handle, id, candidates, port, fixed_port, options);
      auto self = weak.lock();
      if (!self) {
        if (got->listener) got->listener->close();
        return;
      }
      self->ctx.loop.post([weak, id, t, got, ready] {
        auto me = weak.lock();
        if (!me) {
          if (got->listener) got->listener->close();
          return;
        }
        me->came_up(id, t, *got, ready);
      });
    });
  }

  /// On the loop, after a listen attempt: host the listener, report, and run the calls that
  /// waited for this attempt.
  void came_up(const std::string& id, const Transport& t, Attempt& got, const Ready& ready) {
    auto waiting = std::move(in_flight[id].waiting);
    in_flight.erase(id);
    std::string why = got.first_error.empty() ? "no usable address" : got.first_error;
    std::optional<sdk::Endpoint> result;
    if (got.listener && (stopped || ctx.stopping)) {
      got.listener->close();
      why = "the daemon is stopping";
    } else if (got.listener && !ctx.transport(id)) {
      got.listener->close();
      why = "transport " + id + " was disabled";
    } else if (got.listener) {
      std::shared_ptr<asio::ssl::context> tls_ctx;
      if (t.caps.needs_tls) tls_ctx = connector.tls().server();
      std::weak_ptr<Impl> weak = shared_from_this();
      auto listener =
          std::make_shared<PluginListener>(ctx.ioc, id, t.handle, std::move(got.listener), tls_ctx,
                                           [weak](std::unique_ptr<PeerUpgrade> up) {
                                             if (auto self = weak.lock())
                                               self->on_upgrade(std::move(up));
                                           });
      try {
        listener->start();
        listeners[id] = listener;
        spdlog::info("peer listener up transport={} address={}", id, endpoint_text(got.advertised));
        result = got.advertised;
      } catch (const std::exception& e) {
        why = e.what();
      }
    }
    ready(result, result ? "" : why);
    for (auto& again : waiting) again();
  }

  void advertised(const std::string& id, const sdk::Endpoint& now) {
    const std::string before = ctx.stored_address(id);
    const std::string after = endpoint_text(now);
    if (before == after) return;
    addresses()[id] = after;
    ctx.registry.save();
    if (before.empty()) return;
    spdlog::info("own address changed transport={} from={} to={}", id, before, after);
    if (on_moved) on_moved(id, now);
  }

  std::set<std::string> used_transports() {
    std::set<std::string> used;
    for (const auto& rec : ctx.registry.peers()) used.insert(rec.transport);
    return used;
  }

  void check() {
    std::optional<std::vector<std::string>> ips;
    for (const auto& id : used_transports()) {
      auto t = ctx.transport(id);
      if (!t || !t.caps.provides_listener || !t.profile.follows_host_addresses) continue;
      if (in_flight.count(id)) continue;  // an attempt is in flight; the next check sees it
      if (auto it = listeners.find(id); it != listeners.end()) {
        auto ep = it->second->local_endpoint();
        if (ep.ip.empty() || ep.ip == "0.0.0.0") continue;
        if (!ips) ips = local_ipv4s();
        if (std::find(ips->begin(), ips->end(), ep.ip) != ips->end()) continue;
        spdlog::warn("own address gone transport={} address={}; moving the listener", id,
                     endpoint_text(ep));
        it->second->close();
        listeners.erase(it);
      }
      std::weak_ptr<Impl> weak = shared_from_this();
      ensure(
          id, t, "",
          [weak, id](std::optional<sdk::Endpoint> now, std::string error) {
            auto self = weak.lock();
            if (!self) return;
            if (!now) {
              // Retried at every check; logged once per distinct problem.
              if (self->errors[id] != error)
                spdlog::error("peer listener not running transport={} error=\"{}\"", id, error);
              self->errors[id] = error;
              return;
            }
            self->errors.erase(id);
            self->advertised(id, *now);
          },
          std::nullopt);
    }
  }
};

ListenerSet::ListenerSet(Context& ctx, Connector& connector, Credentials& credentials,
                         OnUpgrade on_upgrade, Moved on_moved)
    : impl_(std::make_shared<Impl>(ctx, connector, credentials, std::move(on_upgrade),
                                   std::move(on_moved))) {}

ListenerSet::~ListenerSet() {
  shutdown();
}

void ListenerSet::ensure(const std::string& id, const Transport& t, const std::string& requested_ip,
                         Ready ready, const std::optional<std::string>& auth_key) {
  impl_->ensure(id, t, requested_ip, std::move(ready), auth_key);
}

void ListenerSet::start(std::function<void(const std::string&, const std::string&)> failed) {
  for (const auto& id : impl_->used_transports()) start_one(id, failed);
}

void ListenerSet::start_one(const std::string& id,
                            std::function<void(const std::string&, const std::string&)> failed) {
  std::weak_ptr<Impl> weak = impl_;
  auto t = impl_->ctx.transport(id);
  if (!t) return;
  impl_->ensure(
      id, t, "",
      [weak, id, failed](std::optional<sdk::Endpoint> ep, std::string error) {
        auto self = weak.lock();
        if (!self) return;
        if (!ep) {
          spdlog::error("peer listener not started transport={} error=\"{}\"", id, error);
          if (failed) failed(id, error);
          return;
        }
        self->advertised(id, *ep);
      },
      std::nullopt);
}

void ListenerSet::stop(const std::string& id) {
  if (auto it = impl_->listeners.find(id); it != impl_->listeners.end()) {
    it->second->close();
    impl_->listeners.erase(it);
    spdlog::info("peer listener closed transport={} reason=\"disabled\"", id);
  }
  impl_->errors.erase(id);
}

void ListenerSet::check() {
  impl_->check();
}

void ListenerSet::advertised(const std::string& id, const sdk::Endpoint& now) {
  impl_->advertised(id, now);
}

void ListenerSet::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& [id, l] : impl_->listeners) l->close();
  impl_->listeners.clear();
  // A listen() in flight finishes first (a tailscale login gives up at its own timeout).
  impl_->pool.join();
  // Its result would be closed by a loop handler that may never run now: close it here, while
  // the plugin that made it is still loaded.
  for (auto& [id, attempt] : impl_->in_flight)
    if (attempt.got->listener) {
      attempt.got->listener->close();
      attempt.got->listener.reset();
    }
  impl_->in_flight.clear();
}

}  // namespace thrum::core::peers
