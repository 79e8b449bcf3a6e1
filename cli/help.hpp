#pragma once
// Help that a new operator can find things in (issue 15 §5): every command's --help ends with
// the global flags and the environment variables that affect it; `thrum help <command>`;
// an unknown command names the nearest one; `thrum completion bash|zsh` and the man pages are
// generated from the same command tree, so they cannot drift from it.

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace thrum::cli {

/// The environment variables `path` (e.g. {"daemon", "start"}) reads, as help lines.
std::vector<std::string> environment_for(const std::vector<std::string>& path);

/// Adds `help`, `completion` and the hidden `manpage` commands, then gives every command a
/// footer with the global flags and its environment variables. Call after every command group
/// was added.
void add_help_commands(CLI::App& app, Context& ctx);

/// Before parsing: when argv names a command that does not exist, the message to print
/// ("unknown command 'x'; did you mean 'y'?"), else nullopt.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv);

/// Edit distance (Levenshtein), for the suggestion.
std::size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace thrum::cli
