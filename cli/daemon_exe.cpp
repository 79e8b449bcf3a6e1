#include "daemon_exe.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli.hpp"

namespace thrum::cli {
namespace fs = std::filesystem;

namespace {

std::vector<char*> argv_for(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

}  // namespace

fs::path daemon_exe() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find the thrum executable (/proc/self/exe: " + ec.message() + ")");
  fs::path exe = self.parent_path() / "thrum-daemon";
  if (::access(exe.c_str(), X_OK) != 0) {
    const std::string why = std::strerror(errno);
    throw Error("the daemon executable is missing: " + exe.string() + " (" + why +
                "); thrum-daemon must sit next to " + self.string() +
                " (reinstall Thrum, or build the thrum-daemon target)");
  }
  return exe;
}

void exec_daemon(const std::vector<std::string>& args) {
  const fs::path exe = daemon_exe();
  std::vector<std::string> all{"thrum-daemon"};
  all.insert(all.end(), args.begin(), args.end());
  auto argv = argv_for(all);
  std::fflush(nullptr);
  ::execv(exe.c_str(), argv.data());
  const std::string why = std::strerror(errno);
  throw Error("cannot run " + exe.string() + ": " + why);
}

std::string run_daemon_tool(const std::vector<std::string>& args) {
  const fs::path exe = daemon_exe();
  std::vector<std::string> all{"thrum-daemon"};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), {"--result-fd", "3"});
  auto argv = argv_for(all);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(std::string("fork: ") + std::strerror(e));
  }
  if (child == 0) {
    // fd 3 = the pipe's write end, without close-on-exec; stdio stays the user's.
    if (fds[1] == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else if (::dup2(fds[1], 3) < 0) {
      _exit(127);
    }
    ::execv(exe.c_str(), argv.data());
    _exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (out.empty()) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      throw Error("cannot run " + exe.string() + " (exec failed)");
    throw Error(exe.string() + " " + args.front() + " failed (" +
                (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                     : "exit " + std::to_string(WEXITSTATUS(status))) +
                ")");
  }
  return out;
}

}  // namespace thrum::cli
