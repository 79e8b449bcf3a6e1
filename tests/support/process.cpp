#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

extern char** environ;

namespace thrum::test {
namespace {

std::vector<std::string> build_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) all[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

/// The namespace file for an `ip netns` name; "" for none.
std::string netns_path(const InNetns* netns) {
  if (netns == nullptr || netns->name.empty()) return "";
  return "/run/netns/" + netns->name;
}

int spawn(const std::string& program, const std::vector<std::string>& args,
          const std::filesystem::path& cwd, const std::map<std::string, std::string>& env,
          int in_fd, int out_fd, int err_fd, const std::string& netns = "") {
  std::vector<std::string> argv_s = {program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  auto env_s = build_env(env);
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (!netns.empty()) {
      // Only async-signal-safe calls between fork and exec.
      const int ns = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        static const char msg[] = "test support: cannot enter network namespace ";
        [[maybe_unused]] auto w1 = ::write(2, msg, sizeof msg - 1);
        [[maybe_unused]] auto w2 = ::write(2, netns.c_str(), netns.size());
        [[maybe_unused]] auto w3 = ::write(2, "\n", 1);
        _exit(125);
      }
      ::close(ns);
    }
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    ::execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

RunResult run_impl(const InNetns* netns, const std::string& program,
                   const std::vector<std::string>& args, const std::filesystem::path& cwd,
                   const std::map<std::string, std::string>& env,
                   const std::optional<std::string>& stdin_data,
                   std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC))
    return {};
  pid_t pid =
      spawn(program, args, cwd, env, in_pipe[0], out_pipe[1], err_pipe[1], netns_path(netns));
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  std::string input = stdin_data.value_or("");
  std::thread writer([fd = in_pipe[1], input] {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = ::write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    int pr = ::poll(fds, 2, static_cast<int>(left));
    if (pr <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  writer.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (killed)
    r.exit_code = -1;
  else if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else
    r.exit_code = 128 + WTERMSIG(status);
  return r;
}

}  // namespace

RunResult run_process(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd,
                      const std::map<std::string, std::string>& env,
                      const std::optional<std::string>& stdin_data,
                      std::chrono::milliseconds timeout) {
  return run_impl(nullptr, program, args, cwd, env, stdin_data, timeout);
}

RunResult run_process(const InNetns& netns, const std::string& program,
                      const std::vector<std::string>& args, const std::filesystem::path& cwd,
                      const std::map<std::string, std::string>& env,
                      const std::optional<std::string>& stdin_data,
                      std::chrono::milliseconds timeout) {
  return run_impl(&netns, program, args, cwd, env, stdin_data, timeout);
}

RunResult run_thrum(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                    const std::map<std::string, std::string>& env,
                    const std::optional<std::string>& stdin_data,
                    std::chrono::milliseconds timeout) {
  return run_process(THRUM_TEST_BINARY, args, cwd, env, stdin_data, timeout);
}

RunResult run_thrum(const InNetns& netns, const std::vector<std::string>& args,
                    const std::filesystem::path& cwd, const std::map<std::string, std::string>& env,
                    const std::optional<std::string>& stdin_data,
                    std::chrono::milliseconds timeout) {
  return run_process(netns, THRUM_TEST_BINARY, args, cwd, env, stdin_data, timeout);
}

Child::Child(const std::string& program, const std::vector<std::string>& args,
             const std::filesystem::path& cwd, const std::map<std::string, std::string>& env)
    : Child(InNetns{}, program, args, cwd, env) {}

Child::Child(const InNetns& netns, const std::string& program, const std::vector<std::string>& args,
             const std::filesystem::path& cwd, const std::map<std::string, std::string>& env) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) return;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = spawn(program, args, cwd, env, devnull, out_pipe[1], err_pipe[1], netns_path(&netns));
  ::close(devnull);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void Child::kill(int sig) {
  if (!reaped_ && pid_ > 0) ::kill(pid_, sig);
}

RunResult Child::wait(std::chrono::milliseconds timeout) {
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      ::kill(pid_, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::waitpid(pid_, &status_, 0);
  reaped_ = true;
  r.out = out_;
  r.err = err_;
  r.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  return r;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

bool process_alive(int pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // Alive while any of its threads is. After SIGKILL the main thread turns zombie first while
  // the others are still being torn down, and the process's files (its daemon lock among them)
  // are released only when the last one has exited: looking at the main thread alone says
  // "dead" too early.
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  bool any_task = false;
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    any_task = true;
    std::ifstream st(t.path() / "stat");
    std::string line;
    std::getline(st, line);
    auto rp = line.rfind(')');
    if (rp == std::string::npos || rp + 2 >= line.size()) continue;  // thread just went away
    const char state = line[rp + 2];
    if (state != 'Z' && state != 'X') return true;
  }
  // No /proc entry to read (another pid namespace, or gone between the calls): trust kill().
  return !any_task && ::kill(pid, 0) == 0;
}

}  // namespace thrum::test
