// The floor pipeline (issue 16): the least a durable cross-machine notification can cost with
// the same hops as Thrum, in three processes on loopback TCP:
//
//   client --TCP--> A: append + fdatasync --TCP--> B: append + fdatasync --TCP push--> client
//
// One message in flight at a time; each is a 100-byte record. Prints one line:
//   floor p50_ms X p90_ms X p99_ms X n N
// Usage: thrum_floor_pipeline [--samples N] [--dir D]   (D: where A and B keep their files)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kRecord = 100;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

bool read_full(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void write_full(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) die("write");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A listening socket on 127.0.0.1 with a kernel-chosen port, written to *port.
int listen_any(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(fd, 4) != 0) die("listen");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int dial(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  no_delay(fd);
  return fd;
}

int accept_one(int lfd) {
  int fd = ::accept(lfd, nullptr, nullptr);
  if (fd < 0) die("accept");
  no_delay(fd);
  return fd;
}

/// A store-and-forward hop: each record read from `in` is appended to `file` and fdatasynced,
/// then written to `out`.
void hop(int in, int out, const std::string& file) {
  int f = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (f < 0) die("open");
  char buf[kRecord];
  while (read_full(in, buf, kRecord)) {
    write_full(f, buf, kRecord);
    if (::fdatasync(f) != 0) die("fdatasync");
    write_full(out, buf, kRecord);
  }
  ::close(f);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 2000;
  std::string dir = "/var/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--samples")) samples = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  ::signal(SIGPIPE, SIG_IGN);
  uint16_t a_port = 0, b_port = 0, push_port = 0;
  int a_listen = listen_any(&a_port), b_listen = listen_any(&b_port),
      push_listen = listen_any(&push_port);
  const std::string tag = std::to_string(::getpid());

  pid_t b = ::fork();
  if (b == 0) {  // B: from A, to the client's push connection
    int from_a = accept_one(b_listen);
    int push = dial(push_port);
    hop(from_a, push, dir + "/floor-b-" + tag + ".log");
  }
  pid_t a = ::fork();
  if (a == 0) {  // A: from the client, to B
    int from_client = accept_one(a_listen);
    int to_b = dial(b_port);
    hop(from_client, to_b, dir + "/floor-a-" + tag + ".log");
  }
  int to_a = dial(a_port);
  int pushed = accept_one(push_listen);

  std::vector<double> lat;
  char msg[kRecord], back[kRecord];
  const int warmup = 100;
  for (int i = 0; i < warmup + samples; ++i) {
    std::snprintf(msg, sizeof msg, "floor message %d", i);
    const auto t0 = std::chrono::steady_clock::now();
    write_full(to_a, msg, kRecord);
    if (!read_full(pushed, back, kRecord)) die("push closed");
    const auto t1 = std::chrono::steady_clock::now();
    if (std::memcmp(msg, back, kRecord) != 0) {
      std::fprintf(stderr, "floor: pushed record differs from the one sent\n");
      return 1;
    }
    if (i >= warmup) lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  ::close(to_a);
  ::waitpid(a, nullptr, 0);
  ::waitpid(b, nullptr, 0);
  ::unlink((dir + "/floor-a-" + tag + ".log").c_str());
  ::unlink((dir + "/floor-b-" + tag + ".log").c_str());
  std::sort(lat.begin(), lat.end());
  auto at = [&](double q) {
    return lat[std::min(lat.size() - 1, static_cast<size_t>(q * double(lat.size() - 1) + 0.5))];
  };
  std::printf("floor p50_ms %.4f p90_ms %.4f p99_ms %.4f n %zu\n", at(0.5), at(0.9), at(0.99),
              lat.size());
  return 0;
}
