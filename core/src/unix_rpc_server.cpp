#include "thrum/core/unix_rpc_server.hpp"

#include <poll.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <set>
#include <system_error>

#include <spdlog/spdlog.h>

#include "accept_guard.hpp"
#include "thrum/core/json_rpc.hpp"

namespace thrum::core {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

using SlotPtr = std::unique_ptr<ConnectionSlots::Slot>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(local::socket sock, const rpc::Dispatcher& d, std::function<void(Session*)> on_close,
          SlotPtr slot, std::chrono::milliseconds idle_timeout)
      : sock_(std::move(sock)),
        dispatcher_(d),
        on_close_(std::move(on_close)),
        slot_(std::move(slot)),
        idle_timeout_(idle_timeout),
        idle_timer_(sock_.get_executor()) {}

  void start() { read_next(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    idle_timer_.cancel();
    boost::system::error_code ec;
    sock_.shutdown(local::socket::shutdown_both, ec);
    sock_.close(ec);
    if (on_close_) {
      auto cb = std::move(on_close_);
      cb(this);
    }
  }

 private:
  void read_next() {
    if (closed_) return;
    arm_idle_timer();
    auto self = shared_from_this();
    asio::async_read_until(
        sock_, asio::dynamic_buffer(buf_, UnixRpcServer::kMaxLineBytes + 1), '\n',
        [self](boost::system::error_code ec, std::size_t n) { self->on_line(ec, n); });
  }

  /// Waiting for a request: the connection is idle until one arrives. (Requests are answered
  /// one at a time and nothing is read meanwhile, so this never runs while one is in flight.)
  void arm_idle_timer() {
    // A subscribed session waits for pushes, not requests: it is never idle.
    if (idle_timeout_.count() <= 0 || subscribed_) return;
    idle_timer_.expires_after(idle_timeout_);
    std::weak_ptr<Session> weak = shared_from_this();
    idle_timer_.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || s->closed_) return;
      spdlog::debug("rpc connection idle, closing idle_timeout_ms={}", s->idle_timeout_.count());
      s->close();
    });
  }

  void on_line(boost::system::error_code ec, std::size_t n) {
    if (closed_) return;
    idle_timer_.cancel();  // a request (or the end of the connection) arrived
    if (ec == asio::error::not_found) {
      // The line grew past the limit without a newline: refuse and hang up.
      spdlog::warn("rpc line too long, closing connection limit_bytes={}",
                   UnixRpcServer::kMaxLineBytes);
      write(rpc::make_response(nullptr,
                               rpc::Error{rpc::kInvalidRequest,
                                          "request line exceeds 8 MiB; connection closed", nullptr},
                               true),
            /*then_close=*/true);
      return;
    }
    if (ec) {
      close();
      return;
    }
    std::string line = buf_.substr(0, n - 1);
    buf_.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      read_next();
      return;
    }
    std::weak_ptr<Session> weak = shared_from_this();
    rpc::CallContext ctx;
    ctx.channel = rpc::CallContext::Channel::kUnix;
    ctx.alive = [weak] {
      auto s = weak.lock();
      return s && !s->closed_ && !s->hung_up();
    };
    add_push(ctx, weak);
    dispatcher_.handle(line, ctx, [weak](std::string response) {
      if (auto s = weak.lock()) s->write(std::move(response), false);
    });
  }

 public:
  /// A session some method will push to later (message.subscribe): busy, not idle.
  bool subscribed() const { return subscribed_; }

 private:
  // -- Push (message.subscribe) -------------------------------------------------------------
  // Notifications share the outgoing queue with answers, so one async_write is in flight at a
  // time. The queue of pushes is bounded: a subscriber that stops reading is disconnected
  // rather than buffered without limit.
  static constexpr size_t kMaxQueuedPushes = 4096;
  static constexpr size_t kMaxQueuedPushBytes = 8u << 20;

  static void add_push(rpc::CallContext& ctx, const std::weak_ptr<Session>& weak) {
    ctx.push = [weak](std::string line) {
      auto s = weak.lock();
      return s && s->push(std::move(line));
    };
    ctx.hold = [weak] {
      if (auto s = weak.lock()) s->subscribed_ = true;
    };
  }

  bool push(std::string line) {
    if (closed_ || hung_up()) return false;
    if (queued_pushes_ + 1 > kMaxQueuedPushes ||
        queued_push_bytes_ + line.size() > kMaxQueuedPushBytes) {
      spdlog::warn("rpc subscriber is not reading, disconnecting queued_notifications={}",
                   queued_pushes_);
      close();
      return false;
    }
    ++queued_pushes_;
    queued_push_bytes_ += line.size() + 1;
    enqueue(std::move(line), Then::kPushed);
    return true;
  }

  /// Whether the client closed its end. Nothing reads while a request is being answered, so a
  /// client that went away is not noticed by a read; POLLHUP (both directions shut) says so,
  /// while a client that only shut down its sending side still counts as waiting.
  bool hung_up() {
    pollfd p{sock_.native_handle(), 0, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
  }

  /// What to do once an outgoing line is written.
  enum class Then { kReadNext, kClose, kPushed };

  void write(std::string response, bool then_close) {
    enqueue(std::move(response), then_close ? Then::kClose : Then::kReadNext);
  }

  void enqueue(std::string line, Then then) {
    if (closed_) return;
    line += '\n';
    out_.push_back(Outgoing{std::move(line), then});
    if (!writing_) write_front();
  }

  void write_front() {
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(out_.front().data),
                      [self](boost::system::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void on_written(boost::system::error_code ec) {
    writing_ = false;
    Outgoing done = std::move(out_.front());
    out_.pop_front();
    if (done.then == Then::kPushed) {
      --queued_pushes_;
      queued_push_bytes_ -= done.data.size();
    }
    if (closed_) return;
    if (ec || done.then == Then::kClose) {
      close();
      return;
    }
    // Requests on one connection are answered strictly in order: read the next only after
    // this answer is out.
    if (done.then == Then::kReadNext) read_next();
    if (!out_.empty() && !writing_ && !closed_) write_front();
  }

  struct Outgoing {
    std::string data;
    Then then;
  };

  local::socket sock_;
  const rpc::Dispatcher& dispatcher_;
  std::function<void(Session*)> on_close_;
  SlotPtr slot_;
  std::chrono::milliseconds idle_timeout_;
  asio::steady_timer idle_timer_;
  std::string buf_;
  bool closed_ = false;
  std::deque<Outgoing> out_;
  bool writing_ = false;
  bool subscribed_ = false;
  size_t queued_pushes_ = 0;
  size_t queued_push_bytes_ = 0;
};

}  // namespace

struct UnixRpcServer::Impl : std::enable_shared_from_this<UnixRpcServer::Impl> {
  Impl(asio::io_context& ioc, std::filesystem::path p, const rpc::Dispatcher& d, Options o)
      : ioc(ioc),
        path(std::move(p)),
        dispatcher(d),
        options(o),
        acceptor(ioc),
        slots(std::make_shared<ConnectionSlots>(o.max_connections)),
        guard("unix socket"),
        pause(ioc) {}

  void accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](boost::system::error_code ec, local::socket sock) {
      if (self->stopped || ec == asio::error::operation_aborted) return;
      if (ec)
        return self->pause_then_accept(self->guard.on_error(ec, self->acceptor.native_handle()));
      self->guard.on_success();
      self->admit(std::move(sock));
      self->accept();
    });
  }

  /// A new connection gets a session, or is hung up on when the listener is full.
  void admit(local::socket sock) {
    auto slot = slots->try_take();
    if (!slot) {
      guard.on_refused(slots->cap());
      boost::system::error_code ignored;
      sock.close(ignored);
      return;
    }
    auto s = std::make_shared<Session>(
        std::move(sock), dispatcher,
        [weak = weak_from_this()](Session* gone) {
          if (auto i = weak.lock()) {
            for (auto it = i->sessions.begin(); it != i->sessions.end(); ++it)
              if (it->get() == gone) {
                i->sessions.erase(it);
                break;
              }
          }
        },
        std::move(slot), options.idle_timeout);
    sessions.insert(s);
    s->start();
  }

  /// After a failed accept (EMFILE...): wait before trying again instead of spinning.
  void pause_then_accept(std::chrono::milliseconds d) {
    auto self = shared_from_this();
    pause.expires_after(d);
    pause.async_wait([self](boost::system::error_code ec) {
      if (!ec && !self->stopped) self->accept();
    });
  }

  asio::io_context& ioc;
  std::filesystem::path path;
  const rpc::Dispatcher& dispatcher;
  Options options;
  local::acceptor acceptor;
  std::shared_ptr<ConnectionSlots> slots;
  AcceptGuard guard;
  asio::steady_timer pause;
  std::set<std::shared_ptr<Session>> sessions;
  bool stopped = false;
};

UnixRpcServer::UnixRpcServer(asio::io_context& ioc, std::filesystem::path socket_path,
                             const rpc::Dispatcher& dispatcher, Options options)
    : impl_(std::make_shared<Impl>(ioc, std::move(socket_path), dispatcher, options)) {}

UnixRpcServer::~UnixRpcServer() {
  stop();
}

void UnixRpcServer::start() {
  std::error_code fec;
  std::filesystem::remove(impl_->path, fec);  // stale: we hold the daemon lock
  local::endpoint ep(impl_->path.string());
  impl_->acceptor.open(ep.protocol());
  // Nobody else may connect while we fix the mode: create it private from the start.
  mode_t old = ::umask(0177);
  boost::system::error_code ec;
  impl_->acceptor.bind(ep, ec);
  ::umask(old);
  if (ec) throw std::system_error(ec, "bind " + impl_->path.string());
  ::chmod(impl_->path.c_str(), 0600);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  impl_->accept();
}

void UnixRpcServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  impl_->pause.cancel();
  auto sessions = impl_->sessions;
  impl_->sessions.clear();
  for (auto& s : sessions) s->close();
  std::error_code fec;
  std::filesystem::remove(impl_->path, fec);
}

}  // namespace thrum::core
