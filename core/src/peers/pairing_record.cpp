#include "peers/pairing_record.hpp"

#include <regex>

namespace thrum::core::peers {

namespace {
const PeerRecord* by_daemon_id(const PeerRegistry& registry, const std::string& id) {
  if (id.empty()) return nullptr;
  for (const auto& p : registry.peers())
    if (p.daemon_id == id) return &p;
  return nullptr;
}
}  // namespace

std::string check_prefix(const std::string& prefix) {
  static const std::regex re("^[a-z0-9_-]{1,64}$");
  if (!std::regex_match(prefix, re))
    return "invalid prefix \"" + prefix +
           "\": use 1-64 characters from a-z, 0-9, '_' and '-' (like an agent name), e.g. mock-sf";
  return "";
}

std::string settle_pairing_record(const PeerRegistry& registry, PeerRecord& r,
                                  const std::string& offered_name,
                                  const std::string& wanted_prefix) {
  const PeerRecord* old = by_daemon_id(registry, r.daemon_id);
  if (old) {
    r.name = old->name;
    r.remote_agents = old->remote_agents;
    r.proxy_prefix = old->proxy_prefix;
  } else {
    r.name = registry.unique_name(offered_name.empty() ? "peer" : offered_name);
    r.proxy_prefix = registry.unique_prefix(r.name);
  }
  if (wanted_prefix.empty()) return "";
  if (auto e = check_prefix(wanted_prefix); !e.empty()) return e;
  for (const auto& p : registry.peers())
    if (p.proxy_prefix == wanted_prefix && p.name != r.name)
      return "prefix \"" + wanted_prefix + "\" is already used by peer \"" + p.name +
             "\"; choose another --prefix";
  r.proxy_prefix = wanted_prefix;
  return "";
}

bool replaces_record(const PeerRegistry& registry, const PeerRecord& r) {
  const PeerRecord* old = by_daemon_id(registry, r.daemon_id);
  return old && old->name == r.name;
}

}  // namespace thrum::core::peers
