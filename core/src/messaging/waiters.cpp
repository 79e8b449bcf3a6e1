#include "messaging/waiters.hpp"

#include <vector>

#include "store/messages.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::messaging {

using json = nlohmann::json;

std::string preview(const std::string& body) {
  if (body.size() <= 100) return body;
  size_t n = 100;
  while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  return body.substr(0, n);
}

namespace {
json hit(const StoredMessage& m) {
  return {{"message_id", m.message_id},
          {"author", m.author_id},
          {"preview", preview(m.body)},
          {"created_at", m.created_at}};
}
}  // namespace

Waiters::~Waiters() {
  *alive_ = false;
  for (auto& [agent, w] : waiters_)
    if (w.timer) w.timer->cancel();
}

void Waiters::wait(const std::string& agent, int64_t timeout_ms, const std::string& after,
                   rpc::Respond respond) {
  json found = json::array();
  for (const auto& m : store::unread_since(store_.reader(), agent, after)) found.push_back(hit(m));
  if (!found.empty()) {
    respond(json{{"status", "received"}, {"messages", found}});
    return;
  }
  const uint64_t id = next_++;
  auto it = waiters_.emplace(agent, Waiter{id, std::move(respond), nullptr});
  it->second.timer =
      loop_.run_after(std::chrono::milliseconds(timeout_ms), [this, agent, id, alive = alive_] {
        if (!*alive) return;
        auto range = waiters_.equal_range(agent);
        for (auto w = range.first; w != range.second; ++w) {
          if (w->second.id != id) continue;
          auto r = std::move(w->second.respond);
          waiters_.erase(w);
          r(json{{"status", "timeout"}, {"messages", json::array()}});
          return;
        }
      });
}

void Waiters::delivered(const StoredMessage& m) {
  for (const auto& r : m.recipients) {
    auto range = waiters_.equal_range(r);
    std::vector<Waiter> done;
    for (auto w = range.first; w != range.second;) {
      done.push_back(std::move(w->second));
      w = waiters_.erase(w);
    }
    for (auto& w : done) {
      if (w.timer) w.timer->cancel();
      w.respond(json{{"status", "received"}, {"messages", json::array({hit(m)})}});
    }
  }
}

}  // namespace thrum::core::messaging
