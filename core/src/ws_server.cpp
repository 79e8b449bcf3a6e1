#include "thrum/core/ws_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <set>
#include <system_error>

#include <spdlog/spdlog.h>

#include "peers/peer_link.hpp"
#include "thrum/core/json_rpc.hpp"

namespace thrum::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

bool loopback_origin(const std::string& origin) {
  if (origin.empty()) return true;
  for (const char* prefix : {"http://localhost:", "http://127.0.0.1:", "ws://localhost:",
                             "ws://127.0.0.1:", "http://localhost", "http://127.0.0.1"}) {
    if (origin.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

class WsSession;
struct Registry {
  std::set<std::shared_ptr<WsSession>> sessions;
  std::function<void(std::unique_ptr<PeerUpgrade>)> peer_handler;
};

/// One `/ws` client.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket sock, const rpc::Dispatcher& d, std::weak_ptr<Registry> reg)
      : ws_(std::move(sock)), dispatcher_(d), registry_(std::move(reg)) {}

  void start(http::request<http::string_body> req) {
    ws_.read_message_max(WsServer::kMaxFrameBytes);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    auto self = shared_from_this();
    ws_.async_accept(req, [self](beast::error_code ec) {
      if (ec) return self->close();
      self->read();
    });
  }

  void send(std::string text) {
    if (closed_) return;
    if (queue_.size() >= WsServer::kMaxQueuedFrames) {
      spdlog::warn("ws client is not reading; disconnecting queued={}", queue_.size());
      close();
      return;
    }
    queue_.push_back(std::move(text));
    if (queue_.size() == 1) write_front();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (auto r = registry_.lock()) r->sessions.erase(shared_from_this());
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close();
  }

 private:
  void read() {
    auto self = shared_from_this();
    ws_.async_read(buf_, [self](beast::error_code ec, std::size_t) {
      if (ec == websocket::error::message_too_big) {
        spdlog::warn("ws frame too large; closing limit_bytes={}", WsServer::kMaxFrameBytes);
        return self->close();
      }
      if (ec) return self->close();
      std::string text = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      std::weak_ptr<WsSession> weak = self;
      rpc::CallContext ctx;
      ctx.channel = rpc::CallContext::Channel::kWebSocket;
      ctx.alive = [weak] {
        auto s = weak.lock();
        return s && !s->closed_;
      };
      self->dispatcher_.handle(text, ctx, [weak](std::string response) {
        if (auto s = weak.lock()) s->send(std::move(response));
      });
      self->read();
    });
  }

  void write_front() {
    auto self = shared_from_this();
    ws_.text(true);
    ws_.async_write(asio::buffer(queue_.front()), [self](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->write_front();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  const rpc::Dispatcher& dispatcher_;
  std::weak_ptr<Registry> registry_;
  beast::flat_buffer buf_;
  std::deque<std::string> queue_;
  bool closed_ = false;
};

/// Reads the HTTP request of a new connection and routes it.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket sock, const rpc::Dispatcher& d, std::shared_ptr<Registry> reg)
      : stream_(std::move(sock)), dispatcher_(d), registry_(std::move(reg)) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    parser_.body_limit(64 * 1024);
    auto self = shared_from_this();
    http::async_read(stream_, buf_, parser_, [self](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->route();
    });
  }

 private:
  void route() {
    auto req = parser_.release();
    stream_.expires_never();
    std::string target(req.target());
    if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
    const std::string origin(req[http::field::origin]);
    if (!loopback_origin(origin)) {
      spdlog::warn("ws request refused: non-local origin");
      return respond(http::status::forbidden, "forbidden: only local origins may connect\n");
    }
    if (websocket::is_upgrade(req) && (target == "/ws" || target == "/")) {
      auto s = std::make_shared<WsSession>(stream_.release_socket(), dispatcher_, registry_);
      registry_->sessions.insert(s);
      s->start(std::move(req));
      return;
    }
    if (target == "/peer" && websocket::is_upgrade(req) && registry_->peer_handler) {
      beast::error_code ec;
      auto remote = stream_.socket().remote_endpoint(ec);
      std::string remote_text =
          ec ? "?" : remote.address().to_string() + ":" + std::to_string(remote.port());
      auto& ioc = static_cast<asio::io_context&>(stream_.get_executor().context());
      int fd = stream_.release_socket().release();
      auto up = std::make_unique<PeerUpgrade>(
          PeerUpgrade{adopt_fd(ioc, fd), std::move(req), remote_text, "", false, ""});
      registry_->peer_handler(std::move(up));
      return;
    }
    respond(http::status::not_found, "not found: WebSocket endpoints are /ws and /peer\n");
  }

  void respond(http::status st, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(st, 11);
    res->set(http::field::content_type, "text/plain");
    res->body() = std::move(body);
    res->prepare_payload();
    res->keep_alive(false);
    auto self = shared_from_this();
    http::async_write(stream_, *res, [self, res](beast::error_code, std::size_t) {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    });
  }

  beast::tcp_stream stream_;
  const rpc::Dispatcher& dispatcher_;
  std::shared_ptr<Registry> registry_;
  beast::flat_buffer buf_;
  http::request_parser<http::string_body> parser_;
};

}  // namespace

struct WsServer::Impl : std::enable_shared_from_this<WsServer::Impl> {
  Impl(asio::io_context& ioc, const rpc::Dispatcher& d)
      : ioc(ioc), dispatcher(d), acceptor(ioc), registry(std::make_shared<Registry>()) {}

  void accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](beast::error_code ec, tcp::socket sock) {
      if (self->stopped) return;
      if (!ec) {
        sock.set_option(tcp::no_delay(true), ec);
        std::make_shared<HttpSession>(std::move(sock), self->dispatcher, self->registry)->start();
      }
      self->accept();
    });
  }

  bool try_bind(unsigned short port, beast::error_code& ec) {
    tcp::endpoint ep(asio::ip::make_address_v4("127.0.0.1"), port);
    acceptor = tcp::acceptor(ioc);
    acceptor.open(ep.protocol(), ec);
    if (ec) return false;
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor.bind(ep, ec);
    if (ec) {
      beast::error_code ignored;
      acceptor.close(ignored);
      return false;
    }
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    return !ec;
  }

  asio::io_context& ioc;
  const rpc::Dispatcher& dispatcher;
  tcp::acceptor acceptor;
  std::shared_ptr<Registry> registry;
  bool stopped = false;
};

WsServer::WsServer(asio::io_context& ioc, const rpc::Dispatcher& dispatcher)
    : impl_(std::make_shared<Impl>(ioc, dispatcher)) {}

WsServer::~WsServer() {
  stop();
}

unsigned short WsServer::listen(std::optional<unsigned short> required,
                                std::optional<unsigned short> preferred) {
  beast::error_code ec;
  if (required) {
    if (!impl_->try_bind(*required, ec))
      throw std::system_error(ec, "cannot listen on 127.0.0.1:" + std::to_string(*required) +
                                      " (set daemon.ws_port to \"auto\" or free the port)");
  } else if (!preferred || !impl_->try_bind(*preferred, ec)) {
    if (!impl_->try_bind(0, ec)) throw std::system_error(ec, "cannot listen on 127.0.0.1");
  }
  impl_->accept();
  return impl_->acceptor.local_endpoint().port();
}

void WsServer::broadcast(const std::string& method, const nlohmann::json& params) {
  if (impl_->registry->sessions.empty()) return;
  const std::string text = rpc::make_notification(method, params);
  auto sessions = impl_->registry->sessions;  // send() may close and erase
  for (auto& s : sessions) s->send(text);
}

void WsServer::set_peer_handler(std::function<void(std::unique_ptr<PeerUpgrade>)> handler) {
  impl_->registry->peer_handler = std::move(handler);
}

std::size_t WsServer::client_count() const {
  return impl_->registry->sessions.size();
}

void WsServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  auto sessions = impl_->registry->sessions;
  for (auto& s : sessions) s->close();
  impl_->registry->sessions.clear();
}

}  // namespace thrum::core
