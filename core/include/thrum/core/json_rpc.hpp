#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::core::rpc {

using json = nlohmann::json;

/// JSON-RPC 2.0 error codes (SPEC §4).
enum ErrorCode : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
  kHandlerError = -32000,
};

struct Error {
  int code = kHandlerError;
  std::string message;
  json data;  ///< null when absent
};

/// What a handler answers: a result, or an error.
class Outcome {
 public:
  Outcome(json result) : v_(std::move(result)) {}  // NOLINT(google-explicit-constructor)
  Outcome(Error e) : v_(std::move(e)) {}           // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  const json& result() const { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<json, Error> v_;
};

/// Thrown by a handler while it validates its input (synchronously); the dispatcher turns it
/// into the error response. Never thrown from asynchronous completions.
struct Failure : std::runtime_error {
  Failure(int c, const std::string& msg) : std::runtime_error(msg), code(c) {}
  int code;
};
[[noreturn]] inline void fail(const std::string& msg) {
  throw Failure(kHandlerError, msg);
}
[[noreturn]] inline void fail_params(const std::string& msg) {
  throw Failure(kInvalidParams, msg);
}

/// Who is calling and over what.
struct CallContext {
  enum class Channel { kUnix, kWebSocket, kInternal };
  Channel channel = Channel::kUnix;
  /// False once the caller's connection has closed; long-polls use it to give up early.
  std::function<bool()> alive = [] { return true; };
  /// Connections that can carry notifications after the answer (the Unix socket; null
  /// elsewhere): queues one notification line, false once the connection is gone or was
  /// dropped because it stopped reading. Loop thread.
  std::function<bool(std::string)> push;
  /// Called by a method that will push later (`message.subscribe`): the connection is then
  /// busy, never idle, while it stays open.
  std::function<void()> hold;

  /// The agent this connection authenticated as (a `/ws` session fixes it at the upgrade);
  /// empty when the channel does not bind one. When set, the dispatcher fills in
  /// `caller_agent_id` and refuses a request that names another agent.
  std::string agent;
};

using Respond = std::function<void(Outcome)>;
/// A method handler. It must call `respond` exactly once, now or later, on the loop thread.
using Handler = std::function<void(const json& params, const CallContext& ctx, Respond respond)>;

/// Typed access to request params with errors that name the parameter (-32602). The getters
/// throw nothing but Failure, whatever the params hold (including a non-object).
class Params {
 public:
  explicit Params(const json& p) : p_(p) {}
  std::string str(const char* key) const;  ///< required non-empty string
  std::optional<std::string> opt_str(const char* key) const;
  std::optional<int64_t> opt_int(const char* key) const;  ///< must fit int64
  bool flag(const char* key, bool def = false) const;
  std::vector<std::string> str_list(const char* key) const;  ///< string or array of strings
  const json& raw() const { return p_; }

 private:
  const json& p_;
};

/// Maps method names to handlers and runs the JSON-RPC 2.0 envelope: parsing (bounded depth
/// and size, never a copy of an untrusted id), validation, error codes, id echo. Nothing a
/// handler or a respond callback throws leaves handle()/call(): it is answered -32603, counted
/// as Incident::kHandlerException and logged (rate-limited). Loop-thread only.
class Dispatcher {
 public:
  /// Longest request text handle() parses (the Unix socket's line limit).
  static constexpr std::size_t kMaxRequestBytes = 8u << 20;
  /// Longest string id accepted (a longer one is -32600, and never echoed).
  static constexpr std::size_t kMaxIdBytes = 256;

  enum Scope : unsigned { kUnix = 1, kWebSocket = 2, kBoth = 3 };
  void add(std::string method, Handler handler, Scope scope = kBoth);

  /// Handles one request (a line from the Unix socket or a WebSocket text frame) and calls
  /// `reply` with the response document, or not at all for a JSON-RPC notification... except
  /// that, like upstream, a request without an id is still answered (id omitted).
  void handle(std::string_view text, const CallContext& ctx,
              const std::function<void(std::string)>& reply) const;

  /// Runs a method directly (internal callers, e.g. tests); params must be an object.
  void call(const std::string& method, const json& params, const CallContext& ctx,
            Respond respond) const;

  std::vector<std::string> methods() const;

 private:
  struct Entry {
    Handler handler;
    Scope scope;
  };
  std::map<std::string, Entry, std::less<>> handlers_;
};

/// Serialises a response envelope (no trailing newline).
std::string make_response(const json& id, const Outcome& outcome, bool include_id);
/// Serialises a notification envelope (no id).
std::string make_notification(std::string_view method, const json& params);

}  // namespace thrum::core::rpc
