// FAKE libtailscale, for Thrum's tests only. This is NOT Tailscale and contains no Tailscale code.
//
// It exports the C API of github.com/tailscale/libtailscale (tailscale.h: tailscale_new, _start,
// _up, _close, _set_dir/_hostname/_authkey/_control_url/_ephemeral/_logfd, _getips, _dial,
// _listen, _accept, _getremoteaddr, _errmsg) with the same names and signatures (checked at
// compile time against plugins/tailscale/libtailscale_api.hpp), implemented over the kernel's
// TCP inside network namespaces whose interfaces carry 100.64.0.0/10 addresses (the tests make
// them with tests/support/netns.hpp). What it does:
//
//  - tailscale_up succeeds when the auth key starts with "tskey-", or, without a key, when the
//    state directory holds `fake-tailscale.state` from an earlier successful up (as tsnet reuses
//    its `tailscaled.state`). A key without the prefix fails with "invalid key: ...". No key and
//    no state blocks, as tsnet does while it waits for an interactive login, until tailscale_close.
//  - The node's addresses are the 100.64.0.0/10 IPv4 addresses of the network namespace of the
//    thread that called tailscale_up; later sockets of the node are made in that namespace
//    (setns around socket()), whichever thread asks.
//  - tailscale_listen returns one end of a socketpair; a thread accepts kernel TCP connections on
//    <node ip>:<port> and passes each over the socketpair as SCM_RIGHTS with one byte of data,
//    which is how libtailscale does it, so tailscale_accept is the same recvmsg. Closing the
//    returned fd stops the listener (checked again before every dial, so that a dial right after
//    the close is refused rather than racing the listener thread).
//  - tailscale_dial connects from the node's address, only to 100.64.0.0/10.
//  - THRUM_FAKE_TS_LOGIN_MS=N: a node without state takes N ms to come up with its key (a
//    real first login talks to the control server for seconds), with the file
//    `fake-tailscale.login` in the state directory while it does (for tests to see it).
//  - Errors are kept per server handle for tailscale_errmsg; log lines go to the log fd.
//
// What it does not emulate: WireGuard, DERP, a control server (the control URL is only recorded
// and logged), MagicDNS names, IPv6 tailnet addresses, UDP, tailscale_loopback and Funnel, port
// 0 in tailscale_listen (refused, as tsnet does not pick a port), connections being socketpairs
// proxied by the library (here they are the kernel TCP sockets themselves), and the real
// library's unsafe corners (a tailscale_accept on a listener whose other end is gone fails here
// instead of crashing). Building with THRUM_FAKE_TS_OMIT_GETREMOTEADDR leaves out
// tailscale_getremoteaddr, for the plugin's "missing symbol" test.

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "libtailscale_api.hpp"

#define FAKE_TS_API extern "C" __attribute__((visibility("default")))

FAKE_TS_API int tailscale_new();
FAKE_TS_API int tailscale_start(int sd);
FAKE_TS_API int tailscale_up(int sd);
FAKE_TS_API int tailscale_close(int sd);
FAKE_TS_API int tailscale_set_dir(int sd, const char* dir);
FAKE_TS_API int tailscale_set_hostname(int sd, const char* hostname);
FAKE_TS_API int tailscale_set_authkey(int sd, const char* authkey);
FAKE_TS_API int tailscale_set_control_url(int sd, const char* control_url);
FAKE_TS_API int tailscale_set_ephemeral(int sd, int ephemeral);
FAKE_TS_API int tailscale_set_logfd(int sd, int fd);
FAKE_TS_API int tailscale_getips(int sd, char* buf, size_t buflen);
FAKE_TS_API int tailscale_dial(int sd, const char* network, const char* addr, int* conn_out);
FAKE_TS_API int tailscale_listen(int sd, const char* network, const char* addr, int* listener_out);
FAKE_TS_API int tailscale_accept(int listener, int* conn_out);
#ifndef THRUM_FAKE_TS_OMIT_GETREMOTEADDR
FAKE_TS_API int tailscale_getremoteaddr(int listener, int conn, char* buf, size_t buflen);
#endif
FAKE_TS_API int tailscale_errmsg(int sd, char* buf, size_t buflen);

namespace api = thrum::transport::tailscale::c_api;
static_assert(std::is_same_v<decltype(&tailscale_new), api::NewFn>);
static_assert(std::is_same_v<decltype(&tailscale_start), api::StartFn>);
static_assert(std::is_same_v<decltype(&tailscale_up), api::UpFn>);
static_assert(std::is_same_v<decltype(&tailscale_close), api::CloseFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_dir), api::SetStringFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_hostname), api::SetStringFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_authkey), api::SetStringFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_control_url), api::SetStringFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_ephemeral), api::SetEphemeralFn>);
static_assert(std::is_same_v<decltype(&tailscale_set_logfd), api::SetLogFdFn>);
static_assert(std::is_same_v<decltype(&tailscale_getips), api::GetIpsFn>);
static_assert(std::is_same_v<decltype(&tailscale_dial), api::DialFn>);
static_assert(std::is_same_v<decltype(&tailscale_listen), api::ListenFn>);
static_assert(std::is_same_v<decltype(&tailscale_accept), api::AcceptFn>);
#ifndef THRUM_FAKE_TS_OMIT_GETREMOTEADDR
static_assert(std::is_same_v<decltype(&tailscale_getremoteaddr), api::GetRemoteAddrFn>);
#endif
static_assert(std::is_same_v<decltype(&tailscale_errmsg), api::ErrmsgFn>);

namespace {

constexpr const char* kStateFile = "fake-tailscale.state";
constexpr int kDialTimeoutMs = 30000;

struct Listener {
  int sd = -1;
  int c_fd = -1;        // handed to the caller
  int lib_fd = -1;      // our end of the socketpair
  int tcp_fd = -1;      // the kernel listening socket
  bool closed = false;  // fds released; guarded by the global mutex
};

struct Server {
  enum class State { kNew, kUp, kClosed };
  State state = State::kNew;
  std::string dir, hostname, authkey, control_url;
  bool ephemeral = false;
  int logfd = -1;
  int netns_fd = -1;
  std::string last_err;
  std::vector<std::string> ips;
  std::vector<std::shared_ptr<Listener>> listeners;
};

struct Global {
  std::mutex mu;
  std::condition_variable closed_cv;  // wakes a tailscale_up waiting for a login
  int next = 0x7a0001;                // handles are not fds, as in libtailscale
  std::map<int, std::shared_ptr<Server>> servers;
  std::map<int, std::shared_ptr<Listener>> listeners;  // by c_fd
};

// Never destroyed: listener threads may still run while the process exits.
Global& g() {
  static Global* global = new Global;
  return *global;
}

std::shared_ptr<Server> find(int sd) {
  auto it = g().servers.find(sd);
  return it == g().servers.end() ? nullptr : it->second;
}

int fail(Server& s, std::string message) {
  s.last_err = std::move(message);
  return -1;
}

void log_line(Server& s, const std::string& line) {
  if (s.logfd < 0) return;
  const std::string text = line + "\n";
  [[maybe_unused]] auto n = ::write(s.logfd, text.data(), text.size());
}

int copy_out(const std::string& text, char* buf, size_t buflen) {
  if (buf == nullptr || buflen == 0) return ERANGE;
  if (text.size() + 1 > buflen) {
    std::memcpy(buf, text.data(), buflen - 1);
    buf[buflen - 1] = '\0';
    return ERANGE;
  }
  std::memcpy(buf, text.c_str(), text.size() + 1);
  return 0;
}

bool in_tailnet(in_addr a) {
  return (ntohl(a.s_addr) & 0xFFC00000u) == 0x64400000u;
}

std::vector<std::string> namespace_tailnet_ips() {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (!in_tailnet(sin->sin_addr)) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    out.emplace_back(text);
  }
  ::freeifaddrs(ifs);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

/// A TCP socket in the node's network namespace, whichever thread asks.
int node_socket(const Server& s) {
  const int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  bool switched = false;
  if (self >= 0 && s.netns_fd >= 0) {
    struct stat a {
    }, b{};
    if (::fstat(self, &a) == 0 && ::fstat(s.netns_fd, &b) == 0 &&
        (a.st_ino != b.st_ino || a.st_dev != b.st_dev))
      switched = ::setns(s.netns_fd, CLONE_NEWNET) == 0;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int saved = errno;
  if (switched) ::setns(self, CLONE_NEWNET);
  if (self >= 0) ::close(self);
  errno = saved;
  return fd;
}

bool parse_hostport(const std::string& addr, std::string& ip, int& port) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  ip = addr.substr(0, colon);
  const std::string p = addr.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  port = std::stoi(p);
  return port <= 65535;
}

/// Stops a listener whose caller closed its fd, so that a dial right after the close is refused.
void reap_closed_listeners_locked() {
  for (auto& [fd, l] : g().listeners) {
    if (l->closed) continue;
    pollfd p{l->lib_fd, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
      ::shutdown(l->tcp_fd, SHUT_RDWR);  // the listener thread notices and cleans up
  }
}

void listener_loop(std::shared_ptr<Listener> l) {
  for (;;) {
    pollfd fds[2] = {{l->tcp_fd, POLLIN, 0}, {l->lib_fd, POLLRDHUP, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) break;  // caller closed it
    if ((fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) break;   // shut down
    if ((fds[0].revents & POLLIN) == 0) continue;
    // Like libtailscale, the fd arrives without FD_CLOEXEC: setting it is the receiver's job.
    const int conn = ::accept4(l->tcp_fd, nullptr, nullptr, 0);
    if (conn < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    char byte = 'c';
    iovec io{&byte, 1};
    union {
      cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int))];
    } control{};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &conn, sizeof conn);
    const bool sent = ::sendmsg(l->lib_fd, &msg, MSG_NOSIGNAL) == 1;
    ::close(conn);  // the receiver has its own copy now
    if (!sent) break;
  }
  std::lock_guard lock(g().mu);
  l->closed = true;
  ::close(l->tcp_fd);
  ::close(l->lib_fd);
  if (auto it = g().listeners.find(l->c_fd); it != g().listeners.end() && it->second == l)
    g().listeners.erase(it);
  if (auto s = find(l->sd)) {
    auto& v = s->listeners;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (*it == l) {
        v.erase(it);
        break;
      }
    }
  }
}

/// tailscale_up's work; `lock` holds the global mutex.
int up_locked(const std::shared_ptr<Server>& s, std::unique_lock<std::mutex>& lock) {
  if (s->state == Server::State::kUp) return 0;
  if (s->state == Server::State::kClosed) return fail(*s, "tsnet: server is closed");
  if (s->dir.empty())
    return fail(*s,
                "fake-libtailscale: tailscale_set_dir is required (the fake has no default "
                "state directory)");
  const std::string state_path = s->dir + "/" + kStateFile;
  const bool has_state = ::access(state_path.c_str(), R_OK) == 0;
  if (!has_state) {
    if (s->authkey.empty()) {
      // tsnet without a key or state waits for someone to open the login URL.
      log_line(*s,
               "To start this tsnet server, restart with TS_AUTHKEY set, or go to: "
               "https://login.fake-tailscale.invalid/a/0000");
      g().closed_cv.wait(lock, [&] { return s->state == Server::State::kClosed; });
      return fail(*s, "tsnet: server closed while waiting for login");
    }
    if (s->authkey.rfind("tskey-", 0) != 0)
      return fail(*s,
                  "invalid key: unable to validate API key (fake libtailscale accepts only "
                  "keys that start with \"tskey-\")");
    if (const char* ms = std::getenv("THRUM_FAKE_TS_LOGIN_MS"); ms && std::atoi(ms) > 0) {
      log_line(*s, "fake-libtailscale: logging in");
      const std::string marker = s->dir + "/fake-tailscale.login";
      ::close(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
      const bool closed =
          g().closed_cv.wait_for(lock, std::chrono::milliseconds(std::atoi(ms)),
                                 [&] { return s->state == Server::State::kClosed; });
      ::unlink(marker.c_str());
      if (closed) return fail(*s, "tsnet: server closed while logging in");
    }
  }
  s->ips = namespace_tailnet_ips();
  if (s->ips.empty())
    return fail(*s, "fake-libtailscale: no 100.64.0.0/10 address in this network namespace");
  if (s->netns_fd < 0) s->netns_fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  {
    const std::string tmp = state_path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return fail(*s,
                  "fake-libtailscale: cannot write " + state_path + ": " + std::strerror(errno));
    // Never the key: like tsnet, the state holds what the key bought, not the key.
    const std::string body = "fake libtailscale node state\nhostname=" + s->hostname +
                             "\nips=" + join(s->ips) + "\ncontrol_url=" + s->control_url + "\n";
    [[maybe_unused]] auto n = ::write(fd, body.data(), body.size());
    ::close(fd);
    ::rename(tmp.c_str(), state_path.c_str());
  }
  s->state = Server::State::kUp;
  log_line(*s, "fake-libtailscale: up hostname=" + s->hostname + " ips=" + join(s->ips) +
                   " control_url=" + (s->control_url.empty() ? "(default)" : s->control_url) +
                   " state=" + (has_state ? "reused" : "new") +
                   " ephemeral=" + (s->ephemeral ? "true" : "false"));
  s->last_err.clear();
  return 0;
}

int set_string(int sd, const char* value, std::string Server::*field) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  (*s).*field = value != nullptr ? value : "";
  return 0;
}

}  // namespace

int tailscale_new() {
  std::lock_guard lock(g().mu);
  const int sd = g().next++;
  g().servers[sd] = std::make_shared<Server>();
  return sd;
}

int tailscale_start(int sd) {
  return tailscale_up(sd);  // the fake has no asynchronous start
}

int tailscale_up(int sd) {
  std::unique_lock lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  return up_locked(s, lock);
}

int tailscale_close(int sd) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  g().servers.erase(sd);
  s->state = Server::State::kClosed;
  g().closed_cv.notify_all();
  for (auto& l : s->listeners)
    if (!l->closed) ::shutdown(l->tcp_fd, SHUT_RDWR);
  log_line(*s, "fake-libtailscale: closed");
  if (s->logfd >= 0) ::close(s->logfd);  // the library owns the log fd, as tsnet does
  s->logfd = -1;
  if (s->netns_fd >= 0) ::close(s->netns_fd);
  s->netns_fd = -1;
  return 0;
}

int tailscale_set_dir(int sd, const char* dir) {
  return set_string(sd, dir, &Server::dir);
}
int tailscale_set_hostname(int sd, const char* hostname) {
  return set_string(sd, hostname, &Server::hostname);
}
int tailscale_set_authkey(int sd, const char* authkey) {
  return set_string(sd, authkey, &Server::authkey);
}
int tailscale_set_control_url(int sd, const char* control_url) {
  return set_string(sd, control_url, &Server::control_url);
}

int tailscale_set_ephemeral(int sd, int ephemeral) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  s->ephemeral = ephemeral != 0;
  return 0;
}

int tailscale_set_logfd(int sd, int fd) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  if (s->logfd >= 0 && s->logfd != fd) ::close(s->logfd);
  s->logfd = fd;
  return 0;
}

int tailscale_getips(int sd, char* buf, size_t buflen) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) {
    if (buf != nullptr && buflen > 0) buf[0] = '\0';
    return EBADF;
  }
  return copy_out(s->state == Server::State::kUp ? join(s->ips) : "", buf, buflen);
}

int tailscale_errmsg(int sd, char* buf, size_t buflen) {
  std::lock_guard lock(g().mu);
  auto s = find(sd);
  if (!s) {
    if (buf != nullptr && buflen > 0) buf[0] = '\0';
    return EBADF;
  }
  return copy_out(s->last_err, buf, buflen);
}

int tailscale_listen(int sd, const char* network, const char* addr, int* listener_out) {
  std::unique_lock lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  if (up_locked(s, lock) != 0) return -1;  // like tsnet, listening starts the server
  reap_closed_listeners_locked();
  const std::string net = network != nullptr ? network : "";
  const std::string where = addr != nullptr ? addr : "";
  if (net != "tcp") return fail(*s, "fake-libtailscale: only tcp is emulated, not \"" + net + "\"");
  std::string ip;
  int port = 0;
  if (!parse_hostport(where, ip, port))
    return fail(*s, "listen " + net + " " + where + ": missing or bad port");
  if (port == 0)
    return fail(*s,
                "fake-libtailscale: port 0 is not emulated (tsnet listens on the port it is "
                "given)");
  if (ip.empty()) ip = s->ips.front();
  bool ours = false;
  for (const auto& mine : s->ips) ours = ours || mine == ip;
  if (!ours) return fail(*s, "listen tcp " + where + ": " + ip + " is not this node's address");

  const int tcp = node_socket(*s);
  if (tcp < 0) return fail(*s, std::string("listen tcp: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  if (::bind(tcp, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(tcp, 64) != 0) {
    const int e = errno;
    ::close(tcp);
    return fail(*s,
                "listen tcp " + ip + ":" + std::to_string(port) + ": bind: " + std::strerror(e));
  }
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
    const int e = errno;
    ::close(tcp);
    return fail(*s, std::string("socketpair: ") + std::strerror(e));
  }
  auto l = std::make_shared<Listener>();
  l->sd = sd;
  l->c_fd = sp[0];
  l->lib_fd = sp[1];
  l->tcp_fd = tcp;
  try {
    std::thread(listener_loop, l).detach();
  } catch (...) {
    ::close(sp[0]);
    ::close(sp[1]);
    ::close(tcp);
    return fail(*s, "fake-libtailscale: cannot start the listener thread");
  }
  g().listeners[sp[0]] = l;
  s->listeners.push_back(l);
  log_line(*s, "fake-libtailscale: listening on " + ip + ":" + std::to_string(port));
  *listener_out = sp[0];
  return 0;
}

int tailscale_accept(int listener, int* conn_out) {
  char byte = 0;
  iovec io{&byte, 1};
  union {
    cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control{};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  const ssize_t n = ::recvmsg(listener, &msg, 0);
  if (n <= 0) {
    if (n == 0) errno = ECONNRESET;
    return -1;
  }
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
    errno = EPROTO;
    return -1;
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  *conn_out = fd;
  return 0;
}

#ifndef THRUM_FAKE_TS_OMIT_GETREMOTEADDR
int tailscale_getremoteaddr(int listener, int conn, char* buf, size_t buflen) {
  {
    std::lock_guard lock(g().mu);
    if (g().listeners.count(listener) == 0) {
      if (buf != nullptr && buflen > 0) buf[0] = '\0';
      return EBADF;
    }
  }
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(conn, reinterpret_cast<sockaddr*>(&sa), &len) != 0 ||
      sa.sin_family != AF_INET) {
    if (buf != nullptr && buflen > 0) buf[0] = '\0';
    return EBADF;
  }
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
  return copy_out(text, buf, buflen);
}
#endif

int tailscale_dial(int sd, const char* network, const char* addr, int* conn_out) {
  std::unique_lock lock(g().mu);
  auto s = find(sd);
  if (!s) return EBADF;
  if (up_locked(s, lock) != 0) return -1;  // like tsnet, dialing starts the server
  reap_closed_listeners_locked();
  const std::string net = network != nullptr ? network : "";
  const std::string where = addr != nullptr ? addr : "";
  if (net != "tcp") return fail(*s, "fake-libtailscale: only tcp is emulated, not \"" + net + "\"");
  std::string ip;
  int port = 0;
  in_addr target{};
  if (!parse_hostport(where, ip, port) || port == 0 ||
      ::inet_pton(AF_INET, ip.c_str(), &target) != 1)
    return fail(*s, "dial tcp " + where + ": bad address");
  if (!in_tailnet(target))
    return fail(*s, "dial tcp " + where + ": fake-libtailscale routes only 100.64.0.0/10");
  const int fd = node_socket(*s);
  if (fd < 0) return fail(*s, std::string("dial tcp: socket: ") + std::strerror(errno));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, s->ips.front().c_str(), &src.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);  // leave from the node's address
  lock.unlock();  // connecting may take a while; other calls go on meanwhile

  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(port));
  dst.sin_addr = target;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int err = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int pr;
      do {
        pr = ::poll(&p, 1, kDialTimeoutMs);
      } while (pr < 0 && errno == EINTR);
      if (pr == 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
  }
  if (err != 0) {
    ::close(fd);
    lock.lock();
    return fail(*s, "dial tcp " + where + ": connect: " + std::strerror(err));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  *conn_out = fd;
  return 0;
}
