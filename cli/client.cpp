#include "client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace thrum::cli {

using json = nlohmann::json;

RpcClient::RpcClient(const std::filesystem::path& socket_path) : path_(socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket_path.string();
  if (p.size() >= sizeof addr.sun_path)
    throw ConnectError("socket path too long: " + p + " (move the repo to a shorter path)");
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw ConnectError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw ConnectError("the daemon is not running (no answer on " + p + ": " + std::strerror(e) +
                       "); start it with: thrum daemon start");
  }
}

RpcClient::~RpcClient() {
  if (fd_ >= 0) ::close(fd_);
}

json RpcClient::call(const std::string& method, const json& params,
                     std::chrono::milliseconds timeout) {
  const int id = next_id_++;
  json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
  std::string line = req.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  std::string_view out = line;
  while (!out.empty()) {
    ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ConnectError(std::string("lost the connection to the daemon: ") + std::strerror(errno));
    }
    out.remove_prefix(static_cast<size_t>(n));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string resp_line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      json resp = json::parse(resp_line, nullptr, false);
      if (resp.is_discarded() || !resp.is_object())
        throw ConnectError("the daemon sent an unreadable response");
      if (auto e = resp.find("error"); e != resp.end() && e->is_object()) {
        std::string msg = e->value("message", "unknown error");
        throw RpcError(e->value("code", -32000), msg);
      }
      // Moved out, not copied: a 1,000-agent team is a few hundred KB of JSON.
      if (auto r = resp.find("result"); r != resp.end()) return std::move(*r);
      return json();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw ConnectError("the daemon did not answer " + method + " in time (check " +
                         (path_.parent_path() / "daemon.log").string() + ")");
    pollfd pfd{fd_, POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
    if (pr < 0) {
      if (errno == EINTR) continue;
      throw ConnectError(std::string("poll: ") + std::strerror(errno));
    }
    if (pr == 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ConnectError(std::string("lost the connection to the daemon: ") + std::strerror(errno));
    }
    if (n == 0) throw ConnectError("the daemon closed the connection (is it shutting down?)");
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

bool RpcClient::probe(const std::filesystem::path& socket_path) {
  try {
    RpcClient c(socket_path);
    c.call("health", json::object(), std::chrono::seconds(2));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace thrum::cli
