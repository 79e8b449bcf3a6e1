#pragma once
// Who is registered here (SPEC §5): local agents with their sessions, and proxies for agents on
// peers. The map is the loop's copy of the agents table; it changes only after the commit that
// changed the table. Loop thread only.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "thrum/common/repo.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/messaging_types.hpp"

namespace thrum::core {
class Store;
}

namespace thrum::core::messaging {

class AgentDirectory {
 public:
  AgentDirectory(Store& store, RepoPaths paths);
  ~AgentDirectory();
  AgentDirectory(const AgentDirectory&) = delete;
  AgentDirectory& operator=(const AgentDirectory&) = delete;

  const std::map<std::string, Agent>& agents() const { return agents_; }
  const Agent* find(const std::string& id) const;
  /// The local agent a request acts as, or rpc::Failure telling how to register it.
  const Agent& require_local(const std::string& id) const;

  /// What agent.register asked for.
  struct Registration {
    std::string name, role;
    std::optional<std::string> module, display, worktree, intent;
    std::optional<int64_t> agent_pid;
    bool write_identity = false;
  };
  /// Creates or updates the agent and starts a new session; `respond` after the commit.
  /// `changed` runs after a successful registration (presence for peers).
  void register_agent(const Registration& r, rpc::Respond respond, std::function<void()> changed);

  /// Registers the proxy `<prefix>:<remote_name>` for `peer`. `done("")` or an error.
  void add_proxy(const std::string& peer, const std::string& prefix, const std::string& remote_name,
                 std::function<void(std::string)> done);
  /// One proxy (`proxy_id`), or all of `peer`'s when it is empty.
  void remove_proxies(const std::string& peer, const std::string& proxy_id,
                      std::function<void(std::string)> done);
  void rename_proxies(const std::string& peer, const std::string& old_prefix,
                      const std::string& new_prefix, std::function<void(std::string)> done);
  /// A proxy a commit created (the author of an inbound message).
  void adopt(const Agent& proxy);
  /// A proxy for the author of a peer's message, if it is not registered yet.
  std::optional<Agent> author_proxy(const std::string& peer, const std::string& prefix,
                                    const std::string& author) const;

  /// Validates an agent name (SPEC §5); returns an error message or "".
  static std::string check_name(const std::string& name);

 private:
  void write_identity_file(const Agent& a);

  Store& store_;
  RepoPaths paths_;
  std::map<std::string, Agent> agents_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The JSON form of an agent (agent.list, team, whoami).
nlohmann::json agent_json(const Agent& a);

}  // namespace thrum::core::messaging
