// thrum: the thin CLI. It talks to the daemon over its Unix socket and links none of the core's
// heavy libraries; the daemon itself is the `thrum-daemon` executable beside it (daemon_exe.hpp).
// main() only parses and maps errors to exit codes; each command group lives in its own file.
#include <iostream>

#include "cli.hpp"
#include "client.hpp"
#include "help.hpp"

namespace thrum::cli {

core::RepoPaths require_repo(const Context& ctx) {
  std::optional<std::filesystem::path> explicit_repo;
  if (ctx.g.repo) explicit_repo = *ctx.g.repo;
  auto root = core::find_repo_root(explicit_repo, std::filesystem::current_path());
  if (!root || !std::filesystem::is_directory(*root / ".thrum"))
    throw Error("no Thrum repo here (no .thrum/ in " +
                (root ? root->string() : std::filesystem::current_path().string()) +
                " or its parents); run 'thrum init' in the repo first");
  return core::RepoPaths::for_root(*root);
}

core::RepoPaths repo_for_init(const Context& ctx) {
  return core::RepoPaths::for_root(ctx.g.repo ? std::filesystem::path(*ctx.g.repo)
                                              : std::filesystem::current_path());
}

void print_json(const json& doc) {
  std::cout << doc.dump(2) << "\n";
}

}  // namespace thrum::cli

int main(int argc, char** argv) {
  using namespace thrum::cli;
  CLI::App app{"thrum: messaging between AI agents, across repos and machines", "thrum"};
  app.set_version_flag("--version", THRUM_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Context ctx;
  app.add_flag("--json", ctx.g.json, "Print one JSON document on stdout");
  app.add_flag("--quiet,-q", ctx.g.quiet, "Print less");
  app.add_option("--repo", ctx.g.repo, "Repository to act on (default: nearest with .thrum/)");

  add_daemon_commands(app, ctx);
  add_messaging_commands(app, ctx);
  add_peer_commands(app, ctx);
  add_mcp_commands(app, ctx);
#ifdef THRUM_HAVE_PLUGINS_CLI
  add_plugins_commands(app, ctx);
#endif
  add_help_commands(app, ctx);

  if (auto unknown = unknown_command(app, argc, argv)) {
    std::cerr << *unknown << "\n";
    return 2;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "Error: " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (!ctx.action) return 0;
  try {
    return ctx.action();
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const RpcError& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
}
