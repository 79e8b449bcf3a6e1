// thrum plugins list | check PATH (SPEC §1 "Operator policy").
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "client.hpp"
#include "thrum/core/plugin_host.hpp"
#include "thrum/core/plugin_loader.hpp"

namespace thrum::cli {
namespace fs = std::filesystem;

namespace {

fs::path exe_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

// The daemon's view when one runs for this repo (what it actually loaded), else the same scan
// done here, in-process, with the same policy and directories.
json plugins_list_doc(const Context& ctx) {
  try {
    const core::RepoPaths repo = require_repo(ctx);
    RpcClient client(repo.sock);
    return client.call("plugins.list");
  } catch (const Error&) {
    // no repo: nothing to ask
  } catch (const ConnectError&) {
    // no daemon: scan ourselves
  } catch (const RpcError& e) {
    if (e.code != -32601) throw;  // an old daemon without plugins.list: scan ourselves
  }
  core::PluginHost::Options opts;
  opts.exe_dir = exe_dir();
  // The table says it all; the loader's log lines would only clutter stdout.
  spdlog::set_level(spdlog::level::off);
  std::unique_ptr<core::PluginHost> host;
  try {
    host = core::PluginHost::load(opts);
  } catch (const core::PolicyError& e) {
    throw Error(e.what());
  }
  json doc = {{"plugins", host->list_json()}, {"policy", host->policy_source()}};
  json dirs = json::array();
  for (const auto& d : host->plugin_dirs()) dirs.push_back(d.string());
  doc["plugin_dirs"] = dirs;
  return doc;
}

std::string field(const json& e, const char* key) {
  auto it = e.find(key);
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int cmd_list(const Context& ctx) {
  const json doc = plugins_list_doc(ctx);
  if (ctx.g.json) {
    print_json(doc);
    return 0;
  }
  const json& plugins = doc.at("plugins");
  const std::string policy = field(doc, "policy");
  if (plugins.empty()) {
    std::cout << "No transport plugins found";
    if (doc.contains("plugin_dirs") && !doc["plugin_dirs"].empty()) {
      std::string dirs;
      for (const auto& d : doc["plugin_dirs"])
        dirs += (dirs.empty() ? "" : ", ") + d.get<std::string>();
      std::cout << " in " << dirs;
    }
    std::cout << ".\n";
  } else {
    std::size_t w_id = 2, w_ver = 7, w_abi = 3, w_status = 6;
    for (const auto& e : plugins) {
      w_id = std::max(w_id, field(e, "id").size());
      w_ver = std::max(w_ver, field(e, "version").size());
      w_abi = std::max(w_abi, field(e, "abi").size());
      w_status = std::max(w_status, field(e, "status").size());
    }
    // A long refusal would push every PATH far right; past this width only its own row shifts.
    w_status = std::min<std::size_t>(w_status, 48);
    auto row = [&](const std::string& id, const std::string& ver, const std::string& abi,
                   const std::string& status, const std::string& path) {
      auto pad = [](std::string s, std::size_t w) {
        s.resize(std::max(s.size(), w), ' ');
        return s;
      };
      std::string line = pad(id, w_id) + "  " + pad(ver, w_ver) + "  " + pad(abi, w_abi) + "  " +
                         pad(status, w_status) + "  " + path;
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::cout << line << "\n";
    };
    row("ID", "VERSION", "ABI", "STATUS", "PATH");
    for (const auto& e : plugins) {
      row(field(e, "id"), field(e, "version").empty() ? "-" : field(e, "version"),
          field(e, "abi").empty() ? "-" : field(e, "abi"), field(e, "status"), field(e, "path"));
    }
  }
  if (!ctx.g.quiet) {
    std::cout << "\nPolicy: "
              << (policy.empty() ? "none (every transport found is enabled)" : policy) << "\n";
  }
  return 0;
}

int cmd_check(const Context& ctx, const std::string& path) {
  if (!fs::exists(path)) throw Error(path + ": no such file");
  spdlog::set_level(spdlog::level::off);  // the stage lines say it all
  // configure() gets what the policy in force would give it; a broken or absent policy: none.
  std::string policy_note;
  core::PluginLoader::Request req;
  const auto id = core::PluginLoader::id_from_file_name(fs::path(path).filename().string());
  try {
    if (auto file = core::Policy::locate()) {
      const core::Policy policy = core::Policy::load_file(*file);
      if (id) {
        req.options_json = policy.options(*id).dump();
        if (!policy.enabled(*id)) policy_note = "note: disabled by policy (" + file->string() + ")";
      }
    }
  } catch (const core::PolicyError& e) {
    policy_note = std::string("note: policy not usable, checked without options: ") + e.what();
  }
  core::PluginLoader loader;
  // Every stage, the factory and configure() included.
  core::LoadReport r = loader.load(fs::absolute(path), req);
  if (ctx.g.json) {
    json stages = json::array();
    for (const auto& s : r.stages)
      stages.push_back({{"stage", s.stage}, {"ok", s.ok}, {"detail", s.detail}});
    print_json({{"path", r.path.string()},
                {"ok", r.ok()},
                {"status", r.ok() ? "ok" : r.refusal()},
                {"id", r.info.id},
                {"version", r.info.version},
                {"abi", r.info.abi},
                {"note", policy_note},
                {"stages", stages}});
    return r.ok() ? 0 : 1;
  }
  for (const auto& line : core::PluginLoader::describe(r)) std::cout << line << "\n";
  if (!policy_note.empty()) std::cout << policy_note << "\n";
  if (r.ok()) {
    std::cout << r.path.string() << ": ok (transport \"" << r.info.id << "\" " << r.info.version
              << ", ABI " << r.info.abi << ")\n";
    return 0;
  }
  std::cout << r.path.string() << ": " << r.refusal() << "\n";
  return 1;
}

}  // namespace

void add_plugins_commands(CLI::App& app, Context& ctx) {
  auto* plugins = app.add_subcommand("plugins", "Transport plugins and the operator policy");
  plugins->require_subcommand(1);
  plugins
      ->add_subcommand(
          "list",
          "Every plugin found: id, version, ABI, enabled / disabled by policy / refused, path")
      ->callback([&ctx] { ctx.action = [&ctx] { return cmd_list(ctx); }; });
  auto* check = plugins->add_subcommand(
      "check", "Run the loader's checks on one plugin file and print each stage");
  auto path = std::make_shared<std::string>();
  check->add_option("PATH", *path, "The plugin (libthrum_transport_<id>.so)")->required();
  check->callback([&ctx, path] { ctx.action = [&ctx, path] { return cmd_check(ctx, *path); }; });
}

}  // namespace thrum::cli
