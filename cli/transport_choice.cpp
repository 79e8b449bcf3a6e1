#include "transport_choice.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "client.hpp"
#include "daemon_exe.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::cli {
using namespace std::chrono_literals;

namespace {

std::string str_field(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool bool_field(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

const char* kRepairHelp =
    "Re-verify an existing peer entry.\n"
    "Use when peers.json has drifted (e.g. after a\n"
    "daemon_id rotation) and you want to reconcile via\n"
    "stored secrets without a full re-pair. Valid only\n"
    "on 'peer join'.";

/// `  --type <id>   <first line>` and the following lines under the first one.
void append_entry(std::string& out, const std::string& id, const std::string& help,
                  std::size_t id_width) {
  std::string head = "  --type " + id;
  head.resize(2 + 7 + id_width + 3, ' ');
  const std::string indent(head.size(), ' ');
  std::string text = help.empty() ? "(no description)" : help;
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    out += (first ? head : indent) + line + "\n";
    first = false;
    start = nl + 1;
  }
  out += "\n";
}

std::string available_ids(const TransportChoices& c) {
  std::string ids;
  for (const auto& t : c.transports)
    if (t.available) ids += (ids.empty() ? "" : ", ") + t.id;
  return ids.empty() ? "none" : ids;
}

/// Reads a line from the terminal without echoing it.
std::string read_secret(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios old{};
  const bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (restore) ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  return line;
}

std::string missing_credential(const TransportInfo& t) {
  std::string how = "pass --auth-key";
  if (!t.credential.env.empty()) how = "set " + t.credential.env + " or " + how;
  return t.credential.name + " is required for --type " + t.id + " (" + how + ")";
}

}  // namespace

TransportChoices decode_transports(const json& list) {
  TransportChoices out;
  if (!list.is_array()) return out;
  for (const auto& e : list) {
    if (!e.is_object()) continue;
    TransportInfo t;
    t.id = str_field(e, "id");
    if (t.id.empty()) continue;
    t.available = bool_field(e, "available");
    t.why = str_field(e, "why");
    t.help = str_field(e, "help");
    t.needs_address = bool_field(e, "needs_address");
    t.needs_repo_path = bool_field(e, "needs_repo_path");
    if (auto c = e.find("credential"); c != e.end() && c->is_object()) {
      t.credential.name = str_field(*c, "name");
      t.credential.env = str_field(*c, "env");
      t.credential.prompt = str_field(*c, "prompt");
    }
    out.transports.push_back(std::move(t));
  }
  return out;
}

TransportChoices load_transports(const Context& ctx) {
  std::optional<core::RepoPaths> repo;
  try {
    repo = require_repo(ctx);
  } catch (const Error&) {
    // no repo: nobody to ask, scan below
  }
  if (repo) {
    std::optional<json> answer;
    try {
      RpcClient client(repo->sock);
      answer = client.call("peer.transports", json::object(), 10s);
    } catch (const ConnectError&) {
      // no daemon: scan below
    } catch (const RpcError& e) {
      if (e.code != -32601) throw;  // an old daemon without peer.transports: scan below
    }
    if (answer) {
      if (!answer->is_object() || !answer->contains("transports"))
        throw Error("the daemon answered peer.transports with something unreadable");
      return decode_transports(answer->at("transports"));
    }
  }
  // The same scan `thrum plugins list` does without a daemon (same policy and directories).
  const auto doc = core::parse_bounded(run_daemon_tool({"plugins-list"}));
  if (doc && doc->is_object()) {
    if (auto e = doc->find("error"); e != doc->end() && e->is_string())
      throw Error(e->get<std::string>());
    if (auto d = doc->find("doc"); d != doc->end() && d->is_object() && d->contains("transports")) {
      TransportChoices c = decode_transports(d->at("transports"));
      c.scanned = true;
      return c;
    }
  }
  throw Error("thrum-daemon plugins-list answered something unreadable");
}

std::string type_help(const TransportChoices& choices, bool join) {
  std::size_t width = std::string("repair").size();
  for (const auto& t : choices.transports) width = std::max(width, t.id.size());
  std::string out = "--type is required. Choose one:\n\n";
  bool any = false;
  for (const auto& t : choices.transports) {
    if (!t.available) continue;
    append_entry(out, t.id, t.help, width);
    any = true;
  }
  if (!any)
    out += "  (no transport is available: see 'thrum plugins list' for what was found and why)\n\n";
  if (join) {
    append_entry(out, "repair", kRepairHelp, width);
  } else {
    out += "--type repair is only valid on 'peer join' (thrum peer join --type repair <peer>).\n\n";
  }
  std::string off;
  for (const auto& t : choices.transports)
    if (!t.available) off += "  " + t.id + ": " + t.why + "\n";
  if (!off.empty()) out += "Not available here (see 'thrum plugins list'):\n" + off + "\n";
  if (choices.scanned)
    out += "(The daemon is not running: these are the plugins found on this machine.)\n";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const TransportInfo* choose_transport(const std::string& type, bool join,
                                      const TransportChoices& choices) {
  if (type == "repair") {
    if (join) return nullptr;
    throw UsageError(
        "Error: --type repair is not valid for 'peer add'.\n"
        "Use 'thrum peer join --type repair <peer-name>' to reconcile an existing peer.");
  }
  if (type.empty()) throw UsageError(type_help(choices, join));
  for (const auto& t : choices.transports) {
    if (t.id != type) continue;
    if (!t.available) throw Error("transport \"" + type + "\" is not available: " + t.why);
    return &t;
  }
  throw UsageError("Error: unknown --type \"" + type + "\" (available: " + available_ids(choices) +
                   ")\n\n" + type_help(choices, join));
}

void add_credential(json& params, const TransportInfo& t, const std::string& flag) {
  if (t.credential.name.empty()) return;
  std::string key = flag;
  if (key.empty() && !t.credential.env.empty())
    if (const char* e = std::getenv(t.credential.env.c_str()); e && *e) key = e;
  if (!key.empty()) params["auth_key"] = key;
}

json call_asking_for_credential(RpcClient& client, const std::string& method, json params,
                                std::chrono::seconds timeout, const TransportInfo& t) {
  try {
    return client.call(method, params, timeout);
  } catch (const RpcError& e) {
    const std::string missing = t.credential.name + " is required";
    const bool needs_key =
        !t.credential.name.empty() && std::string(e.what()).rfind(missing, 0) == 0;
    if (!needs_key || params.contains("auth_key") || !::isatty(STDIN_FILENO)) throw;
  }
  const std::string prompt =
      t.credential.prompt.empty() ? t.id + " " + t.credential.name + ": " : t.credential.prompt;
  std::string key = read_secret(prompt);
  if (key.empty()) throw Error(missing_credential(t));
  params["auth_key"] = key;
  return client.call(method, params, timeout);
}

}  // namespace thrum::cli
