// thrum peer add|join|list|status|remove|configure and thrum who-has (SPEC §6).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli.hpp"
#include "client.hpp"
#include "format.hpp"
#include "thrum/common/config.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/common/peercode.hpp"
#include "transport_choice.hpp"

namespace thrum::cli {
using namespace std::chrono_literals;

namespace {

/// The flags the transport's Capabilities make mandatory (`repo_path` only matters for join).
void require_flags(const TransportInfo& t, const std::string& address, const std::string& repo_path,
                   bool join = false) {
  if (t.needs_address && address.empty())
    throw UsageError("Error: --type " + t.id +
                     " requires --address <ip> (this machine's address on the LAN)");
  if (join && t.needs_repo_path && repo_path.empty())
    throw UsageError("Error: --type " + t.id + " requires --repo-path <path of the other repo>");
}

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted = true;
}

/// `s` as one shell word (single-quoted unless it is plain).
std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./:@%+=,") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// A string field of a daemon answer, "" when absent or not a string.
std::string str_of(const json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_string() ? it->get<std::string>() : "";
}

/// The success lines of `peer add` and `peer join`: the brief's sentence, then the proxy prefix
/// the peer's agents are addressed by here, plus the next step.
void print_paired(const Context& ctx, const json& r) {
  const std::string name = str_of(r, "peer_name");
  const std::string prefix = str_of(r, "proxy_prefix");
  std::cout << "Paired with \"" << name << "\" (" << str_of(r, "peer_address")
            << "). Syncing started.";
  if (!prefix.empty()) std::cout << " Prefix: " << prefix;
  std::cout << "\n";
  if (!ctx.g.quiet)
    std::cout << "\nTo route messages to an agent on this peer:\n  thrum peer configure " << name
              << " add-agent <agent-name>\n";
}

struct AddArgs {
  std::string type, address, auth_key, prefix;
};

int cmd_add(Context& ctx, const AddArgs& a) {
  const TransportChoices choices = a.type == "repair" ? TransportChoices{} : load_transports(ctx);
  const TransportInfo& t = *choose_transport(a.type, false, choices);
  require_flags(t, a.address, "", false);
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json params = {{"type", a.type}};
  if (!a.address.empty()) params["address"] = a.address;
  if (!a.prefix.empty()) params["prefix"] = a.prefix;
  add_credential(params, t, a.auth_key);
  json started = call_asking_for_credential(client, "peer.start_pairing", params, 90s, t);
  const std::string peercode = str_of(started, "peercode");
  // Transports where the joiner reads this repo's files get the path to paste along.
  const std::string repo_path = str_of(started, "repo_path");
  std::string join_line = "thrum peer join --type " + a.type + " --peercode " + peercode;
  if (!repo_path.empty()) join_line += " --repo-path " + shell_word(repo_path);
  if (ctx.g.json) {
    started["join_command"] = join_line;
    started["event"] = "waiting";
    print_json_line(started);
  } else {
    std::cout << "Waiting for connection...\n\n"
              << "Share this with the other machine:\n"
              << "  " << join_line << "\n"
              << std::flush;
  }
  // Ctrl-C cancels the session on the daemon instead of leaving the code valid.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const bool tty = ::isatty(STDOUT_FILENO) && !ctx.g.json;
  json result;
  for (;;) {
    if (g_interrupted) {
      try {
        RpcClient c2(paths.sock);
        c2.call("peer.cancel_pairing", json::object(), 5s);
      } catch (const std::exception&) {
      }
      if (tty) std::cout << "\r\033[K";
      std::cerr << "Pairing cancelled.\n";
      return 130;
    }
    try {
      result = client.call("peer.wait_pairing", {{"timeout_ms", 1000}}, 15s);
    } catch (const std::exception&) {
      if (tty) std::cout << "\r\033[K" << std::flush;  // the countdown goes before the error
      throw;
    }
    if (result.value("status", "") == "paired") break;
    if (tty) {
      long long s = result.value("remaining_ms", 0LL) / 1000;
      std::printf("\r  Expires in %lld:%02lld ", s / 60, s % 60);
      std::fflush(stdout);
    }
  }
  if (tty) std::cout << "\r\033[K";
  if (ctx.g.json) {
    result["event"] = "paired";
    print_json_line(result);
    return 0;
  }
  std::cout << "\n";
  print_paired(ctx, result);
  return 0;
}

struct JoinArgs {
  std::string type, peercode_flag, positional, repo_path, address, peer_name, auth_key, prefix;
};

int cmd_join(Context& ctx, const JoinArgs& a) {
  const TransportChoices choices = a.type == "repair" ? TransportChoices{} : load_transports(ctx);
  const TransportInfo* t = choose_transport(a.type, true, choices);
  auto paths = require_repo(ctx);
  json params = {{"type", a.type}};
  if (!t) {  // --type repair
    std::string name = !a.peer_name.empty() ? a.peer_name : a.positional;
    if (name.empty())
      throw UsageError("Error: --type repair requires a peer name (positional arg or --peer-name)");
    params["peer_name"] = name;
    RpcClient client(paths.sock);
    json r = client.call("peer.join", params, 60s);
    if (ctx.g.json) {
      print_json(r);
      return 0;
    }
    std::cout << "Repaired \"" << r.value("peer_name", name) << "\" ("
              << r.value("peer_address", "") << ").\n";
    return 0;
  }
  std::string code =
      !a.peercode_flag.empty() && a.peercode_flag != "-" ? a.peercode_flag : a.positional;
  if (code.empty() && !::isatty(STDIN_FILENO)) std::getline(std::cin, code);
  if (code.empty())
    throw UsageError(
        "Error: missing peercode: pass --peercode <name:ip:port:code>, as an argument, or on "
        "stdin");
  std::string err;
  if (!core::pairing::parse_peercode(code, err)) throw Error(err);
  require_flags(*t, a.address, a.repo_path, true);
  params["peercode"] = code;
  if (!a.prefix.empty()) params["prefix"] = a.prefix;
  if (!a.repo_path.empty()) params["repo_path"] = std::filesystem::absolute(a.repo_path).string();
  if (!a.address.empty()) params["address"] = a.address;
  add_credential(params, *t, a.auth_key);
  RpcClient client(paths.sock);
  json r = call_asking_for_credential(client, "peer.join", params, 90s, *t);
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  print_paired(ctx, r);
  return 0;
}

/// The peers array from `method`, or nullopt when it was already printed (--json) or there are
/// none (the empty message was printed).
std::optional<json> fetch_peers(Context& ctx, const char* method) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json r = client.call(method);
  if (ctx.g.json) {
    print_json(r["peers"]);
    return std::nullopt;
  }
  if (r["peers"].empty()) {
    std::cout << "No peers paired. Use 'thrum peer add' to start pairing.\n";
    return std::nullopt;
  }
  return r["peers"];
}

/// The hint under a peer whose drift could not be reconciled: a command that works on this side.
std::string drift_hint(const json& p) {
  const std::string name = str_of(p, "name");
  const std::string branch = plain_output() ? "  `- " : "  └─ ";
  const std::string dash = plain_output() ? "-" : "—";
  if (str_of(p, "role") == "dialer")
    return branch + "drift detected " + dash + " run: thrum peer join --type repair " + name + "\n";
  // This side only listens: the other side dials (and repairs), or both re-pair in place.
  return branch + "drift detected " + dash + " " + name +
         " dials this daemon: run 'thrum peer join --type " + "repair <this peer's name>' on " +
         name + "'s side, or re-pair from here: thrum peer " + "add --type " +
         str_of(p, "transport") + "\n";
}

int cmd_list(Context& ctx) {
  auto fetched = fetch_peers(ctx, "peer.list");
  if (!fetched) return 0;
  const json& peers = *fetched;
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ADDRESS", "LAST SYNC", "LAST SEQ", "PREFIX"}};
  std::vector<std::string> hints;
  for (const auto& p : peers) {
    rows.push_back({str_of(p, "name"), str_of(p, "address"), ago_long(str_of(p, "last_sync")),
                    std::to_string(p.value("last_seq", 0LL)), str_of(p, "proxy_prefix")});
    hints.push_back(str_of(p, "reconcile_status") == "drift_reconcile_failed" ? drift_hint(p) : "");
  }
  // Sized to content; a hint row goes under its peer.
  std::istringstream table(render_table(rows));
  std::string line;
  std::getline(table, line);
  std::cout << line << "\n";
  for (const auto& hint : hints) {
    std::getline(table, line);
    std::cout << line << "\n" << hint;
  }
  std::cout << std::flush;
  return 0;
}

std::string since_short(const std::string& ts) {
  auto t = core::parse_rfc3339(ts);
  if (!t) return "never";
  auto d = std::chrono::duration_cast<std::chrono::seconds>(core::Clock::now() - *t);
  return duration_short(std::max(d, std::chrono::seconds(0))) + " ago";
}

int cmd_status(Context& ctx) {
  auto fetched = fetch_peers(ctx, "peer.status");
  if (!fetched) return 0;
  const json& peers = *fetched;
  std::vector<std::vector<std::string>> rows = {{"NAME", "ADDRESS", "HAS_TOKEN", "PAIRED_AT",
                                                 "LAST_SYNC", "TRANSPORT", "STATE", "QUEUED",
                                                 "PREFIX"}};
  std::vector<std::string> notes;
  for (const auto& p : peers) {
    auto paired = core::parse_rfc3339(str_of(p, "paired_at"));
    rows.push_back({str_of(p, "name"), str_of(p, "address"),
                    p.value("has_token", false) ? "true" : "false",
                    paired ? core::rfc3339_seconds(*paired) : "-",
                    since_short(str_of(p, "last_sync")), str_of(p, "transport"), str_of(p, "state"),
                    std::to_string(p.value("queued", 0LL)), str_of(p, "proxy_prefix")});
    std::string note;
    if (!str_of(p, "last_error").empty())
      note = (plain_output() ? "  `- " : "  └─ ") + str_of(p, "last_error") + "\n";
    if (str_of(p, "reconcile_status") == "drift_reconcile_failed") note += drift_hint(p);
    notes.push_back(note);
  }
  std::istringstream table(render_table(rows));
  std::string line;
  std::getline(table, line);
  std::cout << line << "\n";
  for (const auto& note : notes) {
    std::getline(table, line);
    std::cout << line << "\n" << note;
  }
  std::cout << std::flush;
  return 0;
}

int cmd_remove(Context& ctx, const std::string& name) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json r = client.call("peer.remove", {{"name", name}});
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  long long dropped = r.value("dropped", 0LL);
  std::cout << ok_mark() << " Removed peer \"" << name << "\". Dropped " << dropped
            << " queued message" << (dropped == 1 ? "" : "s") << ".\n";
  if (!r.value("told_peer", false))
    std::cout << "  The peer was not connected; it will see the link refused.\n";
  return 0;
}

int cmd_configure(Context& ctx, const std::string& peer, const std::string& action,
                  const std::string& value) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json r = client.call("peer.configure", {{"peer", peer}, {"action", action}, {"value", value}});
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  std::cout << ok_mark() << " " << peer << ": " << action << " " << value << "\n";
  if (action == "add-agent" && !ctx.g.quiet)
    std::cout << "  Send to it with: thrum send \"...\" --to @" << r.value("proxy", "") << "\n";
  return 0;
}

int cmd_who_has(Context& ctx, const std::string& file) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json r = client.call("who_has", {{"file", file}}, 15s);
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  if (r["agents"].empty()) {
    std::cout << "No agent has uncommitted changes to " << file << ".\n";
    return 0;
  }
  for (const auto& a : r["agents"])
    std::cout << "@" << a.value("agent_id", "")
              << (a.value("via_peer", false) ? "  (via peer)" : "") << "\n";
  if (r.value("incomplete", false)) std::cout << "(some peers did not answer in time)\n";
  return 0;
}

}  // namespace

void add_peer_commands(CLI::App& app, Context& ctx) {
  auto* peer = app.add_subcommand("peer", "Pair with other daemons and manage peers");
  peer->require_subcommand(1);

  auto aa = std::make_shared<AddArgs>();
  auto* add = peer->add_subcommand(
      "add",
      "Start pairing and wait for a peer to connect (--json: JSON Lines, one document per "
      "event — {\"event\":\"waiting\",...} then {\"event\":\"paired\",...} — each flushed "
      "at once)");
  add->add_option("--type", aa->type,
                  "Transport id (REQUIRED; without it, the available ones are listed)");
  add->add_option("--address", aa->address, "IP this daemon listens on (transports that need one)");
  add->add_option("--auth-key", aa->auth_key,
                  "The transport's credential (e.g. tailscale's auth key)");
  add->add_option("--prefix", aa->prefix,
                  "Proxy prefix for the joiner's agents here, e.g. mock-sf (default: a slug of "
                  "its name)");
  add->callback([&ctx, aa] { ctx.action = [&ctx, aa] { return cmd_add(ctx, *aa); }; });

  auto ja = std::make_shared<JoinArgs>();
  auto* join = peer->add_subcommand("join", "Join a peer with its peercode (or repair one)");
  join->add_option("--type", ja->type,
                   "Transport id, or repair (REQUIRED; without it, the choices are listed)");
  join->add_option("--peercode", ja->peercode_flag, "The peercode printed by 'thrum peer add'");
  join->add_option("peercode_or_name", ja->positional,
                   "Peercode (or the peer name with --type repair)");
  join->add_option("--repo-path", ja->repo_path, "The other repo's path (transports that need it)");
  join->add_option("--address", ja->address, "IP this daemon uses (transports that need one)");
  join->add_option("--peer-name", ja->peer_name, "Existing peer name for --type repair");
  join->add_option("--auth-key", ja->auth_key,
                   "The transport's credential (e.g. tailscale's auth key)");
  join->add_option("--prefix", ja->prefix,
                   "Proxy prefix for the peer's agents here, e.g. mock-sf (default: a slug of its "
                   "name)");
  join->callback([&ctx, ja] { ctx.action = [&ctx, ja] { return cmd_join(ctx, *ja); }; });

  peer->add_subcommand("list", "List paired peers")->callback([&ctx] {
    ctx.action = [&ctx] { return cmd_list(ctx); };
  });
  peer->add_subcommand("status", "Per-peer health, auth and queue")->callback([&ctx] {
    ctx.action = [&ctx] { return cmd_status(ctx); };
  });

  auto rm_name = std::make_shared<std::string>();
  auto* rm =
      peer->add_subcommand("remove", "Remove a peer: close its link, drop its queue and proxies");
  rm->add_option("name", *rm_name, "Peer name")->required();
  rm->callback(
      [&ctx, rm_name] { ctx.action = [&ctx, rm_name] { return cmd_remove(ctx, *rm_name); }; });

  auto cf = std::make_shared<std::array<std::string, 3>>();
  auto* cfg =
      peer->add_subcommand("configure", "add-agent | remove-agent <agent>, or set-prefix <prefix>");
  cfg->add_option("peer", (*cf)[0], "Peer name")->required();
  cfg->add_option("action", (*cf)[1], "add-agent | remove-agent | set-prefix")
      ->required()
      ->check(CLI::IsMember({"add-agent", "remove-agent", "set-prefix"}));
  cfg->add_option("value", (*cf)[2], "Agent name, or the new prefix")->required();
  cfg->callback([&ctx, cf] {
    ctx.action = [&ctx, cf] { return cmd_configure(ctx, (*cf)[0], (*cf)[1], (*cf)[2]); };
  });

  auto wh = std::make_shared<std::string>();
  auto* who =
      app.add_subcommand("who-has", "Agents (here and on peers) with uncommitted changes to FILE");
  who->add_option("file", *wh, "File path")->required();
  who->callback([&ctx, wh] { ctx.action = [&ctx, wh] { return cmd_who_has(ctx, *wh); }; });
}

}  // namespace thrum::cli
