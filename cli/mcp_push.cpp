#include "mcp_push.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "client.hpp"
#include "mcp_stdio.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::cli::mcp {

using json = nlohmann::json;

namespace {
/// A message notification is one message (its body at most the daemon's body limit).
constexpr size_t kMaxLine = 16u << 20;

int connect_unix(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = path.string();
  if (p.size() >= sizeof addr.sun_path) throw ConnectError("socket path too long: " + p);
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ConnectError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    throw ConnectError("the daemon is not running (no answer on " + p + ": " + std::strerror(e) +
                       "); start it with: thrum daemon start");
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}
}  // namespace

std::optional<json> received_message(std::string_view line) {
  auto doc = core::parse_bounded(line);
  if (!doc || !doc->is_object()) return std::nullopt;
  auto m = doc->find("method");
  if (m == doc->end() || !m->is_string() || m->get<std::string>() != "message.received")
    return std::nullopt;
  auto p = doc->find("params");
  if (p == doc->end() || !p->is_object()) return std::nullopt;
  auto msg = p->find("message");
  if (msg == p->end() || !msg->is_object()) return std::nullopt;
  return *msg;
}

int PushListener::subscribe() {
  const int fd = connect_unix(socket_);
  json req = {{"jsonrpc", "2.0"},
              {"id", 1},
              {"method", "message.subscribe"},
              {"params", {{"caller_agent_id", agent_}}}};
  if (!send_all(fd, core::dump_compact(req) + "\n")) {
    ::close(fd);
    throw ConnectError("lost the connection to the daemon while subscribing");
  }
  // The answer comes first; read it byte-wise up to its newline so that nothing after it
  // (a notification) is consumed here.
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, 10'000);
    if (pr < 0 && errno == EINTR) continue;
    char c = 0;
    const ssize_t n = pr > 0 ? ::recv(fd, &c, 1, 0) : 0;
    if (n <= 0) {
      ::close(fd);
      throw ConnectError("the daemon did not answer message.subscribe");
    }
    if (c == '\n') break;
    line.push_back(c);
    if (line.size() > 65536) {
      ::close(fd);
      throw ConnectError("the daemon sent an unreadable answer to message.subscribe");
    }
  }
  auto doc = core::parse_bounded(line);
  if (!doc || !doc->is_object()) {
    ::close(fd);
    throw ConnectError("the daemon sent an unreadable answer to message.subscribe");
  }
  if (auto e = doc->find("error"); e != doc->end() && e->is_object()) {
    ::close(fd);
    auto msg = e->find("message");
    throw RpcError(-32000, msg != e->end() && msg->is_string() ? msg->get<std::string>()
                                                               : "message.subscribe failed");
  }
  return fd;
}

void PushListener::start() {
  const int fd = subscribe();
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd_ = fd;
  }
  thread_ = std::thread([this, fd] { run(fd); });
}

void PushListener::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PushListener::run(int fd) {
  for (;;) {
    const bool go_on = listen(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ::close(fd);
      fd_ = -1;
      if (!go_on || stopping_) return;
    }
    std::cerr << "thrum mcp serve: lost the daemon's push connection; reconnecting\n";
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
      }
      try {
        fd = subscribe();
      } catch (const std::exception&) {
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      fd_ = fd;
      break;
    }
    std::cerr << "thrum mcp serve: push connection to the daemon restored\n";
  }
}

bool PushListener::listen(int fd) {
  LineSplitter lines(kMaxLine);
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::lock_guard<std::mutex> lock(mu_);
      return !stopping_;
    }
    for (auto& l : lines.feed(std::string_view(chunk, static_cast<size_t>(n)))) {
      if (l.too_long) continue;
      if (auto m = received_message(l.text)) on_message_(*m);
    }
  }
}

}  // namespace thrum::cli::mcp
