#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "thrum/sdk/transport.hpp"

namespace thrum::core {

/// A transport as the core holds it. Shares ownership of the plugin's ITransport object (the
/// deleter calls the plugin's `destroy`); the plugin library itself is never unloaded, so a handle
/// stays usable for as long as anyone holds it. nullptr means "not available".
using ITransportHandle = std::shared_ptr<sdk::ITransport>;

/// What the host knows about a loaded plugin.
struct PluginInfo {
  std::string id;
  std::string version;      ///< the plugin's own version
  std::string sdk_version;  ///< SDK it was built with
  std::string abi;          ///< "<major>.<minor>" it was built with
  int abi_minor = 0;        ///< the minor of `abi`: which ITransport methods exist
  std::string toolchain;    ///< toolchain tag it was built with
  std::filesystem::path path;
};

/// A transport the core may use now, with the facts it decides by: the core knows transports by
/// these, never by their ids.
struct Transport {
  ITransportHandle handle;  ///< null: not available
  sdk::Capabilities caps;
  /// ITransport::profile() for plugins of ABI 1.1 or newer, the documented defaults for 1.0
  /// plugins; `help` and `state_dir` are never empty.
  sdk::TransportProfile profile;

  explicit operator bool() const { return handle != nullptr; }
  sdk::ITransport* operator->() const { return handle.get(); }
  /// What the core passes to listen() and to the rest: the profile with defaults applied.
  static Transport of(ITransportHandle t, int abi_minor);
};

/// id -> transport, for the rest of the core (peer add/join, links, drift). Filled while the
/// daemon starts, read-only afterwards: concurrent reads are safe, writes are not.
class TransportRegistry {
 public:
  /// Adds a transport; returns false (and changes nothing) when the id is already taken.
  bool add(PluginInfo info, ITransportHandle transport);
  /// The transport, or nullptr.
  ITransportHandle get(const std::string& id) const;
  /// Metadata, or nullptr.
  const PluginInfo* info(const std::string& id) const;
  bool contains(const std::string& id) const { return entries_.count(id) != 0; }
  /// Loaded ids, sorted.
  std::vector<std::string> ids() const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    PluginInfo info;
    ITransportHandle transport;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace thrum::core
