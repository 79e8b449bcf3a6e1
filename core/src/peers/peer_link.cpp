#include "peers/peer_link.hpp"

#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "peers/protocol.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/core/incidents.hpp"

namespace thrum::core {

using namespace peerwire;
using Json = nlohmann::json;

Socket adopt_fd(asio::io_context& ioc, int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int family = AF_INET;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) family = ss.ss_family;
  int protocol = family == AF_UNIX ? 0 : IPPROTO_TCP;
  Socket s(ioc);
  boost::system::error_code ec;
  s.assign(asio::generic::stream_protocol(family, protocol), fd, ec);
  if (ec) {
    ::close(fd);
    throw boost::system::system_error(ec, "adopt socket");
  }
  return s;
}

int native_fd(AnyStream& s) {
  return std::visit([](auto& st) -> int { return beast::get_lowest_layer(st).native_handle(); }, s);
}

void reject_upgrade(std::unique_ptr<PeerUpgrade> up, http::status status, const std::string& body) {
  auto res = std::make_shared<http::response<http::string_body>>(status, 11);
  res->set(http::field::content_type, "text/plain");
  res->body() = body + "\n";
  res->prepare_payload();
  res->keep_alive(false);
  auto holder = std::shared_ptr<PeerUpgrade>(std::move(up));
  std::visit(
      [holder, res](auto& stream) {
        http::async_write(stream, *res, [holder, res](beast::error_code, std::size_t) {
          std::visit(
              [](auto& s) {
                beast::error_code ec;
                auto& sock = beast::get_lowest_layer(s);
                sock.shutdown(Socket::shutdown_both, ec);
                sock.close(ec);
              },
              holder->stream);
        });
      },
      holder->stream);
}

namespace {
using PlainWs = websocket::stream<Socket>;
using TlsWs = websocket::stream<TlsStream>;

std::variant<PlainWs, TlsWs> make_ws(AnyStream&& s) {
  if (auto* plain = std::get_if<Socket>(&s))
    return std::variant<PlainWs, TlsWs>(std::in_place_type<PlainWs>, std::move(*plain));
  return std::variant<PlainWs, TlsWs>(std::in_place_type<TlsWs>, std::move(std::get<TlsStream>(s)));
}
}  // namespace

PeerLink::PeerLink(AnyStream sock, Timing t)
    : ws_(make_ws(std::move(sock))),
      timing_(t),
      ping_timer_(visit([](auto& ws) { return ws.get_executor(); })) {
  visit([](auto& ws) { ws.read_message_max(peers::kMaxFrameBytes); });
  last_rx_ = std::chrono::steady_clock::now();
}

PeerLink::~PeerLink() = default;

void PeerLink::accept(std::unique_ptr<PeerUpgrade> up, Timing t, HeaderFields headers,
                      std::function<void(std::shared_ptr<PeerLink>)> on_open) {
  auto req = std::make_shared<Request>(std::move(up->request));
  auto link = std::make_shared<PeerLink>(std::move(up->stream), t);
  link->visit([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([headers](websocket::response_type& res) {
      for (const auto& [k, v] : headers) res.set(k, v);
    }));
  });
  link->visit([&](auto& ws) {
    ws.async_accept(*req, [link, req, on_open = std::move(on_open)](beast::error_code ec) {
      if (ec) {
        link->open_ = false;
        return;
      }
      on_open(link);
    });
  });
}

void PeerLink::connect(AnyStream sock, const std::string& host, HeaderFields headers, Timing t,
                       ConnectDone done) {
  auto link = std::make_shared<PeerLink>(std::move(sock), t);
  link->visit([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      req.set(http::field::user_agent, "thrum-peer/1");
      for (const auto& [k, v] : headers) req.set(k, v);
    }));
  });
  auto res = std::make_shared<websocket::response_type>();
  // The handshake must not hang on a peer that accepted TCP but never answers.
  auto timer = std::make_shared<asio::steady_timer>(link->ping_timer_.get_executor());
  timer->expires_after(std::chrono::seconds(10));
  timer->async_wait([link](beast::error_code ec) {
    if (!ec) link->close_socket();
  });
  link->visit([&](auto& ws) {
    ws.async_handshake(
        *res, host, "/peer", [link, res, timer, done = std::move(done)](beast::error_code ec) {
          timer->cancel();
          if (ec) {
            link->open_ = false;
            int status = static_cast<int>(res->result_int());
            std::string why = ec.message();
            if (status >= 400) {
              // The other side's reason, shown to our user: bounded, one plain line.
              why = res->body().substr(0, 512);
              for (char& c : why)
                if (static_cast<unsigned char>(c) < 0x20 && c != '\n') c = ' ';
              while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
              if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
              if (why.empty())
                why = "HTTP " + std::to_string(status) + " " + std::string(res->reason());
            }
            done(nullptr, why, status, {});
            return;
          }
          HeaderFields thrum;
          for (const auto& f : *res) {
            std::string name(f.name_string());
            if (name.size() > 6 && strncasecmp(name.c_str(), "thrum-", 6) == 0)
              thrum.emplace_back(std::move(name), std::string(f.value()));
          }
          done(link, "", 101, std::move(thrum));
        });
  });
}

void PeerLink::close_socket() {
  visit([](auto& ws) {
    beast::error_code ec;
    auto& sock = beast::get_lowest_layer(ws);
    sock.shutdown(Socket::shutdown_both, ec);
    sock.close(ec);
  });
}

void PeerLink::set_max_frame_bytes(std::size_t n) {
  visit([n](auto& ws) { ws.read_message_max(n); });
}

void PeerLink::set_handlers(RequestHandler on_request, CloseHandler on_close) {
  on_request_ = std::move(on_request);
  on_close_ = std::move(on_close);
  if (started_) return;
  started_ = true;
  visit([this](auto& ws) {
    ws.control_callback([this](websocket::frame_type, beast::string_view) {
      last_rx_ = std::chrono::steady_clock::now();
    });
  });
  read();
  arm_ping();
}

void PeerLink::arm_ping() {
  if (!open_) return;
  ping_timer_.expires_after(timing_.ping_interval);
  std::weak_ptr<PeerLink> weak = shared_from_this();
  ping_timer_.async_wait([weak](beast::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->open_) return;
    if (std::chrono::steady_clock::now() - self->last_rx_ > self->timing_.dead_after) {
      self->close("no traffic for " + std::to_string(self->timing_.dead_after.count()) + " ms");
      return;
    }
    self->visit([weak](auto& ws) {
      ws.async_ping({}, [weak](beast::error_code ec2) {
        auto s = weak.lock();
        if (ec2 && s) s->close("ping failed: " + ec2.message());
      });
    });
    self->arm_ping();
  });
}

void PeerLink::read() {
  auto self = shared_from_this();
  visit([&](auto& ws) {
    ws.async_read(buf_, [self](beast::error_code ec, std::size_t) {
      if (!self->open_) return;
      if (ec) {
        self->close(ec == websocket::error::message_too_big ? "frame over the size limit"
                    : ec == websocket::error::closed        ? "closed by peer"
                                                            : ec.message());
        return;
      }
      self->last_rx_ = std::chrono::steady_clock::now();
      std::string text = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      self->on_frame(std::move(text));
      // The time we spent on the frame is not the peer's silence: a big frame handled slowly
      // on a loaded machine must not make the next ping check call a live peer dead.
      self->last_rx_ = std::chrono::steady_clock::now();
      if (self->open_) self->read();
    });
  });
}

void PeerLink::on_frame(std::string text) {
  auto decoded = peers::decode_frame(text);
  text.clear();
  text.shrink_to_fit();
  if (!decoded) {
    // Never an answer to something we can identify: say so once, keep the link (a buggy peer
    // is still a peer); the pending call, if any, times out with the link.
    spdlog::debug("peer frame refused error=\"{}\"", decoded.error());
    send(rpc::make_response(nullptr, rpc::Error{rpc::kInvalidRequest, decoded.error(), nullptr},
                            true));
    return;
  }
  peers::Frame& fr = decoded.value();
  if (fr.kind == peers::Frame::Kind::kResponse) {
    auto it = pending_.find(fr.id);
    if (it == pending_.end()) return;
    auto reply = std::move(it->second);
    pending_.erase(it);
    // The reply runs the caller's decoding of an answer the other side wrote: whatever it
    // throws must cost this link, never the daemon.
    try {
      if (fr.error)
        reply(std::move(*fr.error));
      else
        reply(rpc::Outcome(std::move(fr.result)));
    } catch (const std::exception& e) {
      count_incident(Incident::kPeerLinkException);
      spdlog::error("peer answer handling failed error=\"{}\"; closing the link", e.what());
      close("internal error handling an answer");
    }
    return;
  }
  const bool has_id = fr.kind == peers::Frame::Kind::kRequest;
  const int64_t id = fr.id;
  std::weak_ptr<PeerLink> weak = shared_from_this();
  rpc::Respond respond = [weak, id, has_id](rpc::Outcome o) {
    if (!has_id) return;
    if (auto s = weak.lock()) s->send(rpc::make_response(id, o, true));
  };
  try {
    on_request_(fr.method, fr.params, std::move(respond));
  } catch (const rpc::Failure& f) {
    if (has_id) send(rpc::make_response(id, rpc::Error{f.code, f.what(), nullptr}, true));
  } catch (const std::exception& e) {
    count_incident(Incident::kPeerLinkException);
    spdlog::error("peer request failed method={} error=\"{}\"; closing the link", fr.method,
                  e.what());
    if (has_id)
      send(
          rpc::make_response(id, rpc::Error{rpc::kInternalError, "internal error", nullptr}, true));
    close("internal error handling a request");
  }
}

void PeerLink::call(const std::string& method, const Json& params, Reply reply) {
  call_text(method, dump_compact(params), std::move(reply));
}

void PeerLink::call_text(const std::string& method, const std::string& params, Reply reply) {
  if (!open_) {
    reply(rpc::Error{kClosedCode, "link closed", nullptr});
    return;
  }
  const int64_t id = next_id_++;
  pending_.emplace(id, std::move(reply));
  // Same bytes as dumping {"id", "jsonrpc", "method", "params"}, without copying params (a
  // peer.deliver frame carries up to 256 messages).
  std::string text = "{\"id\":" + std::to_string(id) + ",\"jsonrpc\":\"2.0\",\"method\":";
  append_json_string(text, method);
  text += ",\"params\":";
  text += params;
  text += '}';
  send(std::move(text));
}

void PeerLink::notify(const std::string& method, const Json& params) {
  if (!open_) return;
  send(rpc::make_notification(method, params));
}

void PeerLink::send(std::string text) {
  if (!open_) return;
  queue_.push_back(std::move(text));
  if (queue_.size() == 1) write_front();
}

void PeerLink::write_front() {
  auto self = shared_from_this();
  visit([&](auto& ws) {
    ws.text(true);
    ws.async_write(asio::buffer(queue_.front()), [self](beast::error_code ec, std::size_t) {
      if (!self->open_) return;
      if (ec) {
        self->close("write failed: " + ec.message());
        return;
      }
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->write_front();
    });
  });
}

void PeerLink::close(const std::string& reason) {
  if (!open_) return;
  open_ = false;
  ping_timer_.cancel();
  close_socket();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, reply] : pending)
    reply(rpc::Error{kClosedCode, "link closed: " + reason, nullptr});
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(reason);
  }
}

}  // namespace thrum::core
