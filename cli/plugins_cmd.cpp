// thrum plugins list | check PATH (SPEC §1 "Operator policy").
#include <algorithm>
#include <iostream>

#include "cli.hpp"
#include "client.hpp"
#include "daemon_exe.hpp"

namespace thrum::cli {
namespace fs = std::filesystem;

namespace {

/// What `thrum-daemon plugins-list|plugins-check` wrote: the document under `key`, or its error
/// as an Error (printed `Error: <message>`, exit 1, as when the CLI loaded plugins itself).
json daemon_tool(const std::vector<std::string>& args, const char* key) {
  const json out = json::parse(run_daemon_tool(args), nullptr, false);
  if (out.is_object()) {
    if (auto e = out.find("error"); e != out.end() && e->is_string())
      throw Error(e->get<std::string>());
    if (out.contains(key)) return out;
  }
  throw Error("thrum-daemon " + args.front() + " answered something unreadable");
}

// The daemon's view when one runs for this repo (what it actually loaded), else the same scan
// done by `thrum-daemon plugins-list` (the loader is not linked into the CLI), with the same
// policy and directories: the daemon executable sits next to this one.
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
  return daemon_tool({"plugins-list"}, "doc").at("doc");
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
  // The loader runs in `thrum-daemon plugins-check` (same cwd, environment and policy).
  const json out = daemon_tool({"plugins-check", path}, "report");
  const json& r = out.at("report");
  const bool ok = r.value("ok", false);
  if (ctx.g.json) {
    print_json(r);
    return ok ? 0 : 1;
  }
  for (const auto& line : out.value("lines", json::array()))
    std::cout << line.get<std::string>() << "\n";
  const std::string note = field(r, "note");
  if (!note.empty()) std::cout << note << "\n";
  if (ok) {
    std::cout << field(r, "path") << ": ok (transport \"" << field(r, "id") << "\" "
              << field(r, "version") << ", ABI " << field(r, "abi") << ")\n";
    return 0;
  }
  std::cout << field(r, "path") << ": " << field(r, "status") << "\n";
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
