#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace thrum::cli {

/// The daemon answered with a JSON-RPC error.
struct RpcError : std::runtime_error {
  RpcError(int c, const std::string& m) : std::runtime_error(m), code(c) {}
  int code;
};
/// No daemon answered on the socket.
struct ConnectError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A blocking JSON-RPC client over the daemon's Unix socket (newline-delimited). One
/// connection per CLI command; requests are sequential. No Asio: the CLI stays small and
/// starts fast.
class RpcClient {
 public:
  /// Connects or throws ConnectError with a message naming the socket and the fix.
  explicit RpcClient(const std::filesystem::path& socket_path);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  /// Calls `method`; returns `result` or throws RpcError / ConnectError. `timeout` bounds the
  /// wait for the answer (long-polls pass their own).
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object(),
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// True when something accepts connections at `socket_path` and answers `health`.
  static bool probe(const std::filesystem::path& socket_path);

 private:
  int fd_ = -1;
  int next_id_ = 1;
  std::string buf_;
  std::filesystem::path path_;
};

}  // namespace thrum::cli
