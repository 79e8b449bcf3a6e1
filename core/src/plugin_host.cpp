#include "thrum/core/plugin_host.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#ifndef THRUM_PLUGIN_SUBDIR
#define THRUM_PLUGIN_SUBDIR "lib/thrum/plugins"
#endif

namespace thrum::core {
namespace {

namespace fs = std::filesystem;

std::string join_dirs(const std::vector<fs::path>& dirs) {
  if (dirs.empty()) return "(no plugin directories)";
  std::string out;
  for (const auto& d : dirs) {
    if (!out.empty()) out += ", ";
    out += d.string();
  }
  return out;
}

// Plugin-looking files in `dir`, sorted by name. Every `*.so` is a candidate so that a misnamed
// plugin is reported (refused at "file name") rather than silently ignored.
std::vector<fs::path> scan(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory) {
      spdlog::warn("plugin dir unreadable path={} error=\"{}\"", dir.string(), ec.message());
    }
    return out;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

PluginHost::~PluginHost() = default;

std::vector<fs::path> PluginHost::default_plugin_dirs(const fs::path& exe_dir) {
  std::vector<fs::path> dirs;
  if (!exe_dir.empty()) {
    // The install's libdir (lib, lib64, lib/x86_64-linux-gnu, ...), then plain lib, which is where
    // the build tree puts plugins; the same directory twice is scanned once (below).
    dirs.push_back((exe_dir / ".." / THRUM_PLUGIN_SUBDIR).lexically_normal());
    dirs.push_back((exe_dir / ".." / "lib" / "thrum" / "plugins").lexically_normal());
  }
  if (const char* env = std::getenv("THRUM_PLUGIN_PATH"); env != nullptr) {
    std::string s(env);
    std::size_t start = 0;
    while (start <= s.size()) {
      std::size_t colon = s.find(':', start);
      if (colon == std::string::npos) colon = s.size();
      if (colon > start) dirs.emplace_back(s.substr(start, colon - start));
      start = colon + 1;
    }
  }
  // The same directory twice would report every plugin in it as a duplicate of itself.
  std::vector<fs::path> unique;
  for (auto& d : dirs) {
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  }
  return unique;
}

void PluginHost::load_one(const fs::path& file, Entry& e) {
  PluginLoader loader;
  PluginLoader::Request req;
  req.taken = &taken_;
  auto id = PluginLoader::id_from_file_name(file.filename().string());
  if (id) req.options_json = policy_.options(*id).dump();
  LoadReport r = loader.load(file, req);
  e.id = r.info.id;
  e.version = r.info.version;
  e.abi = r.info.abi;
  if (r.ok() && r.transport) {
    taken_[r.info.id] = file;
    registry_.add(r.info, r.transport);
    e.status = "enabled";
  } else {
    e.status = r.refusal();
  }
}

std::unique_ptr<PluginHost> PluginHost::load(const Options& opts) {
  std::unique_ptr<PluginHost> h(new PluginHost);
  h->opts_ = opts;
  if (auto file = Policy::locate(opts.etc_policy)) h->policy_ = Policy::load_file(*file);
  h->dirs_ =
      h->policy_.has_plugin_dirs() ? h->policy_.plugin_dirs() : default_plugin_dirs(opts.exe_dir);
  const std::string disabled = "disabled by policy (" + h->policy_.source().string() + ")";
  spdlog::info("plugins scan policy=\"{}\" dirs=\"{}\"", h->policy_.source().string(),
               join_dirs(h->dirs_));

  std::set<std::string> seen_ids;
  for (const auto& dir : h->dirs_) {
    for (const auto& file : scan(dir)) {
      Entry e;
      e.path = file;
      auto id = PluginLoader::id_from_file_name(file.filename().string());
      if (id && !h->policy_.enabled(*id)) {
        // Not loaded at all: a disabled transport runs no code in this process.
        e.id = *id;
        e.status = disabled;
        seen_ids.insert(*id);
        spdlog::info("plugin disabled id={} path={} policy={}", *id, file.string(),
                     h->policy_.source().string());
        h->entries_.push_back(std::move(e));
        continue;
      }
      h->load_one(file, e);
      if (!e.id.empty()) seen_ids.insert(e.id);
      h->entries_.push_back(std::move(e));
    }
  }
  // Transports the policy names that no file provides.
  for (const auto& [id, t] : h->policy_.transports()) {
    if (seen_ids.count(id) != 0) continue;
    Entry e;
    e.id = id;
    e.status = t.enabled ? "not found in " + join_dirs(h->dirs_) : disabled;
    h->entries_.push_back(std::move(e));
  }
  return h;
}

void PluginHost::drop_from_registry(const std::string& id) {
  // The registry only grows; a rebuild without `id` keeps every other handle as it is.
  TransportRegistry kept;
  for (const auto& other : registry_.ids())
    if (other != id) kept.add(*registry_.info(other), registry_.get(other));
  registry_ = std::move(kept);
}

std::vector<std::string> PluginHost::reload_policy() {
  Policy next;  // no file (any more): everything enabled
  if (auto file = Policy::locate(opts_.etc_policy)) next = Policy::load_file(*file);
  if (next.has_plugin_dirs() != policy_.has_plugin_dirs() ||
      next.plugin_dirs() != policy_.plugin_dirs())
    spdlog::warn("policy reload: plugin_dirs changed; it takes effect at the next start");
  const std::string disabled = "disabled by policy (" + next.source().string() + ")";
  const std::string not_found = "not found in ";
  policy_ = std::move(next);
  std::vector<std::string> changed;
  std::set<std::string> done;
  for (auto& e : entries_) {
    if (e.id.empty() || done.count(e.id) != 0) continue;  // the first file of an id decides
    const bool was = registry_.contains(e.id);
    const bool now = policy_.enabled(e.id);
    if (was && !now) {
      done.insert(e.id);
      drop_from_registry(e.id);
      taken_.erase(e.id);
      e.status = disabled;
      changed.push_back(e.id);
      spdlog::info("plugin disabled id={} policy={}", e.id, policy_.source().string());
    } else if (!was && now && !e.path.empty() && e.status.rfind("disabled by policy", 0) == 0) {
      done.insert(e.id);
      load_one(e.path, e);
      if (registry_.contains(e.id)) changed.push_back(e.id);
      spdlog::info("plugin enabled id={} path={} status=\"{}\"", e.id, e.path.string(), e.status);
    } else if (!was && !now && e.status.rfind(not_found, 0) != 0) {
      e.status = disabled;  // the message names the file now in force
    } else if (was) {
      done.insert(e.id);
      if (!policy_.options(e.id).empty())
        spdlog::info("policy reload: options of {} take effect at the next start", e.id);
    }
  }
  return changed;
}

nlohmann::json PluginHost::list_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : entries_) {
    out.push_back({{"id", e.id},
                   {"version", e.version},
                   {"abi", e.abi},
                   {"path", e.path.string()},
                   {"status", e.status}});
  }
  return out;
}

ITransportHandle PluginHost::find(const std::string& id, std::string* why_not) const {
  if (auto t = registry_.get(id)) return t;
  if (why_not != nullptr) {
    // The first entry for the id explains it (a later duplicate is not the reason).
    auto it =
        std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.id == id; });
    if (it != entries_.end() && it->status.rfind("not found in ", 0) != 0) {
      *why_not = it->status;
    } else {
      *why_not = "no plugin found in " + join_dirs(dirs_);
    }
  }
  return nullptr;
}

Transport PluginHost::transport(const std::string& id, std::string* why_not) const {
  auto t = find(id, why_not);
  const PluginInfo* info = registry_.info(id);
  return Transport::of(std::move(t), info ? info->abi_minor : 0);
}

nlohmann::json PluginHost::transports_json() const {
  std::map<std::string, nlohmann::json> out;
  for (const auto& e : entries_) {
    if (e.id.empty() || out.count(e.id)) continue;
    std::string why;
    Transport t = transport(e.id, &why);
    nlohmann::json j = {{"id", e.id}, {"available", static_cast<bool>(t)}};
    if (!t) {
      j["why"] = why;
    } else {
      j["help"] = t.profile.help;
      j["needs_address"] = t.caps.needs_address;
      j["needs_repo_path"] = t.caps.needs_repo_path;
      j["provides_listener"] = t.caps.provides_listener;
      j["loopback_only"] = t.caps.loopback_only;
      if (!t.profile.credential.name.empty())
        j["credential"] = {{"name", t.profile.credential.name},
                           {"env", t.profile.credential.env},
                           {"prompt", t.profile.credential.prompt}};
    }
    out.emplace(e.id, std::move(j));
  }
  nlohmann::json list = nlohmann::json::array();
  for (auto& [id, j] : out) list.push_back(std::move(j));
  return list;
}

std::string PluginHost::policy_source() const {
  return policy_.source().string();
}

nlohmann::json PluginHost::transport_options(const std::string& id) const {
  return policy_.options(id);
}

}  // namespace thrum::core
