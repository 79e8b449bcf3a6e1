#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace thrum::core {

/// The daemon's single I/O thread as seen by code that must not depend on Asio. Everything
/// posted here runs on that one thread, in order, so state owned by the loop needs no lock.
class EventLoop {
 public:
  virtual ~EventLoop() = default;
  /// Runs `fn` on the loop thread soon. Safe to call from any thread.
  virtual void post(std::function<void()> fn) = 0;
  /// Runs `fn` on the loop thread after `delay` unless the returned handle is cancelled
  /// (cancel() is loop-thread only; calling it after `fn` ran is harmless).
  class Timer {
   public:
    virtual ~Timer() = default;
    virtual void cancel() = 0;
  };
  virtual std::shared_ptr<Timer> run_after(std::chrono::milliseconds delay,
                                           std::function<void()> fn) = 0;
  /// The loop's clock: the steady clock, or a test's manual one. Timing decisions (backoff,
  /// expiry) read it here so that tests can drive them.
  virtual std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace thrum::core
