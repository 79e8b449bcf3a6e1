#pragma once
// Internal to the core (includes Beast): one WebSocket to another daemon carrying JSON-RPC 2.0
// in both directions. Included only by peer_*.cpp and ws_server.cpp.

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include <utility>
#include <vector>
#include "peers/link.hpp"
#include "thrum/core/json_rpc.hpp"

namespace thrum::core {

namespace peerwire {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::generic::stream_protocol::socket;
using TlsStream = beast::ssl_stream<Socket>;
/// A connection to another daemon: in the clear (loopback transports) or inside TLS.
using AnyStream = std::variant<Socket, TlsStream>;
using Request = http::request<http::string_body>;
}  // namespace peerwire

/// HTTP header fields added to a link's upgrade request or 101 response (link authentication).
using HeaderFields = std::vector<std::pair<std::string, std::string>>;

/// A `/peer` upgrade request that arrived on one of our listeners, handed to the peer layer.
struct PeerUpgrade {
  peerwire::AnyStream stream;
  peerwire::Request request;
  std::string remote;  ///< "ip:port" of the other end, for logs
  /// The transport whose own listener took the connection; empty for the loopback server, which
  /// serves every transport without a listener of its own (Capabilities::provides_listener).
  std::string transport;
  bool tls = false;              ///< `stream` is a TlsStream
  std::string peer_cert_sha256;  ///< the other side's certificate (TLS only)
};

/// Wraps a connected stream-socket fd (from a transport plugin or an acceptor) for Asio.
/// Takes ownership of `fd`. Throws boost::system::system_error.
peerwire::Socket adopt_fd(peerwire::asio::io_context& ioc, int fd);

/// The socket under an upgrade's stream (for its endpoints), or -1.
int native_fd(peerwire::AnyStream& s);

/// Writes a plain HTTP error response (e.g. 401) and closes the socket.
void reject_upgrade(std::unique_ptr<PeerUpgrade> up, peerwire::http::status status,
                    const std::string& body);

/// A WebSocket to another daemon carrying JSON-RPC 2.0 both ways: one write in flight with a
/// queue behind it, a ping every Timing::ping_interval, dead after Timing::dead_after without
/// traffic. Every frame is decoded by peers/protocol.hpp before anyone sees it.
class PeerLink final : public peers::Link, public std::enable_shared_from_this<PeerLink> {
 public:
  using Json = nlohmann::json;

  struct Timing {
    std::chrono::milliseconds ping_interval{5000};
    std::chrono::milliseconds dead_after{15000};
  };

  /// Server side: completes the WebSocket handshake on an accepted upgrade, adding `headers`
  /// to the 101 response.
  static void accept(std::unique_ptr<PeerUpgrade> up, Timing t, HeaderFields headers,
                     std::function<void(std::shared_ptr<PeerLink>)> on_open);
  /// What the other side answered to our upgrade: the link (null on failure), an error text,
  /// the HTTP status (101 on success, 401 = token rejected) and the response's header fields
  /// whose names start with "Thrum-".
  using ConnectDone = std::function<void(std::shared_ptr<PeerLink>, std::string error,
                                         int http_status, HeaderFields thrum_headers)>;
  /// Client side: WebSocket handshake on `sock` to `host` (for the Host header) at /peer, with
  /// `headers` added to the request.
  static void connect(peerwire::AnyStream sock, const std::string& host, HeaderFields headers,
                      Timing t, ConnectDone done);

  explicit PeerLink(peerwire::AnyStream sock, Timing t);
  ~PeerLink() override;

  // peers::Link
  void set_handlers(RequestHandler on_request, CloseHandler on_close) override;
  void call(const std::string& method, const Json& params, Reply reply) override;
  void call_text(const std::string& method, const std::string& params, Reply reply) override;
  void notify(const std::string& method, const Json& params) override;
  void close(const std::string& reason) override;
  bool is_open() const override { return open_; }
  void set_max_frame_bytes(std::size_t n) override;

  std::size_t pending_calls() const { return pending_.size(); }

 private:
  void read();
  void on_frame(std::string text);
  void send(std::string text);
  void write_front();
  void arm_ping();
  void close_socket();

  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), ws_);
  }

  std::variant<peerwire::websocket::stream<peerwire::Socket>,
               peerwire::websocket::stream<peerwire::TlsStream>>
      ws_;
  peerwire::beast::flat_buffer buf_;
  std::deque<std::string> queue_;
  std::map<int64_t, Reply> pending_;
  int64_t next_id_ = 1;
  RequestHandler on_request_;
  CloseHandler on_close_;
  bool open_ = true;
  bool started_ = false;
  Timing timing_;
  peerwire::asio::steady_timer ping_timer_;
  std::chrono::steady_clock::time_point last_rx_;
};

}  // namespace thrum::core
