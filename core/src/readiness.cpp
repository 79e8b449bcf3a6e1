#include "readiness.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace thrum::core {

Readiness::Readiness(int ready_fd) : ready_fd_(ready_fd) {
  if (const char* s = std::getenv("NOTIFY_SOCKET"); s && *s) socket_ = s;
  ::unsetenv("NOTIFY_SOCKET");
  if (ready_fd_ >= 0 && ::fcntl(ready_fd_, F_SETFD, FD_CLOEXEC) != 0) ready_fd_ = -1;
}

Readiness::~Readiness() {
  if (ready_fd_ >= 0) ::close(ready_fd_);
}

std::string Readiness::notify(const std::string& socket, const std::string& text) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.empty() || socket.size() >= sizeof(addr.sun_path) ||
      (socket[0] != '/' && socket[0] != '@'))
    return "NOTIFY_SOCKET is not an absolute path or @abstract name";
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
  if (socket[0] == '@') addr.sun_path[0] = '\0';  // abstract: no trailing NUL counted
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  ssize_t n = ::sendto(fd, text.data(), text.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return "sendto " + socket + ": " + std::strerror(err);
  return "";
}

std::string Readiness::ready(int pid, unsigned short ws_port, const std::string& status) {
  std::string why;
  if (ready_fd_ >= 0) {
    const std::string line = "ready " + std::to_string(pid) + " " + std::to_string(ws_port) + "\n";
    if (::write(ready_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      why = std::string("ready pipe: ") + std::strerror(errno);
    ::close(ready_fd_);
    ready_fd_ = -1;
  }
  if (!socket_.empty()) {
    auto e = notify(socket_, "READY=1\nMAINPID=" + std::to_string(pid) + "\nSTATUS=" + status);
    if (!e.empty()) why += (why.empty() ? "" : "; ") + e;
  }
  return why;
}

std::string Readiness::stopping() {
  return socket_.empty() ? "" : notify(socket_, "STOPPING=1");
}

std::string Readiness::reloading() {
  return socket_.empty() ? "" : notify(socket_, "RELOADING=1");
}

std::string Readiness::reloaded(const std::string& status) {
  return socket_.empty() ? "" : notify(socket_, "READY=1\nSTATUS=" + status);
}

}  // namespace thrum::core
