#pragma once
// The Peer objects, one per record in the registry, by name. A removed peer's object is shut
// down and dropped; whoever still holds a weak reference to it finds nothing.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "peers/peer.hpp"

namespace thrum::core::peers {

class Directory {
 public:
  using Make = std::function<std::shared_ptr<Peer>(const std::string& name)>;
  explicit Directory(Make make) : make_(std::move(make)) {}

  std::shared_ptr<Peer> find(const std::string& name) const {
    auto it = peers_.find(name);
    return it == peers_.end() ? nullptr : it->second;
  }
  /// The peer's object, made on first use (a record loaded or just paired).
  std::shared_ptr<Peer> get(const std::string& name) {
    auto& p = peers_[name];
    if (!p) p = make_(name);
    return p;
  }
  /// Shuts the peer's object down (`reason` for whoever waits on it) and drops it.
  void erase(const std::string& name, const std::string& reason) {
    auto it = peers_.find(name);
    if (it == peers_.end()) return;
    auto p = std::move(it->second);
    peers_.erase(it);
    p->shutdown(reason);
  }
  const std::map<std::string, std::shared_ptr<Peer>>& all() const { return peers_; }
  void shutdown_all(const std::string& reason) {
    for (auto& [n, p] : peers_) p->shutdown(reason);
  }

 private:
  Make make_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
};

}  // namespace thrum::core::peers
