#pragma once
// `thrum mcp serve`, layer 3: the tools (names compatible with upstream Thrum's MCP server).
// Each tool decodes its arguments into typed values (or answers a tool error naming the
// argument), calls the daemon, and answers `structuredContent` plus the same JSON as text.
// Failures of any kind are tool results with isError: true, never protocol errors.

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace thrum::cli::mcp {

using json = nlohmann::json;

/// Calls one daemon method and returns its result; throws RpcError / ConnectError
/// (client.hpp) like RpcClient::call. Must be safe to call from several threads at once
/// (wait_for_message runs on its own thread).
using DaemonCall =
    std::function<json(const std::string& method, const json& params, std::chrono::milliseconds)>;

/// The longest wait_for_message accepts, in seconds, and its default.
inline constexpr int kMaxWaitSeconds = 600;
inline constexpr int kDefaultWaitSeconds = 60;

class Tools {
 public:
  Tools(DaemonCall call, std::string agent) : call_(std::move(call)), agent_(std::move(agent)) {}

  /// The `tools/list` result: {"tools": [...]}.
  static json list();
  /// Runs tool `name` with `arguments` (any JSON; null when absent) and returns the
  /// `tools/call` result. Never throws.
  json call(const std::string& name, const json& arguments) const;
  /// Whether `name` may block for long (the session runs it off the reading thread).
  static bool is_long(const std::string& name) { return name == "wait_for_message"; }

  /// The unread messages, newest first, for the `thrum://inbox` resource (does not mark them
  /// read). Throws like DaemonCall.
  json unread_snapshot() const;

  const std::string& agent() const { return agent_; }

 private:
  json send_message(const json& args) const;
  json check_messages(const json& args) const;
  json wait_for_message(const json& args) const;
  json list_agents(const json& args) const;
  json message_status(const json& args) const;
  json list_peers(const json& args) const;

  DaemonCall call_;
  std::string agent_;
};

/// A tool's answer: `structured` as structuredContent and as text.
json tool_result(const json& structured);
/// A tool's failure, with the message the CLI would print.
json tool_error(const std::string& message);

}  // namespace thrum::cli::mcp
