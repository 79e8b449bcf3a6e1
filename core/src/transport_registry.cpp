#include "thrum/core/transport_registry.hpp"

namespace thrum::core {

Transport Transport::of(ITransportHandle t, int abi_minor) {
  Transport out;
  if (!t) return out;
  out.caps = t->capabilities();
  // A 1.0 plugin's vtable ends before profile(): calling it would jump into nothing.
  if (abi_minor >= 1) out.profile = t->profile();
  if (out.profile.help.empty()) out.profile.help = "Transport from a plugin (no description).";
  if (out.profile.state_dir.empty()) out.profile.state_dir = std::string(t->id());
  out.handle = std::move(t);
  return out;
}

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
