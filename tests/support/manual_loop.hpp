#pragma once

// An EventLoop for unit tests, driven by the test thread with a manual clock: post() queues
// (from any thread), run_ready() runs what is queued, advance(d) moves the clock and fires the
// timers that fall due, in order. Nothing runs unless the test asks.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "thrum/core/event_loop.hpp"

namespace thrum::test {

class ManualLoop final : public core::EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  void post(std::function<void()> fn) override {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
  }

  class ManualTimer final : public Timer {
   public:
    void cancel() override { cancelled = true; }
    bool cancelled = false;
  };

  std::shared_ptr<Timer> run_after(std::chrono::milliseconds delay,
                                   std::function<void()> fn) override {
    auto t = std::make_shared<ManualTimer>();
    timers_.emplace(std::make_pair(now_ + delay, seq_++), Entry{t, std::move(fn)});
    return t;
  }

  Clock::time_point now() const override { return now_; }

  /// Runs queued work (and what it queues) until nothing is left; returns how many ran.
  int run_ready() {
    int n = 0;
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lk(mu_);
        if (queue_.empty()) return n;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
      ++n;
    }
  }

  /// Moves the clock forward by `d`, firing every timer due on the way (with run_ready() after
  /// each), so that timers a timer sets are honoured too.
  void advance(std::chrono::milliseconds d) {
    const auto until = now_ + d;
    run_ready();
    for (;;) {
      auto it = timers_.begin();
      if (it == timers_.end() || it->first.first > until) break;
      now_ = std::max(now_, it->first.first);
      Entry e = std::move(it->second);
      timers_.erase(it);
      if (!e.timer->cancelled) e.fn();
      run_ready();
    }
    now_ = until;
  }

  /// Pending (not cancelled) timers.
  size_t timers() const {
    return static_cast<size_t>(std::count_if(timers_.begin(), timers_.end(), [](const auto& kv) {
      return !kv.second.timer->cancelled;
    }));
  }

  /// Waits (real time) for work posted from other threads (e.g. the store's writer) and runs it
  /// until `pred` holds; false after `timeout`.
  bool run_until(const std::function<bool()>& pred,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (run_ready() > 0) continue;
      std::unique_lock lk(mu_);
      if (!cv_.wait_until(lk, deadline, [&] { return !queue_.empty(); })) return pred();
    }
    return true;
  }

 private:
  struct Entry {
    std::shared_ptr<ManualTimer> timer;
    std::function<void()> fn;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::map<std::pair<Clock::time_point, uint64_t>, Entry> timers_;
  uint64_t seq_ = 0;
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
};

}  // namespace thrum::test
