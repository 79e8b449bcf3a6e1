#pragma once

// A child process whose output can be read while it is still running, for commands that print
// something the test needs and then block (e.g. `thrum peer add`, which prints the peercode and
// waits for the other side). Child (process.hpp) only hands output out once the process ended.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace thrum::test {

class StreamingChild {
 public:
  /// Starts `program args...` in `cwd` with `env` added, stdin from /dev/null. Two reader threads
  /// collect stdout and stderr as they arrive.
  StreamingChild(const std::string& program, const std::vector<std::string>& args,
                 const std::filesystem::path& cwd,
                 const std::map<std::string, std::string>& env = {});
  /// SIGKILLs the child if it still runs, reaps it and joins the readers.
  ~StreamingChild();
  StreamingChild(const StreamingChild&) = delete;
  StreamingChild& operator=(const StreamingChild&) = delete;

  int pid() const { return pid_; }
  /// What the child wrote so far.
  std::string out() const;
  std::string err() const;
  /// Waits until stdout contains `needle`; false on timeout or when the child exited first
  /// (and its whole output did not contain it).
  bool wait_for_out(const std::string& needle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Whether the child has exited (reaps it if so).
  bool exited();
  /// Waits for exit (SIGKILL after `timeout`, exit_code -1) and returns everything it printed.
  RunResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void kill(int sig);

 private:
  void reap_blocking();

  int pid_ = -1;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
  bool reaped_ = false;
  int status_ = 0;
};

/// Starts `thrum peer add --type <type>` in `repo_root` as a StreamingChild.
std::unique_ptr<StreamingChild> start_peer_add(const std::filesystem::path& repo_root,
                                               const std::string& type = "local",
                                               const std::map<std::string, std::string>& env = {});

/// The peercode (`name:ip:port:code`) from `peer add`'s output: the word after `--peercode`, or
/// nullopt when it has not been printed.
std::optional<std::string> extract_peercode(const std::string& peer_add_stdout);

/// Waits until `child` printed its peercode and returns it (nullopt on timeout / early exit).
std::optional<std::string> wait_for_peercode(
    StreamingChild& child, std::chrono::milliseconds timeout = std::chrono::seconds(15));

}  // namespace thrum::test
