#pragma once
/// @file
/// What the daemon's accept loops (Unix socket, loopback WebSocket) share: a cap on open
/// connections per listener, and a calm reaction when accept(2) fails.
///
/// At EMFILE/ENFILE an accept loop that simply retries spins at full CPU (the pending
/// connection stays pending) and logs a line per spin. AcceptGuard instead pauses the loop on a
/// timer (100 ms, doubling to 1 s while failures continue), spends a reserve descriptor to
/// accept-and-close one waiting client so it is not left hanging, and logs at most one line
/// per 10 s with the count. Loop-thread only.

#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "thrum/core/log_throttle.hpp"

namespace thrum::core {

class AcceptGuard {
 public:
  explicit AcceptGuard(std::string listener);  ///< e.g. "unix socket"; opens the reserve fd
  ~AcceptGuard();
  AcceptGuard(const AcceptGuard&) = delete;
  AcceptGuard& operator=(const AcceptGuard&) = delete;

  /// After a failed accept on `listen_fd`: counts it, logs (rate-limited) and returns how long
  /// to wait before accepting again.
  std::chrono::milliseconds on_error(const boost::system::error_code& ec, int listen_fd);
  /// After a successful accept: the next failure starts from the shortest pause again.
  void on_success() { backoff_ = std::chrono::milliseconds(0); }

  /// Logs (rate-limited) and counts a connection hung up on because the listener is full.
  void on_refused(std::size_t cap);

  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kMaxPause{1000};

 private:
  void shed_one(int listen_fd);
  std::string listener_;
  int reserve_fd_ = -1;
  std::chrono::milliseconds backoff_{0};
  LogThrottle error_log_;
  LogThrottle refused_log_;
};

/// Counts a listener's open connections against its cap. A Slot is held by whatever owns the
/// connection and gives its place back when destroyed.
class ConnectionSlots : public std::enable_shared_from_this<ConnectionSlots> {
 public:
  explicit ConnectionSlots(std::size_t cap) : cap_(cap) {}
  class Slot {
   public:
    explicit Slot(std::shared_ptr<ConnectionSlots> owner) : owner_(std::move(owner)) {}
    ~Slot() {
      if (owner_) --owner_->open_;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    std::shared_ptr<ConnectionSlots> owner_;
  };
  /// A slot, or nullptr when `cap` connections are already open.
  std::unique_ptr<Slot> try_take() {
    if (open_ >= cap_) return nullptr;
    ++open_;
    return std::make_unique<Slot>(shared_from_this());
  }
  std::size_t open() const { return open_; }
  std::size_t cap() const { return cap_; }

 private:
  std::size_t cap_;
  std::size_t open_ = 0;
};

}  // namespace thrum::core
