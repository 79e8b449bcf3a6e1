#pragma once
// `thrum mcp serve`, layer 2: the MCP session. Decodes each client line (bounded JSON,
// JSON-RPC 2.0), negotiates the protocol revision in `initialize`, answers tools/*,
// resources/* and ping, and turns a message pushed by the daemon into
// `notifications/claude/channel` and (for a subscribed thrum://inbox)
// `notifications/resources/updated`. Thread-safe: lines are handled on the reading thread,
// long tools on a worker the `spawn` function provides, pushes on the listener's thread.

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mcp_tools.hpp"

namespace thrum::cli::mcp {

/// Protocol revisions this server speaks, newest first. The client's revision is used when it
/// is one of them; otherwise the newest (the client then decides whether to go on).
inline constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18"};
inline constexpr const char* kInboxUri = "thrum://inbox";

/// The claude/channel notification for a message in the `message.get` shape.
json channel_notification(const json& message);

class Session {
 public:
  using Send = std::function<void(const json&)>;
  /// Runs `job` (a long tool call) somewhere that may block; tests run it inline.
  using Spawn = std::function<void(std::function<void()> job)>;

  Session(const Tools& tools, Send send, Spawn spawn)
      : tools_(tools), send_(std::move(send)), spawn_(std::move(spawn)) {}

  /// One line from the client.
  void handle_line(std::string_view line);
  /// A line that passed the size limit.
  void line_too_long();
  /// The daemon pushed `message` (the `message.get` shape) for this agent.
  void message_arrived(const json& message);

  bool initialized() const { return initialized_; }
  bool inbox_subscribed() const { return inbox_subscribed_; }

 private:
  void handle_request(const json& id, const std::string& method, const json& params);
  json initialize(const json& params);
  json read_resource();
  void reply(const json& id, json result);
  void reply_error(const json& id, int code, const std::string& message);

  const Tools& tools_;
  Send send_;
  Spawn spawn_;
  std::atomic<bool> initialized_{false};
  std::atomic<bool> inbox_subscribed_{false};
};

}  // namespace thrum::cli::mcp
