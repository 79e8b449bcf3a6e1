#include "thrum/core/runtime_files.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace thrum::core {

namespace {

// Copies made before any signal can arrive; the handler only reads them.
constexpr std::size_t kMaxPath = 4096;
char g_ws_port[kMaxPath];
char g_sock[kMaxPath];
char g_pid[kMaxPath];
char g_sock_record[kMaxPath];

void copy_path(char* dst, const std::filesystem::path& p) {
  const std::string s = p.string();
  const std::size_t n = std::min(s.size(), kMaxPath - 1);
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

void unlink_all() {
  if (g_ws_port[0]) ::unlink(g_ws_port);
  if (g_sock[0]) ::unlink(g_sock);
  if (g_pid[0]) ::unlink(g_pid);
  if (g_sock_record[0]) ::unlink(g_sock_record);
}

void on_fatal(int sig) {
  unlink_all();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

RuntimeFiles::RuntimeFiles(const RepoPaths& paths) {
  copy_path(g_ws_port, paths.ws_port);
  copy_path(g_sock, paths.sock);
  copy_path(g_pid, paths.pid);
  if (paths.socket_relocated()) copy_path(g_sock_record, paths.sock_record);
  ::unlink(g_ws_port);  // left by a daemon that died: we hold the lock now
}

RuntimeFiles::~RuntimeFiles() {
  ::unlink(g_ws_port);
  if (g_sock_record[0]) ::unlink(g_sock_record);
  g_sock_record[0] = '\0';
  g_ws_port[0] = '\0';
  g_sock[0] = '\0';
  g_pid[0] = '\0';
}

void RuntimeFiles::install_crash_cleanup() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  struct sigaction sa {};
  sa.sa_handler = &on_fatal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::sigaction(sig, &sa, nullptr);
#endif
}

void clean_stale_sockets(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto& p = e.path();
    if (p.extension() != ".sock" || !e.is_socket(ec)) continue;
    if (p.native().size() >= sizeof(sockaddr_un{}.sun_path)) continue;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, p.c_str(), p.native().size());
    const bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
                         errno == ECONNREFUSED;
    ::close(fd);
    if (refused) std::filesystem::remove(p, ec);
  }
}

}  // namespace thrum::core
