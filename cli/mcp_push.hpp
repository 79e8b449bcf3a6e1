#pragma once
// `thrum mcp serve`, layer 4: the push. A thread holds a second connection to the daemon on
// which it called `message.subscribe` for the agent, and hands each `message.received`
// notification to the session. No polling: the daemon writes when a message is stored. When
// the daemon goes away the listener reconnects (once a second) and resubscribes; what arrived
// in between is in the inbox (check_messages).

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

namespace thrum::cli::mcp {

/// The message of a `message.received` notification line, or nullopt for anything else (an
/// answer, another notification, a line that is not JSON).
std::optional<nlohmann::json> received_message(std::string_view line);

class PushListener {
 public:
  using OnMessage = std::function<void(const nlohmann::json& message)>;
  PushListener(std::filesystem::path socket, std::string agent, OnMessage on_message)
      : socket_(std::move(socket)), agent_(std::move(agent)), on_message_(std::move(on_message)) {}
  ~PushListener() { stop(); }
  PushListener(const PushListener&) = delete;
  PushListener& operator=(const PushListener&) = delete;

  /// Connects and subscribes now (throws ConnectError / RpcError so that `serve` can refuse to
  /// start), then listens on a thread.
  void start();
  void stop();

 private:
  /// A connected, subscribed socket, or throws.
  int subscribe();
  void run(int fd);
  /// Reads lines until the connection ends or stop(); false when stopping.
  bool listen(int fd);

  std::filesystem::path socket_;
  std::string agent_;
  OnMessage on_message_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int fd_ = -1;  ///< the live connection (guarded by mu_), shut down by stop()
};

}  // namespace thrum::cli::mcp
