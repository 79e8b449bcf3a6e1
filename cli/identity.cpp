#include "identity.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "cli.hpp"

namespace thrum::cli {
namespace fs = std::filesystem;

std::string current_agent(const core::RepoPaths& paths) {
  if (const char* name = std::getenv("THRUM_NAME"); name && *name) return name;
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths.identities, ec)) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  if (names.size() == 1) return names.front();
  if (names.empty())
    throw Error(
        "no agent identity in this repo; register one with: thrum quickstart --name "
        "<name> --role <role>");
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw Error("several agents are registered here (" + list +
              "); choose one with THRUM_NAME=<name>");
}

std::string current_worktree() {
  std::string out;
  if (FILE* f = ::popen("git rev-parse --show-toplevel 2>/dev/null", "r")) {
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), buf.size(), f)) out += buf.data();
    ::pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) out = fs::current_path().string();
  return out;
}

}  // namespace thrum::cli
