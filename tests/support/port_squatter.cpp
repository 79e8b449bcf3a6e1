// port_squatter: what another local user can do with a loopback port (issue 11 finding 2).
// Binds 127.0.0.1:<port>, prints "ready <port>" on stdout, and for every connection appends
// what the client sent to <capture file>; with --relay-to <port2> it forwards both directions
// to 127.0.0.1:<port2> (a man in the middle on loopback). Runs until killed.
//
//   port_squatter <port|0> <capture file> [--relay-to <port2>]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::mutex g_mu;
std::string g_capture;

void capture(const char* data, ssize_t n) {
  std::lock_guard lk(g_mu);
  std::ofstream(g_capture, std::ios::app).write(data, n);
}

int connect_to(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void serve(int client, unsigned short relay) {
  {
    std::lock_guard lk(g_mu);
    std::ofstream(g_capture, std::ios::app) << "\n--- connection ---\n";
  }
  int upstream = relay ? connect_to(relay) : -1;
  char buf[65536];
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, upstream >= 0 ? 2 : 1, -1) <= 0) break;
    if (fds[0].revents) {
      ssize_t n = ::read(client, buf, sizeof buf);
      if (n <= 0) break;
      capture(buf, n);
      if (upstream >= 0 && ::write(upstream, buf, static_cast<size_t>(n)) != n) break;
    }
    if (upstream >= 0 && fds[1].revents) {
      ssize_t n = ::read(upstream, buf, sizeof buf);
      if (n <= 0) break;
      if (::write(client, buf, static_cast<size_t>(n)) != n) break;
    }
  }
  ::close(client);
  if (upstream >= 0) ::close(upstream);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: port_squatter <port> <capture> [--relay-to <port>]\n");
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  g_capture = argv[2];
  unsigned short relay = 0;
  if (argc >= 5 && std::strcmp(argv[3], "--relay-to") == 0)
    relay = static_cast<unsigned short>(std::atoi(argv[4]));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    std::perror("bind");
    return 1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("ready %u\n", ntohs(a.sin_port));
  std::fflush(stdout);
  for (;;) {
    int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    std::thread(serve, c, relay).detach();
  }
}
