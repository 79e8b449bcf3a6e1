#include "peers/plugin_listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <spdlog/spdlog.h>

#include "peers/tls.hpp"

namespace thrum::core {

using namespace peerwire;

namespace {

constexpr auto kRequestDeadline = std::chrono::seconds(10);

std::string remote_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  return ss.ss_family == AF_UNIX ? "unix" : "?";
}

/// One accepted connection until its upgrade request has been read.
struct Pending {
  Pending(AnyStream s, asio::any_io_executor ex) : stream(std::move(s)), timer(ex) {}
  AnyStream stream;
  beast::flat_buffer buf;
  http::request_parser<http::string_body> parser;
  asio::steady_timer timer;
};

}  // namespace

struct PluginListener::Impl : std::enable_shared_from_this<PluginListener::Impl> {
  Impl(asio::io_context& c, std::string t, ITransportHandle k, std::unique_ptr<sdk::IListener> l,
       std::shared_ptr<asio::ssl::context> x, OnUpgrade u)
      : ioc(c),
        transport(std::move(t)),
        keep_alive(std::move(k)),
        listener(std::move(l)),
        tls(std::move(x)),
        on_upgrade(std::move(u)),
        watch(c) {}

  asio::io_context& ioc;
  std::string transport;
  ITransportHandle keep_alive;  // the plugin's code must outlive its listener
  std::unique_ptr<sdk::IListener> listener;
  std::shared_ptr<asio::ssl::context> tls;
  OnUpgrade on_upgrade;
  asio::posix::stream_descriptor watch;
  bool closed = false;

  void arm() {
    if (closed) return;
    std::weak_ptr<Impl> weak = shared_from_this();
    watch.async_wait(asio::posix::stream_descriptor::wait_read,
                     [weak](boost::system::error_code ec) {
                       auto self = weak.lock();
                       if (!self || self->closed || ec == asio::error::operation_aborted) return;
                       if (ec) {
                         spdlog::error("peer listener stopped transport={} error=\"{}\"",
                                       self->transport, ec.message());
                         return;
                       }
                       self->drain();
                       self->arm();
                     });
  }

  void drain() {
    for (int i = 0; i < 64 && !closed; ++i) {
      auto r = listener->accept();
      if (!r) {
        if (r.status().code != static_cast<int>(sdk::Errc::kUnavailable))
          spdlog::warn("peer listener accept failed transport={} error=\"{}\"", transport,
                       r.status().message);
        return;
      }
      serve(r.value());
    }
  }

  void serve(int fd) {
    const std::string remote = remote_of(fd);
    Socket sock(ioc);
    try {
      sock = adopt_fd(ioc, fd);
    } catch (const std::exception& e) {
      spdlog::warn("peer connection dropped transport={} remote={} error=\"{}\"", transport, remote,
                   e.what());
      return;
    }
    if (!tls) {
      read_request(AnyStream(std::move(sock)), remote, "");
      return;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    tls::handshake(std::move(sock), tls, true, kRequestDeadline,
                   [weak, remote](std::unique_ptr<TlsStream> s, std::string fp, std::string error) {
                     auto self = weak.lock();
                     if (!self || self->closed) return;
                     if (!s) {
                       // Plaintext clients land here too: there is no fallback.
                       spdlog::warn("peer connection refused transport={} remote={} reason=\"{}\"",
                                    self->transport, remote, error);
                       return;
                     }
                     self->read_request(AnyStream(std::move(*s)), remote, fp);
                   });
  }

  void read_request(AnyStream stream, const std::string& remote, const std::string& fp) {
    auto p = std::make_shared<Pending>(std::move(stream), ioc.get_executor());
    p->parser.body_limit(64 * 1024);
    p->parser.header_limit(16 * 1024);
    p->timer.expires_after(kRequestDeadline);
    p->timer.async_wait([p](boost::system::error_code ec) {
      if (ec) return;
      std::visit(
          [](auto& s) {
            beast::error_code ignored;
            beast::get_lowest_layer(s).close(ignored);
          },
          p->stream);
    });
    std::weak_ptr<Impl> weak = shared_from_this();
    std::visit(
        [&](auto& s) {
          http::async_read(s, p->buf, p->parser,
                           [weak, p, remote, fp](beast::error_code ec, std::size_t) {
                             p->timer.cancel();
                             auto self = weak.lock();
                             if (!self || self->closed || ec) return;
                             self->dispatch(p, remote, fp);
                           });
        },
        p->stream);
  }

  void dispatch(const std::shared_ptr<Pending>& p, const std::string& remote,
                const std::string& fp) {
    auto req = p->parser.release();
    const bool is_peer = req.target() == "/peer" && websocket::is_upgrade(req);
    auto up = std::make_unique<PeerUpgrade>(
        PeerUpgrade{std::move(p->stream), std::move(req), remote, transport, tls != nullptr, fp});
    if (!is_peer) {
      reject_upgrade(std::move(up), http::status::not_found,
                     "this port serves only Thrum peer links (/peer)");
      return;
    }
    on_upgrade(std::move(up));
  }
};

PluginListener::PluginListener(asio::io_context& ioc, std::string transport,
                               ITransportHandle keep_alive,
                               std::unique_ptr<sdk::IListener> listener,
                               std::shared_ptr<asio::ssl::context> tls, OnUpgrade on_upgrade)
    : impl_(std::make_shared<Impl>(ioc, std::move(transport), std::move(keep_alive),
                                   std::move(listener), std::move(tls), std::move(on_upgrade))) {}

PluginListener::~PluginListener() {
  close();
}

void PluginListener::start() {
  int fd = ::dup(impl_->listener->fd());
  if (fd < 0)
    throw boost::system::system_error(errno, boost::system::system_category(),
                                      "watch peer listener");
  impl_->watch.assign(fd);
  impl_->arm();
}

void PluginListener::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  boost::system::error_code ec;
  impl_->watch.close(ec);
  impl_->listener->close();
}

sdk::Endpoint PluginListener::local_endpoint() const {
  return impl_->listener->local_endpoint();
}

}  // namespace thrum::core
