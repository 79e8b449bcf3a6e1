#include "thrum/core/transport_registry.hpp"

namespace thrum::core {

bool TransportRegistry::add(PluginInfo info, ITransportHandle transport) {
  if (!transport || entries_.count(info.id) != 0) return false;
  std::string id = info.id;
  entries_.emplace(std::move(id), Entry{std::move(info), std::move(transport)});
  return true;
}

ITransportHandle TransportRegistry::get(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.transport;
}

const PluginInfo* TransportRegistry::info(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second.info;
}

std::vector<std::string> TransportRegistry::ids() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(id);
  return out;
}

}  // namespace thrum::core
