#pragma once
/// @file
/// The plugin descriptor and the THRUM_TRANSPORT_PLUGIN macro.
///
/// A plugin is a shared library named `libthrum_transport_<id>.so` that exports exactly one
/// symbol, `thrum_transport_plugin`: a constant C-layout ThrumTransportPluginDescriptor. The host
/// reads it right after loading the library and checks it (size, ABI, toolchain, id) before it
/// runs any plugin function. Build plugins with hidden visibility
/// (`thrum_add_transport_plugin()` does) so that this is the only exported symbol.

#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"
#include "thrum/sdk/version.hpp"

/// Marks the one exported symbol.
#define THRUM_SDK_EXPORT __attribute__((visibility("default")))

/// The exported symbol's name. Stable across ABI majors, so that the host can always read the
/// first fields and explain a mismatch.
#define THRUM_SDK_DESCRIPTOR_SYMBOL thrum_transport_plugin
#define THRUM_SDK_DESCRIPTOR_SYMBOL_NAME "thrum_transport_plugin"

extern "C" {

/// Creates the plugin's transport. Returns a new object owned by the host (released with
/// `destroy`), or nullptr on failure. `host` outlives the returned object. Must not throw (the
/// macro's factory catches everything and reports it through `host`).
typedef thrum::sdk::ITransport* (*ThrumTransportCreateFn)(thrum::sdk::IHost* host) noexcept;
/// Destroys an object returned by `create`. nullptr is ignored.
typedef void (*ThrumTransportDestroyFn)(thrum::sdk::ITransport* transport) noexcept;

/// The plugin descriptor. C layout, append-only: fields are only ever added at the end (with an
/// ABI minor bump) and `struct_size` tells the host how many the plugin knows. The first three
/// fields never move. All strings are NUL-terminated, static, never null in a valid plugin.
struct ThrumTransportPluginDescriptor {
  std::uint32_t struct_size;        ///< sizeof(ThrumTransportPluginDescriptor) as the plugin saw it
  std::uint16_t abi_major;          ///< THRUM_SDK_ABI_MAJOR the plugin was built with
  std::uint16_t abi_minor;          ///< THRUM_SDK_ABI_MINOR the plugin was built with
  const char* toolchain_tag;        ///< THRUM_SDK_TOOLCHAIN_TAG the plugin was built with
  const char* id;                   ///< transport id, `[a-z0-9_]+`, equal to ITransport::id()
  const char* plugin_version;       ///< the plugin's own version, free-form (e.g. "1.2.0")
  const char* sdk_version;          ///< THRUM_SDK_VERSION_STRING the plugin was built with
  ThrumTransportCreateFn create;    ///< factory; never null in a valid plugin
  ThrumTransportDestroyFn destroy;  ///< deleter for what `create` returned; never null
};

}  // extern "C"

namespace thrum::sdk::detail {

/// The factory THRUM_TRANSPORT_PLUGIN generates: `new T(host)`, with every exception turned into
/// an error log line through `host` (prefixed "factory threw: ") and nullptr.
template <class T>
ITransport* create_transport(IHost* host) noexcept {
  try {
    return new T(host);
  } catch (const std::exception& e) {
    if (host != nullptr) host->log(LogLevel::kError, std::string("factory threw: ") + e.what());
  } catch (...) {
    if (host != nullptr) host->log(LogLevel::kError, "factory threw: unknown exception");
  }
  return nullptr;
}

inline void destroy_transport(ITransport* transport) noexcept {
  delete transport;
}

}  // namespace thrum::sdk::detail

/// Declares the plugin. Use once, at global namespace scope, in one .cpp of the plugin:
///
///     THRUM_TRANSPORT_PLUGIN(thrum::transport::uds::UdsTransport, "uds", "1.0.0")
///
/// `TransportClass` derives from thrum::sdk::ITransport and has a constructor taking
/// `thrum::sdk::IHost*`. `id` and `version` are string literals.
#define THRUM_TRANSPORT_PLUGIN(TransportClass, id_literal, version_literal)                 \
  extern "C" {                                                                              \
  THRUM_SDK_EXPORT extern const ThrumTransportPluginDescriptor THRUM_SDK_DESCRIPTOR_SYMBOL; \
  }                                                                                         \
  const ThrumTransportPluginDescriptor THRUM_SDK_DESCRIPTOR_SYMBOL = {                      \
      static_cast<std::uint32_t>(sizeof(ThrumTransportPluginDescriptor)),                   \
      THRUM_SDK_ABI_MAJOR,                                                                  \
      THRUM_SDK_ABI_MINOR,                                                                  \
      THRUM_SDK_TOOLCHAIN_TAG,                                                              \
      id_literal,                                                                           \
      version_literal,                                                                      \
      THRUM_SDK_VERSION_STRING,                                                             \
      &::thrum::sdk::detail::create_transport<TransportClass>,                              \
      &::thrum::sdk::detail::destroy_transport,                                             \
  }
