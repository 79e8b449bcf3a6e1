#include "peers/admin_rpc.hpp"
#include "error_text.hpp"

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "peers/connector.hpp"
#include "peers/context.hpp"
#include "peers/credentials.hpp"
#include "peers/directory.hpp"
#include "peers/joiner.hpp"
#include "peers/listener_set.hpp"
#include "peers/pairing_record.hpp"
#include "peers/pairing_session.hpp"
#include "peers/protocol.hpp"
#include "peers/who_has.hpp"
#include "thrum/common/repo.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;
using rpc::fail;
using rpc::fail_params;

namespace {

std::optional<std::string> call_credential(const rpc::Params& params) {
  auto key = params.opt_str("auth_key");
  if (!key || key->empty()) return std::nullopt;
  return key;
}

void require_address(const std::string& type, const Transport& t, const rpc::Params& params) {
  if (t.caps.needs_address && params.opt_str("address").value_or("").empty())
    fail("--type " + type + " requires --address <ip> (this machine's address on the LAN)");
}

}  // namespace

AdminRpc::AdminRpc(Context& ctx, Directory& peers, PairingSessions& pairing, ListenerSet& listeners,
                   Connector& connector, Credentials& credentials, WhoHas& who_has)
    : ctx_(ctx),
      peers_(peers),
      pairing_(pairing),
      listeners_(listeners),
      connector_(connector),
      credentials_(credentials),
      who_has_(who_has) {}

void AdminRpc::register_methods(rpc::Dispatcher& d) {
  auto unix_only = rpc::Dispatcher::kUnix;
  d.add(
      "peer.start_pairing",
      [this](const json& p, const rpc::CallContext& c, rpc::Respond r) {
        start_pairing(p, c.alive, std::move(r));
      },
      unix_only);
  d.add(
      "peer.wait_pairing",
      [this](const json& p, const rpc::CallContext&, rpc::Respond r) {
        rpc::Params params(p);
        int64_t timeout =
            std::clamp<int64_t>(params.opt_int("timeout_ms").value_or(360000), 0, 360000);
        pairing_.wait(timeout, std::move(r));
      },
      unix_only);
  d.add(
      "peer.cancel_pairing",
      [this](const json&, const rpc::CallContext&, rpc::Respond r) { r(pairing_.cancel()); },
      unix_only);
  d.add(
      "peer.join",
      [this](const json& p, const rpc::CallContext&, rpc::Respond r) { join(p, std::move(r)); },
      unix_only);
  d.add("peer.list",
        [this](const json&, const rpc::CallContext&, rpc::Respond r) { list(std::move(r)); });
  d.add("peer.status",
        [this](const json&, const rpc::CallContext&, rpc::Respond r) { list(std::move(r)); });
  d.add(
      "peer.remove",
      [this](const json& p, const rpc::CallContext&, rpc::Respond r) { remove(p, std::move(r)); },
      unix_only);
  d.add(
      "peer.configure",
      [this](const json& p, const rpc::CallContext&, rpc::Respond r) {
        configure(p, std::move(r));
      },
      unix_only);
  d.add("who_has", [this](const json& p, const rpc::CallContext&, rpc::Respond r) {
    who_has(p, std::move(r));
  });
}

std::string AdminRpc::store_paired(const PeerRecord& r) {
  const PeerRecord* old = ctx_.registry.find(r.name);
  const bool replacing = old && old->daemon_id == r.daemon_id;
  const std::string old_prefix = replacing ? old->proxy_prefix : "";
  try {
    ctx_.registry.upsert(r);
  } catch (const std::exception& e) {
    return e.what();
  }
  if (replacing) {
    // Re-pairing the same daemon: its record was replaced in place (new token); the object
    // holding the old link, backoff and drift state goes, the queue (kept by name) stays.
    peers_.erase(r.name, "re-paired");
    spdlog::info("re-paired peer={} record replaced in place", r.name);
    if (old_prefix != r.proxy_prefix)
      ctx_.messaging.rename_proxies(
          r.name, old_prefix, r.proxy_prefix, [name = r.name](std::string e) {
            if (!e.empty()) spdlog::error("proxy rename failed peer={} error=\"{}\"", name, e);
          });
  }
  peers_.get(r.name);
  return "";
}

PeerRecord& AdminRpc::require_peer(const std::string& name) {
  auto* rec = ctx_.registry.find(name);
  if (!rec) {
    std::string names;
    for (const auto& r : ctx_.registry.peers()) names += (names.empty() ? "" : ", ") + r.name;
    fail("peer \"" + name + "\" not found" +
         (names.empty() ? " (no peers paired)" : " (paired: " + names + ")"));
  }
  return *rec;
}

// -- pairing, listener side -------------------------------------------------------------------

void AdminRpc::start_pairing(const json& p, std::function<bool()> caller_alive,
                             rpc::Respond respond) {
  rpc::Params params(p);
  const std::string type = params.str("type");
  if (type == "repair")
    fail("--type repair is not valid for 'peer add' (use 'thrum peer join --type repair <name>')");
  std::string why;
  auto t = ctx_.transport(type, why);
  if (!t) fail("transport \"" + type + "\" is not available: " + why);
  if (auto busy = pairing_.busy(); !busy.empty()) fail(busy);
  require_address(type, t, params);
  const std::string prefix = params.opt_str("prefix").value_or("");
  if (!prefix.empty())
    if (auto e = check_prefix(prefix); !e.empty()) fail(e);
  const auto key = call_credential(params);
  listeners_.ensure(
      type, t, params.opt_str("address").value_or(""),
      [this, alive = alive_, t, type, key, prefix, respond, caller_alive](
          std::optional<sdk::Endpoint> adv, std::string error) {
        if (!*alive) return;
        if (!adv) {
          respond(rpc::Error{rpc::kHandlerError, error, nullptr});
          return;
        }
        credentials_.worked(t, key);
        listeners_.advertised(type, *adv);
        // A `peer add` interrupted while the listener came up would leave a session nobody
        // shows a code for, refusing the next `peer add` until it expired.
        if (!caller_alive()) {
          spdlog::info("pairing session not started: peer add went away transport={}", type);
          respond(
              rpc::Error{rpc::kHandlerError, "pairing not started: the caller went away", nullptr});
          return;
        }
        // Checked again: another `peer add` may have opened one while our listener came up.
        if (auto busy = pairing_.busy(); !busy.empty()) {
          respond(rpc::Error{rpc::kHandlerError, busy, nullptr});
          return;
        }
        json opened = pairing_.open(type, ctx_.self_name(type), *adv, prefix);
        // The joiner of such a transport reads our repo's files: `peer add` prints the path.
        if (t.caps.needs_repo_path) opened["repo_path"] = ctx_.opts.paths.root.string();
        respond(std::move(opened));
      },
      key);
}

// -- pairing, joiner side ---------------------------------------------------------------------

void AdminRpc::join(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  const std::string type = params.str("type");
  if (type == "repair") {
    repair(params, std::move(respond));
    return;
  }
  std::string perr;
  auto pc = pairing::parse_peercode(params.str("peercode"), perr);
  if (!pc) fail_params(perr);
  std::string why;
  auto t = ctx_.transport(type, why);
  if (!t) fail("transport \"" + type + "\" is not available: " + why);
  std::string repo_path = params.opt_str("repo_path").value_or("");
  std::string expected_id;
  if (t.caps.needs_repo_path) {
    if (repo_path.empty())
      fail("--type " + type + " requires --repo-path <path of the other repo>");
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(repo_path, ec);
    if (!ec) repo_path = canon.string();
    if (!std::filesystem::is_directory(std::filesystem::path(repo_path) / ".thrum"))
      fail("--repo-path " + repo_path +
           " has no .thrum/ directory (is it the other repo? run 'thrum init' there)");
    if (std::filesystem::path(repo_path) == ctx_.opts.paths.root)
      fail("--repo-path points at this repo; give the other repo's path");
    expected_id = recorded_daemon_id(repo_path);
    if (expected_id.empty())
      fail("--repo-path " + repo_path +
           " has no daemon identity in .thrum/config.json yet; start its daemon there with "
           "'thrum daemon start', then run 'thrum peer add' there");
  }
  require_address(type, t, params);
  const std::string prefix = params.opt_str("prefix").value_or("");
  if (!prefix.empty())
    if (auto e = check_prefix(prefix); !e.empty()) fail(e);
  const sdk::Endpoint ep{pc->ip, pc->port};
  const JoinRequest req{type,        repo_path, pc->code, ep, connector_.own_fingerprint(type),
                        expected_id, pc->name,  prefix};
  auto dial = [this, alive = alive_, req, respond] {
    if (!*alive) return;
    connector_.open_for_pairing(
        req.transport, req.listener,
        [this, alive, req, respond](PairingConnection conn, std::string error, int) {
          if (!*alive) return;
          if (!conn.link) {
            respond(rpc::Error{rpc::kHandlerError, error, nullptr});
            return;
          }
          join_over(
              ctx_, std::move(conn), req,
              // The link comes up once the other side confirmed (below).
              [this](const PeerRecord& r) { return store_paired(r); },
              [this, alive, respond](rpc::Outcome o) {
                if (!*alive) return;
                if (o.ok() && o.result().is_object()) {
                  const std::string name = o.result().value("peer_name", "");
                  respond(std::move(o));
                  if (ctx_.registry.find(name)) peers_.get(name)->connect();
                  return;
                }
                respond(std::move(o));
              });
        });
  };
  if (!t.caps.provides_listener) {
    dial();
    return;
  }
  // The joiner listens too: the other side tells it about its own address changes there.
  const auto key = call_credential(params);
  listeners_.ensure(
      type, t, params.opt_str("address").value_or(""),
      [this, alive = alive_, t, type, key, respond, dial](std::optional<sdk::Endpoint> own,
                                                          std::string error) {
        if (!*alive) return;
        if (!own) {
          respond(rpc::Error{rpc::kHandlerError, error, nullptr});
          return;
        }
        credentials_.worked(t, key);
        listeners_.advertised(type, *own);
        dial();
      },
      key);
}

void AdminRpc::repair(const rpc::Params& params, rpc::Respond respond) {
  std::string name = params.opt_str("peer_name").value_or("");
  if (name.empty()) fail("--type repair requires a peer name (positional or --peer-name)");
  PeerRecord& rec = require_peer(name);
  if (rec.role != "dialer")
    fail("peer \"" + name + "\" dials this daemon (it ran 'thrum peer join'); run the repair on " +
         name + "'s side");
  peers_.get(name)->repair(std::move(respond));
}

// -- list / status / remove / configure -------------------------------------------------------

void AdminRpc::list(rpc::Respond respond) {
  json out = json::array();
  for (const auto& r : ctx_.registry.peers()) {
    json j = r.to_json(false);
    j["has_token"] = !r.token.empty();
    j["state"] = "idle";
    j["connected"] = false;
    peers_.get(r.name)->describe(j);
    j["queued"] = ctx_.outbox.queued(r.name);
    out.push_back(std::move(j));
  }
  respond(json{{"peers", out}});
}

void AdminRpc::remove(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  const std::string name = params.str("name");
  PeerRecord rec = require_peer(name);
  bool told = false;
  if (auto peer = peers_.find(name); peer && peer->linked() && peer->link()->is_open()) {
    auto link = peer->link();
    link->notify("peer.removed", json::object());
    told = true;
    // Close right after the notice is written; the link is dead to us from now on.
    std::weak_ptr<Link> wl = link;
    ctx_.loop.run_after(std::chrono::milliseconds(50), [wl] {
      if (auto l = wl.lock()) l->close("peer removed");
    });
  }
  peers_.erase(name, "was removed");
  ctx_.registry.remove(name);
  ctx_.outbox.drop(
      name, rec.proxy_prefix,
      [this, alive = alive_, name, told, respond](int64_t dropped, std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError,
                             "removed, but could not drop its queue: " + describe(err), nullptr});
          return;
        }
        ctx_.messaging.remove_proxies(name, "", [name, dropped, told, respond](std::string e) {
          if (!e.empty()) spdlog::error("proxy cleanup failed peer={} error=\"{}\"", name, e);
          spdlog::info("peer removed peer={} dropped_queued={} told_peer={}", name, dropped, told);
          respond(json{{"removed", name}, {"dropped", dropped}, {"told_peer", told}});
        });
      });
}

void AdminRpc::configure(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  const std::string name = params.str("peer");
  const std::string action = params.str("action");
  const std::string value = params.str("value");
  PeerRecord& rec = require_peer(name);
  if (action == "add-agent") {
    if (auto e = Messaging::check_agent_name(value); !e.empty()) fail(e);
    ctx_.messaging.add_proxy(
        name, rec.proxy_prefix, value, [this, alive = alive_, name, value, respond](std::string e) {
          if (!*alive) return;
          if (!e.empty()) {
            respond(rpc::Error{rpc::kHandlerError, e, nullptr});
            return;
          }
          if (auto* r = ctx_.registry.find(name)) {
            if (std::find(r->remote_agents.begin(), r->remote_agents.end(), value) ==
                r->remote_agents.end())
              r->remote_agents.push_back(value);
            ctx_.registry.save();
            respond(json{{"ok", true},
                         {"action", "add-agent"},
                         {"agent", value},
                         {"proxy", r->proxy_prefix + ":" + value}});
          }
        });
    return;
  }
  if (action == "remove-agent") {
    ctx_.messaging.remove_proxies(
        name, rec.proxy_prefix + ":" + value,
        [this, alive = alive_, name, value, respond](std::string e) {
          if (!*alive) return;
          if (!e.empty()) {
            respond(rpc::Error{rpc::kHandlerError, e, nullptr});
            return;
          }
          if (auto* r = ctx_.registry.find(name)) {
            r->remote_agents.erase(
                std::remove(r->remote_agents.begin(), r->remote_agents.end(), value),
                r->remote_agents.end());
            ctx_.registry.save();
          }
          respond(json{{"ok", true}, {"action", "remove-agent"}, {"agent", value}});
        });
    return;
  }
  if (action == "set-prefix") {
    if (auto e = check_prefix(value); !e.empty()) fail(e);
    if (auto* other = ctx_.registry.find_by_prefix(value); other && other->name != name)
      fail("prefix \"" + value + "\" is already used by peer \"" + other->name + "\"");
    const std::string old = rec.proxy_prefix;
    ctx_.messaging.rename_proxies(
        name, old, value, [this, alive = alive_, name, value, respond](std::string e) {
          if (!*alive) return;
          if (!e.empty()) {
            respond(rpc::Error{rpc::kHandlerError, e, nullptr});
            return;
          }
          if (auto* r = ctx_.registry.find(name)) {
            r->proxy_prefix = value;
            ctx_.registry.save();
          }
          respond(json{{"ok", true}, {"action", "set-prefix"}, {"prefix", value}});
        });
    return;
  }
  fail("unknown action \"" + action + "\" (use add-agent, remove-agent or set-prefix)");
}

// -- who-has ----------------------------------------------------------------------------------

void AdminRpc::who_has(const json& p, rpc::Respond respond) {
  rpc::Params params(p);
  const std::string file = params.str("file");
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
  for (const auto& [name, peer] : peers_.all()) {
    if (!peer->linked() || !peer->link()->is_open()) continue;
    auto* rec = ctx_.registry.find(name);
    if (!rec) continue;
    g->pending++;
    const std::string prefix = rec->proxy_prefix;
    peer->link()->call("peer.who_has", {{"file", file}}, [g, prefix, finish](rpc::Outcome o) {
      if (o.ok())
        if (auto agents = decode_who_has_answer(o.result()))
          for (const auto& a : agents.value())
            g->agents.push_back({{"agent_id", prefix + ":" + a}, {"via_peer", true}});
      finish();
    });
  }
  // A peer that does not answer in time is left out rather than holding the answer.
  ctx_.loop.run_after(std::chrono::seconds(3), [g] {
    if (!g->done) {
      g->done = true;
      g->respond(json{{"agents", g->agents}, {"incomplete", true}});
    }
  });
  who_has_.local(file, [g, finish](std::vector<std::string> local) {
    for (const auto& a : local) g->agents.push_back({{"agent_id", a}, {"via_peer", false}});
    finish();
  });
}

}  // namespace thrum::core::peers
