#include "support/fake_peer.hpp"

#include <poll.h>
#include <strings.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "peers/channel_binding.hpp"
#include "peers/link_auth.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

struct FakePeerConn::Impl {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  std::deque<std::string> out;
  bool closed = false;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  void start() {
    ws.read_message_max(64u << 20);
    work.emplace(ioc.get_executor());
    read_next();
    thread = std::thread([this] { ioc.run(); });
  }
  void read_next() {
    ws.async_read(buf, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        std::lock_guard lk(mu);
        closed = true;
        cv.notify_all();
        return;
      }
      {
        std::lock_guard lk(mu);
        frames.push_back(beast::buffers_to_string(buf.data()));
        cv.notify_all();
      }
      buf.consume(buf.size());
      read_next();
    });
  }
  void write_front() {
    ws.text(true);
    ws.async_write(asio::buffer(out.front()), [this](beast::error_code ec, std::size_t) {
      out.pop_front();
      if (ec) return;
      if (!out.empty()) write_front();
    });
  }
  void stop() {
    asio::post(ioc, [this] {
      beast::error_code ec;
      ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
      ws.next_layer().close(ec);
      work.reset();
    });
    if (thread.joinable()) thread.join();
  }
};

FakePeerConn::FakePeerConn(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->start();
}

FakePeerConn::~FakePeerConn() {
  impl_->stop();
}

void FakePeerConn::send(const std::string& text) {
  asio::post(impl_->ioc, [i = impl_.get(), text] {
    i->out.push_back(text);
    if (i->out.size() == 1) i->write_front();
  });
}

int64_t FakePeerConn::call(const std::string& method, const json& params) {
  const int64_t id = next_id_++;
  send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump());
  return id;
}

std::optional<std::string> FakePeerConn::read(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  impl_->cv.wait_for(lk, timeout, [&] { return !impl_->frames.empty() || impl_->closed; });
  if (impl_->frames.empty()) return std::nullopt;
  auto f = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return f;
}

json FakePeerConn::read_until(const std::function<bool(const json&)>& pred,
                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto f = read(left);
    if (!f) return nullptr;
    auto doc = json::parse(*f, nullptr, false);
    if (!doc.is_discarded() && pred(doc)) return doc;
  }
  return nullptr;
}

json FakePeerConn::answer(int64_t id, std::chrono::milliseconds timeout) {
  return read_until(
      [id](const json& d) {
        return d.is_object() && d.value("id", json()) == json(id) && !d.contains("method");
      },
      timeout);
}

bool FakePeerConn::closed() const {
  std::lock_guard lk(impl_->mu);
  return impl_->closed;
}

bool FakePeerConn::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  return impl_->cv.wait_for(lk, timeout, [&] { return impl_->closed; });
}

void FakePeerConn::close() {
  asio::post(impl_->ioc, [i = impl_.get()] {
    beast::error_code ec;
    i->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    i->ws.next_layer().close(ec);
  });
  wait_closed(std::chrono::seconds(2));
}

std::string FakePeerConn::endpoint_binding(bool initiator) const {
  return core::peers::endpoint_binding(const_cast<Impl&>(*impl_).ws.next_layer().native_handle(),
                                       initiator);
}

DialResult fake_dial(unsigned short port,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
  DialResult r;
  auto impl = std::make_unique<FakePeerConn::Impl>();
  beast::error_code ec;
  impl->ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    r.body = ec.message();
    return r;
  }
  impl->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  impl->ws.handshake(res, "127.0.0.1:" + std::to_string(port), "/peer", ec);
  r.http_status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    if (name.size() > 6 && strncasecmp(name.c_str(), "thrum-", 6) == 0)
      r.headers.emplace_back(name, std::string(f.value()));
  }
  if (ec) {
    r.body = res.body();
    return r;
  }
  r.conn = std::make_unique<FakePeerConn>(std::move(impl));
  return r;
}

std::unique_ptr<FakePeerConn> fake_link(unsigned short port, const std::string& token,
                                        const std::string& our_id, const std::string& their_id,
                                        const std::string& transport, std::string* error) {
  namespace la = core::peers::link_auth;
  la::Transcript t;
  t.initiator_nonce = core::pairing::generate_nonce();
  t.token_id = la::token_id(token);
  t.initiator_daemon_id = our_id;
  t.responder_daemon_id = their_id;
  t.transport = transport;
  auto d = fake_dial(port, {{la::kLinkHeader, la::kVersion},
                            {la::kTokenIdHeader, t.token_id},
                            {la::kNonceHeader, t.initiator_nonce},
                            {la::kDaemonIdHeader, our_id}});
  auto fail = [error](std::string why) -> std::unique_ptr<FakePeerConn> {
    if (error) *error = std::move(why);
    return nullptr;
  };
  if (!d.conn) return fail("upgrade refused: HTTP " + std::to_string(d.http_status) + " " + d.body);
  auto get = [&](const char* name) {
    for (const auto& [k, v] : d.headers)
      if (strcasecmp(k.c_str(), name) == 0) return v;
    return std::string();
  };
  t.responder_nonce = get(la::kNonceHeader);
  t.channel_binding = core::peers::channel_binding(d.conn->endpoint_binding(true), "", "");
  if (get(la::kDaemonIdHeader) != their_id) return fail("responder is another daemon");
  if (get(la::kProofHeader) != la::proof(token, la::Role::kResponder, t))
    return fail("responder proof does not verify");
  auto id = d.conn->call("link.auth", {{"proof", la::proof(token, la::Role::kInitiator, t)}});
  auto ans = d.conn->answer(id);
  if (!ans.is_object() || !ans.contains("result")) return fail("link.auth refused: " + ans.dump());
  return std::move(d.conn);
}

struct FakeListener::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
};

FakeListener::FakeListener() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
}

FakeListener::~FakeListener() = default;

unsigned short FakeListener::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::unique_ptr<FakePeerConn> FakeListener::accept(std::chrono::milliseconds timeout) {
  pollfd p{impl_->acceptor.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return nullptr;
  auto impl = std::make_unique<FakePeerConn::Impl>();
  beast::error_code ec;
  impl_->acceptor.accept(impl->ws.next_layer(), ec);
  if (ec) return nullptr;
  impl->ws.accept(ec);
  if (ec) return nullptr;
  return std::make_unique<FakePeerConn>(std::move(impl));
}

}  // namespace thrum::test
