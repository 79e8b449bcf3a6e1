#include "thrum/core/ws_server.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <set>
#include <system_error>

#include <spdlog/spdlog.h>

#include "accept_guard.hpp"
#include "client_secret.hpp"
#include "peers/peer_link.hpp"
#include "thrum/core/json_rpc.hpp"

namespace thrum::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

/// Whether an Origin header names this daemon's own loopback server, compared exactly:
/// http or https, host localhost / 127.0.0.1 / [::1], and our port. (A prefix match would let
/// `http://localhost.evil.example` in.)
bool own_origin(std::string_view origin, unsigned short port) {
  const std::string suffix = ":" + std::to_string(port);
  for (std::string_view scheme : {"http://", "https://"}) {
    for (std::string_view host : {"localhost", "127.0.0.1", "[::1]"}) {
      std::string expected(scheme);
      expected += host;
      expected += suffix;
      if (origin == expected) return true;
    }
  }
  return false;
}

/// An agent name as SPEC §5 allows it: ^[a-z0-9_-]{1,64}$.
bool valid_agent_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

class WsSession;
struct Registry {
  std::set<std::shared_ptr<WsSession>> sessions;
  std::function<void(std::unique_ptr<PeerUpgrade>)> peer_handler;
  std::string client_secret;
  unsigned short port = 0;  ///< the bound port, for the Origin check
};
using SlotPtr = std::unique_ptr<ConnectionSlots::Slot>;

/// One `/ws` client.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket sock, const rpc::Dispatcher& d, std::weak_ptr<Registry> reg,
            std::string agent, SlotPtr slot)
      : ws_(std::move(sock)),
        dispatcher_(d),
        registry_(std::move(reg)),
        agent_(std::move(agent)),
        slot_(std::move(slot)) {}

  const std::string& agent() const { return agent_; }

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
      ctx.agent = self->agent_;
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
  std::string agent_;  ///< fixed at the upgrade
  SlotPtr slot_;
  beast::flat_buffer buf_;
  std::deque<std::string> queue_;
  bool closed_ = false;
};

/// Reads the HTTP request of a new connection and routes it.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket sock, const rpc::Dispatcher& d, std::shared_ptr<Registry> reg,
              SlotPtr slot)
      : stream_(std::move(sock)),
        dispatcher_(d),
        registry_(std::move(reg)),
        slot_(std::move(slot)) {}

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
    if (auto origin = req.find(http::field::origin);
        origin != req.end() && !own_origin(origin->value(), registry_->port)) {
      spdlog::warn("ws request refused: origin is not this daemon's loopback address");
      return respond(http::status::forbidden, "forbidden: the Origin must be http://localhost:" +
                                                  std::to_string(registry_->port) +
                                                  " (or 127.0.0.1, [::1])\n");
    }
    if (websocket::is_upgrade(req) && (target == "/ws" || target == "/"))
      return upgrade_client(req);
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

  /// A `/ws` client: it must prove it is the daemon's OS user and say which agent it acts as.
  void upgrade_client(http::request<http::string_body>& req) {
    auto secret = req.find(WsServer::kSecretHeader);
    if (secret == req.end() || !client_secret_matches(secret->value(), registry_->client_secret)) {
      spdlog::warn("ws upgrade refused: {} client secret", secret == req.end() ? "no" : "wrong");
      return respond(http::status::unauthorized,
                     std::string("unauthorized: send the header ") + WsServer::kSecretHeader +
                         " with the contents of .thrum/var/ws.secret\n");
    }
    auto agent_field = req.find(WsServer::kAgentHeader);
    std::string agent = agent_field == req.end() ? "" : std::string(agent_field->value());
    if (!valid_agent_name(agent)) {
      return respond(http::status::bad_request,
                     std::string("bad request: send the header ") + WsServer::kAgentHeader +
                         " naming the agent this connection acts as (^[a-z0-9_-]{1,64}$)\n");
    }
    auto s = std::make_shared<WsSession>(stream_.release_socket(), dispatcher_, registry_,
                                         std::move(agent), std::move(slot_));
    registry_->sessions.insert(s);
    s->start(std::move(req));
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
  SlotPtr slot_;
  beast::flat_buffer buf_;
  http::request_parser<http::string_body> parser_;
};

}  // namespace

struct WsServer::Impl : std::enable_shared_from_this<WsServer::Impl> {
  Impl(asio::io_context& ioc, const rpc::Dispatcher& d, Options opts)
      : ioc(ioc),
        dispatcher(d),
        acceptor(ioc),
        registry(std::make_shared<Registry>()),
        slots(std::make_shared<ConnectionSlots>(opts.max_connections)),
        guard("ws server"),
        pause(ioc) {
    registry->client_secret = std::move(opts.client_secret);
  }

  void accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](beast::error_code ec, tcp::socket sock) {
      if (self->stopped) return;
      if (ec == asio::error::operation_aborted) return;
      if (ec)
        return self->pause_then_accept(self->guard.on_error(ec, self->acceptor.native_handle()));
      self->guard.on_success();
      self->admit(std::move(sock));
      self->accept();
    });
  }

  void admit(tcp::socket sock) {
    auto slot = slots->try_take();
    if (!slot) {
      guard.on_refused(slots->cap());
      beast::error_code ignored;
      sock.close(ignored);
      return;
    }
    beast::error_code ec;
    sock.set_option(tcp::no_delay(true), ec);
    std::make_shared<HttpSession>(std::move(sock), dispatcher, registry, std::move(slot))->start();
  }

  void pause_then_accept(std::chrono::milliseconds d) {
    auto self = shared_from_this();
    pause.expires_after(d);
    pause.async_wait([self](beast::error_code ec) {
      if (!ec && !self->stopped) self->accept();
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
  std::shared_ptr<ConnectionSlots> slots;
  AcceptGuard guard;
  asio::steady_timer pause;
  bool stopped = false;
};

WsServer::WsServer(asio::io_context& ioc, const rpc::Dispatcher& dispatcher, Options options)
    : impl_(std::make_shared<Impl>(ioc, dispatcher, std::move(options))) {}

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
  impl_->registry->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  return impl_->registry->port;
}

void WsServer::notify_agents(const std::string& method, const nlohmann::json& params,
                             const std::vector<std::string>& agents) {
  std::vector<std::shared_ptr<WsSession>> targets;
  for (const auto& s : impl_->registry->sessions)
    if (std::find(agents.begin(), agents.end(), s->agent()) != agents.end()) targets.push_back(s);
  if (targets.empty()) return;
  const std::string text = rpc::make_notification(method, params);
  for (auto& s : targets) s->send(text);  // send() may close and erase: we hold our own list
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
  impl_->pause.cancel();
  auto sessions = impl_->registry->sessions;
  for (auto& s : sessions) s->close();
  impl_->registry->sessions.clear();
}

}  // namespace thrum::core
