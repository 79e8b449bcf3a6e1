// `thrum-daemon plugins-list` and `plugins-check PATH`: the plugin loading behind
// `thrum plugins list|check`, which the thin CLI does not link (Boost.DLL, yaml-cpp, spdlog).
// Each writes one JSON document to the result fd and nothing else there; the CLI formats it.
//
//   plugins-list   {"doc": {"plugins": [...], "policy": "...", "plugin_dirs": [...],
//                           "transports": [...] (PluginHost::transports_json)}}
//   plugins-check  {"report": {"path", "ok", "status", "id", "version", "abi", "note",
//                              "stages": [...]}, "lines": [<the loader's stage lines>]}
//   on failure     {"error": "<message>"} and exit 1 (the CLI prints `Error: <message>`)
//
// The result goes to a descriptor of its own (the CLI passes --result-fd 3) so that anything a
// plugin prints on stdout still reaches the user's stdout, as when the CLI loaded it in-process.
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "thrum/core/plugin_host.hpp"
#include "thrum/core/plugin_loader.hpp"
#include "thrum/core/policy.hpp"

namespace thrum::daemon_exe {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path exe_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

int emit(int fd, const json& doc, int rc) {
  std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  text += '\n';
  std::string_view out = text;
  while (!out.empty()) {
    ssize_t n = ::write(fd, out.data(), out.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    out.remove_prefix(static_cast<size_t>(n));
  }
  return rc;
}

}  // namespace

int plugins_list(int result_fd) {
  // The table says it all; the loader's log lines would only clutter the terminal.
  spdlog::set_level(spdlog::level::off);
  try {
    core::PluginHost::Options opts;
    opts.exe_dir = exe_dir();  // next to `thrum`: the same directories the CLI's user expects
    auto host = core::PluginHost::load(opts);
    json doc = {{"plugins", host->list_json()},
                {"policy", host->policy_source()},
                {"transports", host->transports_json()}};
    json dirs = json::array();
    for (const auto& d : host->plugin_dirs()) dirs.push_back(d.string());
    doc["plugin_dirs"] = dirs;
    return emit(result_fd, {{"doc", doc}}, 0);
  } catch (const std::exception& e) {
    return emit(result_fd, {{"error", e.what()}}, 1);
  }
}

int plugins_check(const std::string& path, int result_fd) {
  spdlog::set_level(spdlog::level::off);  // the stage lines say it all
  try {
    // configure() gets what the policy in force would give it; a broken or absent policy: none.
    std::string policy_note;
    core::PluginLoader::Request req;
    const auto id = core::PluginLoader::id_from_file_name(fs::path(path).filename().string());
    try {
      if (auto file = core::Policy::locate()) {
        const core::Policy policy = core::Policy::load_file(*file);
        if (id) {
          req.options_json = policy.options(*id).dump();
          if (!policy.enabled(*id))
            policy_note = "note: disabled by policy (" + file->string() + ")";
        }
      }
    } catch (const core::PolicyError& e) {
      policy_note = std::string("note: policy not usable, checked without options: ") + e.what();
    }
    core::PluginLoader loader;
    // Every stage, the factory and configure() included.
    core::LoadReport r = loader.load(fs::absolute(path), req);
    json stages = json::array();
    for (const auto& s : r.stages)
      stages.push_back({{"stage", s.stage}, {"ok", s.ok}, {"detail", s.detail}});
    json report = {{"path", r.path.string()},
                   {"ok", r.ok()},
                   {"status", r.ok() ? "ok" : r.refusal()},
                   {"id", r.info.id},
                   {"version", r.info.version},
                   {"abi", r.info.abi},
                   {"note", policy_note},
                   {"stages", stages}};
    json lines = json::array();
    for (const auto& line : core::PluginLoader::describe(r)) lines.push_back(line);
    return emit(result_fd, {{"report", report}, {"lines", lines}}, 0);
  } catch (const std::exception& e) {
    return emit(result_fd, {{"error", e.what()}}, 1);
  }
}

}  // namespace thrum::daemon_exe
