#include "local_transport.hpp"

#include "daemon_liveness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace thrum::transport::local {

using sdk::Errc;
using sdk::Status;

namespace {
constexpr const char* kLoopback = "127.0.0.1";

std::string errno_text(int e) {
  return std::strerror(e);
}
}  // namespace

sdk::Capabilities LocalTransport::capabilities() const noexcept {
  sdk::Capabilities c;
  c.needs_tls = false;  // loopback never leaves the machine
  c.loopback_only = true;
  c.needs_repo_path = true;  // the joiner reads the other repo's ws.port
  c.needs_address = false;
  c.provides_listener = false;  // the daemon's loopback WS server serves /peer
  return c;
}

sdk::TransportProfile LocalTransport::profile() const noexcept {
  sdk::TransportProfile p;
  p.help =
      "Same-host sibling repos.\n"
      "Use when both daemons run on the same machine and\n"
      "you want loopback-only messaging (no tsnet, no LAN).";
  p.poll_resolve = true;  // resolve() reads the other repo's ws.port: follow it at once
  return p;
}

Status LocalTransport::configure(std::string_view options_json) noexcept {
  // No options today; accept an empty object so that policy files can list the transport.
  std::string s(options_json);
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  if (s.empty() || s.front() != '{')
    return Status::error(Errc::kInvalidArgument, "local: options must be a JSON object");
  return Status::success();
}

sdk::Result<std::unique_ptr<sdk::IListener>> LocalTransport::listen(
    const sdk::ListenSpec&) noexcept {
  return Status::error(Errc::kUnsupported,
                       "local: peers connect to the daemon's loopback WebSocket server; no "
                       "separate listener");
}

sdk::Result<int> LocalTransport::dial(const sdk::Endpoint& to,
                                      std::chrono::milliseconds timeout) noexcept {
  if (to.ip != kLoopback)
    return Status::error(Errc::kRejected, "local: refusing to dial " + to.ip +
                                              ": local peers are on 127.0.0.1 only");
  if (to.port == 0) return Status::error(Errc::kInvalidArgument, "local: port 0 is not a port");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(Errc::kIo, "local: socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(to.port);
  ::inet_pton(AF_INET, kLoopback, &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return Status::error(
          e == ECONNREFUSED ? Errc::kUnavailable : Errc::kIo,
          "local: connect 127.0.0.1:" + std::to_string(to.port) + ": " + errno_text(e));
    }
    pollfd p{fd, POLLOUT, 0};
    int pr;
    do {
      pr = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      ::close(fd);
      return Status::error(Errc::kTimeout,
                           "local: connect 127.0.0.1:" + std::to_string(to.port) + " timed out");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (pr < 0 || err != 0) {
      int e = pr < 0 ? errno : err;
      ::close(fd);
      return Status::error(
          e == ECONNREFUSED ? Errc::kUnavailable : Errc::kIo,
          "local: connect 127.0.0.1:" + std::to_string(to.port) + ": " + errno_text(e));
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

sdk::Result<sdk::Endpoint> LocalTransport::advertise(const sdk::AdvertiseSpec& spec) noexcept {
  if (!spec.requested_ip.empty() && spec.requested_ip != kLoopback)
    return Status::error(
        Errc::kInvalidArgument,
        "local: --address is not used with --type local (peers meet on 127.0.0.1)");
  if (spec.listen_port == 0)
    return Status::error(Errc::kUnavailable, "local: the daemon's WebSocket port is not known yet");
  return sdk::Endpoint{kLoopback, spec.listen_port};
}

sdk::Result<sdk::Endpoint> LocalTransport::resolve(const sdk::PeerRecordView& peer) noexcept {
  if (peer.repo_path.empty()) {
    // Without a repo path (the listener side of a pair) the stored address is all we have.
    if (peer.address.port == 0)
      return Status::error(Errc::kUnavailable, "local: peer \"" + peer.name + "\" has no address");
    return peer.address;
  }
  // A port file is only worth dialing while the daemon that wrote it still runs (a dead one's
  // port may belong to anybody now).
  if (auto why = why_not_serving(peer.repo_path)) return Status::error(Errc::kUnavailable, *why);
  const std::string path = peer.repo_path + "/.thrum/var/ws.port";
  std::ifstream in(path);
  if (!in)
    return Status::error(Errc::kUnavailable, "local: no daemon is running for " + peer.repo_path +
                                                 " (" + path + " is missing)");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.pop_back();
  char* end = nullptr;
  long port = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || port < 1 || port > 65535)
    return Status::error(Errc::kUnavailable, "local: " + path + " does not hold a port");
  return sdk::Endpoint{kLoopback, static_cast<std::uint16_t>(port)};
}

Status LocalTransport::validate_address_change(const sdk::Endpoint& old_address,
                                               const sdk::Endpoint& new_address) noexcept {
  (void)old_address;
  if (new_address.ip != kLoopback)
    return Status::error(Errc::kRejected,
                         "local: port only — the IP must stay 127.0.0.1, got " + new_address.ip);
  if (new_address.port == 0) return Status::error(Errc::kRejected, "local: port 0 is not a port");
  return Status::success();
}

}  // namespace thrum::transport::local
