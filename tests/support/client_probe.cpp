// client_probe: what another local OS user can reach of a daemon (issue 11, finding 4). Run it
// under `setpriv --reuid=65534 --regid=65534 --clear-groups`. Prints one word per check:
//
//   client_probe unix <socket path>        -> "connected" or the errno name (EACCES, ...)
//   client_probe read <file>               -> "readable" or the errno name
//   client_probe ws <port> [secret]        -> the HTTP status of a /ws upgrade ("101", "401")
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char* errno_name(int e) {
  switch (e) {
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    default:
      return "OTHER";
  }
}

int probe_unix(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof addr.sun_path) return 2;
  std::strcpy(addr.sun_path, path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::puts("connected");
  } else {
    std::puts(errno_name(errno));
  }
  ::close(fd);
  return 0;
}

int probe_read(const char* path) {
  int fd = ::open(path, O_RDONLY);
  if (fd >= 0) {
    std::puts("readable");
    ::close(fd);
  } else {
    std::puts(errno_name(errno));
  }
  return 0;
}

int probe_ws(int port, const char* secret) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::puts(errno_name(errno));
    return 0;
  }
  std::string req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: "
                    "13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nThrum-Agent: alice\r\n";
  if (secret) req += std::string("Thrum-Client-Secret: ") + secret + "\r\n";
  req += "\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return 3;
  std::string got;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (got.size() < 12 && ::poll(&p, 1, 5000) == 1) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::puts(got.size() >= 12 ? got.substr(9, 3).c_str() : "none");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fputs("usage: client_probe unix <path> | read <file> | ws <port> [secret]\n", stderr);
    return 2;
  }
  const std::string what = argv[1];
  if (what == "unix") return probe_unix(argv[2]);
  if (what == "read") return probe_read(argv[2]);
  if (what == "ws") return probe_ws(std::atoi(argv[2]), argc > 3 ? argv[3] : nullptr);
  return 2;
}
