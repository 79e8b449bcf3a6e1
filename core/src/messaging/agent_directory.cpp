#include "messaging/agent_directory.hpp"
#include "error_text.hpp"

#include <signal.h>

#include <cerrno>
#include <regex>
#include <set>

#include <spdlog/spdlog.h>

#include "store/messages.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/common/config.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core {

bool Agent::active() const {
  if (!session_id) return false;
  if (agent_pid && *agent_pid > 0) {
    if (::kill(static_cast<pid_t>(*agent_pid), 0) != 0 && errno == ESRCH) return false;
  }
  return true;
}

}  // namespace thrum::core

namespace thrum::core::messaging {

using json = nlohmann::json;
using rpc::fail;

namespace {
const std::set<std::string> kReserved = {"everyone", "daemon", "system",
                                         "thrum",    "all",    "broadcast"};

}  // namespace

AgentDirectory::AgentDirectory(Store& store, RepoPaths paths)
    : store_(store), paths_(std::move(paths)) {
  for (auto& a : store::load_agents(store_.reader())) agents_[a.agent_id] = std::move(a);
}

AgentDirectory::~AgentDirectory() {
  *alive_ = false;
}

std::string AgentDirectory::check_name(const std::string& name) {
  static const std::regex re("^[a-z0-9_-]{1,64}$");
  if (!std::regex_match(name, re))
    return "invalid agent name \"" + name + "\": use 1-64 characters from a-z, 0-9, '_' and '-'";
  if (kReserved.count(name)) return "agent name \"" + name + "\" is reserved; choose another";
  return "";
}

const Agent* AgentDirectory::find(const std::string& id) const {
  auto it = agents_.find(id);
  return it == agents_.end() ? nullptr : &it->second;
}

const Agent& AgentDirectory::require_local(const std::string& id) const {
  auto a = agents_.find(id);
  if (a == agents_.end() || a->second.is_proxy())
    fail("unknown agent \"" + id + "\": register it first with 'thrum quickstart --name " + id +
         " --role <role>'");
  return a->second;
}

void AgentDirectory::register_agent(const Registration& r, rpc::Respond respond,
                                    std::function<void()> changed) {
  auto existing = agents_.find(r.name);
  if (existing != agents_.end() && existing->second.is_proxy())
    fail("\"" + r.name + "\" is a proxy for a peer's agent; choose another name");
  Agent a = existing != agents_.end() ? existing->second : Agent{};
  const bool is_new = existing == agents_.end();
  const std::string now = now_rfc3339();
  a.agent_id = r.name;
  a.kind = "agent";
  a.role = r.role;
  a.module = r.module.value_or(a.module);
  a.display = r.display.value_or(a.display);
  a.worktree = r.worktree.value_or(a.worktree);
  a.hostname = host_name();
  if (r.agent_pid) a.agent_pid = *r.agent_pid;
  a.intent = r.intent.value_or(a.intent);
  a.session_id = new_session_id();
  a.session_started_at = now;
  if (is_new) a.registered_at = now;
  a.last_seen_at = now;
  const bool write_identity = r.write_identity;
  store_.write(
      [a](sql::Db& db) { store::upsert_agent(db, a); },
      [this, a, is_new, write_identity, respond, changed, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          respond(rpc::Error{rpc::kHandlerError, "could not register agent: " + describe(err),
                             nullptr});
          return;
        }
        agents_[a.agent_id] = a;
        json result = {{"agent_id", a.agent_id},      {"status", is_new ? "registered" : "updated"},
                       {"session_id", *a.session_id}, {"role", a.role},
                       {"module", a.module},          {"intent", a.intent}};
        if (write_identity) {
          try {
            write_identity_file(a);
            result["identity_file"] = (paths_.identities / (a.agent_id + ".json")).string();
          } catch (const std::exception& e) {
            respond(rpc::Error{
                rpc::kHandlerError,
                std::string("registered, but could not write the identity file: ") + e.what(),
                nullptr});
            return;
          }
        }
        spdlog::info("agent registered agent={} role={} status={}", a.agent_id, a.role,
                     is_new ? "new" : "updated");
        respond(result);
        if (changed) changed();
      });
}

void AgentDirectory::write_identity_file(const Agent& a) {
  ensure_dir(paths_.identities, 0700);
  json doc = {{"version", 5},
              {"repo_id", paths_.root.filename().string()},
              {"agent",
               {{"Kind", "agent"},
                {"Name", a.agent_id},
                {"Role", a.role},
                {"Module", a.module},
                {"Display", a.display}}},
              {"worktree", a.worktree},
              {"intent", a.intent},
              {"session_id", a.session_id.value_or("")},
              {"updated_at", now_rfc3339()}};
  atomic_write_file(paths_.identities / (a.agent_id + ".json"), dump_pretty(doc) + "\n", 0600);
}

std::optional<Agent> AgentDirectory::author_proxy(const std::string& peer,
                                                  const std::string& prefix,
                                                  const std::string& author) const {
  const std::string id = prefix + ":" + author;
  if (agents_.count(id)) return std::nullopt;
  Agent a;
  a.agent_id = id;
  a.kind = "proxy";
  a.peer_name = peer;
  a.remote_name = author;
  a.registered_at = a.last_seen_at = now_rfc3339();
  return a;
}

void AgentDirectory::adopt(const Agent& proxy) {
  if (!agents_.count(proxy.agent_id)) agents_[proxy.agent_id] = proxy;
}

void AgentDirectory::add_proxy(const std::string& peer, const std::string& prefix,
                               const std::string& remote_name,
                               std::function<void(std::string)> done) {
  if (auto err = check_name(remote_name); !err.empty()) {
    done(err);
    return;
  }
  Agent p;
  p.agent_id = prefix + ":" + remote_name;
  p.kind = "proxy";
  p.peer_name = peer;
  p.remote_name = remote_name;
  p.registered_at = p.last_seen_at = now_rfc3339();
  if (agents_.count(p.agent_id)) {
    done("proxy @" + p.agent_id + " is already registered");
    return;
  }
  store_.write([p](sql::Db& db) { store::insert_proxy(db, p, false); },
               [this, p, done, alive = alive_](std::exception_ptr err) {
                 if (!*alive) return;
                 if (err) {
                   done("could not register proxy: " + describe(err));
                   return;
                 }
                 agents_[p.agent_id] = p;
                 done("");
               });
}

void AgentDirectory::remove_proxies(const std::string& peer, const std::string& proxy_id,
                                    std::function<void(std::string)> done) {
  std::vector<std::string> ids;
  for (const auto& [id, a] : agents_)
    if (a.is_proxy() && a.peer_name == peer && (proxy_id.empty() || id == proxy_id))
      ids.push_back(id);
  if (!proxy_id.empty() && ids.empty()) {
    done("no proxy @" + proxy_id + " is registered");
    return;
  }
  store_.write(
      [ids](sql::Db& db) {
        for (const auto& id : ids) store::delete_agent(db, id);
      },
      [this, ids, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          done("could not unregister proxies: " + describe(err));
          return;
        }
        for (const auto& id : ids) agents_.erase(id);
        done("");
      });
}

void AgentDirectory::rename_proxies(const std::string& peer, const std::string& old_prefix,
                                    const std::string& new_prefix,
                                    std::function<void(std::string)> done) {
  std::vector<std::pair<std::string, std::string>> renames;
  for (const auto& [id, a] : agents_) {
    if (!a.is_proxy() || a.peer_name != peer) continue;
    if (id.rfind(old_prefix + ":", 0) != 0) continue;
    std::string to = new_prefix + ":" + id.substr(old_prefix.size() + 1);
    if (agents_.count(to)) {
      done("cannot rename: @" + to + " already exists");
      return;
    }
    renames.emplace_back(id, to);
  }
  store_.write(
      [renames](sql::Db& db) {
        for (const auto& [from, to] : renames) store::rename_agent(db, from, to);
      },
      [this, renames, done, alive = alive_](std::exception_ptr err) {
        if (!*alive) return;
        if (err) {
          done("could not rename proxies: " + describe(err));
          return;
        }
        for (const auto& [from, to] : renames) {
          auto node = agents_.extract(from);
          node.key() = to;
          node.mapped().agent_id = to;
          agents_.insert(std::move(node));
        }
        done("");
      });
}

json agent_json(const Agent& a) {
  json j = {{"agent_id", a.agent_id},
            {"kind", a.kind},
            {"role", a.role},
            {"module", a.module},
            {"display", a.display},
            {"worktree", a.worktree},
            {"hostname", a.hostname},
            {"intent", a.intent},
            {"registered_at", a.registered_at},
            {"last_seen_at", a.last_seen_at}};
  j["session_id"] = a.session_id ? json(*a.session_id) : json(nullptr);
  j["session_started_at"] = a.session_started_at ? json(*a.session_started_at) : json(nullptr);
  j["agent_pid"] = a.agent_pid ? json(*a.agent_pid) : json(nullptr);
  if (a.is_proxy()) {
    j["peer_name"] = a.peer_name.value_or("");
    j["remote_name"] = a.remote_name.value_or("");
  }
  return j;
}

}  // namespace thrum::core::messaging
