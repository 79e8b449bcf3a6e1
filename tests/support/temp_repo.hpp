#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace thrum::test {

/// A fresh repository in a temp dir with `thrum init` already run. The destructor stops its
/// daemon (SIGKILL if it will not stop) and removes the directory.
class TempRepo {
 public:
  explicit TempRepo(const std::string& name = "repo");
  ~TempRepo();
  TempRepo(const TempRepo&) = delete;
  TempRepo& operator=(const TempRepo&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path var() const { return root_ / ".thrum" / "var"; }

  /// Runs `thrum args...` in the repo with `env` (THRUM_NAME etc.) added.
  RunResult thrum(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {},
                  const std::optional<std::string>& stdin_data = std::nullopt) const;
  /// `thrum daemon start`; fails the test if it does not succeed.
  void start_daemon(const std::map<std::string, std::string>& env = {});
  void stop_daemon();
  /// The running daemon's pid from var/thrum.pid, or -1.
  int daemon_pid() const;
  /// `thrum quickstart --name N --role R` for an agent.
  void register_agent(const std::string& name, const std::string& role = "agent");
  /// Contents of var/daemon.log (and rotated files), for "never logs a secret" checks.
  std::string daemon_log() const;

  /// Environment that makes the CLI act as `agent`.
  static std::map<std::string, std::string> as(const std::string& agent) {
    return {{"THRUM_NAME", agent}};
  }

 private:
  std::filesystem::path base_;
  std::filesystem::path root_;
};

}  // namespace thrum::test
