#pragma once

// A hand-written peer for tests that must say what no real daemon would: a WebSocket
// connection to (or from) a real daemon's /peer endpoint that the test drives frame by frame,
// with the real link authentication (it knows a token the test planted in peers.json) or the
// real pairing handshake (it knows the code `peer add` printed) — and then hostile frames.
// Runs its own I/O thread; every method is blocking and thread-safe enough for one test.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::test {

class FakePeerConn {
 public:
  ~FakePeerConn();
  /// Sends one text frame as is.
  void send(const std::string& text);
  /// Sends {"jsonrpc":"2.0","id":<next>,"method":m,"params":p} and returns the id used.
  int64_t call(const std::string& method, const nlohmann::json& params);
  /// The next text frame, or nullopt once `timeout` passed or the connection closed.
  std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Reads until a frame for which `pred` holds (others are dropped), parsed; null on timeout.
  nlohmann::json read_until(const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// The answer to call `id` (null on timeout).
  nlohmann::json answer(int64_t id, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// True once the other side closed (or the connection failed).
  bool closed() const;
  /// Waits until closed(); false when still open after `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void close();
  /// The endpoints the way peers/channel_binding.hpp sees them from this side.
  std::string endpoint_binding(bool initiator) const;

  struct Impl;
  explicit FakePeerConn(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
  int64_t next_id_ = 1;
};

struct DialResult {
  std::unique_ptr<FakePeerConn> conn;  ///< null when the upgrade failed
  int http_status = 0;
  std::string body;                                          ///< the refusal body when not 101
  std::vector<std::pair<std::string, std::string>> headers;  ///< response Thrum-* headers
};

/// Opens a WebSocket to 127.0.0.1:`port`/peer with `headers` added to the upgrade.
DialResult fake_dial(unsigned short port,
                     const std::vector<std::pair<std::string, std::string>>& headers = {});

/// Dials and runs the link authentication as the initiator with `token`, claiming `our_id`, and
/// checks the responder is `their_id` with a good proof; then sends link.auth. `error` says why
/// when it returns null.
std::unique_ptr<FakePeerConn> fake_link(unsigned short port, const std::string& token,
                                        const std::string& our_id, const std::string& their_id,
                                        const std::string& transport, std::string* error);

/// Listens on 127.0.0.1 (any port) for one /peer upgrade and accepts it as a WebSocket.
class FakeListener {
 public:
  FakeListener();
  ~FakeListener();
  unsigned short port() const;
  /// Waits for one connection and its upgrade; null on timeout.
  std::unique_ptr<FakePeerConn> accept(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thrum::test
