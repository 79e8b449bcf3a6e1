#include "thrum/common/daemon_lock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "thrum/common/fs_util.hpp"

namespace thrum::core {

namespace {
constexpr int kProbeRetries = 30;  // x 10 ms
}  // namespace

std::optional<PidInfo> read_pid_file(const RepoPaths& paths) {
  std::optional<std::string> text = read_file_or_nothing(paths.pid);
  if (!text) return std::nullopt;
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  PidInfo info;
  if (doc.is_object() && doc.contains("pid") && doc["pid"].is_number_integer()) {
    info.pid = doc["pid"].get<int>();
    info.repo_path = doc.value("repo_path", "");
    info.started_at = doc.value("started_at", "");
    return info;
  }
  if (doc.is_number_integer()) {  // legacy plain-integer pid file
    info.pid = doc.get<int>();
    return info;
  }
  return std::nullopt;
}

bool pid_alive(int pid) {
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

std::unique_ptr<DaemonLock> DaemonLock::try_acquire(const RepoPaths& paths) {
  ensure_dir(paths.var, 0700);
  int fd = ::open(paths.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "open " + paths.lock.string());
  // running_daemon() probes with a shared lock it drops at once; a start that meets only such
  // a probe (`thrum daemon status`, a racing `daemon start` checking first) must not give up,
  // so a held lock is retried for a moment before it counts as another daemon's.
  for (int attempt = 0;; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    int e = errno;
    if (e == EWOULDBLOCK && attempt < kProbeRetries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    ::close(fd);
    if (e == EWOULDBLOCK) return nullptr;
    throw std::system_error(e, std::generic_category(), "flock " + paths.lock.string());
  }
  return std::unique_ptr<DaemonLock>(new DaemonLock(paths, fd));
}

DaemonLock::~DaemonLock() {
  if (wrote_pid_) remove_pid_file();
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

void DaemonLock::write_pid_file(const std::string& started_at) {
  nlohmann::json doc = {{"pid", ::getpid()},
                        {"repo_path", paths_.root.string()},
                        {"started_at", started_at},
                        {"socket_path", paths_.sock.string()}};
  atomic_write_file(paths_.pid, doc.dump(2) + "\n", 0600, Durability::kRuntime);
  wrote_pid_ = true;
}

void DaemonLock::remove_pid_file() {
  ::unlink(paths_.pid.c_str());
  wrote_pid_ = false;
}

std::optional<int> running_daemon(const RepoPaths& paths) {
  int fd = ::open(paths.lock.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;  // never started here
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases our probe lock, if we got it
  if (!held) return std::nullopt;
  auto info = read_pid_file(paths);
  return info ? info->pid : 0;
}

}  // namespace thrum::core
