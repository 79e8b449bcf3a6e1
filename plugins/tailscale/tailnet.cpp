#include "tailnet.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace thrum::transport::tailscale {

using sdk::Errc;
using sdk::Status;

bool parse_ipv4(const std::string& text, std::uint32_t& out) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

bool in_tailnet(std::uint32_t ip) {
  constexpr std::uint32_t mask = ~std::uint32_t{0} << (32 - kTailnetPrefix);
  return (ip & mask) == kTailnetBase;
}

bool is_tailnet_ipv4(const std::string& text) {
  std::uint32_t ip = 0;
  return parse_ipv4(text, ip) && in_tailnet(ip);
}

std::string errno_text(int e) {
  char buf[256];
  // GNU strerror_r returns the message (which may or may not be buf).
  return ::strerror_r(e, buf, sizeof buf);
}

void set_cloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

std::vector<std::string> interface_tailnet_addresses(std::string& error) {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) {
    error = "cannot list network interfaces: " + errno_text(errno);
    return out;
  }
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0) continue;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (!in_tailnet(ntohl(sin->sin_addr.s_addr))) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    out.emplace_back(text);
  }
  ::freeifaddrs(ifs);
  return out;
}

namespace {

class TcpListener final : public sdk::IListener {
 public:
  TcpListener(int fd, sdk::Endpoint ep) : fd_(fd), ep_(std::move(ep)) {}
  ~TcpListener() override { close(); }
  int fd() const noexcept override {
    std::lock_guard lock(mu_);
    return fd_;
  }
  sdk::Result<int> accept() noexcept override {
    std::lock_guard lock(mu_);
    if (fd_ < 0) return Status::error(Errc::kUnavailable, "tailscale: listener is closed");
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      const int e = errno;
      return Status::error(e == EAGAIN || e == EWOULDBLOCK ? Errc::kUnavailable : Errc::kIo,
                           "tailscale: accept: " + errno_text(e));
    }
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
  }
  sdk::Endpoint local_endpoint() const noexcept override { return ep_; }
  void close() noexcept override {
    std::lock_guard lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  mutable std::mutex mu_;
  int fd_;
  sdk::Endpoint ep_;
};

}  // namespace

sdk::Result<int> tcp_connect(const std::string& ip, std::uint16_t port,
                             std::chrono::milliseconds timeout) {
  std::uint32_t addr_host = 0;
  if (!parse_ipv4(ip, addr_host))
    return Status::error(Errc::kInvalidArgument,
                         "tailscale: \"" + ip + "\" is not an IPv4 address");
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(Errc::kIo, "tailscale: socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(addr_host);
  const std::string where = ip + ":" + std::to_string(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      const int e = errno;
      ::close(fd);
      return Status::error(Errc::kUnavailable,
                           "tailscale: connect " + where + ": " + errno_text(e));
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int pr = 0;
    pollfd p{fd, POLLOUT, 0};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pr = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      if (pr >= 0 || errno != EINTR) break;
    }
    if (pr == 0) {
      ::close(fd);
      return Status::error(Errc::kTimeout, "tailscale: connect " + where + " timed out after " +
                                               std::to_string(timeout.count()) + " ms");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (pr < 0 || err != 0) {
      const int e = pr < 0 ? errno : err;
      ::close(fd);
      return Status::error(Errc::kUnavailable,
                           "tailscale: connect " + where + ": " + errno_text(e));
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

sdk::Result<std::unique_ptr<sdk::IListener>> tcp_listen(const std::string& ip, std::uint16_t port) {
  std::uint32_t addr_host = 0;
  if (!parse_ipv4(ip, addr_host))
    return Status::error(Errc::kInvalidArgument,
                         "tailscale: \"" + ip + "\" is not an IPv4 address");
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(Errc::kIo, "tailscale: socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(addr_host);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::close(fd);
    return Status::error(
        e == EADDRINUSE ? Errc::kUnavailable : Errc::kIo,
        "tailscale: cannot listen on " + ip + ":" + std::to_string(port) + ": " + errno_text(e));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<sdk::IListener>(
      std::make_unique<TcpListener>(fd, sdk::Endpoint{ip, ntohs(addr.sin_port)}));
}

std::string redact_secrets(std::string text, std::string_view secret) {
  if (!secret.empty()) {
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "[redacted]");
      at += 10;
    }
  }
  static constexpr std::string_view kKeyPrefix = "tskey-";
  for (std::size_t at = text.find(kKeyPrefix); at != std::string::npos;
       at = text.find(kKeyPrefix, at)) {
    std::size_t end = at + kKeyPrefix.size();
    while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) ||
                                 text[end] == '-' || text[end] == '_'))
      ++end;
    if (end == at + kKeyPrefix.size()) {  // "tskey-" alone is not a key
      at = end;
      continue;
    }
    text.replace(at + kKeyPrefix.size(), end - at - kKeyPrefix.size(), "[redacted]");
    at += kKeyPrefix.size() + 10;
  }
  return text;
}

void HostLog::log(sdk::LogLevel level, const std::string& message) {
  std::lock_guard lock(mu_);
  if (host_ == nullptr || message.empty()) return;
  host_->log(level, redact_secrets(message, secret_));
}

void HostLog::set_secret(std::string secret) {
  std::lock_guard lock(mu_);
  secret_ = std::move(secret);
}

void HostLog::detach() {
  std::lock_guard lock(mu_);
  host_ = nullptr;
}

}  // namespace thrum::transport::tailscale
