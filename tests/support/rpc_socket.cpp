#include "support/rpc_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace thrum::test {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

// -- UnixRpcClient ----------------------------------------------------------------------------

UnixRpcClient::UnixRpcClient(const std::filesystem::path& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket_path.string();
  if (p.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + p);
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect " + p + ": " + std::strerror(e));
  }
}

UnixRpcClient::~UnixRpcClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool UnixRpcClient::send_raw(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::string> UnixRpcClient::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{fd_, POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

json UnixRpcClient::roundtrip(std::string_view text, std::chrono::milliseconds timeout) {
  std::string line(text);
  line += '\n';
  if (!send_raw(line)) return json(json::value_t::discarded);
  auto resp = read_line(timeout);
  if (!resp) return json(json::value_t::discarded);
  return json::parse(*resp, nullptr, false);
}

json UnixRpcClient::call(const std::string& method, const json& params,
                         std::chrono::milliseconds timeout) {
  json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", params}};
  return roundtrip(req.dump(), timeout);
}

bool UnixRpcClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

// -- WsRpcClient ------------------------------------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct WsRpcClient::Impl {
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buf;
  std::deque<std::string> frames;  // received, not yet handed out
  bool closed = false;

  // One read is always outstanding; frames queue up until a caller asks for them.
  void start_read() {
    ws.async_read(buf, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        closed = true;
        return;
      }
      frames.push_back(beast::buffers_to_string(buf.data()));
      buf.consume(buf.size());
      start_read();
    });
  }

  template <class Pred>
  bool run_until(Pred pred, steady::time_point deadline) {
    while (!pred()) {
      if (steady::now() >= deadline) return pred();
      if (ioc.stopped()) ioc.restart();
      if (ioc.run_one_until(deadline) == 0 && ioc.stopped() && closed) return pred();
    }
    return true;
  }
};

WsAuth ws_auth(const std::filesystem::path& var, const std::string& agent) {
  WsAuth a;
  a.agent = agent;
  if (FILE* f = std::fopen((var / "ws.secret").c_str(), "r")) {
    char buf[256] = {};
    if (std::fgets(buf, sizeof buf, f)) a.secret = buf;
    std::fclose(f);
  }
  while (!a.secret.empty() && (a.secret.back() == '\n' || a.secret.back() == '\r'))
    a.secret.pop_back();
  return a;
}

WsRpcClient::WsRpcClient(unsigned short port, const WsAuth& auth, const std::string& target)
    : impl_(std::make_unique<Impl>()) {
  tcp::endpoint ep(asio::ip::make_address_v4("127.0.0.1"), port);
  beast::get_lowest_layer(impl_->ws).connect(ep);
  std::map<std::string, std::string> headers;
  if (!auth.secret.empty()) headers["Thrum-Client-Secret"] = auth.secret;
  if (!auth.agent.empty()) headers["Thrum-Agent"] = auth.agent;
  for (const auto& [k, v] : auth.headers) headers[k] = v;
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers)
      if (!v.empty()) req.set(k, v);
  }));
  impl_->ws.handshake("127.0.0.1:" + std::to_string(port), target);
  impl_->ws.text(true);
  impl_->start_read();
}

WsRpcClient::~WsRpcClient() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

bool WsRpcClient::is_open() const {
  return !impl_->closed && impl_->ws.is_open();
}

bool WsRpcClient::send_text(const std::string& text) {
  if (impl_->closed) return false;
  bool done = false;
  beast::error_code result;
  auto data = std::make_shared<std::string>(text);
  impl_->ws.async_write(asio::buffer(*data),
                        [&done, &result, data](beast::error_code ec, std::size_t) {
                          done = true;
                          result = ec;
                        });
  impl_->run_until([&] { return done; }, steady::now() + std::chrono::seconds(10));
  return done && !result;
}

std::optional<std::string> WsRpcClient::next_text(std::chrono::milliseconds timeout) {
  impl_->run_until([&] { return !impl_->frames.empty() || impl_->closed; },
                   steady::now() + timeout);
  if (impl_->frames.empty()) return std::nullopt;
  std::string f = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return f;
}

json WsRpcClient::roundtrip(const std::string& text, std::chrono::milliseconds timeout) {
  if (!send_text(text)) return json(json::value_t::discarded);
  const auto deadline = steady::now() + timeout;
  // Look through queued frames first, then wait for more; notifications stay queued.
  size_t checked = 0;
  for (;;) {
    for (; checked < impl_->frames.size(); ++checked) {
      json doc = json::parse(impl_->frames[checked], nullptr, false);
      if (doc.is_object() && (doc.contains("result") || doc.contains("error"))) {
        impl_->frames.erase(impl_->frames.begin() + static_cast<std::ptrdiff_t>(checked));
        return doc;
      }
    }
    const size_t have = impl_->frames.size();
    impl_->run_until([&] { return impl_->frames.size() > have || impl_->closed; }, deadline);
    if (impl_->frames.size() == have) return json(json::value_t::discarded);
  }
}

json WsRpcClient::call(const std::string& method, const json& params,
                       std::chrono::milliseconds timeout) {
  json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", params}};
  return roundtrip(req.dump(), timeout);
}

std::optional<json> WsRpcClient::next_notification(const std::string& method,
                                                   std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    auto text = next_text(std::max(left, std::chrono::milliseconds(0)));
    if (!text) return std::nullopt;
    json doc = json::parse(*text, nullptr, false);
    if (doc.is_object() && doc.value("method", "") == method && !doc.contains("id")) return doc;
  }
}

}  // namespace thrum::test
