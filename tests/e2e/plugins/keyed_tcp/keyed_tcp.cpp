// keyed_tcp: a transport of the test suite's own (never shipped) that uses every ABI 1.1 feature
// the shipped ones do, so that the e2e tests can show a third party's plugin is as usable as
// ours through `thrum peer add|join --type keyed_tcp`:
//
//  - its own listener: loopback TCP, TLS by the core (needs_tls);
//  - a credential (CredentialSpec "access key", env THRUM_KEYED_TCP_KEY): listen() refuses to
//    start without one ("access key is required ...") or with one not starting "ktk-";
//  - poll_resolve: every listen() binds a fresh port (as if something else assigned it) and
//    records the move in a rendezvous directory (`<dir>/moved-<old port>` holding the new port;
//    the old one is remembered in the daemon's state_dir). resolve() follows those records, so
//    the dialing side finds the listener again after a restart. Announced moves are refused
//    (validate_address_change accepts no change): following goes through resolve() only.
//
// Policy options: {"dir": "<absolute rendezvous directory>"} (required).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "thrum/sdk/plugin.hpp"

namespace thrum::test::keyed_tcp {
namespace {

using sdk::Errc;
using sdk::Status;
constexpr const char* kIp = "127.0.0.1";

std::string errno_text(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

std::string read_small(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint16_t to_port(const std::string& text) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  return end != text.c_str() && v > 0 && v < 65536 ? static_cast<std::uint16_t>(v) : 0;
}

/// Writes `text` to `path` through a temporary file and a rename (readers never see half).
bool write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return false;
  }
  return ::rename(tmp.c_str(), path.c_str()) == 0;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

class Listener final : public sdk::IListener {
 public:
  Listener(int fd, std::uint16_t port) : fd_(fd), port_(port) {}
  ~Listener() override { close(); }
  int fd() const noexcept override { return fd_.load(); }
  sdk::Result<int> accept() noexcept override {
    const int lfd = fd_.load();
    if (lfd < 0) return Status::error(Errc::kUnavailable, "listener is closed");
    const int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) return c;
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
      return Status::error(Errc::kUnavailable, "no connection pending");
    return Status::error(Errc::kIo, errno_text("accept", err));
  }
  sdk::Endpoint local_endpoint() const noexcept override { return {kIp, port_}; }
  void close() noexcept override {
    const int fd = fd_.exchange(-1);
    if (fd >= 0) ::close(fd);
  }

 private:
  std::atomic<int> fd_;
  std::uint16_t port_;
};

class KeyedTcp final : public sdk::ITransport {
 public:
  explicit KeyedTcp(sdk::IHost* host) : host_(host) {}

  std::string_view id() const noexcept override { return "keyed_tcp"; }

  sdk::Capabilities capabilities() const noexcept override {
    sdk::Capabilities c;
    c.needs_tls = true;  // other users of the host can connect to a loopback port
    c.loopback_only = true;
    c.provides_listener = true;
    return c;
  }

  sdk::TransportProfile profile() const noexcept override {
    sdk::TransportProfile p;
    p.help =
        "Loopback TCP behind an access key (test suite only; needs --auth-key or "
        "THRUM_KEYED_TCP_KEY).\n"
        "Use in Thrum's own tests of third-party transports.";
    p.poll_resolve = true;
    p.credential = {"access key", "THRUM_KEYED_TCP_KEY", "keyed_tcp access key (ktk-...): "};
    p.state_dir = "keyed-tcp";
    return p;
  }

  Status configure(std::string_view options_json) noexcept override {
    try {
      const auto o =
          nlohmann::json::parse(options_json.empty() ? std::string_view("{}") : options_json);
      if (!o.is_object()) return Status::error(Errc::kInvalidArgument, "options: not an object");
      for (const auto& [key, value] : o.items()) {
        if (key != "dir")
          return Status::error(Errc::kInvalidArgument,
                               "unknown option \"" + key + "\" (known: dir)");
        if (!value.is_string() || value.get<std::string>().rfind('/', 0) != 0)
          return Status::error(Errc::kInvalidArgument, "dir must be an absolute path");
        dir_ = value.get<std::string>();
      }
    } catch (const std::exception& e) {
      return Status::error(Errc::kInvalidArgument, std::string("options: ") + e.what());
    }
    if (dir_.empty())
      return Status::error(Errc::kInvalidArgument, "dir is required (the rendezvous directory)");
    return Status::success();
  }

  sdk::Result<std::unique_ptr<sdk::IListener>> listen(
      const sdk::ListenSpec& spec) noexcept override {
    try {
      std::string state_dir, key;
      const auto o = nlohmann::json::parse(spec.options_json.empty() ? "{}" : spec.options_json);
      if (auto h = o.find("host"); h != o.end() && h->is_object()) {
        if (auto s = h->find("state_dir"); s != h->end() && s->is_string()) state_dir = *s;
        if (auto k = h->find("auth_key"); k != h->end() && k->is_string()) key = *k;
      }
      if (key.empty())
        return Status::error(Errc::kInvalidArgument,
                             "access key is required for --type keyed_tcp (set "
                             "THRUM_KEYED_TCP_KEY or pass --auth-key)");
      if (key.rfind("ktk-", 0) != 0)
        return Status::error(Errc::kInvalidArgument,
                             "invalid access key (keyed_tcp keys start with ktk-)");
      ::mkdir(dir_.c_str(), 0700);
      if (!state_dir.empty()) ::mkdir(state_dir.c_str(), 0700);
      // A fresh port every time, whatever spec.port asks for: the move is recorded below.
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return Status::error(Errc::kIo, errno_text("socket", errno));
      sockaddr_in a = loopback(0);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
        const int err = errno;
        ::close(fd);
        return Status::error(Errc::kIo, errno_text("bind/listen 127.0.0.1", err));
      }
      socklen_t len = sizeof a;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
      const std::uint16_t port = ntohs(a.sin_port);
      if (!state_dir.empty()) {
        const std::string mine = state_dir + "/port";
        const std::uint16_t before = to_port(read_small(mine));
        if (before != 0 && before != port)
          write_file(dir_ + "/moved-" + std::to_string(before), std::to_string(port));
        write_file(mine, std::to_string(port));
      }
      if (host_ != nullptr)
        host_->log(sdk::LogLevel::kInfo, "keyed_tcp listening on port " + std::to_string(port));
      return std::unique_ptr<sdk::IListener>(new Listener(fd, port));
    } catch (const std::exception& e) {
      return Status::error(Errc::kInternal, std::string("keyed_tcp: ") + e.what());
    }
  }

  sdk::Result<int> dial(const sdk::Endpoint& to,
                        std::chrono::milliseconds timeout) noexcept override {
    if (to.ip != kIp || to.port == 0)
      return Status::error(Errc::kInvalidArgument, "keyed_tcp dials 127.0.0.1:<port> only");
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::error(Errc::kIo, errno_text("socket", errno));
    sockaddr_in a = loopback(to.port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
      const int err = errno;
      ::close(fd);
      return Status::error(Errc::kUnavailable, errno_text("connect", err));
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
      ::close(fd);
      return Status::error(Errc::kTimeout, "connect: timed out");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      return Status::error(Errc::kUnavailable, errno_text("connect", err));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
  }

  sdk::Result<sdk::Endpoint> advertise(const sdk::AdvertiseSpec& spec) noexcept override {
    if (!spec.requested_ip.empty() && spec.requested_ip != kIp)
      return Status::error(Errc::kInvalidArgument, "keyed_tcp is loopback only (127.0.0.1)");
    if (spec.listen_port == 0) return Status::error(Errc::kInvalidArgument, "listen first");
    return sdk::Endpoint{kIp, spec.listen_port};
  }

  sdk::Result<sdk::Endpoint> resolve(const sdk::PeerRecordView& peer) noexcept override {
    try {
      std::uint16_t port = peer.address.port;
      if (port == 0) return Status::error(Errc::kInvalidArgument, "peer has no port");
      for (int hop = 0; hop < 16; ++hop) {  // follow the recorded moves, bounded
        const std::uint16_t next = to_port(read_small(dir_ + "/moved-" + std::to_string(port)));
        if (next == 0 || next == port) break;
        port = next;
      }
      return sdk::Endpoint{kIp, port};
    } catch (const std::exception& e) {
      return Status::error(Errc::kInternal, std::string("keyed_tcp: ") + e.what());
    }
  }

  Status validate_address_change(const sdk::Endpoint& old_address,
                                 const sdk::Endpoint& new_address) noexcept override {
    if (old_address == new_address) return Status::success();
    return Status::error(Errc::kRejected,
                         "keyed_tcp: addresses are not announced (peers follow the rendezvous "
                         "directory through resolve)");
  }

 private:
  sdk::IHost* host_;
  std::string dir_;
};

}  // namespace
}  // namespace thrum::test::keyed_tcp

THRUM_TRANSPORT_PLUGIN(thrum::test::keyed_tcp::KeyedTcp, "keyed_tcp", "0.1.0");
