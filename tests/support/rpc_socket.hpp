#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace thrum::test {

/// A raw client for the daemon's Unix socket (newline-delimited JSON-RPC), for tests that need
/// to send what the CLI never would (malformed lines, huge lines) or to hold a connection open
/// across many requests. Blocking; one thread at a time.
class UnixRpcClient {
 public:
  /// Connects to `socket_path`; throws std::runtime_error when nothing listens there.
  explicit UnixRpcClient(const std::filesystem::path& socket_path);
  ~UnixRpcClient();
  UnixRpcClient(const UnixRpcClient&) = delete;
  UnixRpcClient& operator=(const UnixRpcClient&) = delete;

  /// Writes all of `data` as is (no newline added). False when the peer is gone.
  bool send_raw(std::string_view data);
  /// The next response line (without '\n'), or nullopt on timeout, EOF or error.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Sends `text` + '\n' and parses the one line that answers it; a discarded json (is_discarded())
  /// when there was no answer or it was not JSON.
  nlohmann::json roundtrip(std::string_view text,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// A well-formed request with a fresh numeric id; returns the whole response document.
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object(),
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Waits until the daemon closes this connection (EOF or reset); buffered lines are dropped.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
  int next_id_ = 1;
  std::string buf_;
};

/// What a `/ws` client presents at the upgrade (WsServer): the daemon's client secret and the
/// agent it acts as; `headers` adds or overrides any header (e.g. Origin), an empty value
/// leaves a header out.
struct WsAuth {
  std::string secret;
  std::string agent;
  std::map<std::string, std::string> headers;
};
/// The secret from `<var>/ws.secret` for `agent` (what a real client of that repo sends).
WsAuth ws_auth(const std::filesystem::path& var, const std::string& agent);

/// A small synchronous WebSocket client for ws://127.0.0.1:<port>/ws (Boost.Beast underneath).
/// Frames that arrive while waiting for a response (e.g. notifications) are kept in order and
/// handed out by next_text() / next_notification().
class WsRpcClient {
 public:
  /// Connects and completes the WebSocket handshake presenting `auth`; throws on failure.
  WsRpcClient(unsigned short port, const WsAuth& auth, const std::string& target = "/ws");
  ~WsRpcClient();
  WsRpcClient(const WsRpcClient&) = delete;
  WsRpcClient& operator=(const WsRpcClient&) = delete;

  /// Sends one text frame. False when the connection is gone.
  bool send_text(const std::string& text);
  /// The next text frame, or nullopt on timeout or when the connection closed.
  std::optional<std::string> next_text(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Sends `text` and returns the first frame that is a response (has "result" or "error"),
  /// keeping notifications that arrive first. Discarded json on timeout.
  nlohmann::json roundtrip(const std::string& text,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object(),
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// The next notification named `method` (earlier non-matching notifications are dropped).
  std::optional<nlohmann::json> next_notification(
      const std::string& method, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int next_id_ = 1;
};

}  // namespace thrum::test
