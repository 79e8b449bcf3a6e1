#include "libtailscale_api.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

#include <boost/dll/shared_library.hpp>

namespace thrum::transport::tailscale {

using sdk::Errc;
using sdk::Status;

namespace {

constexpr const char* kSymbols[] = {
    "tailscale_new",         "tailscale_start",           "tailscale_up",
    "tailscale_close",       "tailscale_set_dir",         "tailscale_set_hostname",
    "tailscale_set_authkey", "tailscale_set_control_url", "tailscale_set_ephemeral",
    "tailscale_set_logfd",   "tailscale_getips",          "tailscale_dial",
    "tailscale_listen",      "tailscale_accept",          "tailscale_getremoteaddr",
    "tailscale_errmsg",
};

constexpr const char* kDefaultName = "libtailscale.so";

/// Libraries loaded so far, by the candidate that found them. Never destroyed: a Go c-shared
/// library must not be dlclose()d, and static destructors at exit would do exactly that.
struct Cache {
  std::mutex mu;
  std::map<std::string, const LibTailscale*> by_candidate;
};
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

template <class Fn>
void resolve(boost::dll::shared_library& lib, const char* name, Fn& out,
             std::vector<std::string>& missing) {
  if (!lib.has(name)) {
    missing.emplace_back(name);
    return;
  }
  out = &lib.get<std::remove_pointer_t<Fn>>(name);
}

struct Attempt {
  bool found = false;  // the file exists (or the loader found the name)
  const LibTailscale* lib = nullptr;
  std::string error;  // set when found but unusable
};

Attempt try_load(const std::string& candidate, bool system_search) {
  Attempt a;
  namespace dll = boost::dll;
  if (!system_search) {
    std::error_code ec;
    if (!std::filesystem::exists(candidate, ec)) return a;
  }
  a.found = true;
  dll::shared_library lib;
  boost::dll::fs::error_code ec;
  auto mode = dll::load_mode::rtld_now | dll::load_mode::rtld_local;
  if (system_search) mode = mode | dll::load_mode::search_system_folders;
  lib.load(candidate, mode, ec);
  if (ec || !lib.is_loaded()) {
    const char* why = ::dlerror();  // Boost keeps dlerror's text; it is thread-local in glibc
    std::string text = why != nullptr ? why : ec.message();
    if (system_search && text.find("No such file") != std::string::npos) {
      a.found = false;
      return a;
    }
    a.error = "cannot load " + candidate + ": " + text;
    return a;
  }
  auto* api = new LibTailscale;  // cached for the process's lifetime, see Cache
  std::error_code lec;
  api->path = lib.location(lec).string();
  if (lec || api->path.empty()) api->path = candidate;
  std::vector<std::string> missing;
  resolve(lib, "tailscale_new", api->new_server, missing);
  resolve(lib, "tailscale_start", api->start, missing);
  resolve(lib, "tailscale_up", api->up, missing);
  resolve(lib, "tailscale_close", api->close, missing);
  resolve(lib, "tailscale_set_dir", api->set_dir, missing);
  resolve(lib, "tailscale_set_hostname", api->set_hostname, missing);
  resolve(lib, "tailscale_set_authkey", api->set_authkey, missing);
  resolve(lib, "tailscale_set_control_url", api->set_control_url, missing);
  resolve(lib, "tailscale_set_ephemeral", api->set_ephemeral, missing);
  resolve(lib, "tailscale_set_logfd", api->set_logfd, missing);
  resolve(lib, "tailscale_getips", api->getips, missing);
  resolve(lib, "tailscale_dial", api->dial, missing);
  resolve(lib, "tailscale_listen", api->listen, missing);
  resolve(lib, "tailscale_accept", api->accept, missing);
  resolve(lib, "tailscale_getremoteaddr", api->getremoteaddr, missing);
  resolve(lib, "tailscale_errmsg", api->errmsg, missing);
  // Never unloaded, whether usable or not: its initialisers have run (for a Go library, a
  // whole runtime), and unloading that is not safe.
  // Kept in a list that is itself never destroyed (and stays reachable, so leak checkers agree).
  static auto* const kept = new std::vector<boost::dll::shared_library>();
  kept->push_back(std::move(lib));
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    a.error = api->path + " is not a usable libtailscale: missing symbol" +
              (missing.size() > 1 ? "s " : " ") + names +
              " (build it from github.com/tailscale/libtailscale)";
    delete api;
    return a;
  }
  a.lib = api;
  return a;
}

}  // namespace

const char* const* required_symbols(std::size_t& count) {
  count = sizeof kSymbols / sizeof kSymbols[0];
  return kSymbols;
}

std::string LibTailscale::last_error(int sd) const {
  char buf[1024] = {};
  const int rc = errmsg(sd, buf, sizeof buf);
  buf[sizeof buf - 1] = '\0';
  if (rc != 0 && buf[0] == '\0') return "";
  return buf;
}

sdk::Result<const LibTailscale*> load_libtailscale(const std::string& env_path,
                                                   const std::string& policy_path) {
  struct Candidate {
    std::string key;   // what is tried
    std::string what;  // how the error names it
    bool system = false;
  };
  std::vector<Candidate> candidates;
  if (!env_path.empty()) candidates.push_back({env_path, "$THRUM_LIBTAILSCALE=" + env_path});
  if (!policy_path.empty())
    candidates.push_back({policy_path, "the policy's library: " + policy_path});
  candidates.push_back({kDefaultName,
                        std::string(kDefaultName) +
                            " through the default library search (LD_LIBRARY_PATH, "
                            "/etc/ld.so.cache, /lib, /usr/lib)",
                        true});

  std::lock_guard lock(cache().mu);
  std::string searched;
  for (const auto& c : candidates) {
    const std::string key = (c.system ? "system:" : "path:") + c.key;
    if (auto it = cache().by_candidate.find(key); it != cache().by_candidate.end())
      return it->second;
    Attempt a = try_load(c.key, c.system);
    if (a.lib != nullptr) {
      cache().by_candidate[key] = a.lib;
      return a.lib;
    }
    if (a.found) {
      return Status::error(Errc::kUnavailable, "tailscale: refused libtailscale: " + a.error +
                                                   "; see docs/tailscale.md, or use mode: system");
    }
    searched += (searched.empty() ? "" : "; ") + c.what;
  }
  return Status::error(Errc::kUnavailable,
                       "tailscale: libtailscale not found (embedded mode); searched: " + searched +
                           ". Build and install it as described in docs/tailscale.md, set "
                           "THRUM_LIBTAILSCALE, or use mode: system");
}

}  // namespace thrum::transport::tailscale
