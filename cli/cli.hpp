#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "thrum/common/repo.hpp"

namespace thrum::cli {

using json = nlohmann::json;

/// Flags every command understands (SPEC §2).
struct Globals {
  bool json = false;
  bool quiet = false;
  std::optional<std::string> repo;
};

/// Shared state while building and running the command tree. A command's CLI11 callback stores
/// its work in `action`; main() runs it after parsing so that errors map to exit codes in one
/// place.
struct Context {
  Globals g;
  std::function<int()> action;
};

/// A failure to report as `Error: <msg>` with exit 1.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A usage mistake: printed as-is (often a help block) with exit 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The repo the command acts on, or an Error telling the user to run `thrum init`.
core::RepoPaths require_repo(const Context& ctx);
/// Like require_repo but for `init`: the explicit --repo, else the current directory.
core::RepoPaths repo_for_init(const Context& ctx);

/// Prints `doc` as the command's single JSON document on stdout.
void print_json(const json& doc);
/// Prints `doc` as one line of a JSON Lines stream (streaming commands under --json) and
/// flushes at once, so that a script reading a pipe sees it while the command still runs.
void print_json_line(const json& doc);

// Command groups: each adds its subcommands to `app`.
void add_daemon_commands(CLI::App& app, Context& ctx);
void add_messaging_commands(CLI::App& app, Context& ctx);
void add_plugins_commands(CLI::App& app, Context& ctx);
void add_peer_commands(CLI::App& app, Context& ctx);
void add_mcp_commands(CLI::App& app, Context& ctx);

}  // namespace thrum::cli
