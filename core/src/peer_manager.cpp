#include "thrum/core/peer_manager.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <strings.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "peer_link.hpp"
#include "peer_listener.hpp"
#include "peer_tls.hpp"
#include "peers/channel_binding.hpp"
#include "peers/fields.hpp"
#include "peers/link_auth.hpp"
#include "peers/protocol.hpp"
#include "thrum/core/bounded_json.hpp"
#include "thrum/core/fs_util.hpp"
#include "thrum/core/ids.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/pairing.hpp"
#include "thrum/core/peer_registry.hpp"
#include "thrum/core/store.hpp"
#include "thrum/core/timing.hpp"

namespace thrum::core {

namespace asio = boost::asio;
using json = nlohmann::json;
using Steady = std::chrono::steady_clock;
using rpc::fail;
using rpc::fail_params;

namespace {

// Outbox frames (peer.deliver / peer.receipt requests) in flight per link. One on purpose:
// rows that commit while a frame is out wait for its answer and then leave together, so under
// load frames grow and the receiver makes one commit (one fsync) for many messages; a lone
// message still leaves at once. (2 measured slightly worse: smaller frames, more commits.)
constexpr int kMaxFramesInFlight = 1;
constexpr int64_t kMaxBatch = static_cast<int64_t>(peers::kMaxItemsPerFrame);  // rows per frame
constexpr size_t kMaxBatchBytes = peers::kMaxBatchBytes;  // payload bytes per frame

const std::set<std::string> kPeerTypes = {"local", "network", "tailscale"};

std::string err_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

/// A stored "ip:port" (peers.json is ours, but may be hand-edited): unset fields when unusable.
sdk::Endpoint parse_endpoint(const std::string& addr) {
  return peers::parse_endpoint(addr).value_or(sdk::Endpoint{});
}

std::string endpoint_text(const sdk::Endpoint& e) {
  return peers::endpoint_text(e);
}

/// A request header's value, "" when absent.
std::string header(const peerwire::Request& req, const char* name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string header(const HeaderFields& fields, const char* name) {
  for (const auto& [k, v] : fields)
    if (strcasecmp(k.c_str(), name) == 0) return v;
  return "";
}

/// What the initiator of a link needs once the other side proved itself: the link, not yet
/// started, and the proof it must send as its first frame (link.auth).
struct OutgoingLink {
  std::shared_ptr<PeerLink> link;
  std::string auth_proof;
};

/// `git status --porcelain -- file` in `worktree` is not empty.
bool has_changes(const std::string& worktree, const std::string& file) {
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string cmd =
      "git -C " + quote(worktree) + " status --porcelain -- " + quote(file) + " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return false;
  std::array<char, 256> buf{};
  bool any = std::fgets(buf.data(), buf.size(), f) != nullptr;
  ::pclose(f);
  return any;
}

}  // namespace

struct PeerManager::Impl : std::enable_shared_from_this<PeerManager::Impl> {
  // -- state ------------------------------------------------------------------------------------
  struct PeerState {
    std::shared_ptr<PeerLink> link;
    uint64_t generation = 0;
    std::string state = "idle";
    std::string last_error;
    timing::Backoff backoff;
    std::shared_ptr<asio::steady_timer> retry;
    bool dialing = false;
    int inflight = 0;  // outbox frames sent on this link and not yet answered
    int64_t cursor = 0;
    bool backlog = true;       // outbox rows may be waiting past the cursor
    bool pump_posted = false;  // a pump_now() is queued on the loop
    bool presence_known = false;
    std::map<std::string, std::pair<std::string, std::string>> presence;  // name -> status, role
    std::string watched_port;
    std::vector<rpc::Respond> repair_waiters;
    std::string address_rejected;  ///< the rule that refused the last peer.address_changed
    int reconcile_round = 0;       ///< reconcile attempts made in this failure streak
    std::shared_ptr<asio::steady_timer> reconcile_timer;
    // Our own address change still to be told to this peer.
    std::optional<sdk::Endpoint> announce;
    timing::Backoff announce_backoff;
    std::shared_ptr<asio::steady_timer> announce_timer;
    bool announcing = false;
    bool identity_warned = false;  ///< logged once that a hello claimed another identity
  };

  struct PairingSession {
    std::string code;
    std::string transport;
    std::string advertised;
    Steady::time_point started, expires;
    int attempts_left = 3;
    enum class State {
      kOpen,
      kLocked,
      kConsumed,
      kPaired,
      kCancelled,
      kFailed
    } state = State::kOpen;
    std::string paired_name, paired_address, failure;
    std::vector<std::pair<rpc::Respond, std::shared_ptr<asio::steady_timer>>> waiters;
  };

  /// Per unauthenticated (pairing) connection.
  struct PairCtx {
    std::string nonce_l, nonce_j, joiner_id;
    std::string joiner_cert;  ///< the joiner's TLS certificate fingerprint ("" without TLS)
    std::string endpoints;    ///< peers::endpoint_binding of the connection ("" when unbound)
    std::optional<PeerRecord> pending;
    std::shared_ptr<asio::steady_timer> confirm_deadline;
  };

  Impl(Options o, asio::io_context& ioc, Store& store, Messaging& messaging, TransportLookup t)
      : opts(std::move(o)),
        ioc(ioc),
        store(store),
        messaging(messaging),
        transports(std::move(t)),
        registry(opts.paths.peers, opts.daemon_id),
        pool(2),
        listen_pool(1),
        tick_timer(ioc),
        rng(std::random_device{}()) {}

  Options opts;
  asio::io_context& ioc;
  Store& store;
  Messaging& messaging;
  TransportLookup transports;
  PeerRegistry registry;
  asio::thread_pool pool;         // dials
  asio::thread_pool listen_pool;  // transports' listen(), one at a time (see ensure_listener)
  asio::steady_timer tick_timer;
  std::mt19937_64 rng;
  std::map<std::string, PeerState> states;
  std::optional<PairingSession> session;
  unsigned short ws_port = 0;
  std::map<std::string, std::shared_ptr<PluginListener>> listeners;  // by transport id
  std::map<std::string, std::string> listener_errors;                // last failure, by id
  // Transports whose listen() is running on listen_pool: the attempt's result, and the calls
  // that came in meanwhile (run again once it finished).
  struct Listening;
  struct ListenInFlight {
    std::shared_ptr<Listening> got;
    std::vector<std::function<void()>> waiting;
  };
  std::map<std::string, ListenInFlight> listen_in_flight;
  std::optional<tls::Identity> tls_id;
  std::shared_ptr<asio::ssl::context> tls_server, tls_client;
  bool stopping = false;
  Steady::time_point last_flush = Steady::now();
  Steady::time_point last_presence = Steady::now();
  Steady::time_point last_address_check = Steady::now();

  const timing::Constants& tc() const { return timing::constants(); }
  PeerLink::Timing link_timing() const { return {tc().ping_interval, tc().dead_after}; }

  std::string self_name(const std::string& transport) const {
    if (opts.peers_name) return *opts.peers_name;
    return transport == "local" ? opts.repo_name : opts.hostname;
  }

  json identity(const std::string& transport, const std::string& address) const {
    return {{"daemon_id", opts.daemon_id},
            {"name", self_name(transport)},
            {"repo_name", opts.repo_name},
            {"hostname", opts.hostname},
            {"repo_path", opts.paths.root.string()},
            {"git_origin_url", opts.git_origin_url},
            {"address", address}};
  }

  std::string own_address(const std::string& transport) {
    if (transport == "local") return "127.0.0.1:" + std::to_string(ws_port);
    return stored_address(transport);
  }

  ITransportHandle transport(const std::string& id, std::string& why) {
    ITransportHandle t = transports ? transports(id, &why) : nullptr;
    if (!t && why.empty()) why = "no transport plugin \"" + id + "\" is loaded";
    return t;
  }

  /// The tailscale auth key the user passed with this call (`--auth-key`), if any.
  static std::optional<std::string> call_auth_key(const rpc::Params& params) {
    auto key = params.opt_str("auth_key");
    if (!key || key->empty()) return std::nullopt;
    return key;
  }

  /// A listener came up with `key`: it becomes the daemon's key and is saved to .thrum/.env
  /// (0600). Only then, so a mistyped key is never kept.
  void auth_key_worked(const std::optional<std::string>& key) {
    if (!key || *key == opts.ts_auth_key) return;
    opts.ts_auth_key = *key;
    try {
      save_env_value(opts.paths.env_file, "THRUM_TS_AUTHKEY", *key);
      spdlog::info("tailscale auth key saved to {}", opts.paths.env_file.string());
    } catch (const std::exception& e) {
      spdlog::warn("could not save the tailscale auth key: {}", e.what());
    }
  }

  /// Sets `name=value` in a KEY=VALUE file, keeping its other lines; atomic, mode 0600.
  static void save_env_value(const std::filesystem::path& file, const std::string& name,
                             const std::string& value) {
    std::string out;
    if (auto text = read_file(file)) {
      std::istringstream in(*text);
      for (std::string line; std::getline(in, line);)
        if (line.rfind(name + "=", 0) != 0) out += line + "\n";
    }
    out += name + "=" + value + "\n";
    atomic_write_file(file, out, 0600);
  }

  static void require_address(const std::string& type, const ITransportHandle& t,
                              const rpc::Params& params) {
    if (t->capabilities().needs_address && params.opt_str("address").value_or("").empty())
      fail("--type " + type + " requires --address <ip> (this machine's address on the LAN)");
  }

  bool needs_tls(const std::string& id) {
    std::string why;
    auto t = transport(id, why);
    return t && t->capabilities().needs_tls;
  }

  /// Whether proofs on `id`'s connections are bound to their TCP endpoints
  /// (peers/channel_binding.hpp): loopback-only transports, where nothing translates addresses.
  bool binds_endpoints(const std::string& id) {
    std::string why;
    auto t = transport(id, why);
    return t && t->capabilities().loopback_only;
  }

  /// The TLS identity, created on first use (a daemon that only pairs locally never makes one).
  void ensure_tls() {
    if (tls_id) return;
    std::string problem;
    tls_id = tls::load_or_create(opts.paths.tls, "thrum-" + opts.daemon_id, &problem);
    if (!problem.empty()) spdlog::warn("{}", problem);
    tls_server = tls::make_context(*tls_id, true);
    tls_client = tls::make_context(*tls_id, false);
    spdlog::info("tls identity ready fingerprint={}", tls::short_fp(tls_id->fingerprint));
  }

  std::string own_fingerprint(const std::string& transport_id) {
    if (!needs_tls(transport_id)) return "";
    ensure_tls();
    return tls_id->fingerprint;
  }

  /// Wraps a dialed fd for `transport_id`: in TLS when the transport asks for it, checking the
  /// other side's certificate against `pin` when one is given. `done(stream, fingerprint, error)`.
  template <class F>
  void open_stream(const std::string& transport_id, int fd, const std::string& pin, F done) {
    peerwire::Socket sock(ioc);
    try {
      sock = adopt_fd(ioc, fd);
    } catch (const std::exception& e) {
      done(std::optional<peerwire::AnyStream>(), std::string(), std::string(e.what()));
      return;
    }
    if (!needs_tls(transport_id)) {
      done(std::optional<peerwire::AnyStream>(std::move(sock)), std::string(), std::string());
      return;
    }
    ensure_tls();
    std::weak_ptr<Impl> weak = shared_from_this();
    tls::handshake(std::move(sock), tls_client, false, tc().dial_timeout,
                   [weak, pin, done](std::unique_ptr<peerwire::TlsStream> s, std::string fp,
                                     std::string error) mutable {
                     if (!weak.lock()) return;
                     if (!s) {
                       done(std::optional<peerwire::AnyStream>(), std::string(), error);
                       return;
                     }
                     if (!pin.empty() && !pairing::equal_ct(fp, pin)) {
                       done(std::optional<peerwire::AnyStream>(), fp,
                            "the peer presented a different TLS certificate (sha256 " +
                                tls::short_fp(fp) + "…, pinned " + tls::short_fp(pin) +
                                "…); refusing the link");
                       return;
                     }
                     done(std::optional<peerwire::AnyStream>(std::move(*s)), fp, std::string());
                   });
  }

  // -- listeners owned by transports (network, tailscale) -----------------------------------------
  json& local_addresses() {
    json& l = registry.local();
    if (!l.contains("addresses") || !l["addresses"].is_object()) l["addresses"] = json::object();
    return l["addresses"];
  }

  std::string stored_address(const std::string& transport_id) {
    json& a = local_addresses();
    return a.contains(transport_id) && a[transport_id].is_string()
               ? a[transport_id].get<std::string>()
               : "";
  }

  json listen_options(const std::string& transport_id,
                      const std::optional<std::string>& auth_key = std::nullopt) {
    json host = json::object();
    if (transport_id == "tailscale") {
      host["state_dir"] = opts.paths.tsnet.string();
      host["auth_key"] = auth_key ? *auth_key : opts.ts_auth_key;
    }
    return json{{"host", host}};
  }

  /// This host's IPv4 addresses (not loopback), for finding where a moved listener went.
  static std::vector<std::string> local_ipv4s() {
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

  /// One listen attempt over the candidate addresses, run on `listen_pool`: the first address
  /// the transport accepts and can bind wins.
  struct Listening {
    std::unique_ptr<sdk::IListener> listener;
    sdk::Endpoint advertised;
    std::string first_error;

    void listen(sdk::ITransport& t, const std::string& id,
                const std::vector<std::string>& candidates, std::uint16_t port, bool fixed_port,
                const std::string& options) {
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
      spdlog::debug("listener address skipped transport={} ip={} reason=\"{}\"", id, candidate,
                    why);
    }
  };

  /// What ensure_listener() reports, on the loop: the advertised endpoint, or nullopt and why.
  using ListenerReady = std::function<void(std::optional<sdk::Endpoint>, std::string why)>;

  /// Makes sure the transport's own listener runs (on `requested_ip` when given, else where it
  /// last listened, else — when that address is gone — on another local address the transport
  /// accepts, preferring the same /24), and reports the endpoint we advertise.
  ///
  /// The transport's listen() runs on `listen_pool`, never on the loop: bringing a listener up
  /// may block for a long time (an embedded tailscale node logging in to its control server),
  /// and the daemon keeps answering everyone else meanwhile. One listen at a time per transport;
  /// a call that arrives while one is in flight runs again once it finished (and then usually
  /// finds the listener up). `auth_key` overrides the daemon's tailscale key for this attempt.
  void ensure_listener(const std::string& id, const ITransportHandle& t,
                       const std::string& requested_ip, ListenerReady ready,
                       const std::optional<std::string>& auth_key = std::nullopt) {
    auto report = [&ready](const sdk::Result<sdk::Endpoint>& adv) {
      if (adv)
        ready(adv.value(), "");
      else
        ready(std::nullopt, adv.status().message);
    };
    if (!t->capabilities().provides_listener) {
      report(t->advertise(sdk::AdvertiseSpec{requested_ip, ws_port}));
      return;
    }
    if (auto pending = listen_in_flight.find(id); pending != listen_in_flight.end()) {
      pending->second.waiting.push_back([this, id, t, requested_ip, ready, auth_key] {
        ensure_listener(id, t, requested_ip, ready, auth_key);
      });
      return;
    }
    const sdk::Endpoint last = parse_endpoint(stored_address(id));
    std::vector<std::string> candidates;
    if (!requested_ip.empty()) {
      candidates.push_back(requested_ip);
    } else if (t->capabilities().needs_address) {
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
    auto it = listeners.find(id);
    if (it != listeners.end()) {
      auto ep = it->second->local_endpoint();
      if (requested_ip.empty() || ep.ip == requested_ip || ep.ip.empty()) {
        report(
            t->advertise(sdk::AdvertiseSpec{requested_ip.empty() ? ep.ip : requested_ip, ep.port}));
        return;
      }
      it->second->close();
      listeners.erase(it);
    }
    auto got = std::make_shared<Listening>();
    listen_in_flight[id].got = got;
    const std::uint16_t port = opts.peer_port.value_or(last.port);
    const bool fixed_port = opts.peer_port.has_value();
    const std::string options = listen_options(id, auth_key).dump();
    asio::post(listen_pool, [weak = weak_from_this(), this, id, t, candidates, port, fixed_port,
                             options, got, ready] {
      got->listen(*t, id, candidates, port, fixed_port, options);
      asio::post(ioc, [weak, this, id, t, got, ready] {
        auto self = weak.lock();
        if (!self) {
          if (got->listener) got->listener->close();
          return;
        }
        listener_came_up(id, t, *got, ready);
      });
    });
  }

  /// On the loop, after a listen attempt: host the listener (TLS, the /peer path), report, and
  /// run the calls that waited for this attempt.
  void listener_came_up(const std::string& id, const ITransportHandle& t, Listening& got,
                        const ListenerReady& ready) {
    auto waiting = std::move(listen_in_flight[id].waiting);
    listen_in_flight.erase(id);
    std::string why = got.first_error.empty() ? "no usable address" : got.first_error;
    std::optional<sdk::Endpoint> result;
    if (got.listener && stopping) {
      got.listener->close();
      why = "the daemon is stopping";
    } else if (got.listener) {
      std::shared_ptr<asio::ssl::context> ctx;
      if (t->capabilities().needs_tls) {
        ensure_tls();
        ctx = tls_server;
      }
      std::weak_ptr<Impl> weak = shared_from_this();
      auto listener = std::make_shared<PluginListener>(ioc, id, t, std::move(got.listener), ctx,
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

  /// While running (SPEC §7.3): a listener whose IP left this host (new DHCP lease, another
  /// network) is rebuilt on the address the transport accepts now, and peers are told.
  void check_own_addresses() {
    std::set<std::string> used;
    for (const auto& rec : registry.peers()) used.insert(rec.transport);
    std::optional<std::vector<std::string>> ips;
    for (const auto& id : used) {
      std::string why;
      auto t = transport(id, why);
      // Only transports bound to a host interface (network); a tailnet address is not one.
      if (!t || !t->capabilities().provides_listener || !t->capabilities().needs_address) continue;
      if (listen_in_flight.count(id)) continue;  // an attempt is in flight; the next check sees it
      auto it = listeners.find(id);
      if (it != listeners.end()) {
        auto ep = it->second->local_endpoint();
        if (ep.ip.empty() || ep.ip == "0.0.0.0") continue;
        if (!ips) ips = local_ipv4s();
        if (std::find(ips->begin(), ips->end(), ep.ip) != ips->end()) continue;
        spdlog::warn("own address gone transport={} address={}; moving the listener", id,
                     endpoint_text(ep));
        it->second->close();
        listeners.erase(it);
      }
      ensure_listener(id, t, "", [this, id](std::optional<sdk::Endpoint> now, std::string error) {
        if (!now) {
          // Retried at every check; logged once per distinct problem.
          if (listener_errors[id] != error)
            spdlog::error("peer listener not running transport={} error=\"{}\"", id, error);
          listener_errors[id] = error;
          return;
        }
        listener_errors.erase(id);
        advertised(id, *now);
      });
    }
  }

  /// Records where we are reachable over `id`; when that moved, tells every peer of the
  /// transport (SPEC §7.3).
  void advertised(const std::string& id, const sdk::Endpoint& now) {
    const std::string before = stored_address(id);
    const std::string after = endpoint_text(now);
    if (before == after) return;
    local_addresses()[id] = after;
    registry.save();
    if (before.empty()) return;
    spdlog::info("own address changed transport={} from={} to={}", id, before, after);
    for (const auto& rec : registry.peers()) {
      if (rec.transport != id || !rec.removed_by_peer.empty()) continue;
      auto& st = states[rec.name];
      st.announce = now;
      st.announce_backoff = {};
      announce(rec.name);
    }
  }

  void touch(PeerRecord& r, int64_t messages = 0) {
    r.last_sync = now_rfc3339();
    r.last_seq += messages;
    registry.mark_dirty();
  }

  // -- housekeeping -----------------------------------------------------------------------------
  void tick() {
    if (stopping) return;
    tick_timer.expires_after(tc().port_file_poll);
    std::weak_ptr<Impl> weak = shared_from_this();
    tick_timer.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopping) return;
      self->on_tick();
      self->tick();
    });
  }

  void on_tick() {
    expire_session();
    // Local dialers follow the other repo's ws.port at once instead of waiting out a backoff.
    for (const auto& rec : registry.peers()) {
      if (rec.role != "dialer" || rec.transport != "local" || rec.repo_path.empty()) continue;
      auto& st = states[rec.name];
      if (st.link || st.dialing || !rec.removed_by_peer.empty() ||
          rec.reconcile_status == "drift_reconcile_failed")
        continue;
      auto port = read_port_file(std::filesystem::path(rec.repo_path) / ".thrum/var/ws.port");
      std::string seen = port ? std::to_string(*port) : "";
      if (seen != st.watched_port) {
        st.watched_port = seen;
        if (port) {
          spdlog::info("peer port file changed peer={} port={}; reconnecting now", rec.name, seen);
          connect(rec.name);
        }
      }
    }
    if (Steady::now() - last_address_check >= std::chrono::seconds(3)) {
      last_address_check = Steady::now();
      check_own_addresses();
    }
    if (Steady::now() - last_flush >= tc().registry_flush) {
      registry.flush_if_dirty();
      last_flush = Steady::now();
    }
    if (Steady::now() - last_presence >= std::chrono::seconds(10)) {
      last_presence = Steady::now();
      for (auto& [name, st] : states)
        if (st.link) send_presence(st.link);
    }
  }

  // -- pairing: listener side -------------------------------------------------------------------
  void expire_session() {
    if (!session || session->state != PairingSession::State::kOpen) return;
    if (Steady::now() < session->expires) return;
    finish_session(PairingSession::State::kFailed,
                   "pairing code expired; run 'thrum peer add' again");
    spdlog::info("pairing session expired");
  }

  void finish_session(PairingSession::State state, const std::string& failure) {
    if (!session) return;
    session->state = state;
    session->failure = failure;
    auto waiters = std::move(session->waiters);
    session->waiters.clear();
    for (auto& [respond, timer] : waiters) {
      if (timer) timer->cancel();
      respond_wait(respond);
    }
  }

  void respond_wait(const rpc::Respond& respond) {
    using S = PairingSession::State;
    if (!session) {
      respond(rpc::Error{rpc::kHandlerError, "no pairing session in progress", nullptr});
      return;
    }
    switch (session->state) {
      case S::kPaired:
        respond(json{{"status", "paired"},
                     {"peer_name", session->paired_name},
                     {"peer_address", session->paired_address}});
        return;
      case S::kOpen:
      case S::kConsumed: {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(session->expires - Steady::now());
        respond(json{{"status", "waiting"}, {"remaining_ms", std::max<int64_t>(0, left.count())}});
        return;
      }
      default:
        respond(rpc::Error{rpc::kHandlerError, session->failure, nullptr});
    }
  }

  void h_start_pairing(const json& p, std::function<bool()> caller_alive, rpc::Respond respond) {
    rpc::Params params(p);
    std::string type = params.str("type");
    if (type == "repair")
      fail(
          "--type repair is not valid for 'peer add' (use 'thrum peer join --type repair <name>')");
    if (!kPeerTypes.count(type))
      fail("unknown peer type \"" + type + "\" (use local, network or tailscale)");
    std::string why;
    auto t = transport(type, why);
    if (!t) fail("transport \"" + type + "\" is not available: " + why);
    expire_session();
    if (session && session->state == PairingSession::State::kOpen) {
      auto age = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - session->started);
      fail("pairing already in progress (started " + std::to_string(age.count()) + "s ago)");
    }
    require_address(type, t, params);
    const auto key = call_auth_key(params);
    ensure_listener(
        type, t, params.opt_str("address").value_or(""),
        [this, type, key, respond, caller_alive](std::optional<sdk::Endpoint> adv,
                                                 std::string error) {
          if (!adv) {
            respond(rpc::Error{rpc::kHandlerError, error, nullptr});
            return;
          }
          auth_key_worked(key);
          advertised(type, *adv);
          // A `peer add` interrupted while the listener came up would leave a session nobody
          // shows a code for, refusing the next `peer add` until it expired.
          if (!caller_alive()) {
            spdlog::info("pairing session not started: peer add went away transport={}", type);
            respond(rpc::Error{rpc::kHandlerError, "pairing not started: the caller went away",
                               nullptr});
            return;
          }
          open_session(type, *adv, respond);
        },
        key);
  }

  /// `peer add`, once our listener is up: the pairing session and its peercode.
  void open_session(const std::string& type, const sdk::Endpoint& adv,
                    const rpc::Respond& respond) {
    // Checked again: another `peer add` may have opened one while our listener came up.
    expire_session();
    if (session && session->state == PairingSession::State::kOpen) {
      auto age = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - session->started);
      respond(rpc::Error{
          rpc::kHandlerError,
          "pairing already in progress (started " + std::to_string(age.count()) + "s ago)",
          nullptr});
      return;
    }
    PairingSession s;
    s.code = pairing::generate_code(opts.pairing_code_length);
    s.transport = type;
    s.advertised = endpoint_text(adv);
    s.started = Steady::now();
    s.expires = s.started + tc().pairing_expiry;
    s.attempts_left = tc().pairing_attempts;
    if (session)
      finish_session(PairingSession::State::kCancelled, "pairing cancelled: a new session started");
    session = std::move(s);
    pairing::Peercode pc{self_name(type), adv.ip, adv.port, session->code};
    spdlog::info("pairing session started transport={} address={} expires_in_ms={}", type,
                 session->advertised, tc().pairing_expiry.count());
    respond(json{{"peercode", pairing::format_peercode(pc)},
                 {"name", pc.name},
                 {"address", session->advertised},
                 {"transport", type},
                 {"expires_in_ms", tc().pairing_expiry.count()}});
  }

  void h_wait_pairing(const json& p, rpc::Respond respond) {
    rpc::Params params(p);
    int64_t timeout = std::clamp<int64_t>(params.opt_int("timeout_ms").value_or(360000), 0, 360000);
    expire_session();
    if (!session || session->state != PairingSession::State::kOpen || timeout == 0) {
      if (!session || session->state != PairingSession::State::kConsumed || timeout == 0) {
        respond_wait(respond);
        return;
      }
    }
    auto timer = std::make_shared<asio::steady_timer>(ioc);
    timer->expires_after(std::chrono::milliseconds(timeout));
    session->waiters.emplace_back(respond, timer);
    std::weak_ptr<Impl> weak = shared_from_this();
    timer->async_wait([weak, timer](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || !self->session) return;
      auto& ws = self->session->waiters;
      for (auto it = ws.begin(); it != ws.end(); ++it) {
        if (it->second != timer) continue;
        auto r = std::move(it->first);
        ws.erase(it);
        self->expire_session();
        self->respond_wait(r);
        return;
      }
    });
  }

  void h_cancel_pairing(rpc::Respond respond) {
    if (session && (session->state == PairingSession::State::kOpen ||
                    session->state == PairingSession::State::kConsumed)) {
      finish_session(PairingSession::State::kCancelled, "pairing cancelled");
      spdlog::info("pairing session cancelled");
      respond(json{{"status", "cancelled"}});
      return;
    }
    respond(json{{"status", "none"}});
  }

  void accept_pairing(std::unique_ptr<PeerUpgrade> up) {
    using S = PairingSession::State;
    expire_session();
    // Without a token, a WebSocket is opened only while a code is waiting to be used; the
    // refusal says why, so the joiner can tell the user what to do.
    std::string refusal;
    if (!session || session->state == S::kPaired)
      refusal = "no pairing session in progress (run 'thrum peer add' on this side)";
    else if (session->state == S::kConsumed)
      refusal = "this pairing code was already used; run 'thrum peer add' again";
    else if (session->state == S::kLocked)
      refusal = "too many failed attempts; run 'thrum peer add' again";
    else if (session->state != S::kOpen)
      refusal = session->failure;
    else if (up->transport != session->transport)
      refusal = "this pairing session is for --type " + session->transport + " on " +
                session->advertised + ", not for this address";
    if (!refusal.empty()) {
      spdlog::warn("peer link refused reason=\"no token; {}\" remote={}", refusal, up->remote);
      reject_upgrade(std::move(up), peerwire::http::status::unauthorized, refusal);
      return;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ctx = std::make_shared<PairCtx>();
    ctx->joiner_cert = up->peer_cert_sha256;
    if (binds_endpoints(up->transport))
      ctx->endpoints = peers::endpoint_binding(native_fd(up->stream), /*initiator=*/false);
    PeerLink::accept(std::move(up), link_timing(), {}, [weak, ctx](std::shared_ptr<PeerLink> link) {
      auto self = weak.lock();
      if (!self) return;
      // Nothing a joiner legitimately sends before pairing comes near this.
      link->set_max_frame_bytes(peers::kMaxPreAuthFrameBytes);
      std::weak_ptr<PeerLink> wl = link;
      link->start(
          [weak, ctx, wl](const std::string& method, const json& params, rpc::Respond respond) {
            auto s = weak.lock();
            if (!s) return;
            s->on_pair_request(ctx, wl.lock(), method, params, std::move(respond));
          },
          [weak, ctx](const std::string& reason) {
            auto s = weak.lock();
            if (s) s->pairing_link_closed(ctx, reason);
          });
    });
  }

  /// The joiner went away (or never confirmed) after a correct proof: the code is used up, so
  /// the session ends now instead of leaving `peer add` waiting for ever.
  void pairing_link_closed(const std::shared_ptr<PairCtx>& ctx, const std::string& reason) {
    using S = PairingSession::State;
    if (ctx->confirm_deadline) ctx->confirm_deadline->cancel();
    if (!ctx->pending || !session || session->state != S::kConsumed) return;
    spdlog::warn("pairing failed reason=\"joiner left before confirming: {}\"", reason);
    ctx->pending.reset();
    finish_session(S::kFailed,
                   "the other side disconnected before confirming the pairing; run 'thrum peer "
                   "add' again");
  }

  void on_pair_request(const std::shared_ptr<PairCtx>& ctx, const std::shared_ptr<PeerLink>& link,
                       const std::string& method, const json& p, rpc::Respond respond) {
    using S = PairingSession::State;
    expire_session();
    auto session_error = [&]() -> std::string {
      if (!session) return "no pairing session in progress; run 'thrum peer add' again";
      if (session->state == S::kOpen) return "";
      if (session->state == S::kConsumed && method == "pair.confirm") return "";
      if (session->state == S::kLocked)
        return "too many failed attempts; run 'thrum peer add' again";
      if (session->state == S::kFailed || session->state == S::kCancelled) return session->failure;
      return "this pairing code was already used; run 'thrum peer add' again";
    };
    if (auto e = session_error(); !e.empty()) {
      respond(rpc::Error{rpc::kHandlerError, e, nullptr});
      return;
    }
    if (method == "pair.hello") {
      auto hello = peers::decode_pair_hello(p);
      if (!hello) {
        respond(rpc::Error{rpc::kInvalidParams, hello.error(), nullptr});
        return;
      }
      if (hello.value().transport != session->transport) {
        respond(rpc::Error{rpc::kHandlerError,
                           "this pairing session is for --type " + session->transport + ", not " +
                               hello.value().transport,
                           nullptr});
        return;
      }
      ctx->nonce_j = hello.value().nonce;
      ctx->joiner_id = hello.value().daemon_id;
      ctx->nonce_l = pairing::generate_nonce();
      respond(json{{"nonce", ctx->nonce_l},
                   {"daemon_id", opts.daemon_id},
                   {"cert_sha256", own_fingerprint(session->transport)}});
      return;
    }
    if (method == "pair.proof") {
      if (ctx->nonce_l.empty()) fail("pair.hello must come first");
      if (ctx->pending) fail("pair.proof was already accepted on this connection");
      auto msg = peers::decode_pair_proof(p);
      if (!msg) {
        respond(rpc::Error{rpc::kInvalidParams, msg.error(), nullptr});
        return;
      }
      const std::string& proof = msg.value().proof;
      // Both certificates as seen on this TLS connection: a relay in the middle would have
      // shown the joiner another certificate, and the joiner's proof would not match.
      pairing::Transcript tr{ctx->nonce_l,
                             ctx->nonce_j,
                             opts.daemon_id,
                             ctx->joiner_id,
                             own_fingerprint(session->transport),
                             ctx->joiner_cert,
                             session->transport,
                             ctx->endpoints};
      if (!pairing::equal_ct(proof, pairing::proof(session->code, "joiner", tr))) {
        session->attempts_left--;
        spdlog::warn("pairing attempt failed reason=\"wrong code\" attempts_remaining={}",
                     session->attempts_left);
        if (session->attempts_left <= 0) {
          finish_session(S::kLocked, "too many failed attempts; run 'thrum peer add' again");
          respond(rpc::Error{rpc::kHandlerError,
                             "too many failed attempts; run 'thrum peer add' again", nullptr});
        } else {
          respond(rpc::Error{rpc::kHandlerError,
                             "invalid pairing code (" + std::to_string(session->attempts_left) +
                                 (session->attempts_left == 1 ? " attempt" : " attempts") +
                                 " remaining)",
                             nullptr});
        }
        return;
      }
      const peers::Identity& id = msg.value().identity;
      PeerRecord r;
      r.name = registry.unique_name(id.name.empty() ? "peer" : id.name);
      r.address = id.address;
      r.daemon_id = ctx->joiner_id;
      r.token = pairing::generate_token();
      r.transport = session->transport;
      r.role = "listener";
      r.proxy_prefix = registry.unique_prefix(r.name);
      r.paired_at = now_rfc3339();
      r.last_sync = r.paired_at;
      r.remote_repo_name = id.repo_name;
      r.remote_hostname = id.hostname;
      r.remote_repo_path = id.repo_path;
      r.remote_git_origin_url = id.git_origin_url;
      r.remote_cert_sha256 = ctx->joiner_cert;
      ctx->pending = r;
      session->state = S::kConsumed;  // the code is single-use from here on
      // A joiner that stays connected but never confirms must not hold `peer add` for ever.
      ctx->confirm_deadline = std::make_shared<asio::steady_timer>(ioc, tc().dial_timeout * 2);
      std::weak_ptr<PeerLink> wl = link;
      ctx->confirm_deadline->async_wait([wl](boost::system::error_code ec) {
        if (ec) return;
        if (auto l = wl.lock()) l->close("no pair.confirm in time");
      });
      respond(json{{"proof", pairing::proof(session->code, "listener", tr)},
                   {"token", r.token},
                   {"identity", identity(session->transport, session->advertised)}});
      return;
    }
    if (method == "pair.confirm") {
      if (!ctx->pending) fail("pair.proof must succeed first");
      if (ctx->confirm_deadline) ctx->confirm_deadline->cancel();
      PeerRecord r = *ctx->pending;
      ctx->pending.reset();
      try {
        registry.upsert(r);
      } catch (const std::exception& e) {
        finish_session(S::kFailed, std::string("could not save peers.json: ") + e.what());
        respond(
            rpc::Error{rpc::kHandlerError, "the other side could not save the pairing", nullptr});
        return;
      }
      session->paired_name = r.name;
      session->paired_address = r.address;
      spdlog::info("paired peer={} transport={} role=listener address={}", r.name, r.transport,
                   r.address);
      finish_session(S::kPaired, "");
      respond(json{{"ok", true}, {"name", r.name}});
      if (link) {
        // Let the answer go out before the pairing connection is closed.
        std::weak_ptr<PeerLink> wl = link;
        auto t = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(200));
        t->async_wait([wl, t](boost::system::error_code) {
          if (auto l = wl.lock()) l->close("pairing complete");
        });
      }
      return;
    }
    respond(rpc::Error{rpc::kMethodNotFound,
                       "method '" + method + "' is not available before pairing", nullptr});
  }

  // -- pairing: joiner side ---------------------------------------------------------------------
  void h_join(const json& p, rpc::Respond respond) {
    rpc::Params params(p);
    std::string type = params.str("type");
    if (type == "repair") {
      repair(params, std::move(respond));
      return;
    }
    if (!kPeerTypes.count(type))
      fail("unknown peer type \"" + type + "\" (use local, network, tailscale or repair)");
    std::string perr;
    auto pc = pairing::parse_peercode(params.str("peercode"), opts.pairing_code_length, perr);
    if (!pc) fail_params(perr);
    std::string why;
    auto t = transport(type, why);
    if (!t) fail("transport \"" + type + "\" is not available: " + why);
    std::string repo_path = params.opt_str("repo_path").value_or("");
    if (t->capabilities().needs_repo_path) {
      if (repo_path.empty())
        fail("--type " + type + " requires --repo-path <path of the other repo>");
      std::error_code ec;
      auto canon = std::filesystem::weakly_canonical(repo_path, ec);
      if (!ec) repo_path = canon.string();
      if (!std::filesystem::is_directory(std::filesystem::path(repo_path) / ".thrum"))
        fail("--repo-path " + repo_path +
             " has no .thrum/ directory (is it the other repo? run 'thrum init' there)");
      if (std::filesystem::path(repo_path) == opts.paths.root)
        fail("--repo-path points at this repo; give the other repo's path");
    }
    require_address(type, t, params);
    const sdk::Endpoint ep{pc->ip, pc->port};
    if (!t->capabilities().provides_listener) {
      join_dial(t, type, repo_path, pc->code, ep, respond);
      return;
    }
    // The joiner listens too: the other side tells it about its own address changes there.
    const auto key = call_auth_key(params);
    ensure_listener(
        type, t, params.opt_str("address").value_or(""),
        [this, t, type, repo_path, code = pc->code, ep, key, respond](
            std::optional<sdk::Endpoint> own, std::string error) {
          if (!own) {
            respond(rpc::Error{rpc::kHandlerError, error, nullptr});
            return;
          }
          auth_key_worked(key);
          advertised(type, *own);
          join_dial(t, type, repo_path, code, ep, respond);
        },
        key);
  }

  /// `peer join`: dials the listener's peercode address and pairs over that connection.
  void join_dial(const ITransportHandle& t, const std::string& type, const std::string& repo_path,
                 const std::string& code, const sdk::Endpoint& ep, const rpc::Respond& respond) {
    std::weak_ptr<Impl> weak = shared_from_this();
    dial(t, ep,
         [weak, respond, type, repo_path, code, ep](int fd, std::string error, sdk::Endpoint) {
           auto self = weak.lock();
           if (!self) return;
           if (fd < 0) {
             respond(rpc::Error{rpc::kHandlerError,
                                "cannot reach " + endpoint_text(ep) + ": " + error, nullptr});
             return;
           }
           self->pair_over(fd, ep, type, repo_path, code, respond);
         });
  }

  void pair_over(int fd, sdk::Endpoint ep, std::string type, std::string repo_path,
                 std::string code, rpc::Respond respond) {
    const std::string endpoints =
        binds_endpoints(type) ? peers::endpoint_binding(fd, /*initiator=*/true) : "";
    std::weak_ptr<Impl> weak = shared_from_this();
    open_stream(
        type, fd, "",
        [weak, ep, type, repo_path, code, endpoints, respond](
            std::optional<peerwire::AnyStream> stream, std::string cert, std::string error) {
          auto self = weak.lock();
          if (!self) return;
          if (!stream) {
            respond(rpc::Error{rpc::kHandlerError,
                               "cannot pair with " + endpoint_text(ep) + ": " + error, nullptr});
            return;
          }
          JoinCtx j{ep, type, repo_path, code, cert, endpoints, "", {}, respond};
          self->pair_over_stream(std::move(*stream), std::make_shared<JoinCtx>(j));
        });
  }

  /// The joiner's side of one pairing attempt.
  struct JoinCtx {
    sdk::Endpoint ep;
    std::string type, repo_path, code;
    std::string listener_cert;  ///< as seen in TLS, not as claimed
    std::string endpoints;
    std::string nonce_j;
    pairing::Transcript tr;
    rpc::Respond respond;
  };

  void pair_over_stream(peerwire::AnyStream sock, std::shared_ptr<JoinCtx> j) {
    std::weak_ptr<Impl> weak = shared_from_this();
    PeerLink::connect(
        std::move(sock), endpoint_text(j->ep), {}, link_timing(),
        [weak, j](std::shared_ptr<PeerLink> link, std::string error, int status, HeaderFields) {
          auto self = weak.lock();
          if (!self) return;
          if (!link) {
            // A 401 body is the listener's reason (expired, locked out, no session).
            std::string msg =
                status == 401 ? error : "cannot pair with " + endpoint_text(j->ep) + ": " + error;
            j->respond(rpc::Error{rpc::kHandlerError, msg, nullptr});
            return;
          }
          link->set_max_frame_bytes(peers::kMaxPreAuthFrameBytes);
          link->start(
              [](const std::string&, const json&, rpc::Respond r) {
                r(rpc::Error{rpc::kMethodNotFound, "not accepted while pairing", nullptr});
              },
              [](const std::string&) {});
          j->nonce_j = pairing::generate_nonce();
          link->call(
              "pair.hello",
              {{"daemon_id", self->opts.daemon_id}, {"nonce", j->nonce_j}, {"transport", j->type}},
              [weak, link, j](rpc::Outcome o) {
                if (auto s = weak.lock()) s->on_pair_hello_answer(link, j, std::move(o));
              });
        });
  }

  void pairing_refused(const std::shared_ptr<PeerLink>& link, const std::shared_ptr<JoinCtx>& j,
                       const std::string& why_log, const std::string& why_user) {
    spdlog::error("pairing aborted reason=\"{}\" address={}", why_log, endpoint_text(j->ep));
    link->close(why_log);
    j->respond(rpc::Error{rpc::kHandlerError, why_user, nullptr});
  }

  void on_pair_hello_answer(const std::shared_ptr<PeerLink>& link,
                            const std::shared_ptr<JoinCtx>& j, rpc::Outcome o) {
    if (!o.ok()) {
      link->close("pairing refused");
      j->respond(o.error());
      return;
    }
    auto hello = peers::decode_pair_hello_answer(o.result());
    if (!hello) {
      pairing_refused(link, j, "malformed pair.hello answer: " + hello.error(),
                      "the other side's answer is not a Thrum pairing answer (" + hello.error() +
                          "); not paired");
      return;
    }
    j->tr = pairing::Transcript{hello.value().nonce,
                                j->nonce_j,
                                hello.value().daemon_id,
                                opts.daemon_id,
                                j->listener_cert,
                                own_fingerprint(j->type),
                                j->type,
                                j->endpoints};
    json proof_params = {{"proof", pairing::proof(j->code, "joiner", j->tr)},
                         {"identity", identity(j->type, own_address(j->type))}};
    std::weak_ptr<Impl> weak = shared_from_this();
    link->call("pair.proof", proof_params, [weak, link, j](rpc::Outcome o2) {
      if (auto s = weak.lock()) s->on_pair_proof_answer(link, j, std::move(o2));
    });
  }

  void on_pair_proof_answer(const std::shared_ptr<PeerLink>& link,
                            const std::shared_ptr<JoinCtx>& j, rpc::Outcome o) {
    if (!o.ok()) {
      link->close("pairing refused");
      j->respond(o.error());
      return;
    }
    auto res = peers::decode_pair_proof_answer(o.result());
    if (!res) {
      pairing_refused(link, j, "malformed pair.proof answer: " + res.error(),
                      "the other side's answer is not a Thrum pairing answer (" + res.error() +
                          "); not paired");
      return;
    }
    if (!pairing::equal_ct(res.value().proof, pairing::proof(j->code, "listener", j->tr))) {
      pairing_refused(link, j, "listener proof mismatch",
                      "the other side could not prove it holds the pairing code; not paired");
      return;
    }
    const peers::Identity& id = res.value().identity;
    PeerRecord r;
    r.name = registry.unique_name(id.name.empty() ? "peer" : id.name);
    r.address = endpoint_text(j->ep);
    r.daemon_id = j->tr.listener_daemon_id;
    r.token = res.value().token;
    r.transport = j->type;
    r.role = "dialer";
    r.proxy_prefix = registry.unique_prefix(r.name);
    r.repo_path = j->repo_path;
    r.paired_at = now_rfc3339();
    r.last_sync = r.paired_at;
    r.remote_repo_name = id.repo_name;
    r.remote_hostname = id.hostname;
    r.remote_repo_path = id.repo_path;
    r.remote_git_origin_url = id.git_origin_url;
    r.remote_cert_sha256 = j->tr.listener_cert_sha256;
    try {
      registry.upsert(r);
    } catch (const std::exception& e) {
      link->close("save failed");
      j->respond(rpc::Error{rpc::kHandlerError,
                            std::string("could not save peers.json: ") + e.what(), nullptr});
      return;
    }
    spdlog::info("paired peer={} transport={} role=dialer address={}", r.name, r.transport,
                 r.address);
    std::weak_ptr<Impl> weak = shared_from_this();
    link->call("pair.confirm", json::object(), [weak, link, j, r](rpc::Outcome o3) {
      auto s4 = weak.lock();
      link->close("pairing complete");
      if (!s4) return;
      if (!o3.ok()) {
        j->respond(rpc::Error{rpc::kHandlerError,
                              "pairing not confirmed by the other side: " + o3.error().message,
                              nullptr});
        return;
      }
      j->respond(json{{"status", "paired"},
                      {"peer_name", r.name},
                      {"peer_address", r.address},
                      {"proxy_prefix", r.proxy_prefix}});
      s4->states[r.name];
      s4->connect(r.name);
    });
  }

  // -- links ------------------------------------------------------------------------------------
  /// Resolve + dial on the worker pool; `done(fd, error)` runs on the loop.
  /// Dials `ep` when given, else resolves `view` through the transport first.
  template <class F>
  void dial(ITransportHandle t, std::optional<sdk::Endpoint> ep, F done,
            std::shared_ptr<const sdk::PeerRecordView> view = nullptr) {
    auto timeout = tc().dial_timeout;
    asio::post(pool, [this, weak = std::weak_ptr<Impl>(shared_from_this()), t, ep, view, timeout,
                      done]() mutable {
      int fd = -1;
      std::string error;
      sdk::Endpoint target;
      if (ep) {
        target = *ep;
      } else {
        auto r = view ? t->resolve(*view)
                      : sdk::Result<sdk::Endpoint>(
                            sdk::Status::error(sdk::Errc::kInvalidArgument, "nothing to resolve"));
        if (!r)
          error = r.status().message;
        else
          target = r.value();
      }
      if (error.empty()) {
        auto d = t->dial(target, timeout);
        if (d)
          fd = d.value();
        else
          error = d.status().message;
      }
      asio::post(ioc, [weak, fd, error, done, target]() mutable {
        if (!weak.lock()) {
          if (fd >= 0) ::close(fd);
          return;
        }
        done(fd, error, target);
      });
    });
  }

  sdk::PeerRecordView view_of(const PeerRecord& r) {
    sdk::PeerRecordView v;
    v.name = r.name;
    v.address = parse_endpoint(r.address);
    v.transport = r.transport;
    // A listener-role record dials back only for control calls (address change, reconcile);
    // for local peers the other repo's path is where its current port is.
    v.repo_path = r.repo_path.empty() ? r.remote_repo_path : r.repo_path;
    return v;
  }

  void connect(const std::string& name) {
    if (stopping) return;
    auto* rec = registry.find(name);
    if (!rec || rec->role != "dialer") return;
    auto& st = states[name];
    if (st.link || st.dialing) return;
    if (!rec->removed_by_peer.empty()) {
      st.state = "removed by peer";
      return;
    }
    std::string why;
    auto t = transport(rec->transport, why);
    if (!t) {
      st.state = "disabled";
      st.last_error = why;
      fail_repair_waiters(st, "transport \"" + rec->transport + "\" is not available: " + why);
      return;
    }
    if (st.retry) st.retry->cancel();
    st.dialing = true;
    st.state = "connecting";
    std::weak_ptr<Impl> weak = shared_from_this();
    dial(
        t, std::nullopt,
        [weak, name](int fd, std::string error, sdk::Endpoint target) {
          auto self = weak.lock();
          if (!self) return;
          auto& ps = self->states[name];
          if (!self->registry.find(name)) {  // removed while dialing
            if (fd >= 0) ::close(fd);
            ps.dialing = false;
            return;
          }
          if (fd < 0) {
            ps.dialing = false;
            self->connect_failed(name, error);
            return;
          }
          self->handshake(name, fd, target);
        },
        std::make_shared<const sdk::PeerRecordView>(view_of(*rec)));
  }

  /// Opens an authenticated link to `rec` over the connected `fd` (peers/link_auth.hpp): TLS
  /// when the transport asks for it (pinned), the upgrade with our token id and nonce, then the
  /// other side's daemon id and proof are checked before anything derived from the token goes
  /// out. `done(link, error, http_status)` gets a link that is not started yet; its first frame
  /// must be `link.auth` with `auth_proof`.
  using LinkOpened = std::function<void(OutgoingLink, std::string error, int http_status)>;
  void open_link(const PeerRecord& rec, int fd, const sdk::Endpoint& target, LinkOpened done) {
    const std::string endpoints =
        binds_endpoints(rec.transport) ? peers::endpoint_binding(fd, /*initiator=*/true) : "";
    const std::string token = rec.token;
    const std::string peer_id = rec.daemon_id;
    const std::string tid = rec.transport;
    const std::string name = rec.name;
    std::weak_ptr<Impl> weak = shared_from_this();
    open_stream(
        tid, fd, rec.remote_cert_sha256,
        [weak, endpoints, token, peer_id, tid, name, target, done](
            std::optional<peerwire::AnyStream> stream, std::string cert, std::string error) {
          auto self = weak.lock();
          if (!self) return;
          if (!stream) {
            if (!cert.empty()) spdlog::warn("peer link refused peer={} reason=\"{}\"", name, error);
            done({}, error, 0);
            return;
          }
          namespace la = peers::link_auth;
          la::Transcript t;
          t.initiator_nonce = pairing::generate_nonce();
          t.token_id = la::token_id(token);
          t.initiator_daemon_id = self->opts.daemon_id;
          t.responder_daemon_id = peer_id;
          t.transport = tid;
          t.channel_binding = peers::channel_binding(endpoints, self->own_fingerprint(tid), cert);
          HeaderFields headers = {{la::kLinkHeader, la::kVersion},
                                  {la::kTokenIdHeader, t.token_id},
                                  {la::kNonceHeader, t.initiator_nonce},
                                  {la::kDaemonIdHeader, t.initiator_daemon_id}};
          PeerLink::connect(
              std::move(*stream), endpoint_text(target), std::move(headers), self->link_timing(),
              [weak, t, token, name, done](std::shared_ptr<PeerLink> link, std::string err,
                                           int status, HeaderFields got) mutable {
                auto me = weak.lock();
                if (!me || !link) {
                  if (link) link->close("daemon stopping");
                  done({}, err, status);
                  return;
                }
                t.responder_nonce = header(got, la::kNonceHeader);
                const std::string their_id = header(got, la::kDaemonIdHeader);
                const std::string their_proof = header(got, la::kProofHeader);
                std::string refusal;
                if (!peers::is_hex(t.responder_nonce, 64) || !peers::is_hex(their_proof, 64))
                  refusal =
                      "the other side did not authenticate (not a Thrum daemon of this version?); "
                      "refusing the link";
                else if (their_id != t.responder_daemon_id)
                  refusal =
                      "the other side is another daemon than the one we paired with (its daemon "
                      "id changed?); re-pair with 'thrum peer add' on " +
                      name + " and 'thrum peer join' here";
                else if (!pairing::equal_ct(their_proof, la::proof(token, la::Role::kResponder, t)))
                  refusal = "the other side could not prove it holds our token; refusing the link";
                if (!refusal.empty()) {
                  spdlog::warn("peer link refused peer={} reason=\"{}\"; nothing was sent", name,
                               refusal);
                  link->close(refusal);
                  done({}, refusal, 0);
                  return;
                }
                done(OutgoingLink{link, la::proof(token, la::Role::kInitiator, t)}, "", 101);
              });
        });
  }

  /// Sends the initiator's proof: the first frame on a link we opened.
  static void send_link_auth(const OutgoingLink& out) {
    std::weak_ptr<PeerLink> wl = out.link;
    out.link->call("link.auth", {{"proof", out.auth_proof}}, [wl](rpc::Outcome o) {
      if (o.ok()) return;
      if (auto l = wl.lock()) l->close("link.auth refused: " + o.error().message);
    });
  }

  void handshake(const std::string& name, int fd, sdk::Endpoint target) {
    auto* rec = registry.find(name);
    if (!rec) {
      ::close(fd);
      states[name].dialing = false;
      return;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    const std::string host = endpoint_text(target);
    open_link(
        *rec, fd, target, [weak, name, host](OutgoingLink out, std::string error, int status) {
          auto self = weak.lock();
          if (!self) return;
          auto& st = self->states[name];
          if (!out.link) {
            st.dialing = false;
            if (status == 401) {
              self->token_rejected(name);
              return;
            }
            self->connect_failed(name, error);
            return;
          }
          auto* peer = self->registry.find(name);
          if (!peer) {
            st.dialing = false;
            out.link->close("peer removed");
            return;
          }
          if (peer->address != host) {
            // Where the transport found the peer now (local: its current ws.port).
            spdlog::info("peer address updated peer={} from={} to={}", name, peer->address, host);
            peer->address = host;
            self->registry.save();
          }
          auto link = out.link;
          self->attach(name, link);
          send_link_auth(out);
          json hello = self->identity(peer->transport, self->own_address(peer->transport));
          link->call("peer.hello", hello, [weak, name, link](rpc::Outcome o) {
            auto me = weak.lock();
            if (!me) return;
            auto& cur = me->states[name];
            cur.dialing = false;
            if (!o.ok()) {
              link->close("hello refused: " + o.error().message);
              return;
            }
            auto id = peers::decode_identity(o.result(), "hello answer");
            if (!id) {
              link->close("malformed hello answer: " + id.error());
              return;
            }
            me->on_hello_answer(name, id.value());
            me->link_up(name);
          });
        });
  }

  void token_rejected(const std::string& name) {
    auto& st = states[name];
    st.state = "drift_reconcile_failed";
    st.last_error = "token rejected";
    if (auto* rec = registry.find(name)) {
      rec->reconcile_status = "drift_reconcile_failed";
      registry.save();
    }
    spdlog::warn("peer link refused by peer peer={} reason=\"token rejected\"; not retrying", name);
    fail_repair_waiters(
        st, "peer \"" + name +
                "\" no longer recognises our token; re-pair with 'thrum peer add' on " + name +
                " and 'thrum peer join' here");
  }

  void connect_failed(const std::string& name, const std::string& error) {
    auto& st = states[name];
    st.last_error = error;
    st.backoff.failures++;
    fail_repair_waiters(st, "cannot reach peer \"" + name + "\": " + error);
    if (st.backoff.failures == tc().reconcile_after_failures && st.reconcile_round == 0) {
      spdlog::info("peer reconcile scheduled peer={} after={} failed dials", name,
                   st.backoff.failures);
      schedule_reconcile(name, 0);
    }
    schedule_retry(name);
    spdlog::debug("peer dial failed peer={} failures={} error=\"{}\"", name, st.backoff.failures,
                  error);
  }

  void schedule_retry(const std::string& name) {
    if (stopping) return;
    auto& st = states[name];
    auto delay = timing::next_delay(st.backoff, tc(), rng);
    st.state = timing::quarantined(st.backoff, tc())
                   ? "quarantined"
                   : "backoff " + std::to_string((delay.count() + 999) / 1000) + "s";
    st.retry = std::make_shared<asio::steady_timer>(ioc, delay);
    std::weak_ptr<Impl> weak = shared_from_this();
    st.retry->async_wait([weak, name](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      self->connect(name);
    });
  }

  /// Makes `link` the live link for `name`, replacing any older one at once.
  void attach(const std::string& name, const std::shared_ptr<PeerLink>& link) {
    auto& st = states[name];
    if (st.link && st.link != link) st.link->close("replaced by a new link");
    st.link = link;
    st.generation++;
    st.inflight = 0;
    st.cursor = 0;
    st.presence_known = false;
    const uint64_t gen = st.generation;
    std::weak_ptr<Impl> weak = shared_from_this();
    auto on_request = [weak, name](const std::string& method, const json& params,
                                   rpc::Respond respond) {
      auto self = weak.lock();
      if (!self) return;
      self->on_peer_request(name, method, params, std::move(respond));
    };
    auto on_close = [weak, name, gen](const std::string& reason) {
      auto self = weak.lock();
      if (!self) return;
      self->link_down(name, gen, reason);
    };
    if (link->started())
      link->set_handlers(std::move(on_request), std::move(on_close));
    else
      link->start(std::move(on_request), std::move(on_close));
  }

  void link_up(const std::string& name) {
    auto& st = states[name];
    st.state = "connected";
    st.last_error.clear();
    st.backoff.healthy_since = Steady::now();
    st.reconcile_round = 0;
    if (st.reconcile_timer) st.reconcile_timer->cancel();
    if (auto* rec = registry.find(name)) {
      if (rec->reconcile_status == "drift_reconcile_failed") {
        rec->reconcile_status.clear();
        registry.save();
      }
      touch(*rec);
    }
    spdlog::info("peer link up peer={}", name);
    auto waiters = std::move(st.repair_waiters);
    st.repair_waiters.clear();
    for (auto& w : waiters) {
      auto* rec = registry.find(name);
      w(json{
          {"status", "repaired"}, {"peer_name", name}, {"peer_address", rec ? rec->address : ""}});
    }
    send_presence(st.link);
    pump(name);
    if (st.announce) announce(name);
  }

  void link_down(const std::string& name, uint64_t gen, const std::string& reason) {
    auto it = states.find(name);
    if (it == states.end()) return;
    auto& st = it->second;
    if (st.generation != gen) return;  // an older link, already replaced
    st.link.reset();
    st.inflight = 0;
    st.cursor = 0;
    st.presence_known = false;
    spdlog::info("peer link down peer={} reason=\"{}\"", name, reason);
    auto* rec = registry.find(name);
    if (!rec || stopping) return;
    if (rec->role == "dialer" && rec->removed_by_peer.empty()) {
      st.dialing = false;
      timing::on_disconnect(st.backoff, Steady::now(), tc());
      schedule_retry(name);
    } else if (rec->role == "listener") {
      st.state = rec->removed_by_peer.empty() ? "waiting for peer" : "removed by peer";
    }
  }

  void fail_repair_waiters(PeerState& st, const std::string& error) {
    auto waiters = std::move(st.repair_waiters);
    st.repair_waiters.clear();
    for (auto& w : waiters) w(rpc::Error{rpc::kHandlerError, error, nullptr});
  }

  /// An upgrade that asks for a link (peers/link_auth.hpp): find the pairing by the token id,
  /// check that the connection matches how it was paired, prove that we hold the token in the
  /// 101, and accept nothing on the link until the initiator's proof (link.auth) is good.
  void accept_link(std::unique_ptr<PeerUpgrade> up) {
    namespace la = peers::link_auth;
    la::Transcript t;
    t.token_id = header(up->request, la::kTokenIdHeader);
    t.initiator_nonce = header(up->request, la::kNonceHeader);
    t.initiator_daemon_id = header(up->request, la::kDaemonIdHeader);
    if (header(up->request, la::kLinkHeader) != la::kVersion ||
        !peers::is_hex(t.token_id, la::kTokenIdChars) || !peers::is_hex(t.initiator_nonce, 64) ||
        !peers::is_id_token(t.initiator_daemon_id, peers::kMaxIdBytes)) {
      spdlog::warn("peer link refused reason=\"malformed link request\" remote={}", up->remote);
      reject_upgrade(std::move(up), peerwire::http::status::bad_request,
                     "malformed Thrum link request (both sides must run the same thrum version)");
      return;
    }
    auto* rec = registry.find_by_token_id(t.token_id);
    if (!rec) {
      spdlog::warn("peer link refused reason=\"unknown token\" remote={}", up->remote);
      reject_upgrade(std::move(up), peerwire::http::status::unauthorized, "unknown peer token");
      return;
    }
    const std::string name = rec->name;
    // A token is only good on the transport it was paired over, never in the clear when that
    // transport runs over TLS, and only from the daemon it was paired with.
    std::string refusal;
    if (up->transport != rec->transport)
      refusal = "peer \"" + name + "\" is paired over " + rec->transport + ", not " + up->transport;
    else if (needs_tls(rec->transport) && !up->tls)
      refusal = "peer \"" + name + "\" must connect over TLS";
    else if (up->tls && !rec->remote_cert_sha256.empty() &&
             !pairing::equal_ct(up->peer_cert_sha256, rec->remote_cert_sha256))
      refusal = "peer \"" + name + "\" presented a different TLS certificate (sha256 " +
                tls::short_fp(up->peer_cert_sha256) + "…, pinned " +
                tls::short_fp(rec->remote_cert_sha256) + "…)";
    else if (t.initiator_daemon_id != rec->daemon_id)
      refusal = "peer \"" + name + "\" connected as another daemon id than the one it paired with";
    if (!refusal.empty()) {
      spdlog::warn("peer link refused reason=\"{}\" remote={}", refusal, up->remote);
      reject_upgrade(std::move(up), peerwire::http::status::forbidden,
                     "refused: the connection does not match how this peer was paired");
      return;
    }
    const std::string endpoints = binds_endpoints(rec->transport)
                                      ? peers::endpoint_binding(native_fd(up->stream), false)
                                      : "";
    t.responder_nonce = pairing::generate_nonce();
    t.responder_daemon_id = opts.daemon_id;
    t.transport = rec->transport;
    t.channel_binding =
        peers::channel_binding(endpoints, up->peer_cert_sha256, own_fingerprint(rec->transport));
    const std::string expected = la::proof(rec->token, la::Role::kInitiator, t);
    HeaderFields headers = {{la::kNonceHeader, t.responder_nonce},
                            {la::kDaemonIdHeader, t.responder_daemon_id},
                            {la::kProofHeader, la::proof(rec->token, la::Role::kResponder, t)}};
    const std::string remote = up->remote;
    std::weak_ptr<Impl> weak = shared_from_this();
    PeerLink::accept(
        std::move(up), link_timing(), std::move(headers),
        [weak, name, remote, expected](std::shared_ptr<PeerLink> link) {
          auto self = weak.lock();
          if (!self || !self->registry.find(name)) {
            if (link) link->close("peer removed");
            return;
          }
          link->set_max_frame_bytes(peers::kMaxPreAuthFrameBytes);
          auto deadline = std::make_shared<asio::steady_timer>(self->ioc, self->tc().dial_timeout);
          std::weak_ptr<PeerLink> wl = link;
          deadline->async_wait([wl, name](boost::system::error_code ec) {
            if (ec) return;
            if (auto l = wl.lock(); l && l->is_open()) {
              spdlog::warn("peer link refused peer={} reason=\"no link.auth in time\"", name);
              l->close("no link.auth in time");
            }
          });
          link->start(
              [weak, wl, name, remote, expected, deadline](
                  const std::string& method, const json& params, rpc::Respond respond) {
                auto me = weak.lock();
                auto l = wl.lock();
                if (!me || !l) return;
                deadline->cancel();
                auto proof =
                    method == "link.auth"
                        ? peers::decode_link_auth(params)
                        : peers::Decoded<std::string>(peers::Refusal{"link.auth must come first"});
                if (!proof || !pairing::equal_ct(proof.value(), expected)) {
                  spdlog::warn("peer link refused peer={} reason=\"{}\" remote={}", name,
                               proof ? "wrong proof" : proof.error(), remote);
                  respond(rpc::Error{rpc::kHandlerError, "link authentication failed", nullptr});
                  l->close("link authentication failed");
                  return;
                }
                respond(json{{"ok", true}});
                me->link_authenticated(name, remote, l);
              },
              [deadline](const std::string&) { deadline->cancel(); });
        });
  }

  /// The other side proved itself on a link it opened to us.
  void link_authenticated(const std::string& name, const std::string& remote,
                          const std::shared_ptr<PeerLink>& link) {
    auto* rec = registry.find(name);
    if (!rec) {
      link->close("peer removed");
      return;
    }
    link->set_max_frame_bytes(peers::kMaxFrameBytes);
    if (!binds_endpoints(rec->transport)) roamed(*rec, remote);
    if (rec->role == "dialer") {  // we dial them: this is a one-off call
      serve_control(name, link);
      return;
    }
    attach(name, link);
    states[name].state = "connected";
    spdlog::info("peer link accepted peer={}", name);
  }

  /// Inbound roaming (SPEC §7.3): a dialer that authenticated from a new source IP inside the
  /// transport's rule has moved; its listener port stays what it last told us.
  void roamed(PeerRecord& rec, const std::string& remote) {
    auto from = parse_endpoint(remote);
    auto stored = parse_endpoint(rec.address);
    if (rec.role != "listener" || from.ip.empty() || stored.ip.empty() || from.ip == stored.ip)
      return;
    std::string why;
    auto t = transport(rec.transport, why);
    if (!t) return;
    sdk::Endpoint moved{from.ip, stored.port};
    auto ok = t->validate_address_change(stored, moved);
    if (!ok) {
      spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", rec.name,
                   rec.address, endpoint_text(moved), ok.message);
      states[rec.name].address_rejected = ok.message;
      return;
    }
    spdlog::info("peer roamed peer={} from={} to={}", rec.name, rec.address, endpoint_text(moved));
    rec.address = endpoint_text(moved);
    states[rec.name].address_rejected.clear();
    registry.save();
  }

  /// A link the other side opened to us although we are its dialer: it carries one control call
  /// (its address changed, or it reconciles) and is then closed by the caller.
  void serve_control(const std::string& name, const std::shared_ptr<PeerLink>& link) {
    std::weak_ptr<Impl> weak = shared_from_this();
    link->set_handlers(
        [weak, name](const std::string& method, const json& params, rpc::Respond respond) {
          auto self = weak.lock();
          if (!self) return;
          auto* rec = self->registry.find(name);
          if (!rec) {
            respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
            return;
          }
          if (method == "peer.address_changed") {
            self->on_address_changed(name, params, std::move(respond));
          } else if (method == "peer.repair" || method == "peer.hello") {
            auto id = peers::decode_identity(params, "params");
            if (!id) {
              respond(rpc::Error{rpc::kInvalidParams, id.error(), nullptr});
              return;
            }
            self->on_hello_answer(name, id.value());
            respond(self->identity(rec->transport, self->own_address(rec->transport)));
            // They could reach us, so our own link to them is worth trying now.
            auto& st = self->states[name];
            if (!st.link && !st.dialing) {
              st.backoff.failures = 0;
              self->connect(name);
            }
          } else {
            respond(rpc::Error{rpc::kMethodNotFound,
                               "method '" + method + "' is not served on a control link", nullptr});
          }
        },
        [](const std::string&) {});
  }

  /// `peer.address_changed {new_ip, new_port}` from an authenticated peer (SPEC §7.3).
  void on_address_changed(const std::string& name, const json& p, rpc::Respond respond) {
    auto* rec = registry.find(name);
    if (!rec) {
      respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
      return;
    }
    auto change = peers::decode_address_change(p);
    if (!change) {
      respond(rpc::Error{rpc::kInvalidParams, change.error(), nullptr});
      return;
    }
    const sdk::Endpoint next = change.value();
    const sdk::Endpoint old = parse_endpoint(rec->address);
    auto& st = states[name];
    if (old == next) {
      respond(json{{"ok", true}, {"address", rec->address}});
      return;
    }
    std::string why;
    auto t = transport(rec->transport, why);
    sdk::Status verdict =
        t ? t->validate_address_change(old, next)
          : sdk::Status::error(sdk::Errc::kUnavailable, "transport not available: " + why);
    if (!verdict) {
      st.address_rejected = verdict.message;
      spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", name,
                   rec->address, endpoint_text(next), verdict.message);
      respond(
          rpc::Error{rpc::kHandlerError, "address change rejected: " + verdict.message, nullptr});
      return;
    }
    spdlog::info("peer address changed peer={} from={} to={}", name, rec->address,
                 endpoint_text(next));
    rec->address = endpoint_text(next);
    st.address_rejected.clear();
    registry.save();
    respond(json{{"ok", true}, {"address", rec->address}});
    if (rec->role == "dialer" && !st.link) {
      // Stop waiting out a backoff towards the old address.
      st.backoff.failures = 0;
      if (!st.dialing) connect(name);
    }
  }

  /// Opens a short link to `name` with our token, makes one call and closes it. `done(outcome,
  /// answered)`: `answered` is false when the peer could not be reached (then retrying helps).
  void control_call(const std::string& name, const std::string& method, const json& params,
                    std::function<void(rpc::Outcome, bool answered, int http_status)> done) {
    auto* rec = registry.find(name);
    std::string why;
    auto t = rec ? transport(rec->transport, why) : nullptr;
    if (!t) {
      done(rpc::Error{rpc::kHandlerError, rec ? why : "peer removed", nullptr}, false, 0);
      return;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    dial(
        t, std::nullopt,
        [weak, name, method, params, done](int fd, std::string error, sdk::Endpoint target) {
          auto self = weak.lock();
          if (!self) {
            if (fd >= 0) ::close(fd);
            return;
          }
          auto* r = self->registry.find(name);
          if (fd < 0 || !r) {
            if (fd >= 0) ::close(fd);
            done(rpc::Error{rpc::kHandlerError, r ? error : "peer removed", nullptr}, false, 0);
            return;
          }
          self->open_link(
              *r, fd, target, [method, params, done](OutgoingLink out, std::string e, int status) {
                if (!out.link) {
                  done(rpc::Error{rpc::kHandlerError, e, nullptr}, status == 401 || status == 403,
                       status);
                  return;
                }
                auto link = out.link;
                link->start(
                    [](const std::string&, const json&, rpc::Respond answer) {
                      answer(rpc::Error{rpc::kMethodNotFound, "control link", nullptr});
                    },
                    [](const std::string&) {});
                send_link_auth(out);
                link->call(method, params, [link, done](rpc::Outcome o) {
                  const bool closed_early = !o.ok() && o.error().code == PeerLink::kClosedCode;
                  link->close("control call done");
                  done(std::move(o), !closed_early, 101);
                });
              });
        },
        std::make_shared<const sdk::PeerRecordView>(view_of(*rec)));
  }

  /// Tells `name` our new address (SPEC §7.3): over the live link when there is one, else by
  /// dialing its last known address with the token; retried with backoff until answered.
  void announce(const std::string& name) {
    auto* rec = registry.find(name);
    if (!rec || stopping) return;
    auto& st = states[name];
    if (!st.announce || st.announcing) return;
    const sdk::Endpoint ep = *st.announce;
    json params{{"new_ip", ep.ip}, {"new_port", ep.port}};
    std::weak_ptr<Impl> weak = shared_from_this();
    auto finish = [weak, name, ep](rpc::Outcome o, bool answered, int status) {
      auto self = weak.lock();
      if (!self) return;
      auto& ps = self->states[name];
      ps.announcing = false;
      if (!ps.announce || !(*ps.announce == ep)) {  // superseded by a newer change
        self->announce(name);
        return;
      }
      if (o.ok()) {
        ps.announce.reset();
        spdlog::info("address change accepted by peer={} address={}", name, endpoint_text(ep));
        return;
      }
      if (status == 401) {
        ps.announce.reset();
        self->token_rejected(name);
        return;
      }
      if (answered) {
        ps.announce.reset();
        spdlog::warn("address change refused by peer={} address={} reason=\"{}\"", name,
                     endpoint_text(ep), o.error().message);
        return;
      }
      ps.announce_backoff.failures++;
      auto delay = timing::next_delay(ps.announce_backoff, self->tc(), self->rng);
      spdlog::debug("address change not delivered peer={} retry_in_ms={} error=\"{}\"", name,
                    delay.count(), o.error().message);
      ps.announce_timer = std::make_shared<asio::steady_timer>(self->ioc, delay);
      ps.announce_timer->async_wait([weak, name](boost::system::error_code ec) {
        if (auto s2 = weak.lock(); s2 && !ec) s2->announce(name);
      });
    };
    st.announcing = true;
    if (st.link && st.link->is_open()) {
      st.link->call("peer.address_changed", params, [finish](rpc::Outcome o) {
        // The link may die under the call (our old address is gone): that is no answer, so
        // it is retried over the next link or a control call, not taken as a refusal.
        const bool answered = o.ok() || o.error().code != PeerLink::kClosedCode;
        finish(std::move(o), answered, 101);
      });
      return;
    }
    if (rec->role == "dialer") {
      st.announcing = false;  // link_up() tells it over the link
      return;
    }
    control_call(name, "peer.address_changed", params, finish);
  }

  /// Reconcile a listener-role peer that has not linked (SPEC §7.3): dial its last known
  /// address with the token and exchange identities via `peer.repair`.
  void reconcile_listener_side(const std::string& name, int round) {
    auto* rec = registry.find(name);
    if (!rec || stopping || rec->role != "listener" || !rec->removed_by_peer.empty() ||
        rec->reconcile_status == "drift_reconcile_failed")
      return;
    auto& st = states[name];
    if (st.link) return;
    st.reconcile_round = round;
    std::weak_ptr<Impl> weak = shared_from_this();
    control_call(name, "peer.repair", identity(rec->transport, own_address(rec->transport)),
                 [weak, name, round](rpc::Outcome o, bool answered, int status) {
                   auto self = weak.lock();
                   if (!self) return;
                   if (o.ok()) {
                     auto id = peers::decode_identity(o.result(), "repair answer");
                     if (id) {
                       self->on_hello_answer(name, id.value());
                       spdlog::info("peer reconciled peer={}", name);
                       return;
                     }
                     spdlog::warn("peer reconcile failed peer={} error=\"{}\"", name, id.error());
                   }
                   if (status == 401) {
                     self->token_rejected(name);
                     return;
                   }
                   (void)answered;
                   self->schedule_reconcile(name, round + 1);
                 });
  }

  /// Reconcile attempt `round` (0-based) after the brief's waits: 2 s, 8 s, 30 s.
  void schedule_reconcile(const std::string& name, int round) {
    if (round >= 3 || stopping) return;
    auto& st = states[name];
    auto wait = tc().reconcile_waits[round];
    st.reconcile_timer = std::make_shared<asio::steady_timer>(ioc, wait);
    std::weak_ptr<Impl> weak = shared_from_this();
    st.reconcile_timer->async_wait([weak, name, round](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      auto* rec = self->registry.find(name);
      if (!rec) return;
      auto& ps = self->states[name];
      if (ps.link || rec->reconcile_status == "drift_reconcile_failed") return;
      spdlog::info("peer reconcile peer={} attempt={}", name, round + 1);
      if (rec->role == "listener") {
        self->reconcile_listener_side(name, round);
        return;
      }
      ps.reconcile_round = round + 1;
      if (!ps.dialing) {
        if (ps.retry) ps.retry->cancel();
        self->connect(name);
      }
      self->schedule_reconcile(name, round + 1);
    });
  }

  /// What a peer says about itself on hello/repair. Its identity (daemon id, repo path, git
  /// URL, names) was fixed at pairing and the link proved the daemon id: a hello cannot change
  /// them (re-pairing does). Only where a dialer listens may move, under the transport's rule.
  void on_hello_answer(const std::string& name, const peers::Identity& id) {
    auto* rec = registry.find(name);
    if (!rec) return;
    auto& st = states[name];
    const bool differs =
        (!id.repo_path.empty() && id.repo_path != rec->remote_repo_path) ||
        (!id.git_origin_url.empty() && id.git_origin_url != rec->remote_git_origin_url) ||
        (!id.daemon_id.empty() && id.daemon_id != rec->daemon_id);
    if (differs && !st.identity_warned) {
      st.identity_warned = true;
      spdlog::warn(
          "peer identity differs from the pairing peer={}; kept the paired one (re-pair to "
          "update it)",
          name);
    }
    if (rec->role != "listener") return;
    // Where the dialer listens (for our address announcements), checked against the rule.
    auto next = parse_endpoint(id.address);
    auto cur = parse_endpoint(rec->address);
    if (next.ip.empty() || next.port == 0 || next == cur) return;
    std::string why;
    auto t = transport(rec->transport, why);
    auto ok = !t || cur.ip.empty() ? sdk::Status::success() : t->validate_address_change(cur, next);
    if (ok) {
      rec->address = endpoint_text(next);
      registry.save();
    } else {
      st.address_rejected = ok.message;
      spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", name,
                   rec->address, endpoint_text(next), ok.message);
    }
  }

  void on_upgrade(std::unique_ptr<PeerUpgrade> up) {
    if (stopping) return;
    if (up->request.find(peerwire::http::field::authorization) != up->request.end()) {
      // An older thrum sends its token in the clear; this one never accepts that.
      spdlog::warn("peer link refused reason=\"bearer token (older thrum)\" remote={}", up->remote);
      reject_upgrade(
          std::move(up), peerwire::http::status::unauthorized,
          "this daemon no longer accepts bearer tokens: upgrade thrum on the other side, "
          "then run 'thrum peer join --type repair <name>' there");
      return;
    }
    if (up->request.find(peers::link_auth::kLinkHeader) != up->request.end())
      accept_link(std::move(up));
    else
      accept_pairing(std::move(up));
  }

  /// Listeners for every transport that has peers, and our addresses: told to peers when they
  /// moved since the last run.
  void start_listeners() {
    std::set<std::string> used;
    for (const auto& rec : registry.peers()) used.insert(rec.transport);
    for (const auto& id : used) {
      std::string why;
      auto t = transport(id, why);
      if (!t) continue;
      ensure_listener(id, t, "", [this, id](std::optional<sdk::Endpoint> ep, std::string error) {
        if (!ep) {
          spdlog::error("peer listener not started transport={} error=\"{}\"", id, error);
          for (const auto& rec : registry.peers())
            if (rec.transport == id) states[rec.name].last_error = "no listener: " + error;
          return;
        }
        advertised(id, *ep);
      });
    }
  }

  void boot_reconcile() {
    auto timer = std::make_shared<asio::steady_timer>(ioc, tc().boot_reconcile_delay);
    std::weak_ptr<Impl> weak = shared_from_this();
    timer->async_wait([weak, timer](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopping) return;
      int started = 0;
      for (const auto& rec : self->registry.peers()) {
        auto& st = self->states[rec.name];
        if (st.link || st.dialing || !rec.removed_by_peer.empty() ||
            rec.reconcile_status == "drift_reconcile_failed")
          continue;
        // At most reconcile_parallel at once; the rest follow one wait later.
        auto delay = (started++ / self->tc().reconcile_parallel) * self->tc().boot_reconcile_delay;
        auto t2 = std::make_shared<asio::steady_timer>(self->ioc, delay);
        const std::string name = rec.name;
        t2->async_wait([weak, t2, name](boost::system::error_code e2) {
          auto s2 = weak.lock();
          if (e2 || !s2 || s2->stopping) return;
          auto* r = s2->registry.find(name);
          if (!r || s2->states[name].link) return;
          spdlog::info("peer boot reconcile peer={}", name);
          if (r->role == "listener") {
            s2->reconcile_listener_side(name, 0);
          } else if (!s2->states[name].dialing) {
            if (auto& retry = s2->states[name].retry) retry->cancel();
            s2->connect(name);
          }
        });
      }
    });
  }

  // -- requests from an authenticated peer ------------------------------------------------------
  void on_peer_request(const std::string& name, const std::string& method, const json& p,
                       rpc::Respond respond) {
    auto* rec = registry.find(name);
    if (!rec) {
      respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
      return;
    }
    if (method == "peer.address_changed") {
      on_address_changed(name, p, std::move(respond));
      return;
    }
    if (method == "peer.hello" || method == "peer.repair") {
      auto id = peers::decode_identity(p, "params");
      if (!id) {
        respond(rpc::Error{rpc::kInvalidParams, id.error(), nullptr});
        return;
      }
      on_hello_answer(name, id.value());
      touch(*rec);
      respond(identity(rec->transport, own_address(rec->transport)));
      auto& st = states[name];
      if (st.link) {
        send_presence(st.link);
        pump(name);
      }
      return;
    }
    if (method == "peer.deliver") {
      on_deliver(*rec, p, std::move(respond));
      return;
    }
    if (method == "peer.receipt") {
      on_receipts(*rec, p, std::move(respond));
      return;
    }
    if (method == "peer.presence") {
      auto agents = peers::decode_presence(p);
      if (!agents) {
        respond(rpc::Error{rpc::kInvalidParams, agents.error(), nullptr});
        return;
      }
      auto& st = states[name];
      st.presence.clear();
      for (auto& a : agents.value()) st.presence[a.name] = {a.status, a.role};
      st.presence_known = true;
      respond(json{{"ok", true}});
      return;
    }
    if (method == "peer.who_has") {
      auto file = peers::decode_who_has(p);
      if (!file) {
        respond(rpc::Error{rpc::kInvalidParams, file.error(), nullptr});
        return;
      }
      local_who_has(file.value(), [respond](json agents) { respond(json{{"agents", agents}}); });
      return;
    }
    if (method == "peer.removed") {
      rec->removed_by_peer = now_rfc3339();
      registry.save();
      spdlog::warn("peer removed us peer={}", name);
      auto& st = states[name];
      st.state = "removed by peer";
      respond(json{{"ok", true}});
      if (st.link) {
        auto link = st.link;
        auto t = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
        t->async_wait([link, t](boost::system::error_code) { link->close("removed by peer"); });
      }
      return;
    }
    respond(rpc::Error{rpc::kMethodNotFound, "method '" + method + "' is not registered", nullptr});
  }

  /// `peer.deliver`: {"items": [message, ...]} (what we send), or one message as the params
  /// (answered in the single form). Applied in order, committed, then answered: one result per
  /// item, so the answer is never larger than a small multiple of the request. Who sent it is
  /// the authenticated link's peer, never what a frame claims (dedup keys on its daemon id).
  void on_deliver(const PeerRecord& rec, const json& p, rpc::Respond respond) {
    auto req = peers::decode_deliver(p);
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
      peers::DeliverItem& d = items[i].value();
      InboundMessage in;
      in.peer = rec.name;
      in.prefix = rec.proxy_prefix;
      in.origin_daemon = rec.daemon_id;
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
    std::weak_ptr<Impl> weak = shared_from_this();
    messaging.apply_inbound(
        ins, [weak, name, respond, batch, results, slot](std::vector<InboundResult> rs) {
          auto self = weak.lock();
          if (!self) return;
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
          if (auto* r = self->registry.find(name); r && stored > 0) self->touch(*r, stored);
          if (batch)
            respond(json{{"results", std::move(*results)}});
          else
            respond(std::move((*results)[0]));
        });
  }

  /// `peer.receipt`: {"items": [receipt, ...]}, or one receipt as the params. Only delivery rows
  /// of this peer's own proxies can be marked read. One durable write for all.
  void on_receipts(const PeerRecord& rec, const json& p, rpc::Respond respond) {
    auto req = peers::decode_receipt(p);
    if (!req) {
      respond(rpc::Error{rpc::kInvalidParams, req.error(), nullptr});
      return;
    }
    struct Receipt {
      std::string id, recipient, at;
    };
    std::vector<Receipt> receipts;
    auto results = std::make_shared<json>(json::array());
    const std::string now = now_rfc3339();
    for (auto& r : req.value().items) {
      if (!r) {
        results->push_back(json{{"refused", r.error()}});
        continue;
      }
      results->push_back(json{{"ok", true}});
      receipts.push_back(Receipt{r.value().message_id, rec.proxy_prefix + ":" + r.value().reader,
                                 r.value().read_at.empty() ? now : r.value().read_at});
    }
    const bool batch = req.value().batched;
    store.write(
        [receipts](sql::Db& db) {
          for (const auto& r : receipts)
            db.cached(
                  "UPDATE deliveries SET read_at=COALESCE(read_at, ?1) WHERE message_id=?2 AND "
                  "recipient_id=?3")
                .bind(1, r.at)
                .bind(2, r.id)
                .bind(3, r.recipient)
                .run();
        },
        [respond, batch, results](std::exception_ptr err) {
          if (err) {
            respond(rpc::Error{rpc::kHandlerError, err_text(err), nullptr});
            return;
          }
          if (!batch) {
            respond(std::move((*results)[0]));
            return;
          }
          respond(json{{"results", std::move(*results)}});
        });
  }

  void send_presence(const std::shared_ptr<PeerLink>& link) {
    if (!link || !link->is_open()) return;
    json agents = json::array();
    for (const auto& [id, a] : messaging.agents())
      if (!a.is_proxy())
        agents.push_back(
            {{"name", id}, {"role", a.role}, {"status", a.active() ? "active" : "offline"}});
    link->call("peer.presence", {{"agents", agents}}, [](rpc::Outcome) {});
  }

  // -- outbox -----------------------------------------------------------------------------------
  /// New rows may be in `name`'s outbox (a send or a read receipt committed, the link came up):
  /// send what the window allows, once per loop turn however many kicks arrive in it.
  void pump(const std::string& name) {
    auto it = states.find(name);
    if (it == states.end()) return;
    it->second.backlog = true;
    schedule_pump(name, it->second);
  }

  void schedule_pump(const std::string& name, PeerState& st) {
    if (st.pump_posted) return;
    st.pump_posted = true;
    std::weak_ptr<Impl> weak = shared_from_this();
    asio::post(ioc, [weak, name] {
      if (auto self = weak.lock()) self->pump_now(name);
    });
  }

  /// One outbox row on its way: what the answer needs to settle it.
  struct SentRow {
    int64_t id;
    std::string kind, message_id;
    json queued;  // the delivery rows it settles (kind "deliver")
  };

  void pump_now(const std::string& name) {
    auto it = states.find(name);
    if (it == states.end()) return;
    auto& st = it->second;
    st.pump_posted = false;
    if (!st.link || !st.link->is_open()) return;
    // A frame carries consecutive rows of one kind: up to kMaxBatch rows, ~kMaxBatchBytes.
    while (st.backlog && st.inflight < kMaxFramesInFlight) {
      std::string kind;
      std::string items;  // the rows' params, comma-separated
      std::vector<SentRow> rows;
      std::vector<SentRow> too_large;  // rows no frame can carry: failed, never retried
      size_t bytes = 0;
      int64_t fetched = 0;
      bool more = false;  // rows past this frame are known to wait
      {
        auto q = store.reader().cached(
            "SELECT id, kind, message_id, payload FROM outbox WHERE peer=?1 AND id>?2 ORDER BY "
            "id LIMIT ?3");
        q.bind(1, name).bind(2, st.cursor).bind(3, kMaxBatch);
        while (q.step()) {
          ++fetched;
          std::string k = q.text(1);
          std::string text = q.text(3);
          if (!rows.empty() && (k != kind || bytes + text.size() > kMaxBatchBytes)) {
            more = true;
            break;
          }
          SentRow row{q.integer(0), k, q.text(2), json::array()};
          // "<wire params>\n<queued recipients>" (see OutboxItem): the params go out as stored.
          // A deliver row without the newline was queued by an older build, with the
          // recipients inside the params.
          if (auto nl = text.find('\n'); nl != std::string::npos) {
            row.queued =
                parse_bounded(std::string_view(text).substr(nl + 1)).value_or(json::array());
            text.resize(nl);
          } else if (k == "deliver") {
            json payload = parse_bounded(text).value_or(json::object());
            if (!payload.is_object()) payload = json::object();
            if (auto qr = payload.find("queued_recipients"); qr != payload.end()) {
              row.queued = std::move(*qr);
              payload.erase(qr);
            }
            text = payload.dump(-1, ' ', false, json::error_handler_t::replace);
          }
          if (!row.queued.is_array()) row.queued = json::array();
          st.cursor = row.id;
          if (text.size() > peers::kMaxRowBytes) {
            spdlog::error(
                "peer delivery failed peer={} message={} reason=\"encodes to {} bytes, over the "
                "link frame limit\"",
                name, row.message_id, text.size());
            too_large.push_back(std::move(row));
            continue;
          }
          kind = std::move(k);
          bytes += text.size();
          if (!items.empty()) items += ',';
          items += text;
          rows.push_back(std::move(row));
        }
      }
      // A full page may have more behind it.
      st.backlog = more || fetched == kMaxBatch;
      if (!too_large.empty()) {
        std::vector<peers::DeliverOutcome> failed(too_large.size());
        for (auto& f : failed)
          f.refused = "too large to cross a peer link (over " +
                      std::to_string(peers::kMaxRowBytes) + " bytes once encoded)";
        acknowledged(name, too_large, failed);
      }
      if (rows.empty()) {
        if (st.backlog) continue;
        return;
      }
      send_frame(name, st, kind, items, std::move(rows));
    }
  }

  void send_frame(const std::string& name, PeerState& st, const std::string& kind,
                  const std::string& items, std::vector<SentRow> rows) {
    st.inflight++;
    const uint64_t gen = st.generation;
    std::weak_ptr<Impl> weak = shared_from_this();
    const std::string method = kind == "receipt" ? "peer.receipt" : "peer.deliver";
    st.link->call_text(
        method, "{\"items\":[" + items + "]}",
        [weak, name, gen, rows = std::move(rows)](rpc::Outcome o) {
          auto self = weak.lock();
          if (!self) return;
          auto sit = self->states.find(name);
          if (sit == self->states.end() || sit->second.generation != gen)
            return;  // resent on the next link
          auto& cur = sit->second;
          cur.inflight--;
          std::string problem;
          std::vector<peers::DeliverOutcome> outcomes;
          if (!o.ok()) {
            problem = o.error().message;
          } else if (rows.front().kind == "receipt") {
            if (peers::receipt_answer_ok(o.result(), rows.size()))
              outcomes.resize(rows.size());
            else
              problem = "malformed receipt answer";
          } else if (auto d = peers::decode_deliver_answer(o.result(), rows.size())) {
            outcomes = std::move(d).value();
          } else {
            problem = "malformed answer: " + d.error();
          }
          if (!problem.empty()) {
            // The link is going away (its close resets the cursor) or the peer
            // failed to store: leave the rows for the next link.
            spdlog::debug("peer delivery not acknowledged peer={} rows={} error=\"{}\"", name,
                          rows.size(), problem);
          } else {
            self->acknowledged(name, rows, outcomes);
          }
          // What committed while the frame was out leaves now, together.
          if (cur.backlog) self->schedule_pump(name, cur);
        });
  }

  /// The peer answered for `rows` (one result each, in order): delete the rows, settle their
  /// delivery rows and remember the peer's ids, in one store job. The job does not wait for an
  /// fsync (Durability::kDeferred): if it is lost with a power cut, the rows are sent again
  /// and the peer answers a redelivery with the id it gave the first time.
  void acknowledged(const std::string& name, const std::vector<SentRow>& rows,
                    const std::vector<peers::DeliverOutcome>& results) {
    struct Ack {
      int64_t row_id;
      bool deliver;
      std::string message_id, remote_id, refused;
      std::vector<std::string> recipients;
    };
    std::vector<Ack> acks;
    acks.reserve(rows.size());
    int64_t delivered = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      Ack a{rows[i].id,         rows[i].kind == "deliver",
            rows[i].message_id, results[i].message_id,
            results[i].refused, {}};
      if (!a.refused.empty())
        spdlog::warn("peer refused message peer={} message={} reason=\"{}\"", name, a.message_id,
                     a.refused);
      for (const auto& r : rows[i].queued)
        if (r.is_string()) a.recipients.push_back(r.get<std::string>());
      if (a.deliver) ++delivered;
      acks.push_back(std::move(a));
    }
    const std::string now = now_rfc3339();
    store.write(
        [name, acks = std::move(acks), now](sql::Db& db) {
          for (const auto& a : acks) {
            db.cached("DELETE FROM outbox WHERE id=?1").bind(1, a.row_id).run();
            if (!a.deliver) continue;
            for (const auto& r : a.recipients) {
              if (a.refused.empty())
                db.cached(
                      "UPDATE deliveries SET delivered_at=?1 WHERE message_id=?2 AND "
                      "recipient_id=?3")
                    .bind(1, now)
                    .bind(2, a.message_id)
                    .bind(3, r)
                    .run();
              else
                db.cached("UPDATE deliveries SET failed=?1 WHERE message_id=?2 AND recipient_id=?3")
                    .bind(1, a.refused)
                    .bind(2, a.message_id)
                    .bind(3, r)
                    .run();
            }
            if (!a.remote_id.empty())
              db.cached(
                    "INSERT OR REPLACE INTO message_map(peer, local_id, remote_id) "
                    "VALUES(?1,?2,?3)")
                  .bind(1, name)
                  .bind(2, a.message_id)
                  .bind(3, a.remote_id)
                  .run();
          }
        },
        [](std::exception_ptr err) {
          if (err) spdlog::error("outbox ack failed error=\"{}\"", err_text(err));
        },
        Store::Durability::kDeferred);
    if (auto* rec = registry.find(name)) touch(*rec, delivered);
  }

  int64_t queued_count(const std::string& name) {
    auto q = store.reader().cached("SELECT count(*) FROM outbox WHERE peer=?1 AND kind='deliver'");
    q.bind(1, name);
    q.step();
    return q.integer(0);
  }

  // -- who-has ----------------------------------------------------------------------------------
  void local_who_has(const std::string& file, std::function<void(json)> done) {
    std::map<std::string, std::vector<std::string>> by_worktree;
    for (const auto& [id, a] : messaging.agents())
      if (!a.is_proxy() && !a.worktree.empty()) by_worktree[a.worktree].push_back(id);
    asio::post(pool,
               [this, weak = std::weak_ptr<Impl>(shared_from_this()), by_worktree, file, done] {
                 json agents = json::array();
                 for (const auto& [wt, ids] : by_worktree)
                   if (!file.empty() && has_changes(wt, file))
                     for (const auto& id : ids) agents.push_back(id);
                 asio::post(ioc, [weak, agents, done] {
                   if (weak.lock()) done(agents);
                 });
               });
  }

  void h_who_has(const json& p, rpc::Respond respond) {
    rpc::Params params(p);
    std::string file = params.str("file");
    struct Gather {
      json agents = json::array();
      int pending = 1;
      rpc::Respond respond;
      bool done = false;
    };
    auto g = std::make_shared<Gather>();
    g->respond = respond;
    auto finish = [g] {
      if (--g->pending == 0 && !g->done) {
        g->done = true;
        g->respond(json{{"agents", g->agents}});
      }
    };
    for (auto& [name, st] : states) {
      if (!st.link || !st.link->is_open()) continue;
      auto* rec = registry.find(name);
      if (!rec) continue;
      g->pending++;
      std::string prefix = rec->proxy_prefix;
      st.link->call("peer.who_has", {{"file", file}}, [g, prefix, finish](rpc::Outcome o) {
        if (o.ok())
          if (auto agents = peers::decode_who_has_answer(o.result()))
            for (const auto& a : agents.value())
              g->agents.push_back({{"agent_id", prefix + ":" + a}, {"via_peer", true}});
        finish();
      });
    }
    // A peer that does not answer in time is left out rather than holding the answer.
    auto t = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(3));
    t->async_wait([g, t](boost::system::error_code) {
      if (!g->done) {
        g->done = true;
        g->respond(json{{"agents", g->agents}, {"incomplete", true}});
      }
    });
    local_who_has(file, [g, finish](json local) {
      for (const auto& a : local) g->agents.push_back({{"agent_id", a}, {"via_peer", false}});
      finish();
    });
  }

  // -- list / status / remove / configure / repair ----------------------------------------------
  json describe(const PeerRecord& r) {
    json j = r.to_json(false);
    j["has_token"] = !r.token.empty();
    auto it = states.find(r.name);
    std::string state = "idle";
    if (it != states.end()) state = it->second.state;
    if (!r.reconcile_status.empty()) state = r.reconcile_status;
    if (!r.removed_by_peer.empty()) state = "removed by peer";
    std::string why;
    if (!transport(r.transport, why)) state = "disabled";
    if (r.role == "listener" && (it == states.end() || !it->second.link) && state != "disabled" &&
        r.removed_by_peer.empty() && r.reconcile_status.empty())
      state = "waiting for peer";
    if (it != states.end() && !it->second.address_rejected.empty() && state != "disabled" &&
        r.reconcile_status.empty() && r.removed_by_peer.empty() && !it->second.link)
      state = "address change rejected: " + it->second.address_rejected;
    j["state"] = state;
    if (it != states.end() && !it->second.last_error.empty())
      j["last_error"] = it->second.last_error;
    if (state == "disabled" && !why.empty())
      j["last_error"] = "transport \"" + r.transport + "\" is not available: " + why;
    j["queued"] = queued_count(r.name);
    j["connected"] = it != states.end() && it->second.link != nullptr;
    return j;
  }

  void h_list(rpc::Respond respond) {
    json peers = json::array();
    for (const auto& r : registry.peers()) peers.push_back(describe(r));
    respond(json{{"peers", peers}});
  }

  PeerRecord& require_peer(const std::string& name) {
    auto* rec = registry.find(name);
    if (!rec) {
      std::string names;
      for (const auto& r : registry.peers()) names += (names.empty() ? "" : ", ") + r.name;
      fail("peer \"" + name + "\" not found" +
           (names.empty() ? " (no peers paired)" : " (paired: " + names + ")"));
    }
    return *rec;
  }

  void h_remove(const json& p, rpc::Respond respond) {
    rpc::Params params(p);
    std::string name = params.str("name");
    PeerRecord rec = require_peer(name);
    auto& st = states[name];
    bool told = false;
    if (st.link && st.link->is_open()) {
      st.link->notify("peer.removed", json::object());
      told = true;
      auto link = st.link;
      // Close right after the notice is written; the link is dead to us from now on.
      auto t = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
      t->async_wait([link, t](boost::system::error_code) { link->close("peer removed"); });
    }
    if (st.retry) st.retry->cancel();
    fail_repair_waiters(st, "peer \"" + name + "\" was removed");
    st.generation++;  // late answers on the old link are ignored
    states.erase(name);
    registry.remove(name);
    auto dropped = std::make_shared<int64_t>(0);
    std::string prefix = rec.proxy_prefix;
    std::weak_ptr<Impl> weak = shared_from_this();
    store.write(
        [name, dropped, prefix](sql::Db& db) {
          auto c = db.cached("SELECT count(*) FROM outbox WHERE peer=?1 AND kind='deliver'");
          c.bind(1, name);
          if (c.step()) *dropped = c.integer(0);
          db.cached("DELETE FROM outbox WHERE peer=?1").bind(1, name).run();
          db.cached("DELETE FROM message_map WHERE peer=?1").bind(1, name).run();
          db.cached(
                "UPDATE deliveries SET failed='peer removed' WHERE delivered_at IS NULL AND "
                "failed IS NULL AND substr(recipient_id, 1, length(?1) + 1) = ?1 || ':'")
              .bind(1, prefix)
              .run();
        },
        [weak, name, dropped, told, respond](std::exception_ptr err) {
          auto self = weak.lock();
          if (!self) return;
          if (err) {
            respond(rpc::Error{rpc::kHandlerError,
                               "removed, but could not drop its queue: " + err_text(err), nullptr});
            return;
          }
          self->messaging.remove_proxies(name, "", [name, dropped, told, respond](std::string e) {
            if (!e.empty()) spdlog::error("proxy cleanup failed peer={} error=\"{}\"", name, e);
            spdlog::info("peer removed peer={} dropped_queued={} told_peer={}", name, *dropped,
                         told);
            respond(json{{"removed", name}, {"dropped", *dropped}, {"told_peer", told}});
          });
        });
  }

  void h_configure(const json& p, rpc::Respond respond) {
    rpc::Params params(p);
    std::string name = params.str("peer");
    std::string action = params.str("action");
    std::string value = params.str("value");
    PeerRecord& rec = require_peer(name);
    std::weak_ptr<Impl> weak = shared_from_this();
    if (action == "add-agent") {
      if (auto e = Messaging::check_agent_name(value); !e.empty()) fail(e);
      messaging.add_proxy(
          name, rec.proxy_prefix, value, [weak, name, value, respond](std::string e) {
            auto self = weak.lock();
            if (!self) return;
            if (!e.empty()) {
              respond(rpc::Error{rpc::kHandlerError, e, nullptr});
              return;
            }
            if (auto* r = self->registry.find(name)) {
              if (std::find(r->remote_agents.begin(), r->remote_agents.end(), value) ==
                  r->remote_agents.end())
                r->remote_agents.push_back(value);
              self->registry.save();
              respond(json{{"ok", true},
                           {"action", "add-agent"},
                           {"agent", value},
                           {"proxy", r->proxy_prefix + ":" + value}});
            }
          });
      return;
    }
    if (action == "remove-agent") {
      messaging.remove_proxies(
          name, rec.proxy_prefix + ":" + value, [weak, name, value, respond](std::string e) {
            auto self = weak.lock();
            if (!self) return;
            if (!e.empty()) {
              respond(rpc::Error{rpc::kHandlerError, e, nullptr});
              return;
            }
            if (auto* r = self->registry.find(name)) {
              r->remote_agents.erase(
                  std::remove(r->remote_agents.begin(), r->remote_agents.end(), value),
                  r->remote_agents.end());
              self->registry.save();
            }
            respond(json{{"ok", true}, {"action", "remove-agent"}, {"agent", value}});
          });
      return;
    }
    if (action == "set-prefix") {
      if (PeerRegistry::slug(value) != value)
        fail("invalid prefix \"" + value + "\": use 1-16 characters from a-z, 0-9 and '-'");
      if (auto* other = registry.find_by_prefix(value); other && other->name != name)
        fail("prefix \"" + value + "\" is already used by peer \"" + other->name + "\"");
      std::string old = rec.proxy_prefix;
      messaging.rename_proxies(name, old, value, [weak, name, value, respond](std::string e) {
        auto self = weak.lock();
        if (!self) return;
        if (!e.empty()) {
          respond(rpc::Error{rpc::kHandlerError, e, nullptr});
          return;
        }
        if (auto* r = self->registry.find(name)) {
          r->proxy_prefix = value;
          self->registry.save();
        }
        respond(json{{"ok", true}, {"action", "set-prefix"}, {"prefix", value}});
      });
      return;
    }
    fail("unknown action \"" + action + "\" (use add-agent, remove-agent or set-prefix)");
  }

  void repair(const rpc::Params& params, rpc::Respond respond) {
    std::string name = params.opt_str("peer_name").value_or("");
    if (name.empty()) fail("--type repair requires a peer name (positional or --peer-name)");
    PeerRecord& rec = require_peer(name);
    if (rec.role != "dialer")
      fail("peer \"" + name +
           "\" dials this daemon (it ran 'thrum peer join'); run the repair on " + name +
           "'s side");
    rec.reconcile_status.clear();
    rec.removed_by_peer.clear();
    registry.save();
    auto& st = states[name];
    if (st.link && st.link->is_open()) {
      respond(json{{"status", "repaired"}, {"peer_name", name}, {"peer_address", rec.address}});
      return;
    }
    st.repair_waiters.push_back(std::move(respond));
    st.backoff.failures = 0;
    if (st.retry) st.retry->cancel();
    st.dialing = false;
    connect(name);
  }

  // -- Router -----------------------------------------------------------------------------------
  std::vector<OutboxItem> route(const StoredMessage& m, const std::vector<const Agent*>& proxies,
                                bool broadcast) {
    std::map<std::string, OutboxItem> items;
    auto item_for = [&](const PeerRecord& rec) -> OutboxItem& {
      auto& it = items[rec.name];
      if (it.peer.empty()) {
        it.peer = rec.name;
        it.kind = "deliver";
        it.message_id = m.message_id;
        it.payload = {{"message_id", m.message_id}, {"origin_daemon", opts.daemon_id},
                      {"author", m.author_id},      {"to", json::array()},
                      {"broadcast", false},         {"body", m.body},
                      {"format", m.format},         {"created_at", m.created_at}};
        if (m.reply_to) {
          auto q = store.reader().cached(
              "SELECT remote_id FROM message_map WHERE peer=?1 AND local_id=?2");
          q.bind(1, rec.name).bind(2, *m.reply_to);
          if (q.step()) it.payload["reply_to"] = q.text(0);
        }
      }
      return it;
    };
    for (const Agent* a : proxies) {
      auto* rec = a->peer_name ? registry.find(*a->peer_name) : nullptr;
      if (!rec) fail("@" + a->agent_id + " cannot be reached: its peer was removed");
      auto& it = item_for(*rec);
      it.payload["to"].push_back(a->remote_name.value_or(""));
      it.queued_recipients.push_back(a->agent_id);
    }
    if (broadcast) {
      for (const auto& rec : registry.peers()) {
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

  std::pair<std::string, std::string> proxy_presence(const Agent& proxy) const {
    if (!proxy.peer_name) return {"unknown", ""};
    auto it = states.find(*proxy.peer_name);
    if (it == states.end() || !it->second.link) {
      std::string role;
      if (it != states.end()) {
        auto p = it->second.presence.find(proxy.remote_name.value_or(""));
        if (p != it->second.presence.end()) role = p->second.second;
      }
      return {"offline", role};
    }
    auto p = it->second.presence.find(proxy.remote_name.value_or(""));
    if (p == it->second.presence.end()) return {"unknown", ""};
    return p->second;
  }

  void messages_read(const std::string& reader, const std::vector<std::string>& ids) {
    std::vector<std::pair<std::string, std::string>> receipts;  // peer, remote id
    for (const auto& id : ids) {
      auto q = store.reader().cached(
          "SELECT mm.peer, mm.remote_id FROM messages m JOIN message_map mm ON mm.local_id = "
          "m.message_id "
          "WHERE m.message_id=?1 AND m.origin_daemon IS NOT NULL AND m.audience != "
          "'broadcast:everyone'");
      q.bind(1, id);
      if (q.step()) receipts.emplace_back(q.text(0), q.text(1));
    }
    if (receipts.empty()) return;
    const std::string now = now_rfc3339();
    std::weak_ptr<Impl> weak = shared_from_this();
    store.write(
        [receipts, reader, now](sql::Db& db) {
          for (const auto& [peer, remote] : receipts)
            db.cached(
                  "INSERT INTO outbox(peer, kind, message_id, payload, created_at) "
                  "VALUES(?1,'receipt',?2,?3,?4)")
                .bind(1, peer)
                .bind(2, remote)
                .bind(3, json{{"message_id", remote}, {"reader", reader}, {"read_at", now}}.dump())
                .bind(4, now)
                .run();
        },
        [weak, receipts](std::exception_ptr err) {
          auto self = weak.lock();
          if (!self || err) return;
          std::set<std::string> peers;
          for (const auto& r : receipts) peers.insert(r.first);
          for (const auto& p : peers) self->pump(p);
        });
  }
};

// -------------------------------------------------------------------------------------------------

PeerManager::PeerManager(Options opts, asio::io_context& ioc, Store& store, Messaging& messaging,
                         TransportLookup transports)
    : impl_(std::make_shared<Impl>(std::move(opts), ioc, store, messaging, std::move(transports))) {
}

PeerManager::~PeerManager() {
  shutdown();
}

void PeerManager::register_methods(rpc::Dispatcher& d) {
  auto impl = impl_;
  auto unix_only = rpc::Dispatcher::kUnix;
  d.add(
      "peer.start_pairing",
      [impl](const json& p, const rpc::CallContext& ctx, rpc::Respond r) {
        impl->h_start_pairing(p, ctx.alive, std::move(r));
      },
      unix_only);
  d.add(
      "peer.wait_pairing",
      [impl](const json& p, const rpc::CallContext&, rpc::Respond r) {
        impl->h_wait_pairing(p, std::move(r));
      },
      unix_only);
  d.add(
      "peer.cancel_pairing",
      [impl](const json&, const rpc::CallContext&, rpc::Respond r) {
        impl->h_cancel_pairing(std::move(r));
      },
      unix_only);
  d.add(
      "peer.join",
      [impl](const json& p, const rpc::CallContext&, rpc::Respond r) {
        impl->h_join(p, std::move(r));
      },
      unix_only);
  d.add("peer.list", [impl](const json&, const rpc::CallContext&, rpc::Respond r) {
    impl->h_list(std::move(r));
  });
  d.add("peer.status", [impl](const json&, const rpc::CallContext&, rpc::Respond r) {
    impl->h_list(std::move(r));
  });
  d.add(
      "peer.remove",
      [impl](const json& p, const rpc::CallContext&, rpc::Respond r) {
        impl->h_remove(p, std::move(r));
      },
      unix_only);
  d.add(
      "peer.configure",
      [impl](const json& p, const rpc::CallContext&, rpc::Respond r) {
        impl->h_configure(p, std::move(r));
      },
      unix_only);
  d.add("who_has", [impl](const json& p, const rpc::CallContext&, rpc::Respond r) {
    impl->h_who_has(p, std::move(r));
  });
}

void PeerManager::start(unsigned short ws_port) {
  impl_->ws_port = ws_port;
  // Proxies named in peers.json exist as agents (e.g. after a database was moved aside).
  for (const auto& rec : impl_->registry.peers()) {
    impl_->states[rec.name].state = rec.role == "dialer" ? "connecting" : "waiting for peer";
    for (const auto& a : rec.remote_agents) {
      if (!impl_->messaging.agents().count(rec.proxy_prefix + ":" + a))
        impl_->messaging.add_proxy(rec.name, rec.proxy_prefix, a, [](std::string) {});
    }
  }
  impl_->start_listeners();
  if (std::any_of(impl_->registry.peers().begin(), impl_->registry.peers().end(),
                  [](const PeerRecord& r) { return r.transport == "local"; }))
    impl_->advertised("local", sdk::Endpoint{"127.0.0.1", ws_port});
  if (impl_->opts.auto_connect)
    for (const auto& rec : impl_->registry.peers())
      if (rec.role == "dialer") impl_->connect(rec.name);
  impl_->boot_reconcile();
  impl_->tick();
}

void PeerManager::handle_upgrade(std::unique_ptr<PeerUpgrade> up) {
  impl_->on_upgrade(std::move(up));
}

void PeerManager::shutdown() {
  if (!impl_ || impl_->stopping) return;
  impl_->stopping = true;
  impl_->tick_timer.cancel();
  for (auto& [name, st] : impl_->states) {
    if (st.retry) st.retry->cancel();
    if (st.reconcile_timer) st.reconcile_timer->cancel();
    if (st.announce_timer) st.announce_timer->cancel();
    if (st.link) st.link->close("daemon shutting down");
  }
  for (auto& [id, l] : impl_->listeners) l->close();
  impl_->listeners.clear();
  impl_->registry.flush_if_dirty();
  impl_->pool.stop();
  impl_->pool.join();
  // A listen() in flight finishes first (a tailscale login gives up at its own timeout).
  impl_->listen_pool.join();
  // Its result would be closed by a loop handler that may never run now: close it here, while
  // the plugin that made it is still loaded.
  for (auto& [id, attempt] : impl_->listen_in_flight)
    if (attempt.got->listener) {
      attempt.got->listener->close();
      attempt.got->listener.reset();
    }
  impl_->listen_in_flight.clear();
}

json PeerManager::summary() const {
  int connected = 0;
  for (const auto& [n, st] : impl_->states)
    if (st.link) ++connected;
  return {{"connected", connected}, {"total", impl_->registry.peers().size()}};
}

std::vector<std::string> PeerManager::problems() const {
  return impl_->registry.problems();
}

std::vector<OutboxItem> PeerManager::route(const StoredMessage& m,
                                           const std::vector<const Agent*>& proxies,
                                           bool broadcast) {
  return impl_->route(m, proxies, broadcast);
}
void PeerManager::kick(const std::string& peer) {
  impl_->pump(peer);
}
std::optional<std::string> PeerManager::peer_for_prefix(const std::string& prefix) const {
  for (const auto& r : impl_->registry.peers())
    if (r.proxy_prefix == prefix) return r.name;
  return std::nullopt;
}
std::pair<std::string, std::string> PeerManager::proxy_presence(const Agent& proxy) const {
  return impl_->proxy_presence(proxy);
}
void PeerManager::messages_read(const std::string& reader, const std::vector<std::string>& ids) {
  impl_->messages_read(reader, ids);
}
void PeerManager::agents_changed() {
  for (auto& [name, st] : impl_->states)
    if (st.link) impl_->send_presence(st.link);
}

}  // namespace thrum::core
