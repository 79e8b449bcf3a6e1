#include "thrum/core/plugin_loader.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string_view>

#include <spdlog/spdlog.h>
#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "thrum/sdk/plugin.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "libthrum_transport_";
constexpr std::string_view kSuffix = ".so";
// The descriptor as ABI 1.0 defines it; anything shorter cannot be read safely.
constexpr std::size_t kMinDescriptorSize = sizeof(ThrumTransportPluginDescriptor);

bool valid_id(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

spdlog::level::level_enum to_spdlog(sdk::LogLevel level) {
  switch (level) {
    case sdk::LogLevel::kTrace:
      return spdlog::level::trace;
    case sdk::LogLevel::kDebug:
      return spdlog::level::debug;
    case sdk::LogLevel::kInfo:
      return spdlog::level::info;
    case sdk::LogLevel::kWarn:
      return spdlog::level::warn;
    case sdk::LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// The IHost each transport gets. While the loader runs the factory it also records the last
// error line, so that "factory threw: ..." from the SDK's generated factory ends up in the refusal.
class LoggingHost final : public sdk::IHost {
 public:
  explicit LoggingHost(std::string id) : id_(std::move(id)) {}
  void log(sdk::LogLevel level, std::string_view message) noexcept override {
    if (message.empty()) return;
    try {
      spdlog::log(to_spdlog(level), "plugin log id={} msg=\"{}\"", id_, message);
      std::lock_guard lock(mu_);
      if (capturing_ && level >= sdk::LogLevel::kError) last_error_ = std::string(message);
    } catch (...) {
      // Logging must never take the daemon down.
    }
  }
  void capture(bool on) {
    std::lock_guard lock(mu_);
    capturing_ = on;
    last_error_.clear();
  }
  std::string last_error() {
    std::lock_guard lock(mu_);
    return last_error_;
  }

 private:
  std::string id_;
  std::mutex mu_;
  bool capturing_ = false;
  std::string last_error_;
};

// Everything a plugin's code may still reference: loaded libraries and the hosts handed to
// plugins. Leaked on purpose (Boost.DLL "Missuses": never unload while plugin code may run, and
// static destructors run in an order we do not control).
struct KeepAlive {
  std::mutex mu;
  std::vector<boost::dll::shared_library> libraries;
  std::vector<std::unique_ptr<LoggingHost>> hosts;
};
KeepAlive& keep_alive() {
  static auto* k = new KeepAlive;
  return *k;
}

std::string mode_octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string str_or_empty(const char* s) {
  return s == nullptr ? std::string() : std::string(s);
}

// Runs the stages; returns false at the first failure (already recorded in `r`).
class Stages {
 public:
  explicit Stages(LoadReport& r) : r_(r) {}
  bool pass(std::string stage, std::string detail = {}) {
    r_.stages.push_back({std::move(stage), true, std::move(detail)});
    return true;
  }
  bool fail(std::string stage, std::string detail) {
    r_.stages.push_back({std::move(stage), false, std::move(detail)});
    return false;
  }

 private:
  LoadReport& r_;
};

bool run_stages(const fs::path& file, const PluginLoader::Request& req, LoadReport& r) {
  Stages s(r);
  const std::string name = file.filename().string();

  // 1. file name
  auto id = PluginLoader::id_from_file_name(name);
  if (!id) {
    return s.fail("file name",
                  "\"" + name + "\" is not libthrum_transport_<id>.so with id [a-z0-9_]+");
  }
  r.info.id = *id;
  s.pass("file name", name);

  // 2. file mode (stat follows symlinks: what gets loaded is the target)
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return s.fail("file mode", std::string("cannot stat: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return s.fail("file mode", "not a regular file");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return s.fail("file mode", "mode " + mode_octal(st.st_mode) +
                                   " is group/world-writable (fix: chmod go-w " + file.string() +
                                   ")");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me) {
    return s.fail("file mode", "owned by uid " + std::to_string(st.st_uid) +
                                   ", expected root or the daemon's user (uid " +
                                   std::to_string(me) + ")");
  }
  s.pass("file mode", mode_octal(st.st_mode));

  // 3. shared library: ELF magic and ET_DYN
  {
    std::ifstream in(file, std::ios::binary);
    unsigned char hdr[18] = {};
    in.read(reinterpret_cast<char*>(hdr), sizeof hdr);
    if (in.gcount() < static_cast<std::streamsize>(sizeof hdr) || hdr[0] != 0x7f || hdr[1] != 'E' ||
        hdr[2] != 'L' || hdr[3] != 'F') {
      return s.fail("shared library", "not an ELF file");
    }
    // e_type (offset 16) in the file's byte order (EI_DATA at offset 5: 1 = little endian).
    const unsigned type = hdr[5] == 1 ? hdr[16] | (hdr[17] << 8) : (hdr[16] << 8) | hdr[17];
    if (type != 3 /* ET_DYN */) return s.fail("shared library", "ELF file is not a shared object");
    if (hdr[4] != (sizeof(void*) == 8 ? 2 : 1)) {
      return s.fail("shared library", "ELF class does not match this host (32/64-bit)");
    }
  }
  s.pass("shared library", "ELF shared object");

  // 4. symbol, read from the file without running any code
  try {
    boost::dll::library_info info(file);
    const auto symbols = info.symbols();
    if (std::find(symbols.begin(), symbols.end(), THRUM_SDK_DESCRIPTOR_SYMBOL_NAME) ==
        symbols.end()) {
      return s.fail("symbol", std::string("missing entry symbol ") +
                                  THRUM_SDK_DESCRIPTOR_SYMBOL_NAME +
                                  " (declare the plugin with THRUM_TRANSPORT_PLUGIN)");
    }
  } catch (const std::exception& e) {
    return s.fail("symbol", std::string("cannot read symbols: ") + e.what());
  }
  s.pass("symbol", THRUM_SDK_DESCRIPTOR_SYMBOL_NAME);

  // 5. load
  const ThrumTransportPluginDescriptor* d = nullptr;
  try {
    boost::dll::shared_library lib(
        file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    const bool found = lib.has(THRUM_SDK_DESCRIPTOR_SYMBOL_NAME);
    if (found) d = &lib.get<const ThrumTransportPluginDescriptor>(THRUM_SDK_DESCRIPTOR_SYMBOL_NAME);
    {
      std::lock_guard lock(keep_alive().mu);
      keep_alive().libraries.push_back(std::move(lib));
    }
    if (!found) {
      // In the file's symbol table but not dynamically exported (e.g. a file-local symbol).
      return s.fail("load", std::string(THRUM_SDK_DESCRIPTOR_SYMBOL_NAME) +
                                " is not exported by the loaded library");
    }
  } catch (const std::exception& e) {
    // Boost wraps dlerror() in "shared_library::load() failed (dlerror system message: <msg>):
    // <errno text>"; the dlerror text (e.g. "undefined symbol: x") is what the user needs.
    std::string what = e.what();
    const std::string key = "dlerror system message: ";
    if (auto at = what.find(key); at != std::string::npos) {
      auto end = what.rfind(')');
      what =
          what.substr(at + key.size(), end != std::string::npos && end > at ? end - at - key.size()
                                                                            : std::string::npos);
    }
    return s.fail("load", "dlopen failed: " + what);
  }
  s.pass("load");

  // 6. struct size
  if (d->struct_size < kMinDescriptorSize) {
    return s.fail("struct size", "descriptor is " + std::to_string(d->struct_size) +
                                     " bytes, ABI " + std::to_string(THRUM_SDK_ABI_MAJOR) +
                                     ".0 needs at least " + std::to_string(kMinDescriptorSize));
  }
  s.pass("struct size", std::to_string(d->struct_size));

  // 7. abi
  const std::string abi = std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor);
  r.info.abi = abi;
  r.info.abi_minor = d->abi_minor;
  const std::string host_abi =
      std::to_string(THRUM_SDK_ABI_MAJOR) + "." + std::to_string(THRUM_SDK_ABI_MINOR);
  if (d->abi_major != THRUM_SDK_ABI_MAJOR) {
    return s.fail("abi", "plugin ABI " + abi + ", host supports " +
                             std::to_string(THRUM_SDK_ABI_MAJOR) + ".x");
  }
  if (d->abi_minor > THRUM_SDK_ABI_MINOR) {
    return s.fail("abi", "plugin ABI " + abi + " is newer than the host's " + host_abi +
                             " (upgrade thrum or rebuild the plugin against SDK " + host_abi + ")");
  }
  s.pass("abi", abi);

  // 8. toolchain
  const std::string tag = str_or_empty(d->toolchain_tag);
  r.info.toolchain = tag;
  r.info.version = str_or_empty(d->plugin_version);
  r.info.sdk_version = str_or_empty(d->sdk_version);
  if (tag != THRUM_SDK_TOOLCHAIN_TAG) {
    return s.fail("toolchain",
                  "plugin built with \"" + tag + "\", host is \"" + THRUM_SDK_TOOLCHAIN_TAG + "\"");
  }
  s.pass("toolchain", tag);

  // 9. id
  const std::string did = str_or_empty(d->id);
  if (!valid_id(did)) return s.fail("id", "descriptor id \"" + did + "\" is not [a-z0-9_]+");
  if (did != *id) {
    return s.fail("id",
                  "descriptor id \"" + did + "\" does not match the file name's \"" + *id + "\"");
  }
  if (req.taken != nullptr) {
    if (auto it = req.taken->find(did); it != req.taken->end()) {
      return s.fail(
          "id", "duplicate id \"" + did + "\" (already loaded from " + it->second.string() + ")");
    }
  }
  s.pass("id", did);

  // 10. factory
  if (d->create == nullptr) return s.fail("factory", "descriptor has a null factory");
  if (d->destroy == nullptr) return s.fail("factory", "descriptor has a null destroy function");
  s.pass("factory");

  if (!req.instantiate) return true;

  // 11. create
  auto host_owned = std::make_unique<LoggingHost>(did);
  LoggingHost* host = host_owned.get();
  {
    std::lock_guard lock(keep_alive().mu);
    keep_alive().hosts.push_back(std::move(host_owned));
  }
  sdk::ITransport* raw = nullptr;
  host->capture(true);
  try {
    raw = d->create(host);
  } catch (...) {
    // A factory that lies about noexcept; the SDK's generated factory never gets here.
    host->capture(false);
    return s.fail("create", "factory threw an exception");
  }
  const std::string err = host->last_error();
  host->capture(false);
  if (raw == nullptr) {
    return s.fail("create", err.rfind("factory threw", 0) == 0
                                ? err
                                : "factory returned null" + (err.empty() ? "" : " (" + err + ")"));
  }
  const auto destroy = d->destroy;
  ITransportHandle t(raw, [destroy](sdk::ITransport* p) { destroy(p); });
  if (t->id() != did) {
    return s.fail("create", "transport id() \"" + std::string(t->id()) +
                                "\" differs from the descriptor's \"" + did + "\"");
  }
  s.pass("create");

  // 12. configure
  const sdk::Status st_conf = t->configure(req.options_json);
  if (!st_conf.ok())
    return s.fail("configure", st_conf.message.empty() ? "failed" : st_conf.message);
  s.pass("configure");
  r.transport = std::move(t);
  return true;
}

}  // namespace

std::string LoadReport::refusal() const {
  if (ok() || stages.empty()) return {};
  return "refused: " + stages.back().stage + ": " + stages.back().detail;
}

std::vector<std::string> PluginLoader::describe(const LoadReport& report) {
  std::vector<std::string> lines;
  for (const auto& st : report.stages) {
    std::string line = (st.ok ? "\u2713 " : "\u2717 ") + st.stage;
    if (!st.detail.empty()) line += ": " + st.detail;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::optional<std::string> PluginLoader::id_from_file_name(const std::string& name) {
  if (name.size() <= kPrefix.size() + kSuffix.size()) return std::nullopt;
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  if (name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) return std::nullopt;
  std::string id = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (!valid_id(id)) return std::nullopt;
  return id;
}

LoadReport PluginLoader::load(const std::filesystem::path& file, const Request& request) const {
  LoadReport r;
  r.path = file;
  r.info.path = file;
  try {
    run_stages(file, request, r);
  } catch (const std::exception& e) {
    r.transport.reset();
    r.stages.push_back({"internal", false, e.what()});
  }
  if (!r.ok()) {
    spdlog::warn("plugin refused path={} stage={} detail=\"{}\"", file.string(),
                 r.stages.back().stage, r.stages.back().detail);
  } else if (r.transport) {
    spdlog::info("plugin loaded id={} version={} abi={} path={}", r.info.id, r.info.version,
                 r.info.abi, file.string());
  }
  return r;
}

}  // namespace thrum::core
