#include "uds_transport.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

namespace thrum::transport::uds {
namespace {

using sdk::Errc;
using sdk::Status;
using Clock = std::chrono::steady_clock;

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

std::string default_dir() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/thrum-uds";
  }
  return "/tmp/thrum-uds-" + std::to_string(::geteuid());
}

bool make_address(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

class UdsListener final : public sdk::IListener {
 public:
  UdsListener(int fd, std::string path, std::uint16_t port)
      : fd_(fd), path_(std::move(path)), port_(port) {}
  ~UdsListener() override { close(); }

  int fd() const noexcept override { return fd_.load(); }

  sdk::Result<int> accept() noexcept override {
    const int lfd = fd_.load();
    if (lfd < 0) return Status::error(Errc::kUnavailable, "listener is closed");
    const int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) return c;
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
      return Status::error(Errc::kUnavailable, "no connection pending");
    }
    return Status::error(Errc::kIo, errno_text("accept", err));
  }

  sdk::Endpoint local_endpoint() const noexcept override { return {kLoopbackIp, port_}; }

  void close() noexcept override {
    const int fd = fd_.exchange(-1);
    if (fd < 0) return;  // idempotent
    ::unlink(path_.c_str());
    ::close(fd);
  }

 private:
  std::atomic<int> fd_;
  std::string path_;
  std::uint16_t port_;
};

// Whether something accepts connections at `path` (a live listener, not a stale file).
bool socket_alive(const std::string& path) {
  sockaddr_un addr{};
  if (!make_address(path, addr)) return false;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool alive = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return alive;
}

}  // namespace

UdsTransport::UdsTransport(sdk::IHost* host) : host_(host), dir_(default_dir()) {}

sdk::Capabilities UdsTransport::capabilities() const noexcept {
  sdk::Capabilities c;
  c.needs_tls = false;     // never leaves the kernel
  c.loopback_only = true;  // same host (or containers sharing a volume)
  c.needs_repo_path = false;
  c.needs_address = false;
  c.provides_listener = true;
  return c;
}

sdk::TransportProfile UdsTransport::profile() const noexcept {
  sdk::TransportProfile p;
  p.help =
      "Same-host daemons over Unix-domain sockets (no TCP port at all).\n"
      "Use when both daemons run on one machine or in containers\n"
      "that share the socket directory.";
  return p;
}

sdk::Status UdsTransport::configure(std::string_view options_json) noexcept {
  try {
    const auto o =
        nlohmann::json::parse(options_json.empty() ? std::string_view("{}") : options_json);
    if (!o.is_object())
      return Status::error(Errc::kInvalidArgument, "options must be a JSON object");
    for (const auto& [key, value] : o.items()) {
      if (key == "dir") {
        if (!value.is_string() || value.get<std::string>().empty() ||
            value.get<std::string>()[0] != '/') {
          return Status::error(Errc::kInvalidArgument, "dir must be an absolute directory path");
        }
        dir_ = value.get<std::string>();
        while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
      } else if (key == "socket_mode") {
        const std::string m = value.is_string() ? value.get<std::string>() : std::string();
        if (m == "0600" || m == "600") {
          socket_mode_ = 0600;
        } else if (m == "0660" || m == "660") {
          socket_mode_ = 0660;
        } else {
          return Status::error(Errc::kInvalidArgument, "socket_mode must be \"0600\" or \"0660\"");
        }
      } else {
        return Status::error(Errc::kInvalidArgument,
                             "unknown option \"" + key + "\" (known: dir, socket_mode)");
      }
    }
  } catch (const std::exception& e) {
    return Status::error(Errc::kInvalidArgument, std::string("options are not JSON: ") + e.what());
  }
  sockaddr_un addr{};
  if (!make_address(socket_path(65535), addr)) {
    return Status::error(Errc::kInvalidArgument, "dir is too long for a Unix socket path (max " +
                                                     std::to_string(sizeof addr.sun_path - 1) +
                                                     " bytes)");
  }
  if (host_ != nullptr) host_->log(sdk::LogLevel::kDebug, "uds configured dir=" + dir_);
  return Status::success();
}

std::string UdsTransport::socket_path(std::uint16_t port) const {
  return dir_ + "/thrum-" + std::to_string(port) + ".sock";
}

sdk::Result<std::unique_ptr<sdk::IListener>> UdsTransport::listen(
    const sdk::ListenSpec& spec) noexcept {
  try {
    if (!spec.bind_ip.empty() && spec.bind_ip != kLoopbackIp && spec.bind_ip != "0.0.0.0") {
      return Status::error(Errc::kInvalidArgument,
                           "uds binds no IP address; use 127.0.0.1 or leave it empty");
    }
    const mode_t dir_mode = socket_mode_ == 0660 ? 0770 : 0700;
    if (::mkdir(dir_.c_str(), dir_mode) != 0 && errno != EEXIST) {
      return Status::error(Errc::kIo, errno_text(("mkdir " + dir_).c_str(), errno));
    }
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(20000, 60999);
    for (int attempt = 0; attempt < 64; ++attempt) {
      const auto port = static_cast<std::uint16_t>(spec.port != 0 ? spec.port : pick(rng));
      const std::string path = socket_path(port);
      sockaddr_un addr{};
      make_address(path, addr);
      if (::access(path.c_str(), F_OK) == 0) {
        if (socket_alive(path)) {
          // kUnavailable: the core then listens on another socket number and tells the peers.
          if (spec.port != 0)
            return Status::error(Errc::kUnavailable, path + " is in use by another listener");
          continue;
        }
        ::unlink(path.c_str());  // left behind by a process that died
      }
      const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return Status::error(Errc::kIo, errno_text("socket", errno));
      const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      const int bind_err = errno;
      if (rc != 0) {
        ::close(fd);
        if (bind_err == EADDRINUSE && spec.port == 0) continue;
        if (bind_err == EADDRINUSE)
          return Status::error(Errc::kUnavailable, path + " is in use by another listener");
        return Status::error(Errc::kIo, errno_text(("bind " + path).c_str(), bind_err));
      }
      // chmod rather than umask (process-wide, racy in a daemon); until it runs, the directory's
      // own mode (0700/0770, or the operator's) guards the socket.
      if (::chmod(path.c_str(), socket_mode_) != 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return Status::error(Errc::kIo, errno_text(("chmod " + path).c_str(), err));
      }
      if (::listen(fd, 64) != 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return Status::error(Errc::kIo, errno_text("listen", err));
      }
      return std::unique_ptr<sdk::IListener>(new UdsListener(fd, path, port));
    }
    return Status::error(Errc::kIo, "no free socket name in " + dir_);
  } catch (const std::exception& e) {
    return Status::error(Errc::kInternal, e.what());
  }
}

sdk::Result<int> UdsTransport::dial(const sdk::Endpoint& to,
                                    std::chrono::milliseconds timeout) noexcept {
  try {
    if (to.port == 0) return Status::error(Errc::kInvalidArgument, "uds endpoint has no port");
    const std::string path = socket_path(to.port);
    sockaddr_un addr{};
    if (!make_address(path, addr))
      return Status::error(Errc::kInvalidArgument, "socket path too long");
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return Status::error(Errc::kIo, errno_text("socket", errno));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
      }
      const int err = errno;
      ::close(fd);
      if (err == ENOENT || err == ECONNREFUSED) {
        return Status::error(Errc::kUnavailable,
                             "nobody listens at " + path + " (" + std::strerror(err) + ")");
      }
      if (err != EAGAIN && err != EINTR)
        return Status::error(Errc::kIo, errno_text(("connect " + path).c_str(), err));
      // Backlog full: retry until the deadline.
      if (Clock::now() >= deadline)
        return Status::error(Errc::kTimeout, "timed out connecting to " + path);
      ::poll(nullptr, 0, 10);
    }
  } catch (const std::exception& e) {
    return Status::error(Errc::kInternal, e.what());
  }
}

sdk::Result<sdk::Endpoint> UdsTransport::advertise(const sdk::AdvertiseSpec& spec) noexcept {
  if (!spec.requested_ip.empty() && spec.requested_ip != kLoopbackIp) {
    return Status::error(Errc::kInvalidArgument,
                         "uds has no IP address; --address must be 127.0.0.1 or omitted");
  }
  if (spec.listen_port == 0)
    return Status::error(Errc::kInvalidArgument,
                         "uds advertises its listener's socket number; listen first");
  return sdk::Endpoint{kLoopbackIp, spec.listen_port};
}

sdk::Result<sdk::Endpoint> UdsTransport::resolve(const sdk::PeerRecordView& peer) noexcept {
  if (peer.address.port == 0)
    return Status::error(Errc::kInvalidArgument, "peer \"" + peer.name + "\" has no socket number");
  return sdk::Endpoint{kLoopbackIp, peer.address.port};
}

sdk::Status UdsTransport::validate_address_change(const sdk::Endpoint& old_address,
                                                  const sdk::Endpoint& new_address) noexcept {
  (void)old_address;
  if (new_address.ip != kLoopbackIp) {
    return Status::error(Errc::kRejected,
                         "uds: IP must stay 127.0.0.1 (only the socket number may change)");
  }
  if (new_address.port == 0)
    return Status::error(Errc::kRejected, "uds: socket number must be 1..65535");
  return Status::success();
}

}  // namespace thrum::transport::uds
