#include "messaging/recipients.hpp"

#include <algorithm>

#include "messaging/agent_directory.hpp"
#include "store/messages.hpp"
#include "thrum/core/messaging.hpp"

namespace thrum::core::messaging {

namespace {
std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}
}  // namespace

Recipients resolve_recipients(const AgentDirectory& agents, const Agent& caller,
                              const std::vector<std::string>& to,
                              const std::optional<StoredMessage>& parent, sql::Db& reader,
                              const Router* router) {
  Recipients r;
  std::vector<std::string> unknown;
  for (std::string t : to) {
    if (!t.empty() && t[0] == '@') t.erase(0, 1);
    if (t == "everyone") {
      r.broadcast = true;
      continue;
    }
    const Agent* a = t.empty() ? nullptr : agents.find(t);
    if (!a) {
      unknown.push_back("@" + t);
      continue;
    }
    if (a->is_proxy())
      r.proxies.push_back(a);
    else
      r.locals.push_back(t);
    r.audience.push_back("agent:" + t);
  }
  if (!unknown.empty()) {
    std::string msg = "unknown recipient " + join(unknown, ", ");
    const std::string& first = unknown.front();
    if (auto colon = first.find(':'); colon != std::string::npos) {
      const std::string prefix = first.substr(1, colon - 1);
      const std::string name = first.substr(colon + 1);
      auto peer = router ? router->peer_for_prefix(prefix) : std::nullopt;
      if (peer)
        msg += " — register it with: thrum peer configure " + *peer + " add-agent " + name;
      else
        msg += " — no peer uses the prefix \"" + prefix + "\" (see 'thrum peer list')";
    } else {
      msg += " — see 'thrum team --all' for registered agents";
    }
    rpc::fail(msg);
  }
  if (r.broadcast) {
    r.audience.push_back("broadcast:everyone");
    for (const auto& [id, a] : agents.agents())
      if (id != caller.agent_id && !a.is_proxy()) r.locals.push_back(id);
  }
  if (parent && to.empty()) {
    // A reply goes to the parent's author; the author replying to themself continues the
    // conversation with the parent's recipients.
    std::vector<std::string> targets;
    if (parent->author_id != caller.agent_id)
      targets.push_back(parent->author_id);
    else
      targets = store::delivery_recipients(reader, parent->message_id);
    for (const auto& t : targets) {
      const Agent* a = agents.find(t);
      if (!a) continue;  // e.g. a broadcast's per-peer row
      if (a->is_proxy())
        r.proxies.push_back(a);
      else
        r.locals.push_back(t);
      r.audience.push_back("agent:" + t);
    }
    if (r.locals.empty() && r.proxies.empty())
      rpc::fail("cannot reply to " + parent->message_id + ": its author @" + parent->author_id +
                " is no longer registered here");
  }
  std::sort(r.locals.begin(), r.locals.end());
  r.locals.erase(std::unique(r.locals.begin(), r.locals.end()), r.locals.end());
  std::sort(r.proxies.begin(), r.proxies.end());
  r.proxies.erase(std::unique(r.proxies.begin(), r.proxies.end()), r.proxies.end());
  return r;
}

}  // namespace thrum::core::messaging
