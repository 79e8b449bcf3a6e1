#pragma once
/// @file
/// Rate limiting for log lines an outsider can trigger at will (a refused connection, a failed
/// accept, a handler exception): at most one line per window, carrying how many events it
/// stands for, so a flood of bad input cannot rotate the log's history away.

#include <chrono>
#include <cstdint>
#include <mutex>

namespace thrum::core {

class LogThrottle {
 public:
  using clock = std::chrono::steady_clock;
  explicit LogThrottle(clock::duration window = std::chrono::seconds(10)) : window_(window) {}

  /// Records one event. Returns 0 when no line should be written now, otherwise the number of
  /// events the line must report (this one and those suppressed since the last line).
  /// The first event, and the first after a quiet window, are always written.
  std::uint64_t admit(clock::time_point now = clock::now()) {
    std::lock_guard lk(mu_);
    ++pending_;
    if (logged_once_ && now - last_ < window_) return 0;
    logged_once_ = true;
    last_ = now;
    auto n = pending_;
    pending_ = 0;
    return n;
  }

 private:
  std::mutex mu_;
  clock::duration window_;
  clock::time_point last_{};
  bool logged_once_ = false;
  std::uint64_t pending_ = 0;
};

}  // namespace thrum::core
