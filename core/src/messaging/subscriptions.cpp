#include "messaging/subscriptions.hpp"

#include <algorithm>
#include <optional>

#include "thrum/core/json_rpc.hpp"

namespace thrum::core::messaging {

uint64_t Subscriptions::add(std::string agent_id, Push push, Alive alive) {
  prune();
  const uint64_t id = next_id_++;
  subs_.emplace(id, Sub{std::move(agent_id), std::move(push), std::move(alive)});
  return id;
}

void Subscriptions::prune() {
  for (auto it = subs_.begin(); it != subs_.end();) {
    if (it->second.alive && !it->second.alive())
      it = subs_.erase(it);
    else
      ++it;
  }
}

void Subscriptions::announce(const StoredMessage& m) {
  std::optional<std::string> line;  // built for the first subscriber that wants it
  for (auto it = subs_.begin(); it != subs_.end();) {
    Sub& s = it->second;
    const bool wanted =
        std::find(m.recipients.begin(), m.recipients.end(), s.agent_id) != m.recipients.end();
    if (!wanted) {
      ++it;
      continue;
    }
    if (!line)
      line = rpc::make_notification("message.received", nlohmann::json{{"message", shape_(m)}});
    const bool ok = (!s.alive || s.alive()) && s.push(*line);
    it = ok ? std::next(it) : subs_.erase(it);
  }
}

}  // namespace thrum::core::messaging
