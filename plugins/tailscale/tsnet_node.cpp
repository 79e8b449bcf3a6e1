#include "tsnet_node.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

namespace thrum::transport::tailscale {

using sdk::Errc;
using sdk::Status;

namespace {

/// Drains the pipes libtailscale writes its log lines to and forwards each line to the owning
/// transport's host log at debug level, with secrets scrubbed.
///
/// One thread for the whole process, started on first use and never stopped. A pipe is drained
/// until the library closes its write end, even after its node was closed and its transport
/// destroyed (the HostLog is detached then, so the lines are dropped): a pipe nobody reads would
/// fill up and block the library's logger, and one whose read end were closed would turn its
/// next log line into SIGPIPE/EPIPE inside the library. Real libtailscale owns the write end from
/// tailscale_set_logfd on and may hold it until its Go garbage collector runs.
class LogPump {
 public:
  static LogPump& instance() {
    static LogPump* pump = new LogPump;  // never destroyed: its thread runs until exit
    return *pump;
  }

  /// Takes ownership of `read_fd` when it returns true.
  bool add(int read_fd, std::shared_ptr<HostLog> sink) {
    std::lock_guard lock(mu_);
    if (!started_) {
      wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (wake_fd_ < 0) return false;
      try {
        std::thread([this] { run(); }).detach();
      } catch (...) {
        ::close(wake_fd_);
        wake_fd_ = -1;
        return false;
      }
      started_ = true;
    }
    ::fcntl(read_fd, F_SETFL, ::fcntl(read_fd, F_GETFL) | O_NONBLOCK);
    pending_.push_back(Entry{read_fd, std::move(sink), {}});
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    return true;
  }

 private:
  struct Entry {
    int fd;
    std::shared_ptr<HostLog> sink;
    std::string partial;
  };
  static constexpr std::size_t kMaxLine = 4096;

  static void emit(Entry& e, std::string line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    if (!line.empty()) e.sink->log(sdk::LogLevel::kDebug, "tsnet: " + line);
  }

  void run() {
    std::vector<Entry> entries;
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      for (const auto& e : entries) fds.push_back({e.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents & POLLIN) {
        std::uint64_t n = 0;
        [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
        std::lock_guard lock(mu_);
        for (auto& e : pending_) entries.push_back(std::move(e));
        pending_.clear();
      }
      // Walk backwards so that erasing keeps the remaining indices of `fds` valid.
      for (std::size_t i = fds.size() - 1; i >= 1; --i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        Entry& e = entries[i - 1];
        char buf[4096];
        const ssize_t n = ::read(e.fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          emit(e, std::move(e.partial));
          ::close(e.fd);
          entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i - 1));
          continue;
        }
        e.partial.append(buf, static_cast<std::size_t>(n));
        for (auto nl = e.partial.find('\n'); nl != std::string::npos; nl = e.partial.find('\n')) {
          emit(e, e.partial.substr(0, nl));
          e.partial.erase(0, nl + 1);
        }
        if (e.partial.size() > kMaxLine) {
          emit(e, e.partial.substr(0, kMaxLine) + " [truncated]");
          e.partial.clear();
        }
      }
    }
  }

  std::mutex mu_;
  bool started_ = false;
  int wake_fd_ = -1;
  std::vector<Entry> pending_;
};

class TsnetListener final : public sdk::IListener {
 public:
  TsnetListener(const LibTailscale* lib, int fd, sdk::Endpoint ep, std::shared_ptr<HostLog> log)
      : lib_(lib), fd_(fd), ep_(std::move(ep)), log_(std::move(log)) {}
  ~TsnetListener() override { close(); }

  int fd() const noexcept override {
    std::lock_guard lock(mu_);
    return fd_;
  }

  sdk::Result<int> accept() noexcept override {
    std::lock_guard lock(mu_);
    if (fd_ < 0) return Status::error(Errc::kUnavailable, "tailscale: listener is closed");
    // libtailscale hands each connection over as an fd in an SCM_RIGHTS message (with one byte
    // of data) on the listener's socketpair, and tailscale_accept() is a blocking recvmsg. Peek
    // first, so that accept() never blocks and end-of-file (the library dropped the listener,
    // e.g. because the node was closed) is an error rather than a recvmsg without a message.
    char byte = 0;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
        return Status::error(Errc::kUnavailable, "tailscale: no connection pending");
      return Status::error(Errc::kIo, "tailscale: accept: " + errno_text(e));
    }
    if (n == 0)
      return Status::error(Errc::kIo,
                           "tailscale: the node stopped this listener (tailscale node is not "
                           "running?)");
    int conn = -1;
    if (lib_->accept(fd_, &conn) != 0 || conn < 0) {
      const int e = errno;
      return Status::error(Errc::kIo, "tailscale: tailscale_accept failed: " + errno_text(e));
    }
    set_cloexec(conn);
    char remote[64] = {};
    if (lib_->getremoteaddr(fd_, conn, remote, sizeof remote) == 0) {
      remote[sizeof remote - 1] = '\0';
      log_->log(sdk::LogLevel::kDebug, "tailscale: accepted a connection from " +
                                           std::string(remote) + " on port " +
                                           std::to_string(ep_.port));
    }
    return conn;
  }

  sdk::Endpoint local_endpoint() const noexcept override { return ep_; }

  void close() noexcept override {
    std::lock_guard lock(mu_);
    // Closing our end of the socketpair is how libtailscale learns to stop listening.
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  const LibTailscale* lib_;
  mutable std::mutex mu_;
  int fd_;
  sdk::Endpoint ep_;
  std::shared_ptr<HostLog> log_;
};

/// A blocking library call run on its own thread so that the caller can stop waiting for it.
/// The thread owns a reference to this state, so it may finish after the caller gave up.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool abandoned = false;
  int rc = -1;
  int fd = -1;
  std::string error;

  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, timeout, [this] { return done; })) abandoned = true;
    return done;
  }
};

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string first_ipv4(const std::string& list) {
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    std::uint32_t ip = 0;
    if (parse_ipv4(item, ip)) return item;
    start = comma + 1;
  }
  return "";
}

}  // namespace

bool has_saved_state(const std::string& dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() == ".state" && it->is_regular_file(ec) && it->file_size(ec) > 0 && !ec)
      return true;
  }
  return false;
}

TsnetNode::TsnetNode(const LibTailscale* lib, int sd, std::shared_ptr<HostLog> log)
    : lib_(lib), sd_(sd), log_(std::move(log)) {}

TsnetNode::~TsnetNode() {
  close();
}

void TsnetNode::close() noexcept {
  std::lock_guard lock(close_mu_);
  if (closed_.exchange(true)) return;
  const int rc = lib_->close(sd_);
  log_->log(sdk::LogLevel::kInfo,
            "tailscale: node closed" + (rc == 0 ? std::string() : " rc=" + std::to_string(rc)));
}

sdk::Result<std::shared_ptr<TsnetNode>> TsnetNode::start(const LibTailscale* lib,
                                                         const NodeConfig& cfg,
                                                         std::shared_ptr<HostLog> log) {
  const int sd = lib->new_server();
  if (sd < 0) return Status::error(Errc::kUnavailable, "tailscale: tailscale_new failed");
  // From here on the node's destructor releases the server on every early return.
  std::shared_ptr<TsnetNode> node(new TsnetNode(lib, sd, log));
  node->state_dir_ = cfg.state_dir;
  auto failed = [&](const std::string& step) {
    return Status::error(Errc::kUnavailable, "tailscale: " + step + " failed: " +
                                                 redact_secrets(lib->last_error(sd), cfg.auth_key));
  };
  if (lib->set_dir(sd, cfg.state_dir.c_str()) != 0) return failed("tailscale_set_dir");
  if (lib->set_hostname(sd, cfg.hostname.c_str()) != 0) return failed("tailscale_set_hostname");
  if (!cfg.control_url.empty() && lib->set_control_url(sd, cfg.control_url.c_str()) != 0)
    return failed("tailscale_set_control_url");
  if (!cfg.auth_key.empty() && lib->set_authkey(sd, cfg.auth_key.c_str()) != 0)
    return failed("tailscale_set_authkey");

  // Library logs -> host log at debug. Without the pump, discard them (-1).
  int fds[2] = {-1, -1};
  bool logging = false;
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    if (LogPump::instance().add(fds[0], log)) {
      logging = lib->set_logfd(sd, fds[1]) == 0;
      if (!logging) ::close(fds[1]);  // the pump sees end-of-file and closes its end
    } else {
      ::close(fds[0]);
      ::close(fds[1]);
    }
  }
  if (!logging) lib->set_logfd(sd, -1);

  // tailscale_up blocks until the node is usable, which without a valid key or state means an
  // interactive login that never completes here. Wait on another thread; on timeout,
  // tailscale_close cancels it (libtailscale's documented way to cancel an in-progress up).
  auto up = std::make_shared<Pending>();
  try {
    std::thread([up, lib, sd] {
      const int rc = lib->up(sd);
      std::string error = rc != 0 ? lib->last_error(sd) : std::string();
      std::lock_guard lock(up->mu);
      up->rc = rc;
      up->error = std::move(error);
      up->done = true;
      up->cv.notify_all();
    }).detach();
  } catch (const std::exception& e) {
    return Status::error(Errc::kInternal,
                         std::string("tailscale: cannot start a thread: ") + e.what());
  }
  if (!up->wait(cfg.up_timeout)) {
    node->close();  // cancels tailscale_up
    up->wait(std::chrono::seconds(5));
    return Status::error(
        Errc::kTimeout,
        "tailscale: the node did not come up within " + duration_text(cfg.up_timeout) +
            " (tsnet waits for an interactive login when it has neither a valid auth key nor "
            "a usable state in " +
            cfg.state_dir + "; pass --auth-key, or check THRUM_TS_CONTROL_URL)");
  }
  if (up->rc != 0) {
    std::string why = redact_secrets(up->error, cfg.auth_key);
    if (why.empty()) why = "tailscale_up returned " + std::to_string(up->rc);
    const bool bad_key =
        why.find("invalid key") != std::string::npos || why.find("auth key") != std::string::npos;
    return Status::error(bad_key ? Errc::kInvalidArgument : Errc::kUnavailable,
                         "tailscale: cannot bring the node up: " + why);
  }

  char ips[512] = {};
  if (const int rc = lib->getips(sd, ips, sizeof ips); rc != 0)
    return Status::error(Errc::kUnavailable,
                         "tailscale: tailscale_getips failed (" + errno_text(rc) + ")");
  ips[sizeof ips - 1] = '\0';
  node->ipv4_ = first_ipv4(ips);
  if (node->ipv4_.empty())
    return Status::error(Errc::kUnavailable,
                         "tailscale: the node is up but has no IPv4 address "
                         "(tailscale_getips: \"" +
                             std::string(ips) + "\")");
  if (!is_tailnet_ipv4(node->ipv4_))
    log->log(sdk::LogLevel::kWarn, "tailscale: the node's address " + node->ipv4_ +
                                       " is outside 100.64.0.0/10; peers may refuse it");
  log->log(sdk::LogLevel::kInfo,
           "tailscale: node up hostname=" + cfg.hostname + " ip=" + node->ipv4_ + " library=" +
               lib->path + (cfg.control_url.empty() ? "" : " control=" + cfg.control_url));
  return node;
}

sdk::Result<std::unique_ptr<sdk::IListener>> TsnetNode::listen(std::uint16_t port) {
  if (!running()) return Status::error(Errc::kUnavailable, "tailscale node is not running");
  // tsnet listens on exactly the port it is given; pick one when asked for "any".
  std::vector<std::uint16_t> ports;
  if (port != 0) {
    ports.push_back(port);
  } else {
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(20000, 60999);
    for (int i = 0; i < 16; ++i) ports.push_back(static_cast<std::uint16_t>(pick(rng)));
  }
  std::string last;
  for (const std::uint16_t p : ports) {
    int ld = -1;
    const std::string addr = ":" + std::to_string(p);
    if (lib_->listen(sd_, "tcp", addr.c_str(), &ld) == 0 && ld >= 0) {
      set_cloexec(ld);
      return std::unique_ptr<sdk::IListener>(
          std::make_unique<TsnetListener>(lib_, ld, sdk::Endpoint{ipv4_, p}, log_));
    }
    last = lib_->last_error(sd_);
    if (!running()) break;
  }
  return Status::error(Errc::kUnavailable,
                       "tailscale: cannot listen on " + ipv4_ + ":" +
                           (port == 0 ? std::string("<any port>") : std::to_string(port)) + ": " +
                           (last.empty() ? "tailscale_listen failed" : last));
}

sdk::Result<int> TsnetNode::dial(const sdk::Endpoint& to, std::chrono::milliseconds timeout) {
  if (!running()) return Status::error(Errc::kUnavailable, "tailscale node is not running");
  const std::string addr = to.ip + ":" + std::to_string(to.port);
  auto pending = std::make_shared<Pending>();
  try {
    std::thread([pending, lib = lib_, sd = sd_, addr] {
      int conn = -1;
      const int rc = lib->dial(sd, "tcp", addr.c_str(), &conn);
      std::string error = rc != 0 ? lib->last_error(sd) : std::string();
      std::lock_guard lock(pending->mu);
      if (pending->abandoned) {  // the caller timed out: nobody will take the connection
        if (rc == 0 && conn >= 0) ::close(conn);
        return;
      }
      pending->rc = rc;
      pending->fd = rc == 0 ? conn : -1;
      pending->error = std::move(error);
      pending->done = true;
      pending->cv.notify_all();
    }).detach();
  } catch (const std::exception& e) {
    return Status::error(Errc::kInternal,
                         std::string("tailscale: cannot start a thread: ") + e.what());
  }
  if (!pending->wait(timeout))
    return Status::error(Errc::kTimeout, "tailscale: dial " + addr + " timed out after " +
                                             std::to_string(timeout.count()) + " ms");
  if (pending->rc != 0 || pending->fd < 0) {
    if (!running()) return Status::error(Errc::kUnavailable, "tailscale node is not running");
    return Status::error(Errc::kUnavailable,
                         "tailscale: dial " + addr + ": " +
                             (pending->error.empty() ? "tailscale_dial failed" : pending->error));
  }
  set_cloexec(pending->fd);
  return pending->fd;
}

}  // namespace thrum::transport::tailscale
