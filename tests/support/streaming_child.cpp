#include "support/streaming_child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

extern char** environ;

namespace thrum::test {
namespace {

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
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

}  // namespace

StreamingChild::StreamingChild(const std::string& program, const std::vector<std::string>& args,
                               const std::filesystem::path& cwd,
                               const std::map<std::string, std::string>& env) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) return;
  std::vector<std::string> argv_s = {program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  auto env_s = merged_env(env);
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    ::execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  ::close(devnull);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto reader = [this](int fd, std::string StreamingChild::*buf) {
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard<std::mutex> lk(mu_);
      (this->*buf).append(chunk, static_cast<size_t>(n));
    }
    ::close(fd);
  };
  out_reader_ = std::thread(reader, out_pipe[0], &StreamingChild::out_);
  err_reader_ = std::thread(reader, err_pipe[0], &StreamingChild::err_);
}

StreamingChild::~StreamingChild() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    reap_blocking();
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

std::string StreamingChild::out() const {
  std::lock_guard<std::mutex> lk(mu_);
  return out_;
}

std::string StreamingChild::err() const {
  std::lock_guard<std::mutex> lk(mu_);
  return err_;
}

bool StreamingChild::exited() {
  if (reaped_) return true;
  if (pid_ <= 0) return true;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    reaped_ = true;
  }
  return reaped_;
}

bool StreamingChild::wait_for_out(const std::string& needle, std::chrono::milliseconds timeout) {
  return wait_until(
             [&] {
               if (out().find(needle) != std::string::npos) return true;
               return false;
             },
             timeout) ||
         out().find(needle) != std::string::npos;
}

void StreamingChild::reap_blocking() {
  if (reaped_ || pid_ <= 0) return;
  ::waitpid(pid_, &status_, 0);
  reaped_ = true;
}

RunResult StreamingChild::wait(std::chrono::milliseconds timeout) {
  RunResult r;
  bool done = wait_until([&] { return exited(); }, timeout);
  if (!done) {
    kill(SIGKILL);
    reap_blocking();
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
  r.out = out();
  r.err = err();
  if (!done)
    r.exit_code = -1;
  else
    r.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  return r;
}

void StreamingChild::kill(int sig) {
  if (!reaped_ && pid_ > 0) ::kill(pid_, sig);
}

std::unique_ptr<StreamingChild> start_peer_add(const std::filesystem::path& repo_root,
                                               const std::string& type,
                                               const std::map<std::string, std::string>& env) {
  return std::make_unique<StreamingChild>(
      THRUM_TEST_BINARY, std::vector<std::string>{"peer", "add", "--type", type}, repo_root, env);
}

std::optional<std::string> extract_peercode(const std::string& text) {
  const std::string key = "--peercode ";
  auto at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  auto start = at + key.size();
  auto end = text.find_first_of(" \r\n", start);
  if (end == std::string::npos) return std::nullopt;  // the line is not complete yet
  std::string code = text.substr(start, end - start);
  if (code.empty()) return std::nullopt;
  return code;
}

std::optional<std::string> wait_for_peercode(StreamingChild& child,
                                             std::chrono::milliseconds timeout) {
  std::optional<std::string> code;
  wait_until(
      [&] {
        code = extract_peercode(child.out());
        return code.has_value() || child.exited();
      },
      timeout);
  if (!code) code = extract_peercode(child.out());
  return code;
}

}  // namespace thrum::test
