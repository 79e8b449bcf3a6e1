#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace thrum::test {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// A network namespace for a child process to run in, by its `ip netns` name (the file
/// /run/netns/<name>, e.g. NetLab::ns(node) from support/netns.hpp). The child enters it with
/// setns() right before exec; unlike `ip netns exec`, /sys is not remounted (programs that list
/// interfaces through netlink, as thrum does, see the namespace's own).
struct InNetns {
  std::string name;
};

/// Runs `program args...` in `cwd` with `env` added to this process's environment, feeds
/// `stdin_data` (or /dev/null), and waits up to `timeout` (then SIGKILL, exit_code -1).
RunResult run_process(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd,
                      const std::map<std::string, std::string>& env = {},
                      const std::optional<std::string>& stdin_data = std::nullopt,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Like run_process(), inside network namespace `netns`. If the namespace cannot be entered the
/// child exits with 125 and says why on stderr.
RunResult run_process(const InNetns& netns, const std::string& program,
                      const std::vector<std::string>& args, const std::filesystem::path& cwd,
                      const std::map<std::string, std::string>& env = {},
                      const std::optional<std::string>& stdin_data = std::nullopt,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Runs the `thrum` binary under test.
RunResult run_thrum(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                    const std::map<std::string, std::string>& env = {},
                    const std::optional<std::string>& stdin_data = std::nullopt,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Runs the `thrum` binary under test inside network namespace `netns`.
RunResult run_thrum(const InNetns& netns, const std::vector<std::string>& args,
                    const std::filesystem::path& cwd,
                    const std::map<std::string, std::string>& env = {},
                    const std::optional<std::string>& stdin_data = std::nullopt,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// A child process left running (e.g. `thrum wait`, a foreground daemon). Killed on destruction.
class Child {
 public:
  Child(const std::string& program, const std::vector<std::string>& args,
        const std::filesystem::path& cwd, const std::map<std::string, std::string>& env = {});
  /// The same, inside network namespace `netns` (see InNetns).
  Child(const InNetns& netns, const std::string& program, const std::vector<std::string>& args,
        const std::filesystem::path& cwd, const std::map<std::string, std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  int pid() const { return pid_; }
  /// Waits for exit and returns the result with captured output.
  RunResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void kill(int sig);

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_, err_;
  bool reaped_ = false;
  int status_ = 0;
};

/// Polls `pred` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Whether a process with this pid exists (and is not a zombie).
bool process_alive(int pid);

}  // namespace thrum::test
